/**
 * Test support for the router's root tests: kernel hosts in network namespaces, and
 * small Python programs that move data between them over the kernel's TCP or MPTCP and
 * report length, SHA-256 and what the connection negotiated.
 *
 * Everything runs asynchronously: the router under test forwards on this process's
 * event loop, so a synchronous child process would stall the very path it measures.
 */

import { type ChildProcessWithoutNullStreams, execFile, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The receiving end: accepts one connection, reads to EOF, prints a JSON line. */
const SINK_PY = `
import hashlib, json, socket, sys
host, port, proto = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
family = socket.AF_INET6 if ':' in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM, proto)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen(1)
print('listening', flush=True)
s.settimeout(60)
c, _ = s.accept()
c.settimeout(60)
try:
    mptcp = c.getsockopt(socket.IPPROTO_TCP, 43)  # TCP_IS_MPTCP
except OSError:
    mptcp = None
h = hashlib.sha256()
n = 0
while True:
    b = c.recv(1 << 20)
    if not b:
        break
    h.update(b)
    n += len(b)
c.close()
print(json.dumps({'bytes': n, 'sha256': h.hexdigest(), 'mptcp': mptcp}), flush=True)
`;

/** The sending end: N deterministic bytes, then what the connection negotiated, as a JSON line. */
const SEND_PY = `
import hashlib, json, random, socket, sys, time
host, port, n, proto = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
data = random.Random(n).randbytes(n)
family = socket.AF_INET6 if ':' in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM, proto)
s.settimeout(60)
s.connect((host, port))
start = time.time()
try:
    options = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[5]  # tcpi_options
except OSError:
    options = None
try:
    mptcp = s.getsockopt(socket.IPPROTO_TCP, 43)  # TCP_IS_MPTCP
except OSError:
    mptcp = None
s.sendall(data)
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
s.close()
print(json.dumps({'bytes': n, 'sha256': hashlib.sha256(data).hexdigest(), 'tcpiOptions': options,
                  'mptcp': mptcp, 'seconds': time.time() - start}), flush=True)
`;

/** tcpi_options bits (linux/tcp.h). */
export const TCPI_OPT_TIMESTAMPS = 1;
export const TCPI_OPT_SACK = 2;

export interface TransferResult {
  sent: { bytes: number; sha256: string; tcpiOptions: number | null; mptcp: number | null; seconds: number };
  received: { bytes: number; sha256: string; mptcp: number | null };
}

export { commandExists } from '../testing/requirements';

/** Runs `cmd` in namespace `ns`; resolves with stdout, or rejects with stdout and stderr in the message. */
export async function inNetns(ns: string, cmd: string[], timeoutMs = 30_000): Promise<string> {
  try {
    const { stdout } = await execFileAsync('ip', ['netns', 'exec', ns, ...cmd], { timeout: timeoutMs });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw Object.assign(
      new Error(`${cmd.join(' ')} in ${ns} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`),
      {
        stdout: e.stdout ?? '',
      },
    );
  }
}

/** Like inNetns, but a non-zero exit is not an error: resolves with stdout either way. */
export async function inNetnsAnyExit(ns: string, cmd: string[], timeoutMs = 30_000): Promise<string> {
  try {
    return await inNetns(ns, cmd, timeoutMs);
  } catch (e) {
    return (e as { stdout?: string }).stdout ?? '';
  }
}

/** Writes the Python programs to a fresh directory; returns it. */
export function writeScripts(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nuse-router-'));
  fs.writeFileSync(path.join(dir, 'sink.py'), SINK_PY);
  fs.writeFileSync(path.join(dir, 'send.py'), SEND_PY);
  return dir;
}

/**
 * Moves `bytes` from a client in `fromNs` to a sink listening on `to`:`port` in `toNs`.
 * `protocol` is the socket's third argument: 0 (TCP) or 262 (IPPROTO_MPTCP).
 */
export async function transfer(opts: {
  scripts: string;
  fromNs: string;
  toNs: string;
  to: string;
  port: number;
  bytes: number;
  protocol?: number;
  timeoutMs?: number;
}): Promise<TransferResult> {
  const protocol = String(opts.protocol ?? 0);
  const sink: ChildProcessWithoutNullStreams = spawn('ip', [
    'netns',
    'exec',
    opts.toNs,
    'python3',
    path.join(opts.scripts, 'sink.py'),
    opts.to,
    String(opts.port),
    protocol,
  ]);
  let out = '';
  let err = '';
  sink.stdout.on('data', (d: Buffer) => (out += d.toString()));
  sink.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => sink.on('close', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 5000;
    while (!out.includes('listening')) {
      if (Date.now() > deadline || sink.exitCode !== null) throw new Error(`the sink did not start: ${err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const sent = await inNetns(
      opts.fromNs,
      ['python3', path.join(opts.scripts, 'send.py'), opts.to, String(opts.port), String(opts.bytes), protocol],
      opts.timeoutMs ?? 60_000,
    );
    const code = await exited;
    if (code !== 0) throw new Error(`the sink exited with ${code}: ${err}`);
    const lines = out.trim().split('\n');
    return { sent: JSON.parse(sent.trim()), received: JSON.parse(lines[lines.length - 1]!) };
  } finally {
    if (sink.exitCode === null) sink.kill();
  }
}

/** A counter from `nstat -asz` (absolute values, history untouched) in namespace `ns`. */
export async function nstat(ns: string, name: string): Promise<number> {
  const out = await inNetns(ns, ['nstat', '-asz', name]);
  const m = new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(out);
  return m ? Number(m[1]) : 0;
}

/** Deletes a namespace if it exists (for afterAll: never throws). */
export function deleteNetns(ns: string): void {
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {
    // not there
  }
}

export function netnsExists(ns: string): boolean {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .some((l) => l.split(' ')[0] === ns);
}

/**
 * Deletes namespaces named like ours (`nuse-rt1-<pid>`, `nuse-rc2-<pid>`) whose process is
 * gone: a test run killed outright (SIGKILL) cannot clean up after itself.
 */
export function sweepStaleNetns(): void {
  let list = '';
  try {
    list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  } catch {
    return;
  }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^nuse-r[tc][12]-(\d+)$/.exec(name);
    if (m === null || pidAlive(Number(m[1]))) continue;
    deleteNetns(name);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
