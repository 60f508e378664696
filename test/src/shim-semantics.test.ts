/**
 * Socket semantics through the shim, each checked with a real program (python3) on the
 * shim and a kernel peer in a namespace (harness/shim.ts): SO_LINGER {1, 0}, close with
 * unread data, a TCP reset read as ECONNRESET, TCP_INFO, TCP_CONGESTION, keepalive
 * timing, SO_RCVBUF/SO_SNDBUF, bind errors, SO_REUSEADDR/SO_REUSEPORT, dup/dup2/dup3,
 * fcntl O_NONBLOCK, AF_INET6. Needs root and python3, iptables: without them the suite
 * FAILS with the reason (never skipped).
 */

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { collect, missingShimRequirements, ShimTopology, sha256 } from './harness/shim';

jest.setTimeout(60_000);

// The kernel side, in the namespace: one connection per run, what it saw on stdout.
const PEER = String.raw`
import errno, socket, struct, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ':' in host else socket.AF_INET
def outcome(c):
    n = 0
    try:
        while True:
            d = c.recv(65536)
            if not d: return f'{n} EOF'
            n += len(d)
    except OSError as e:
        return f'{n} {errno.errorcode[e.errno]}'
if mode == 'client-window':            # connect, send 1 MB, read the reply, then our TCP_INFO's snd_wnd
    c = socket.create_connection((host, port))
    c.sendall(b'x' * (1 << 20)); c.shutdown(socket.SHUT_WR)
    reply = c.recv(16)
    time.sleep(0.2)
    info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    print(reply.decode(), struct.unpack_from('I', info, 228)[0], flush=True)
    sys.exit(0)
s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if mode.startswith('slow'): s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
s.bind((host, port)); s.listen(8)
print('listening', flush=True)
c, _ = s.accept()
if mode == 'report':                   # what the client's end looks like: bytes, then EOF or the error
    print(outcome(c), flush=True)
elif mode == 'report2':                # the same; then, a second later, whether a RST came (a send fails with EPIPE)
    print(outcome(c), flush=True)
    time.sleep(1)
    try: c.send(b'x'); print('send ok', flush=True)
    except OSError as e: print('send', errno.errorcode[e.errno], flush=True)
elif mode == 'flood':                  # 200 kB the client never reads, then what its close looks like
    c.sendall(b'y' * 200_000)
    print(outcome(c), flush=True)
elif mode == 'reset':                  # read a line, answer, then RST (SO_LINGER {1, 0})
    c.recv(100); c.sendall(b'bye\n'); time.sleep(0.2)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); c.close()
    print('reset', flush=True)
elif mode == 'window':                 # our TCP_INFO's snd_wnd after the client's first data
    time.sleep(0.3)
    info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    print('snd_wnd', struct.unpack_from('I', info, 228)[0], flush=True)
    c.recv(10)
elif mode == 'hash':                   # sha256 of everything, sent back
    import hashlib
    h = hashlib.sha256(); n = 0
    while True:
        d = c.recv(65536)
        if not d: break
        h.update(d); n += len(d)
    c.sendall(f'{n} {h.hexdigest()} {c.getpeername()[0]}\n'.encode()); c.close()
elif mode == 'count':                  # an 8-byte length, that many bytes, then their sha256; open until EOF
    import hashlib
    want = struct.unpack('!Q', c.recv(8, socket.MSG_WAITALL))[0]; h = hashlib.sha256(); n = 0
    while n < want:
        d = c.recv(min(65536, want - n))
        if not d: break
        h.update(d); n += len(d)
    c.sendall(f'{n} {h.hexdigest()} {c.getpeername()[0]}\n'.encode())
    print(outcome(c), flush=True)
elif mode == 'sink':                   # hold the connection open, read slowly
    time.sleep(30)
elif mode == 'shutrd':                 # 'before'; hash what comes until EOF... (the client shuts down reading)
    import hashlib
    c.sendall(b'before')
    want = struct.unpack('!Q', c.recv(8, socket.MSG_WAITALL))[0]; h = hashlib.sha256(); n = 0
    while n < want:
        d = c.recv(min(65536, want - n))
        if not d: break
        h.update(d); n += len(d)
    print(n, h.hexdigest(), flush=True)
    c.sendall(b'after'); print('sent after', flush=True)   # data after SHUT_RD: kept unread
    print(outcome(c), flush=True)          # the client's SHUT_WR: FIN
    time.sleep(0.8)                        # its close with 'after' unread: RST (a send fails)
    try: c.send(b'x'); print('send ok', flush=True)
    except OSError as e: print('send', errno.errorcode[e.errno], flush=True)
elif mode == 'shutrdwr':               # 'before', EOF from the client, then data after it: RST
    c.sendall(b'before')
    print(outcome(c), flush=True)
    time.sleep(0.2)                    # after the client's reads of what was queued
    c.sendall(b'after'); time.sleep(0.3)
    try: c.send(b'again'); print('send ok', flush=True)
    except OSError as e: print('send', errno.errorcode[e.errno], flush=True)
elif mode.startswith('slow'):          # a small window; reads nothing for N s, then hashes all
    import hashlib
    time.sleep(float(mode[4:])); h = hashlib.sha256(); n = 0
    while True:
        d = c.recv(65536)
        if not d: break
        h.update(d); n += len(d)
    print(n, h.hexdigest(), flush=True)
`;

let t: ShimTopology;
let peerPy: string;

beforeAll(async () => {
  const missing = missingShimRequirements([
    ['python3', 'python3'],
    ['iptables', 'iptables'],
    ['setpriv', 'util-linux'],
  ]);
  if (missing.length > 0) {
    throw new Error(`the shim tests need: ${missing.join('; ')}. They are not skipped: run them as root (CI: .ci/run)`);
  }
  t = await ShimTopology.start({ tag: 'sem', subnet: 81 });
  peerPy = path.join(t.dir, 'peer.py');
  fs.writeFileSync(peerPy, PEER);
});

afterAll(async () => {
  await t?.stop();
});

let nextPort = 9100;

/** Starts a kernel peer in the namespace (mode as in PEER) on a fresh port; resolves once it listens. */
async function peer(mode: string, host = t.kernel): Promise<{ port: number; out: () => Promise<string> }> {
  const port = nextPort++;
  const child = t.procs.start(t.inNs(['python3', '-u', peerPy, mode, host, String(port)]));
  const c = collect(child);
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  await c.waitFor(/listening/);
  return {
    port,
    out: async () => {
      await exited;
      return c.text().replace('listening\n', '').trim();
    },
  };
}

/** A python3 program through the shim; its stdout lines. */
async function py(script: string, args: string[] = [], input?: Buffer): Promise<string[]> {
  const r = await t.procs.run(t.nuse(['python3', '-c', script, ...args]), { input, timeoutMs: 30_000 });
  if (r.code !== 0 || r.stderr !== '') throw new Error(`python3 exited ${r.code}: ${r.stderr}\n${r.stdout}`);
  return r.stdout.toString().trim().split('\n');
}

describe('closing', () => {
  test('SO_LINGER {1, 0}: close sends RST (the peer reads ECONNRESET); a shutdown before it still sends FIN; plain close FIN', async () => {
    const script = `
import socket, struct, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.create_connection((host, port)); s.sendall(b'hello')
if mode in ('linger', 'shutdown'):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    print(struct.unpack('ii', s.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)))
if mode.startswith('shutdown'):
    s.shutdown(socket.SHUT_WR); time.sleep(0.5)
time.sleep(0.2); s.close()
`;
    const linger = await peer('report');
    expect(await py(script, ['linger', t.kernel, String(linger.port)])).toEqual(['(1, 0)']);
    expect(await linger.out()).toBe('5 ECONNRESET');

    // shutdown sends FIN (the peer reads EOF), the close after it RST (the peer, in
    // CLOSE-WAIT, then fails to send: EPIPE, as between two kernels).
    const shut = await peer('report2');
    await py(script, ['shutdown', t.kernel, String(shut.port)]);
    expect(await shut.out()).toBe('5 EOF\nsend EPIPE');
    const shutPlain = await peer('report2'); // the same without SO_LINGER: no RST
    await py(script, ['shutdown-plain', t.kernel, String(shutPlain.port)]);
    expect(await shutPlain.out()).toBe('5 EOF\nsend ok');

    const plain = await peer('report');
    await py(script, ['plain', t.kernel, String(plain.port)]);
    expect(await plain.out()).toBe('5 EOF');
  });

  test('close with unread data sends RST (RFC 2525 §2.17, as Linux): the peer reads ECONNRESET', async () => {
    const p = await peer('flood');
    await py(
      `
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(b'abc'); time.sleep(0.5)     # 200 kB arrive; we read none of it
s.close()
`,
      [t.kernel, String(p.port)],
    );
    expect(await p.out()).toBe('3 ECONNRESET');
  });

  test('a TCP reset reaches the program as ECONNRESET on its next read (then EOF), and send fails', async () => {
    const p = await peer('reset');
    const lines = await py(
      String.raw`
import errno, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(b'hi\n')
print(s.recv(100).decode().strip())
time.sleep(0.6)                        # the RST arrives meanwhile
for what in ('recv', 'recv again'):
    try: print(what, len(s.recv(100)))
    except OSError as e: print(what, errno.errorcode[e.errno])
try:
    s.send(b'x'); print('send ok')
except OSError as e: print('send', errno.errorcode[e.errno])
`,
      [t.kernel, String(p.port)],
    );
    expect(lines).toEqual([
      'bye',
      'recv ECONNRESET',
      'recv again 0',
      expect.stringMatching(/^send (EPIPE|ECONNRESET)$/),
    ]);
    expect(await p.out()).toBe('reset');
  });
});

describe('shutdown and close, as Linux (each checked between two kernel sockets on this kernel)', () => {
  test('shutdown(SHUT_RD): queued data is still read, then reads give 0 at once (poll: POLLIN|POLLRDHUP); writing goes on (1 MB, sha256); data arriving after it is kept unread: SHUT_WR sends FIN, the close after it RST', async () => {
    const p = await peer('shutrd');
    const data = randomBytes(1 << 20);
    const lines = await py(
      `
import select, socket, struct, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
time.sleep(0.3)                        # 'before' arrives and waits in the socket
s.shutdown(socket.SHUT_RD)
print(s.recv(100), s.recv(100), s.recv(100))
p = select.poll(); p.register(s, select.POLLIN | select.POLLOUT | select.POLLRDHUP)
ev = p.poll(0)[0][1]
print(bool(ev & select.POLLIN), bool(ev & select.POLLRDHUP), bool(ev & select.POLLOUT))
data = sys.stdin.buffer.read()
s.sendall(struct.pack('!Q', len(data)) + data)
time.sleep(0.5)                        # the peer's 'after' arrives meanwhile
s.shutdown(socket.SHUT_WR); time.sleep(0.3)
s.close()
`,
      [t.kernel, String(p.port)],
      data,
    );
    expect(lines).toEqual(["b'before' b'' b''", 'True True True']);
    expect(await p.out()).toBe(`${data.length} ${sha256(data)}\nsent after\n0 EOF\nsend EPIPE`);
  });

  test('shutdown(SHUT_RDWR): FIN; queued data still read, then 0; data arriving after it is answered with RST and the next read fails with ECONNRESET, then 0; send fails with EPIPE', async () => {
    const p = await peer('shutrdwr');
    const lines = await py(
      `
import errno, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(b'hello'); time.sleep(0.3)
s.shutdown(socket.SHUT_RDWR)
print(s.recv(100), s.recv(100))
time.sleep(0.6)                        # the peer's data arrives: RST
for what in ('recv', 'recv again'):
    try: print(what, s.recv(100))
    except OSError as e: print(what, errno.errorcode[e.errno])
try: s.send(b'x'); print('send ok')
except OSError as e: print('send', errno.errorcode[e.errno])
`,
      [t.kernel, String(p.port)],
    );
    expect(lines).toEqual(["b'before' b''", 'recv ECONNRESET', "recv again b''", 'send EPIPE']);
    expect(await p.out()).toBe('5 EOF\nsend EPIPE');
  });

  test('SO_LINGER {1, N}: close blocks until the peer has every byte (and our FIN), at most N s; without it close returns at once; every byte arrives (sha256)', async () => {
    const script = `
import socket, struct, sys, time
host, port, linger = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((host, port))
if linger >= 0: s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, linger))
s.sendall(sys.stdin.buffer.read())
t0 = time.time(); s.close(); print(round(time.time() - t0, 1))
`;
    const data = randomBytes(300_000);
    const want = `${data.length} ${sha256(data)}`;
    // The peer reads nothing for 1 s (an 8 kB window): close with {1, 5} waits about that long.
    const a = await peer('slow1');
    const [waited] = await py(script, [t.kernel, String(a.port), '5'], data);
    expect(Number(waited)).toBeGreaterThanOrEqual(0.7);
    expect(Number(waited)).toBeLessThanOrEqual(2.5);
    expect(await a.out()).toBe(want);
    // {1, 1} while the peer waits 2.5 s: close gives up after 1 s; the bytes still arrive.
    const b = await peer('slow2.5');
    const [gaveUp] = await py(script, [t.kernel, String(b.port), '1'], data);
    expect(Number(gaveUp)).toBeGreaterThanOrEqual(0.8);
    expect(Number(gaveUp)).toBeLessThanOrEqual(1.6);
    expect(await b.out()).toBe(want);
    // No linger: at once.
    const c = await peer('slow0.5');
    const [atOnce] = await py(script, [t.kernel, String(c.port), '-1'], data);
    expect(Number(atOnce)).toBeLessThanOrEqual(0.2);
    expect(await c.out()).toBe(want);
  });

  test('a refused connect, then read and send: non-blocking, the read gives ECONNREFUSED once, then 0; blocking (connect said it), ENOTCONN; send EPIPE', async () => {
    const lines = await py(
      `
import errno, select, socket, sys
for blocking in (False, True):
    s = socket.socket(); s.setblocking(blocking)
    try: s.connect((sys.argv[1], 1))
    except OSError as e: print('connect', errno.errorcode[e.errno])
    if not blocking:
        p = select.poll(); p.register(s, select.POLLOUT); p.poll(5000)
    s.setblocking(True)
    for op in ('recv', 'recv', 'send'):
        try: print(op, s.recv(10) if op == 'recv' else s.send(b'x'))
        except OSError as e: print(op, errno.errorcode[e.errno])
`,
      [t.kernel],
    );
    expect(lines).toEqual([
      'connect EINPROGRESS',
      'recv ECONNREFUSED',
      "recv b''",
      'send EPIPE',
      'connect ECONNREFUSED',
      'recv ENOTCONN',
      'recv ENOTCONN',
      'send EPIPE',
    ]);
  });
});

describe('options', () => {
  test('TCP_INFO has real values: state, rto, MSS, rtt, cwnd, ssthresh, bytes acked and received', async () => {
    const p = await peer('count');
    const data = randomBytes(4 << 20);
    const lines = await py(
      String.raw`
import socket, struct, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
data = sys.stdin.buffer.read()
s.sendall(struct.pack('!Q', len(data)) + data)
reply = b''
while not reply.endswith(b'\n'):
    reply += s.recv(4096)
time.sleep(0.3)
i = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512)
print(len(i))
state, ca, retr, probes, backoff, opts, wscale = struct.unpack_from('7B', i, 0)
rto, ato, snd_mss, rcv_mss = struct.unpack_from('4I', i, 8)
rtt, rttvar, ssthresh, cwnd = struct.unpack_from('4I', i, 68)
total_retrans, = struct.unpack_from('I', i, 100)
acked, received = struct.unpack_from('QQ', i, 120)
segs_out, segs_in = struct.unpack_from('II', i, 136)
print(state, opts, rto >= 200000, snd_mss, rcv_mss > 0, rtt > 0, rttvar > 0, cwnd > 0, ssthresh > 0)
print(acked, received, segs_out > 0, segs_in > 0, total_retrans >= 0)
print(reply.decode().strip())
`,
      [t.kernel, String(p.port)],
      data,
    );
    const reply = `${data.length} ${sha256(data)} ${t.stack}`;
    expect(lines[0]).toBe('232');
    // ESTABLISHED; options: timestamps | SACK | window scaling; the MSS less the timestamp option.
    expect(lines[1]).toBe('1 7 True 1448 True True True True True');
    expect(lines[2]).toBe(`${data.length + 8} ${reply.length + 1} True True True`);
    expect(lines[3]).toBe(reply);
    expect(await p.out()).toBe('0 EOF');
  });

  test('TCP_CONGESTION: get the default, set a known name, ENOENT for an unknown one (as Linux)', async () => {
    const lines = await py(String.raw`
import errno, socket
s = socket.socket()
print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b'\0').decode())
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b'reno')
print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b'\0').decode())
try:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b'no-such-cc')
except OSError as e: print(errno.errorcode[e.errno])
`);
    expect(lines).toEqual(['newreno', 'reno', 'ENOENT']);
  });

  test('TCP_CONGESTION on a connected socket switches the live connection; the data after it arrives intact', async () => {
    const p = await peer('hash');
    const lines = await py(
      String.raw`
import hashlib, os, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
data = os.urandom(2_000_000)
s.sendall(data[:1_000_000])
print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b'\0').decode())
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b'reno')
print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b'\0').decode())
s.sendall(data[1_000_000:]); s.shutdown(socket.SHUT_WR)
print(len(data), hashlib.sha256(data).hexdigest())
print(s.makefile().readline().strip())
`,
      [t.kernel, String(p.port)],
    );
    expect(lines.slice(0, 2)).toEqual(['newreno', 'reno']);
    const [sentLength, sentHash] = lines[2]!.split(' ');
    const [gotLength, gotHash] = lines[3]!.split(' ');
    expect(gotLength).toBe(sentLength);
    expect(gotHash).toBe(sentHash);
  });

  test('SO_KEEPALIVE with TCP_KEEPIDLE/INTVL/CNT: probes go out on time and a dead peer ends the read with ETIMEDOUT', async () => {
    const p = await peer('sink');
    // The kernel peer goes silent (its packets dropped), so only the keepalive can tell.
    const rule = ['-p', 'tcp', '--sport', String(p.port), '-j', 'DROP'];
    const script = `
import errno, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 2)
print([s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)] + [s.getsockopt(socket.IPPROTO_TCP, o) for o in (socket.TCP_KEEPIDLE, socket.TCP_KEEPINTVL, socket.TCP_KEEPCNT)], flush=True)
sys.stdin.readline()
t0 = time.time()
try: print('recv', len(s.recv(10)))
except OSError as e: print('recv', errno.errorcode[e.errno], round(time.time() - t0))
`;
    const prog = t.procs.start(t.nuse(['python3', '-u', '-c', script, t.kernel, String(p.port)]));
    const out = collect(prog);
    await out.waitFor(/\[1, 1, 1, 2\]/);
    execFileSync('ip', ['netns', 'exec', t.ns, 'iptables', '-I', 'OUTPUT', ...rule]);
    try {
      prog.stdin!.end('go\n');
      // Idle 1 s, then 2 unanswered probes 1 s apart: about 3 s (the kernel's rule would say the same).
      const m = await out.waitFor(/recv (\w+) (\d+)/, 15_000);
      expect(m[1]).toBe('ETIMEDOUT');
      expect(Number(m[2])).toBeGreaterThanOrEqual(1);
      expect(Number(m[2])).toBeLessThanOrEqual(6);
    } finally {
      execFileSync('ip', ['netns', 'exec', t.ns, 'iptables', '-D', 'OUTPUT', ...rule]);
    }
  });

  test("SO_RCVBUF sizes the window the kernel peer sees (a connect, and a listener's accepted connections); getsockopt doubles it", async () => {
    // Connect: the kernel server's snd_wnd is our receive window.
    const client = `
import socket, sys, time
s = socket.socket()
if sys.argv[3] != '0': s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(sys.argv[3]))
print(s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
s.connect((sys.argv[1], int(sys.argv[2]))); s.sendall(b'x' * 100); time.sleep(0.5)
`;
    const small = await peer('window');
    expect(await py(client, [t.kernel, String(small.port), '8192'])).toEqual(['16384 262144']);
    const smallWnd = Number((await small.out()).split(' ')[1]);
    const big = await peer('window');
    await py(client, [t.kernel, String(big.port), '0']);
    const bigWnd = Number((await big.out()).split(' ')[1]);
    expect(smallWnd).toBeLessThanOrEqual(16384);
    expect(bigWnd).toBeGreaterThan(65536);

    // A listener with SO_RCVBUF: each accepted connection gets it (the window follows
    // once the first 64 kB advertised at the handshake are used).
    const server = `
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(sys.argv[2]))
s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(4); print('ready', flush=True)
c, _ = s.accept(); n = 0
print(c.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), flush=True)
while True:
    d = c.recv(65536)
    if not d: break
    n += len(d)
c.sendall(str(n).encode())
`;
    const windows: number[] = [];
    for (const rcvbuf of [8192, 1 << 20]) {
      const port = nextPort++;
      const srv = t.procs.start(t.nuse(['python3', '-u', '-c', server, String(port), String(rcvbuf)]));
      const out = collect(srv);
      await out.waitFor(/ready/);
      const r = await t.procs.run(t.inNs(['python3', peerPy, 'client-window', t.stack, String(port)]));
      expect(r.stderr).toBe('');
      const [n, wnd] = r.stdout.toString().trim().split(' ');
      expect(n).toBe(String(1 << 20));
      windows.push(Number(wnd));
      expect(out.text()).toContain(`\n${rcvbuf * 2}\n`);
    }
    expect(windows[0]).toBeLessThanOrEqual(16384);
    expect(windows[1]).toBeGreaterThan(65536);
  });
});

describe('bind and listen', () => {
  test('bind errors come from bind(): EADDRINUSE, EADDRNOTAVAIL; SO_REUSEADDR; a closed socket frees its port; port 0 is chosen at bind', async () => {
    const lines = await py(
      `
import errno, socket, sys
port = int(sys.argv[1])
def try_bind(s, addr):
    try: s.bind(addr); return 'ok'
    except OSError as e: return errno.errorcode[e.errno]
a = socket.socket(); print('a', try_bind(a, ('0.0.0.0', port)))
b = socket.socket(); print('b', try_bind(b, ('0.0.0.0', port)))
c = socket.socket(); print('c', try_bind(c, ('10.99.99.99', port + 1)))
a.close()
d = socket.socket(); print('d', try_bind(d, ('0.0.0.0', port)))
e = socket.socket(); e.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
f = socket.socket(); f.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
print('e', try_bind(e, ('0.0.0.0', port + 2)), 'f', try_bind(f, ('0.0.0.0', port + 2)))
e.listen(1)
g = socket.socket(); g.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
print('g', try_bind(g, ('0.0.0.0', port + 2)))
h = socket.socket(); h.bind(('0.0.0.0', 0)); p = h.getsockname()[1]   # the port comes at bind, as Linux
i = socket.socket(); print('h', 32768 <= p <= 60999, 'i', try_bind(i, ('0.0.0.0', p)))
h.listen(1); print('h listens on', h.getsockname()[1] == p)
`,
      [String(nextPort)],
    );
    nextPort += 3;
    expect(lines).toEqual([
      'a ok',
      'b EADDRINUSE',
      'c EADDRNOTAVAIL',
      'd ok',
      'e ok f ok',
      'g EADDRINUSE',
      'h True i EADDRINUSE',
      'h listens on True',
    ]);
  });

  test('EACCES for a port below 1024 without uid 0 (a program run as nobody), as Linux', async () => {
    // Let uid 65534 reach the daemon (its socket is 0600 in a 0700 directory by default).
    fs.chmodSync(t.dir, 0o755);
    fs.chmodSync(t.socketPath, 0o666);
    const r = await t.procs.run(
      t.nuse([
        'setpriv',
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        // The system's python3: one under /root (pyenv) is not nobody's to run.
        fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3',
        '-c',
        `
import errno, os, socket
for port in (80, ${nextPort}):
    s = socket.socket()
    try: s.bind(('0.0.0.0', port)); print(os.getuid(), port, 'ok')
    except OSError as e: print(os.getuid(), port, errno.errorcode[e.errno])
`,
      ]),
    );
    nextPort++;
    expect(r.stderr).toBe('');
    expect(r.stdout.toString().trim().split('\n')).toEqual(['65534 80 EACCES', `65534 ${nextPort - 1} ok`]);
  });

  test('SO_REUSEPORT: two listeners on one port share the connections', async () => {
    const port = nextPort++;
    const server = `
import select, socket, sys
port = int(sys.argv[1]); ls = []
for _ in range(2):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(('0.0.0.0', port)); s.listen(8); ls.append(s)
print('ready', flush=True)
got = [0, 0]
while sum(got) < 6:
    for s in select.select(ls, [], [])[0]:
        c, _ = s.accept(); c.sendall(b'%d' % ls.index(s)); c.close(); got[ls.index(s)] += 1
print(got[0] > 0 and got[1] > 0, sum(got), flush=True)
`;
    const srv = t.procs.start(t.nuse(['python3', '-u', '-c', server, String(port)]));
    const out = collect(srv);
    await out.waitFor(/ready/);
    for (let i = 0; i < 6; i++) {
      const r = await t.procs.run(
        t.inNs([
          'python3',
          '-c',
          `import socket; print(socket.create_connection(('${t.stack}', ${port})).recv(1).decode())`,
        ]),
      );
      expect(r.stdout.toString().trim()).toMatch(/^[01]$/);
    }
    await out.waitFor(/True 6/);
  });
});

describe('file descriptors', () => {
  test('dup, dup2, dup3 share the connection; closing all copies but one does not end it; fcntl O_NONBLOCK gives EAGAIN', async () => {
    const p = await peer('hash');
    const data = randomBytes(1 << 20);
    const lines = await py(
      `
import errno, fcntl, os, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
data = sys.stdin.buffer.read()
fd = s.fileno()
a = os.dup(fd); b = os.dup2(fd, 100); c = os.dup2(fd, 101, inheritable=False)  # dup3(O_CLOEXEC)
print(b, c, os.get_inheritable(101))
os.write(a, data[:1000]); os.write(b, data[1000:2000])
s2 = socket.socket(fileno=os.dup(c))
print(s2.getpeername()[0] == sys.argv[1], s2.family.name)
fl = fcntl.fcntl(a, fcntl.F_GETFL); fcntl.fcntl(a, fcntl.F_SETFL, fl | os.O_NONBLOCK)
try: os.read(a, 10)
except OSError as e: print(errno.errorcode[e.errno])
fcntl.fcntl(a, fcntl.F_SETFL, fl)
for f in (a, b, 101): os.close(f)
s.close()                            # not the last copy: the connection goes on
s2.sendall(data[2000:]); s2.shutdown(socket.SHUT_WR)   # FIN: the peer hashes and answers
reply = b''
while True:
    d = s2.recv(4096)
    if not d: break
    reply += d
print(reply.decode().strip())
`,
      [t.kernel, String(p.port)],
      data,
    );
    expect(lines).toEqual(['100 101 False', 'True AF_INET', 'EAGAIN', `${data.length} ${sha256(data)} ${t.stack}`]);
  });
});

describe('AF_INET6', () => {
  test('an AF_INET6 client over IPv6, and an AF_INET6 server reached over IPv6 and IPv4 (v4-mapped peer): 4 MB each, sha256', async () => {
    const data = randomBytes(4 << 20);
    const p = await peer('hash', t.kernel6);
    const lines = await py(
      `
import socket, sys
s = socket.socket(socket.AF_INET6); s.connect((sys.argv[1], int(sys.argv[2])))
names = (s.getsockname()[0], s.getpeername()[0])   # before the end: then getpeername is ENOTCONN, as Linux
s.sendall(sys.stdin.buffer.read()); s.shutdown(socket.SHUT_WR)
print(*names, s.recv(200).decode().strip())
`,
      [t.kernel6, String(p.port)],
      data,
    );
    expect(lines).toEqual([`${t.stack6} ${t.kernel6} ${data.length} ${sha256(data)} ${t.stack6}`]);

    const port = nextPort++;
    const server = `
import hashlib, socket, sys
s = socket.socket(socket.AF_INET6); s.bind(('::', int(sys.argv[1]))); s.listen(4)
print('ready', flush=True)
for _ in range(2):
    c, peer = s.accept(); h = hashlib.sha256(); n = 0
    while True:
        d = c.recv(65536)
        if not d: break
        h.update(d); n += len(d)
    c.sendall(f'{n} {h.hexdigest()} {peer[0]}'.encode()); c.close()
`;
    const srv = t.procs.start(t.nuse(['python3', '-u', '-c', server, String(port)]));
    await collect(srv).waitFor(/ready/);
    for (const [dst, seen] of [
      [t.stack6, t.kernel6],
      [t.stack, `::ffff:${t.kernel}`],
    ]) {
      const r = await t.procs.run(
        t.inNs([
          'python3',
          '-c',
          `import socket,sys; s=socket.create_connection((sys.argv[1], ${port})); s.sendall(sys.stdin.buffer.read()); s.shutdown(socket.SHUT_WR); print(s.recv(200).decode())`,
          dst!,
        ]),
        { input: data },
      );
      expect(r.stdout.toString().trim()).toBe(`${data.length} ${sha256(data)} ${seen}`);
    }
  });
});
