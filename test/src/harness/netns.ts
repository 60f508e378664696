/**
 * A real network for interop tests: the nuse stack in this process, Linux kernels in
 * network namespaces around it.
 *
 *   nuse Stack (this process, RealClock)
 *     └─ [IPv4 / IPv6 filters] ─ [PcapTap] ─ Shaper ─ TunLink ──┐ the tun's interface lives in R
 *   namespace R (router: ip_forward=1, IPv6 forwarding=1)        │
 *     tun  10.71.1.1/24  fd00:71:1::1/64   <────────────────────┘
 *     vethR 10.71.2.1/24 fd00:71:2::1/64
 *   namespace S (the kernel host: servers, clients, iperf3)
 *     vethS 10.71.2.2/24 fd00:71:2::2/64, default routes via R
 *
 * The stack owns 10.71.1.2 and fd00:71:1::2 with default routes through the tun. The
 * addresses are fixed (the namespaces are private, and the stack's addresses exist
 * only in this process); the names are unique: prefix + pid + counter, so parallel
 * jest workers and other runs never collide. Everything is removed in `close()`, in a
 * process 'exit' handler (and on SIGINT/SIGTERM) if a test forgot, and, at the next
 * run, by `sweepStale()` for runs that were killed outright (their pid is dead).
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  assertRootRequirements,
  type Clock,
  FileSink,
  type Link,
  LinkDecorator,
  PcapngWriter,
  PcapTap,
  RealClock,
  type ShapeConfig,
  Shaper,
  Stack,
  type TcpConfig,
  type TimerHandle,
  TunLink,
} from '@nuse/core';

/** Namespaces a run creates are named NETNS_PREFIX + pid + counter; interfaces IF_PREFIX + pid + counter + role. */
export const NETNS_PREFIX = 'nusei-';
const IF_PREFIX = 'ni';

export const ADDR = {
  stack: '10.71.1.2',
  tunKernel: '10.71.1.1',
  routerVeth: '10.71.2.1',
  host: '10.71.2.2',
  stack6: 'fd00:71:1::2',
  tunKernel6: 'fd00:71:1::1',
  routerVeth6: 'fd00:71:2::1',
  host6: 'fd00:71:2::2',
} as const;

// ---- requirements ---------------------------------------------------------------------

export { commandExists, missingRootRequirements as missingRequirements } from '@nuse/core';

/**
 * Throws (never skips) when something the suite needs is missing, naming all of it: the
 * interop tests run as root in CI, where a missing piece is a failure.
 */
export function assertRequirements(suite: string, tools: string[]): void {
  assertRootRequirements(suite, ['ss', ...tools]);
}

// ---- commands -------------------------------------------------------------------------

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/** Processes started by any topology of this process, killed (whole process group) on exit. */
const liveChildren = new Set<ChildProcess>();

/** Kills a child's whole process group (it was spawned detached: its own group). */
export function killTree(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/**
 * Starts `cmd args` inside namespace `ns` (`ip netns exec`), in its own process group
 * so that `killTree` takes its children (a shell pipeline) with it.
 */
export function spawnIn(ns: string | undefined, cmd: string, args: string[]): ChildProcess {
  const argv = ns === undefined ? [cmd, ...args] : ['ip', 'netns', 'exec', ns, cmd, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  child.on('error', () => undefined); // reported through `run`'s promise or the exit code
  return child;
}

export interface RunOptions {
  /** Kill the process tree and reject after this long (default 60 s). */
  timeoutMs?: number;
  /** Written to stdin, which is then closed. */
  input?: Buffer | string;
  /** Resolve even with a non-zero exit (default: reject with stderr). */
  allowFailure?: boolean;
}

/** Runs `cmd args` in namespace `ns` to completion; rejects with its stderr on failure or timeout. */
export function runIn(ns: string | undefined, cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawnIn(ns, cmd, args);
    const out: Buffer[] = [];
    let err = '';
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const where = ns === undefined ? '' : ` (in ${ns})`;
    const timer = setTimeout(() => {
      killTree(child);
      reject(new Error(`${cmd} ${args.join(' ')}${where} timed out after ${timeoutMs} ms; stderr: ${err.trim()}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}${where}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result: RunResult = { code, signal, stdout: Buffer.concat(out), stderr: err };
      if ((code === 0 && signal === null) || opts.allowFailure) resolve(result);
      else
        reject(
          new Error(`${cmd} ${args.join(' ')}${where} failed (exit ${code ?? signal}): ${err.trim() || '(no stderr)'}`),
        );
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

/** Synchronous `ip ARGS`, throwing with ip's own message. */
export function ip(args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')} failed: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

function ipQuiet(args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: 'ignore' });
  } catch {
    // best effort (cleanup)
  }
}

/** Synchronous command inside a namespace (sysctl, iptables, tc). */
export function execIn(ns: string, cmd: string, args: string[]): string {
  try {
    return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} (in ${ns}) failed: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until something listens on TCP `port` in namespace `ns` (polls `ss`). */
export async function waitForPort(ns: string, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = execIn(ns, 'ss', ['-Htln', `sport = :${port}`]);
    if (out.trim().length > 0) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on TCP port ${port} in ${ns} after ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Polls `predicate` until it holds; rejects with `what` after `timeoutMs`. */
export async function waitFor(what: string, predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

// ---- hashing and data ------------------------------------------------------------------

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256File(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** sha256sum's output: the hex digest in front. */
export function parseSha256sum(out: string | Buffer): string {
  const m = /^([0-9a-f]{64})\b/.exec(out.toString().trim());
  if (!m) throw new Error(`not sha256sum output: ${JSON.stringify(out.toString().slice(0, 200))}`);
  return m[1]!;
}

export interface DataFile {
  path: string;
  size: number;
  sha256: string;
  data: Buffer;
}

/** A file of `size` random bytes in `dir`, with its hash (kept in memory too, for serving). */
export function randomFile(dir: string, name: string, size: number): DataFile {
  const data = Buffer.allocUnsafe(size);
  randomFillSync(data);
  const file = path.join(dir, name);
  fs.writeFileSync(file, data);
  return { path: file, size, sha256: sha256(data), data };
}

// ---- cleanup ---------------------------------------------------------------------------

const liveTopologies = new Set<Topology>();
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const child of liveChildren) killTree(child);
    for (const t of liveTopologies) t.closeSync();
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    // Only when nobody else handles the signal: then the default (exit) is kept, after cleanup.
    if (process.listenerCount(sig) > 0) continue;
    const onSignal = (): void => {
      for (const child of liveChildren) killTree(child);
      for (const t of liveTopologies) t.closeSync();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** Whether `pid` runs (a zombie, dead but not yet reaped by its parent, does not). */
function pidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Deletes a namespace after killing whatever still runs inside it. */
function deleteNamespace(ns: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    for (const p of pids.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        // gone
      }
    }
  } catch {
    // no such namespace
  }
  ipQuiet(['netns', 'del', ns]);
}

/**
 * Removes namespaces of earlier runs (NETNS_PREFIX + pid + ...) whose process is dead:
 * a run killed with SIGKILL leaves them behind. Their veths go with them; their tuns
 * went when the process died (the fd closed). Also removes those runs' scratch
 * directories (tmpdir/nuse-interop-<pid>-...). Returns the namespaces removed.
 */
export function sweepStale(): string[] {
  let list = '';
  try {
    list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return [];
  }
  const removed: string[] = [];
  const re = new RegExp(`^${NETNS_PREFIX}(\\d+)-\\d+-[a-z]+$`);
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = re.exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    deleteNamespace(name);
    removed.push(name);
  }
  // Their scratch directories too.
  const dirRe = /^nuse-interop-(\d+)-\d+-/;
  for (const entry of fs.readdirSync(os.tmpdir())) {
    const m = dirRe.exec(entry);
    if (!m || pidAlive(Number(m[1]))) continue;
    fs.rmSync(path.join(os.tmpdir(), entry), { recursive: true, force: true });
  }
  return removed;
}

// ---- the topology ----------------------------------------------------------------------

/**
 * A RealClock whose pending timers can all be cancelled: a closed stack still holds
 * TIME-WAIT and other timers (minutes of them) that would keep the jest worker alive.
 */
export class ClosableClock implements Clock {
  private readonly real = new RealClock();
  private readonly pending = new Map<number, TimerHandle>();
  private stopped = false;

  now(): number {
    return this.real.now();
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    if (this.stopped) return { id: -1 };
    const handle = this.real.setTimer(delayMs, () => {
      this.pending.delete(handle.id);
      fn();
    });
    this.pending.set(handle.id, handle);
    return handle;
  }

  cancelTimer(handle: TimerHandle): void {
    this.pending.delete(handle.id);
    this.real.cancelTimer(handle);
  }

  /** Cancels every pending timer; later timers are never run. */
  stop(): void {
    this.stopped = true;
    for (const h of this.pending.values()) this.real.cancelTimer(h);
    this.pending.clear();
  }

  get pendingTimers(): number {
    return this.pending.size;
  }
}

/** Passes up only packets of one IP version: two stack interfaces (IPv4, IPv6) share one link. */
class VersionFilter extends LinkDecorator {
  constructor(
    inner: Link,
    private readonly version: 4 | 6,
  ) {
    super(inner);
  }
  protected override onInner(packet: Uint8Array): void {
    if (packet.length > 0 && packet[0]! >> 4 === this.version) this.deliver(packet);
  }
  override close(): void {
    // The shared inner link is closed by the topology.
  }
}

export interface TopologyOptions {
  /** Seed for the stack and the shaper. */
  seed?: number | string;
  /** Stack-wide TCP settings. */
  tcp?: Partial<TcpConfig>;
  /** MTU of the tun (default 1500). */
  mtu?: number;
  /**
   * Record the stack's traffic to a pcapng file (a PcapTap between the stack and the
   * shaper: what the stack sent and what reached it): `true` for `capture.pcapng` in the
   * topology's scratch directory, or a path.
   */
  capture?: boolean | string;
  /** Initial shaper settings (change them with `shape()`). */
  tx?: ShapeConfig;
  rx?: ShapeConfig;
}

let counter = 0;

export class Topology {
  readonly id: string;
  /** The router namespace (holds the tun's kernel side) and the kernel host namespace. */
  readonly nsR: string;
  readonly nsS: string;
  readonly tunName: string;
  readonly vethR: string;
  readonly vethS: string;
  readonly clock = new ClosableClock();
  readonly tun: TunLink;
  readonly shaper: Shaper;
  readonly tap: PcapTap | undefined;
  /** The capture file when `capture` was asked for. */
  readonly captureFile: string | undefined;
  readonly stack: Stack;
  /** A scratch directory, removed on close. */
  readonly dir: string;
  private closed = false;
  private readonly cleanups: (() => void)[] = [];

  private constructor(opts: TopologyOptions) {
    const n = counter++;
    this.id = `${process.pid}-${n}`;
    this.nsR = `${NETNS_PREFIX}${this.id}-r`;
    this.nsS = `${NETNS_PREFIX}${this.id}-s`;
    const short = `${IF_PREFIX}${process.pid}${n.toString(36)}`;
    this.tunName = `${short}t`;
    this.vethR = `${short}r`;
    this.vethS = `${short}s`;
    if (Buffer.byteLength(this.tunName) > 15) throw new Error(`interface name ${this.tunName} is too long`);
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `nuse-interop-${this.id}-`));
    liveTopologies.add(this);
    hookExit();
    try {
      this.buildKernelSide();
      this.tun = TunLink.open({
        name: this.tunName,
        address: `${ADDR.tunKernel}/24`,
        netns: this.nsR,
        mtu: opts.mtu ?? 1500,
      });
      // The tun is IFF_NOARP: no duplicate address detection, the address is usable at once.
      ip(['-n', this.nsR, '-6', 'addr', 'add', `${ADDR.tunKernel6}/64`, 'dev', this.tunName]);
      this.shaper = new Shaper(this.tun, { clock: this.clock, seed: opts.seed ?? 1, tx: opts.tx, rx: opts.rx });
      let bottom: Link = this.shaper;
      if (opts.capture !== undefined && opts.capture !== false) {
        this.captureFile = opts.capture === true ? path.join(this.dir, 'capture.pcapng') : opts.capture;
        const writer = new PcapngWriter(new FileSink(this.captureFile));
        this.tap = new PcapTap(this.shaper, writer, {
          clock: this.clock,
          interfaceName: this.tunName,
          ownsWriter: true,
        });
        bottom = this.tap;
      }
      this.stack = new Stack({ clock: this.clock, seed: opts.seed ?? 1, tcp: opts.tcp });
      this.stack.addInterface(new VersionFilter(bottom, 4), `${ADDR.stack}/24`, 'tun4');
      this.stack.addInterface(new VersionFilter(bottom, 6), `${ADDR.stack6}/64`, 'tun6');
      this.stack.addRoute('0.0.0.0/0', 'tun4');
      this.stack.addRoute('::/0', 'tun6');
    } catch (err) {
      this.closeSync();
      throw err;
    }
  }

  /** Builds a fresh topology (see the file comment). Sweeps stale namespaces of dead runs first. */
  static create(opts: TopologyOptions = {}): Topology {
    sweepStale();
    return new Topology(opts);
  }

  private buildKernelSide(): void {
    const { nsR, nsS } = this;
    ip(['netns', 'add', nsR]);
    ip(['netns', 'add', nsS]);
    ip(['-n', nsR, 'link', 'set', 'lo', 'up']);
    ip(['-n', nsS, 'link', 'set', 'lo', 'up']);
    ip(['link', 'add', this.vethR, 'netns', nsR, 'type', 'veth', 'peer', 'name', this.vethS, 'netns', nsS]);
    ip(['-n', nsR, 'addr', 'add', `${ADDR.routerVeth}/24`, 'dev', this.vethR]);
    ip(['-n', nsS, 'addr', 'add', `${ADDR.host}/24`, 'dev', this.vethS]);
    ip(['-n', nsR, '-6', 'addr', 'add', `${ADDR.routerVeth6}/64`, 'dev', this.vethR, 'nodad']);
    ip(['-n', nsS, '-6', 'addr', 'add', `${ADDR.host6}/64`, 'dev', this.vethS, 'nodad']);
    ip(['-n', nsR, 'link', 'set', this.vethR, 'up']);
    ip(['-n', nsS, 'link', 'set', this.vethS, 'up']);
    ip(['-n', nsS, 'route', 'add', 'default', 'via', ADDR.routerVeth]);
    ip(['-n', nsS, '-6', 'route', 'add', 'default', 'via', ADDR.routerVeth6]);
    execIn(nsR, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  }

  /** Changes the shaper's impairments on the nuse side (tx: packets the stack sends). */
  shape(tx: ShapeConfig = {}, rx: ShapeConfig = {}): void {
    this.shaper.configure({ tx, rx });
  }

  /** Registers a cleanup step run (in reverse order) by close(). */
  onClose(fn: () => void): void {
    this.cleanups.push(fn);
  }

  /**
   * Random loss on the kernel side: R's FORWARD chain drops this fraction of the packets
   * it forwards, both directions (iptables `-m statistic --mode random`). S's TSO/GSO is
   * turned off meanwhile (gso_max_segs 1), and so is the tun's: otherwise 64 KB
   * super-packets cross R whole and one "packet" dropped is dozens of segments.
   */
  kernelLoss(probability: number): void {
    ip(['-n', this.nsS, 'link', 'set', 'dev', this.vethS, 'gso_max_segs', '1']);
    this.tun.setGso(false);
    execIn(this.nsR, 'iptables', [
      '-A',
      'FORWARD',
      '-m',
      'statistic',
      '--mode',
      'random',
      '--probability',
      String(probability),
      '-j',
      'DROP',
    ]);
  }

  /** Removes kernelLoss's rule and restores S's segmentation offload. */
  clearKernelLoss(): void {
    execIn(this.nsR, 'iptables', ['-F', 'FORWARD']);
    ip(['-n', this.nsS, 'link', 'set', 'dev', this.vethS, 'gso_max_segs', '65535']);
    this.tun.setGso(true);
  }

  /**
   * A bottleneck on the kernel side: a tbf qdisc of `mbit` Mbit/s (`limit` bytes of
   * queue, tail drop) on both of R's egress interfaces: the tun (toward the stack) and
   * the veth (toward S).
   */
  kernelRate(mbit: number, limitBytes = 100_000): void {
    for (const dev of [this.tunName, this.vethR]) {
      execIn(this.nsR, 'tc', [
        'qdisc',
        'replace',
        'dev',
        dev,
        'root',
        'tbf',
        'rate',
        `${mbit}mbit`,
        'burst',
        '15k',
        'limit',
        String(limitBytes),
      ]);
    }
  }

  /** Removes kernelRate's qdiscs. */
  clearKernelRate(): void {
    for (const dev of [this.tunName, this.vethR]) {
      try {
        execIn(this.nsR, 'tc', ['qdisc', 'del', 'dev', dev, 'root']);
      } catch {
        // no qdisc there
      }
    }
  }

  /** Packets R's tbf qdiscs dropped (queue overflow), summed over both interfaces. */
  kernelRateDrops(): number {
    let total = 0;
    for (const dev of [this.tunName, this.vethR]) {
      const out = execIn(this.nsR, 'tc', ['-s', 'qdisc', 'show', 'dev', dev]);
      const m = /qdisc tbf[\s\S]*?dropped (\d+)/.exec(out);
      if (m) total += Number(m[1]);
    }
    return total;
  }

  /** Packets R's FORWARD chain dropped (the iptables loss rule's counter). */
  kernelLossDrops(): number {
    const out = execIn(this.nsR, 'iptables', ['-L', 'FORWARD', '-v', '-n', '-x']);
    let total = 0;
    for (const line of out.split('\n')) {
      const m = /^\s*(\d+)\s+\d+\s+DROP\b/.exec(line);
      if (m) total += Number(m[1]);
    }
    return total;
  }

  /** Starts a command in S (the kernel host). */
  spawnS(cmd: string, args: string[]): ChildProcess {
    return spawnIn(this.nsS, cmd, args);
  }

  runS(cmd: string, args: string[], opts?: RunOptions): Promise<RunResult> {
    return runIn(this.nsS, cmd, args, opts);
  }

  runR(cmd: string, args: string[], opts?: RunOptions): Promise<RunResult> {
    return runIn(this.nsR, cmd, args, opts);
  }

  /** Closes the stack and the tun, kills processes, deletes the namespaces and the scratch directory. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.stack?.close();
    // Let the stack's RSTs go out before the link closes.
    await sleep(10);
    this.closeSync();
  }

  closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    liveTopologies.delete(this);
    for (const fn of this.cleanups.splice(0).reverse()) {
      try {
        fn();
      } catch {
        // keep cleaning
      }
    }
    try {
      this.stack?.close();
    } catch {
      // keep cleaning
    }
    this.tap?.detach();
    // The shaper drops what it still holds (its timers) and closes the tun.
    if (this.shaper !== undefined) this.shaper.close();
    else this.tun?.close();
    this.clock.stop();
    deleteNamespace(this.nsS);
    deleteNamespace(this.nsR);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Children still running (for tests of the harness itself). */
export function liveChildCount(): number {
  return liveChildren.size;
}
