/**
 * The wire layer against the Linux kernel's MPTCP (RFC 8684 v1). Two network
 * namespaces, C (client) and S (server), joined by two veth pairs; both run the
 * kernel's MPTCP with its in-kernel path manager:
 *   - C has a `subflow` endpoint on its second address, so it opens an MP_JOIN subflow;
 *   - S `signal`s three endpoints: its second IPv4 address, the same with port 10300,
 *     and an IPv6 address, so ADD_ADDRs of every form go out (and come back echoed) and
 *     C joins the announced addresses;
 *   - mid-connection C marks its endpoint backup (MP_PRIO) and S withdraws one
 *     (REMOVE_ADDR).
 * Three connections run: A with DSS checksums on (net.mptcp.checksum_enabled=1 on
 * both), its first data on MP_CAPABLE, closed by the server with unread data
 * (MP_FASTCLOSE, MP_TCPRST); B with checksums, 300 kB checked by SHA-256 over the
 * joined subflows, with MP_PRIO and REMOVE_ADDR on the way; C as A without checksums.
 * tshark captures C's two veths.
 *
 * Then every kind-30 option in the capture is parsed with the codec: it must parse,
 * re-emit byte for byte, and agree field by field with tshark's own decoding. The
 * crypto is checked too: tokens and IDSNs from the MP_CAPABLE keys against tshark's,
 * every MP_JOIN HMAC (both directions) and ADD_ADDR HMAC against crypto.ts, and every
 * DSS checksum (and MP_CAPABLE's) over the subflow bytes the capture holds.
 *
 * Needs root, iproute2, python3, tshark: it FAILS, never skips, without them.
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  assertRootRequirements,
  formatIp,
  Ipv4View,
  Ipv6View,
  ParseError,
  parseOptions,
  readCaptureFile,
  TcpHeaderView,
  TcpOptionKind,
} from '@nuse/core';
import { addAddrHmac, keyIdsn, keyToken, mpJoinAckHmac, mpJoinSynAckHmac, verifyDssChecksum } from './crypto';
import { emitMptcpOption, type MptcpOption, parseMptcpOption } from './wire/mptcp-option';

jest.setTimeout(60_000);

const TAG = `${process.pid % 100_000}`;
const NS_C = `nuse-mpw${TAG}-c`;
const NS_S = `nuse-mpw${TAG}-s`;
const IF = { c1: `mpw${TAG}c1`, s1: `mpw${TAG}s1`, c2: `mpw${TAG}c2`, s2: `mpw${TAG}s2` };
const ADDR = {
  c1: '10.231.1.1',
  s1: '10.231.1.2',
  c2: '10.231.2.1',
  s2: '10.231.2.2',
  c2v6: 'fd00:231:2::1',
  s2v6: 'fd00:231:2::2',
};
const PORT = 10200;
const FASTCLOSE_PORT = 10201;
const SIGNAL_PORT = 10300;

let dir: string;
const started: ChildProcess[] = [];

function run(cmd: string, args: string[]): string {
  try {
    // A timeout, because a synchronous child that hangs would also hang jest's own timeout.
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 1 << 28,
      timeout: 30_000,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

function ip(ns: string, ...args: string[]): string {
  return run('ip', ['-n', ns, ...args]);
}

function sysctl(ns: string, ...settings: string[]): void {
  run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', ...settings]);
}

function cleanup(): void {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  // Deleting a namespace removes its veth ends, and so the pairs.
  for (const ns of [NS_C, NS_S]) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // not created
    }
  }
}

function setUpTopology(): void {
  run('ip', ['netns', 'add', NS_C]);
  run('ip', ['netns', 'add', NS_S]);
  ip(NS_C, 'link', 'add', IF.c1, 'type', 'veth', 'peer', 'name', IF.s1, 'netns', NS_S);
  ip(NS_C, 'link', 'add', IF.c2, 'type', 'veth', 'peer', 'name', IF.s2, 'netns', NS_S);
  for (const [ns, a, b] of [
    [NS_C, IF.c1, IF.c2],
    [NS_S, IF.s1, IF.s2],
  ] as const) {
    ip(ns, 'link', 'set', 'lo', 'up');
    // Segments as a wire carries them (no 64 KB GSO packets): a DSS mapping may then
    // span several, as on real links.
    for (const dev of [a, b]) ip(ns, 'link', 'set', dev, 'gso_max_size', '1500', 'gso_max_segs', '1');
    sysctl(ns, 'net.mptcp.enabled=1', 'net.mptcp.checksum_enabled=1');
    ip(ns, 'mptcp', 'limits', 'set', 'subflows', '8', 'add_addr_accepted', '8');
  }
  ip(NS_C, 'addr', 'add', `${ADDR.c1}/24`, 'dev', IF.c1);
  ip(NS_S, 'addr', 'add', `${ADDR.s1}/24`, 'dev', IF.s1);
  ip(NS_C, 'addr', 'add', `${ADDR.c2}/24`, 'dev', IF.c2);
  ip(NS_S, 'addr', 'add', `${ADDR.s2}/24`, 'dev', IF.s2);
  ip(NS_C, 'addr', 'add', `${ADDR.c2v6}/64`, 'dev', IF.c2, 'nodad');
  ip(NS_S, 'addr', 'add', `${ADDR.s2v6}/64`, 'dev', IF.s2, 'nodad');
  for (const dev of [IF.c1, IF.c2]) ip(NS_C, 'link', 'set', dev, 'up');
  for (const dev of [IF.s1, IF.s2]) ip(NS_S, 'link', 'set', dev, 'up');
  ip(NS_C, 'mptcp', 'endpoint', 'add', ADDR.c2, 'dev', IF.c2, 'id', '1', 'subflow');
}

/** S's endpoints to announce: added after the first connection, whose client must send its first data on MP_CAPABLE. */
function addSignalEndpoints(): void {
  ip(NS_S, 'mptcp', 'endpoint', 'add', ADDR.s2, 'dev', IF.s2, 'id', '1', 'signal');
  ip(NS_S, 'mptcp', 'endpoint', 'add', ADDR.s2, 'dev', IF.s2, 'id', '2', 'port', `${SIGNAL_PORT}`, 'signal');
  ip(NS_S, 'mptcp', 'endpoint', 'add', ADDR.s2v6, 'dev', IF.s2, 'id', '3', 'signal');
}

/** Starts `argv` in `ns`; resolves once a line of its stderr or stdout matches `ready`. */
function startIn(ns: string, argv: string[], ready: RegExp): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString();
      if (ready.test(seen)) resolve(child);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${argv.join(' ')} exited (${code}) before ready: ${seen}`)));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.on('exit', () => resolve()));
}

// IPPROTO_MPTCP = 262. The server reads to EOF, then answers with the byte count and
// a SHA-256 of what it read; the client checks both.
const SERVER_PY = `
import hashlib, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen()
print("listening", flush=True)
c, _ = s.accept()
h = hashlib.sha256(); n = 0
while True:
    d = c.recv(65536)
    if not d:
        break
    h.update(d); n += len(d)
c.sendall(b"%d %s" % (n, h.hexdigest().encode()))
c.close()
`;

const CLIENT_PY = `
import hashlib, os, socket, subprocess, sys, time
ns_c, ns_s, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
data = os.urandom(300000)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
s.connect((host, port))
s.sendall(data[:1000])          # the first data rides on MP_CAPABLE (RFC 8684 section 3.1)
time.sleep(1.0)                 # joins and ADD_ADDRs
for i in range(1000, 151000, 5000):
    s.sendall(data[i:i + 5000]); time.sleep(0.002)
subprocess.run(["ip", "-n", ns_c, "mptcp", "endpoint", "change", "id", "1", "backup"], check=True)   # MP_PRIO
time.sleep(0.3)
subprocess.run(["ip", "-n", ns_s, "mptcp", "endpoint", "delete", "id", "1"], check=True)             # REMOVE_ADDR
time.sleep(0.3)
for i in range(151000, len(data), 5000):
    s.sendall(data[i:i + 5000]); time.sleep(0.002)
s.shutdown(socket.SHUT_WR)
reply = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    reply += d
s.close()
print(reply.decode(), len(data), hashlib.sha256(data).hexdigest())
`;

// The server closes with unread data: the kernel resets the connection with
// MP_FASTCLOSE (RFC 8684 section 3.5).
const FASTCLOSE_SERVER_PY = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen()
print("listening", flush=True)
c, _ = s.accept()
time.sleep(0.5)
c.close()
`;

const FASTCLOSE_CLIENT_PY = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
s.connect((sys.argv[1], int(sys.argv[2])))
s.sendall(b"x" * 20000)
try:
    print("read", len(s.recv(100)))
except ConnectionResetError:
    print("reset")
`;

/** One MPTCP option found in the capture. */
interface Seen {
  file: string;
  frame: number;
  /** The option's data, as core's TCP option parser hands it over. */
  data: Uint8Array;
  /** What the codec made of it. */
  option: MptcpOption | ParseError;
  tcp: TcpHeaderView;
  /** "address port" of each end. */
  src: string;
  dst: string;
}

/** A TCP segment of the capture, for the subflow byte streams. */
interface Segment {
  src: string;
  dst: string;
  tcp: TcpHeaderView;
}

const seen: Seen[] = [];
const segments: Segment[] = [];
const pcaps: string[] = [];

function parseOrError(data: Uint8Array): MptcpOption | ParseError {
  try {
    return parseMptcpOption(data);
  } catch (e) {
    if (e instanceof ParseError) return e;
    throw e;
  }
}

function collect(file: string): void {
  const capture = readCaptureFile(file);
  capture.records.forEach((record, i) => {
    // A veth: LINKTYPE_ETHERNET.
    const bytes = record.data;
    const etherType = (bytes[12]! << 8) | bytes[13]!;
    let tcpBytes: Uint8Array;
    let src: string;
    let dst: string;
    if (etherType === 0x0800) {
      const v4 = Ipv4View.parse(bytes.subarray(14));
      if (v4.protocol !== 6) return;
      tcpBytes = v4.payload;
      src = formatIp(v4.src);
      dst = formatIp(v4.dst);
    } else if (etherType === 0x86dd) {
      const v6 = Ipv6View.parse(bytes.subarray(14));
      if (v6.nextHeader !== 6) return;
      tcpBytes = v6.upperPayload;
      src = formatIp(v6.src);
      dst = formatIp(v6.dst);
    } else {
      return;
    }
    const tcp = TcpHeaderView.parse(tcpBytes);
    const from = `${src} ${tcp.srcPort}`;
    const to = `${dst} ${tcp.dstPort}`;
    segments.push({ src: from, dst: to, tcp });
    for (const o of parseOptions(tcp.optionBytes)) {
      if (o.kind !== 'unknown' || o.type !== TcpOptionKind.MPTCP) continue;
      seen.push({ file, frame: i + 1, data: o.data, option: parseOrError(o.data), tcp, src: from, dst: to });
    }
  });
}

let clientReply = '';
const fastcloseReplies: string[] = [];

async function fastclose(): Promise<string> {
  const server = await startIn(NS_S, ['python3', '-c', FASTCLOSE_SERVER_PY, `${FASTCLOSE_PORT}`], /listening/);
  const reply = run('ip', ['netns', 'exec', NS_C, 'python3', '-c', FASTCLOSE_CLIENT_PY, ADDR.s1, `${FASTCLOSE_PORT}`]);
  await exited(server);
  return reply.trim();
}

beforeAll(async () => {
  assertRootRequirements('MPTCP kernel interop test', ['python3', 'tshark'], { tun: false });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nuse-mptcp-wire-'));
  cleanup();
  setUpTopology();
  const captures: ChildProcess[] = [];
  for (const dev of [IF.c1, IF.c2]) {
    const file = path.join(dir, `${dev}.pcap`);
    pcaps.push(file);
    captures.push(await startIn(NS_C, ['tshark', '-q', '-i', dev, '-F', 'pcap', '-w', file], /Capturing on/));
  }
  // tshark -q still says "Capturing on" on stderr; give the capture a moment to attach.
  await new Promise((r) => setTimeout(r, 300));

  // A: checksums on, nothing announced yet, so nothing from the server reaches the
  // client before its first data, which then repeats the keys on MP_CAPABLE with a
  // data-level length and checksum (RFC 8684 §3.1); the server fast-closes.
  fastcloseReplies.push(await fastclose());
  // B: checksums on, every option the path manager sends.
  addSignalEndpoints();
  const server = await startIn(NS_S, ['python3', '-c', SERVER_PY, `${PORT}`], /listening/);
  clientReply = run('ip', ['netns', 'exec', NS_C, 'python3', '-c', CLIENT_PY, NS_C, NS_S, ADDR.s1, `${PORT}`]);
  await exited(server);
  // C: as A, without checksums.
  for (const ns of [NS_C, NS_S]) sysctl(ns, 'net.mptcp.checksum_enabled=0');
  fastcloseReplies.push(await fastclose());

  await new Promise((r) => setTimeout(r, 300));
  for (const c of captures) c.kill('SIGTERM');
  await Promise.all(captures.map(exited));
  for (const file of pcaps) collect(file);
}, 60_000);

afterAll(() => {
  cleanup();
  if (dir !== undefined && process.env.NUSE_KEEP_CAPTURE === undefined)
    fs.rmSync(dir, { recursive: true, force: true });
});

test('the kernels moved the data, over MPTCP', () => {
  const [n, digest, sent, sentDigest] = clientReply.trim().split(/\s+/);
  expect(n).toBe(sent);
  expect(digest).toBe(sentDigest);
  expect(fastcloseReplies).toEqual(['reset', 'reset']);
});

function parsed(): { s: Seen; o: MptcpOption }[] {
  return seen.flatMap((s) => (s.option instanceof ParseError ? [] : [{ s, o: s.option }]));
}

test('every kind-30 option in the capture parses and re-emits byte for byte', () => {
  expect(seen.length).toBeGreaterThan(300);
  const failures = seen.filter((s) => s.option instanceof ParseError);
  expect(failures.map((s) => `${s.file}#${s.frame}: ${Buffer.from(s.data).toString('hex')} ${s.option}`)).toEqual([]);
  for (const { s, o } of parsed()) {
    const again = emitMptcpOption(o);
    if (!Buffer.from(again).equals(Buffer.from(s.data))) {
      expect({ frame: s.frame, again: Buffer.from(again).toString('hex') }).toEqual({
        frame: s.frame,
        again: Buffer.from(s.data).toString('hex'),
      });
    }
  }
});

test('the capture holds every option the kernels send in these exchanges', () => {
  const forms = new Set(
    parsed().map(({ s, o }) => `${o.subtype}${'form' in o ? `/${o.form}` : ''}:${s.data.length + 2}`),
  );
  for (const form of [
    'mp-capable:4',
    'mp-capable:12',
    'mp-capable:20',
    'mp-capable:24', // the first data, with checksum
    'mp-join/syn:12',
    'mp-join/syn-ack:16',
    'mp-join/ack:24',
    'dss:24', // data ACK 32 bits, DSN 64 bits, checksum
    'dss:12', // data ACK 64 bits alone
    'add-addr:16', // IPv4
    'add-addr:18', // IPv4 and port
    'add-addr:28', // IPv6
    'add-addr:8', // echoes
    'add-addr:10',
    'add-addr:20',
    'remove-addr:4',
    'mp-prio:3',
    'mp-fastclose:12',
    'mp-tcprst:4',
  ]) {
    expect([form, forms.has(form)]).toEqual([form, true]);
  }
  // Connection C ran without checksums: DSS mappings without one occur too.
  expect(
    parsed().some(({ o }) => o.subtype === 'dss' && o.mapping !== undefined && o.mapping.checksum === undefined),
  ).toBe(true);
});

// tshark's names for what the codec decodes (tshark -G fields), and how it prints them.
const bit = (value: boolean): string => (value ? '1' : '0');
const hex2 = (value: number): string => `0x${value.toString(16).padStart(2, '0')}`;
const hex4 = (value: number): string => `0x${value.toString(16).padStart(4, '0')}`;

/** The tshark fields (without the `tcp.options.mptcp.` prefix, except `mptcp.*`) one option yields, with values. */
function tsharkView(o: MptcpOption): [string, string][] {
  const out: [string, string][] = [];
  const add = (field: string, value: string | number | bigint): void => {
    out.push([field, `${value}`]);
  };
  switch (o.subtype) {
    case 'mp-capable':
      add('subtype', 0);
      add('version', o.version);
      add('checksumreq.flags', bit((o.flags & 0x80) !== 0));
      add('extensibility.flag', bit((o.flags & 0x40) !== 0));
      add('nomoresubflows.flag', bit((o.flags & 0x20) !== 0));
      add('sha256.flag', bit((o.flags & 0x01) !== 0));
      if (o.senderKey !== undefined) {
        add('sendkey', o.senderKey);
        // tshark derives these from the sender's key (RFC 8684 §3.1): crypto.ts must agree.
        add('mptcp.expected_token', keyToken(o.senderKey));
        add('mptcp.expected_idsn', keyIdsn(o.senderKey));
      }
      if (o.receiverKey !== undefined) add('recvkey', o.receiverKey);
      if (o.dataLevelLength !== undefined) add('datalvllen', o.dataLevelLength);
      if (o.checksum !== undefined) add('checksum', hex4(o.checksum));
      break;
    case 'mp-join':
      add('subtype', 1);
      if (o.form === 'ack') {
        add('sendhmac', Buffer.from(o.senderHmac).toString('hex'));
        break;
      }
      add('backup.flag', bit(o.backup));
      add('addrid', o.addressId);
      if (o.form === 'syn') add('recvtok', o.receiverToken);
      else add('sendtrunchmac', o.senderTruncatedHmac);
      add('sendrand', o.senderRandom);
      break;
    case 'dss':
      add('subtype', 2);
      add('dataackpresent.flag', bit(o.dataAck !== undefined));
      add('dataack8.flag', bit(o.dataAck64));
      add('dseqnpresent.flag', bit(o.mapping !== undefined));
      add('dseqn8.flag', bit(o.dsn64));
      add('datafin.flag', bit(o.dataFin));
      if (o.dataAck !== undefined) add('rawdataack', o.dataAck);
      if (o.mapping !== undefined) {
        add('rawdataseqno', o.mapping.dsn);
        add('subflowseqno', o.mapping.ssn);
        add('datalvllen', o.mapping.dataLevelLength);
        // tshark 4.0 does not decode the DSS checksum: crypto.ts checks it below.
      }
      break;
    case 'add-addr':
      add('subtype', 3);
      add('echo', bit(o.echo));
      add('addrid', o.addressId);
      add(o.address.length === 4 ? 'ipv4' : 'ipv6', formatIp(o.address));
      if (o.port !== undefined) add('port', o.port);
      if (o.truncatedHmac !== undefined) add('addaddrtrunchmac', o.truncatedHmac);
      break;
    case 'remove-addr':
      add('subtype', 4);
      for (const id of o.addressIds) add('addrid', id);
      break;
    case 'mp-prio':
      add('subtype', 5);
      add('backup.flag', bit(o.backup));
      break;
    case 'mp-fail':
      add('subtype', 6);
      break;
    case 'mp-fastclose':
      add('subtype', 7);
      add('recvkey', o.receiverKey);
      break;
    case 'mp-tcprst':
      add('subtype', 8);
      add('flag_U.flag', bit((o.flags & 0x8) !== 0));
      add('flag_V.flag', bit((o.flags & 0x4) !== 0));
      add('flag_W.flag', bit((o.flags & 0x2) !== 0));
      add('flag_T.flag', bit((o.flags & 0x1) !== 0));
      add('rst_reason', hex2(o.reason));
      break;
    case 'unknown':
      add('subtype', o.type);
      break;
  }
  return out;
}

const COMPARED_FIELDS = [
  ...[
    'subtype',
    'version',
    'checksumreq.flags',
    'extensibility.flag',
    'nomoresubflows.flag',
    'sha256.flag',
    'sendkey',
    'recvkey',
    'datalvllen',
    'checksum',
    'sendhmac',
    'backup.flag',
    'addrid',
    'recvtok',
    'sendtrunchmac',
    'sendrand',
    'dataackpresent.flag',
    'dataack8.flag',
    'dseqnpresent.flag',
    'dseqn8.flag',
    'datafin.flag',
    'rawdataack',
    'rawdataseqno',
    'subflowseqno',
    'echo',
    'ipv4',
    'ipv6',
    'port',
    'addaddrtrunchmac',
    'flag_U.flag',
    'flag_V.flag',
    'flag_W.flag',
    'flag_T.flag',
    'rst_reason',
  ].map((f) => `tcp.options.mptcp.${f}`),
  'mptcp.expected_token',
  'mptcp.expected_idsn',
];

test("each option agrees field by field with tshark's decoding (tokens and IDSNs included)", () => {
  let compared = 0;
  for (const file of pcaps) {
    const out = run('tshark', [
      '-r',
      file,
      '-n',
      '-Y',
      'tcp.option_kind == 30',
      '-T',
      'fields',
      '-E',
      'occurrence=a',
      '-E',
      'aggregator=|',
      '-e',
      'frame.number',
      ...COMPARED_FIELDS.flatMap((f) => ['-e', f]),
    ]);
    const byFrame = new Map<number, Seen[]>();
    for (const s of seen) {
      if (s.file !== file) continue;
      byFrame.set(s.frame, [...(byFrame.get(s.frame) ?? []), s]);
    }
    const lines = out.split('\n').filter((l) => l.length > 0);
    expect(lines.length).toBe(byFrame.size);
    for (const line of lines) {
      const [frameText, ...values] = line.split('\t');
      const frame = Number(frameText);
      const theirs: Record<string, string> = {};
      COMPARED_FIELDS.forEach((f, i) => {
        if (values[i] !== undefined && values[i] !== '') theirs[f] = values[i]!;
      });
      const lists = new Map<string, string[]>();
      for (const s of byFrame.get(frame) ?? []) {
        if (s.option instanceof ParseError) continue;
        for (const [field, value] of tsharkView(s.option)) {
          const name = field.startsWith('mptcp.') ? field : `tcp.options.mptcp.${field}`;
          lists.set(name, [...(lists.get(name) ?? []), value]);
        }
      }
      const ours: Record<string, string> = {};
      for (const [f, list] of lists) ours[f] = list.join('|');
      if (!isDeepStrictEqual(ours, theirs))
        expect({ file, frame, fields: ours }).toEqual({ file, frame, fields: theirs });
      compared++;
    }
  }
  expect(compared).toBeGreaterThan(300);
});

/** What the capture says about each MPTCP connection: its keys, and its subflows by 4-tuple. */
interface Connection {
  clientKey: bigint;
  serverKey: bigint;
  /** "src sport>dst dport" of the client → server direction of each subflow. */
  subflows: Set<string>;
}

function connections(): Connection[] {
  const list: Connection[] = [];
  // The third ACK (and the first data) carry both keys: sender = client.
  for (const { s, o } of parsed()) {
    if (o.subtype !== 'mp-capable' || o.receiverKey === undefined || o.senderKey === undefined) continue;
    if (list.some((c) => c.clientKey === o.senderKey)) continue;
    list.push({ clientKey: o.senderKey, serverKey: o.receiverKey, subflows: new Set([`${s.src}>${s.dst}`]) });
  }
  for (const { s, o } of parsed()) {
    if (o.subtype !== 'mp-join' || o.form !== 'syn') continue;
    // RFC 8684 §3.2: the SYN names the connection by the token of the receiver's key.
    const c = list.find((c) => keyToken(c.serverKey) === o.receiverToken || keyToken(c.clientKey) === o.receiverToken);
    if (c === undefined) throw new Error(`MP_JOIN in frame ${s.frame} with unknown token ${o.receiverToken}`);
    c.subflows.add(`${s.src}>${s.dst}`);
  }
  return list;
}

function connectionOf(s: Seen, list: Connection[]): { c: Connection; fromClient: boolean } {
  for (const c of list) {
    if (c.subflows.has(`${s.src}>${s.dst}`)) return { c, fromClient: true };
    if (c.subflows.has(`${s.dst}>${s.src}`)) return { c, fromClient: false };
  }
  throw new Error(`frame ${s.frame}: no connection for ${s.src} > ${s.dst}`);
}

test('MP_JOIN HMACs (RFC 8684 §3.2) match crypto.ts in both directions', () => {
  const list = connections();
  expect(list.length).toBe(3);
  let joins = 0;
  for (const { s, o } of parsed()) {
    if (o.subtype !== 'mp-join' || o.form !== 'syn') continue;
    const { c } = connectionOf(s, list);
    // Host A opened the subflow; B is the one whose token the SYN carries.
    const aIsClient = keyToken(c.serverKey) === o.receiverToken;
    const initiatorKey = aIsClient ? c.clientKey : c.serverKey;
    const responderKey = aIsClient ? c.serverKey : c.clientKey;
    const synAck = parsed().find(
      (x) => x.o.subtype === 'mp-join' && x.o.form === 'syn-ack' && x.s.src === s.dst && x.s.dst === s.src,
    );
    const ack = parsed().find(
      (x) => x.o.subtype === 'mp-join' && x.o.form === 'ack' && x.s.src === s.src && x.s.dst === s.dst,
    );
    if (synAck?.o.subtype !== 'mp-join' || synAck.o.form !== 'syn-ack')
      throw new Error(`no SYN-ACK for frame ${s.frame}`);
    if (ack?.o.subtype !== 'mp-join' || ack.o.form !== 'ack') throw new Error(`no third ACK for frame ${s.frame}`);
    const secrets = {
      initiatorKey,
      responderKey,
      initiatorRandom: o.senderRandom,
      responderRandom: synAck.o.senderRandom,
    };
    expect(mpJoinSynAckHmac(secrets)).toBe(synAck.o.senderTruncatedHmac);
    expect(Buffer.from(mpJoinAckHmac(secrets)).toString('hex')).toBe(Buffer.from(ack.o.senderHmac).toString('hex'));
    joins++;
  }
  expect(joins).toBeGreaterThanOrEqual(3);
});

test('ADD_ADDR HMACs (RFC 8684 §3.4.1) match crypto.ts: IPv4, IPv4 with port, IPv6', () => {
  const list = connections();
  const checked = new Set<string>();
  for (const { s, o } of parsed()) {
    if (o.subtype !== 'add-addr' || o.echo) continue;
    const { c, fromClient } = connectionOf(s, list);
    const [senderKey, receiverKey] = fromClient ? [c.clientKey, c.serverKey] : [c.serverKey, c.clientKey];
    expect(addAddrHmac(senderKey, receiverKey, o.addressId, o.address, o.port)).toBe(o.truncatedHmac);
    checked.add(`${o.address.length}${o.port === undefined ? '' : ':port'}`);
  }
  expect([...checked].sort()).toEqual(['16', '4', '4:port']);
});

/** Each direction of each subflow, as bytes by sequence number relative to its ISN (SSN 1 = first data byte). */
function subflowStreams(): Map<string, { isn: number; bytes: Map<number, number> }> {
  const streams = new Map<string, { isn: number; bytes: Map<number, number> }>();
  for (const seg of segments) {
    if (seg.tcp.isSyn) streams.set(`${seg.src}>${seg.dst}`, { isn: seg.tcp.seq, bytes: new Map() });
  }
  for (const seg of segments) {
    const stream = streams.get(`${seg.src}>${seg.dst}`);
    if (stream === undefined || seg.tcp.isSyn) continue;
    const payload = seg.tcp.payload;
    const rel = (seg.tcp.seq - stream.isn) >>> 0;
    for (let i = 0; i < payload.length; i++) stream.bytes.set(rel + i, payload[i]!);
  }
  return streams;
}

test('DSS checksums (RFC 8684 §3.3.1) verify over the captured subflow bytes, MP_CAPABLE data too', () => {
  const list = connections();
  const streams = subflowStreams();
  let verified = 0;
  let capable = 0;
  let dataFins = 0;
  for (const { s, o } of parsed()) {
    let dsn: bigint;
    let ssn: number;
    let length: number;
    let checksum: number;
    if (o.subtype === 'dss' && o.mapping?.checksum !== undefined) {
      // Linux sends 64-bit DSNs; the pseudo-header needs all 64 bits.
      expect(o.dsn64).toBe(true);
      dsn = o.mapping.dsn;
      ssn = o.mapping.ssn;
      length = o.mapping.dataLevelLength;
      checksum = o.mapping.checksum;
    } else if (o.subtype === 'mp-capable' && o.checksum !== undefined && o.dataLevelLength !== undefined) {
      // RFC 8684 §3.1: the implicit mapping of data on MP_CAPABLE: DSN = IDSN + 1, SSN 1.
      const { c, fromClient } = connectionOf(s, list);
      dsn = keyIdsn(fromClient ? c.clientKey : c.serverKey) + 1n;
      ssn = 1;
      length = o.dataLevelLength;
      checksum = o.checksum;
      capable++;
    } else {
      continue;
    }
    const stream = streams.get(`${s.src}>${s.dst}`);
    if (stream === undefined) throw new Error(`frame ${s.frame}: no SYN seen for ${s.src} > ${s.dst}`);
    // A DATA_FIN takes one data sequence number and no byte (§3.3.3); a mapping of
    // only the DATA_FIN has SSN 0.
    const dataFin = o.subtype === 'dss' && o.dataFin;
    if (dataFin) dataFins++;
    const dataBytes = dataFin ? length - 1 : length;
    const payload = new Uint8Array(dataBytes);
    for (let i = 0; i < dataBytes; i++) {
      const b = stream.bytes.get((ssn + i) >>> 0);
      if (b === undefined) throw new Error(`frame ${s.frame}: subflow byte ${ssn + i} not captured`);
      payload[i] = b;
    }
    if (!verifyDssChecksum(dsn, ssn, length, checksum, payload)) {
      throw new Error(
        `frame ${s.frame}: checksum 0x${checksum.toString(16)} does not verify (${dsn} ${ssn} ${length})`,
      );
    }
    verified++;
  }
  expect(capable).toBeGreaterThanOrEqual(1);
  expect(dataFins).toBeGreaterThanOrEqual(2);
  expect(verified).toBeGreaterThan(100);
});
