/**
 * The topology of the tests that run real programs through the shim, as a user runs them:
 *
 *   nuse run --socket S -- PROGRAM           (this host's namespace)
 *     └─ libnuse.so ─ unix streams ─ nuse daemon (the built CLI, a child process)
 *          ├─ tun v4: STACK/24 ───────┐
 *          └─ tun v6: STACK6/64 ──────┤
 *   namespace NS: KERNEL, KERNEL6 ◀───┘  kernel peers of the programs
 *
 * Every process started here is killed with its process group in `stop()` (also after a
 * failure), and the namespace and the temporary directory are removed.
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const CLI = path.join(ROOT, 'core', 'bin', 'nuse.js');
const BUILT = path.join(ROOT, 'core', 'dist', 'cli', 'main.js');
export const SHIM = path.join(ROOT, 'shim', 'build', 'libnuse.so');
const ADDON = path.join(ROOT, 'shim', 'build', 'Release', 'nuse_ipc.node');
const TUN_ADDON = path.join(ROOT, 'core', 'build', 'Release', 'tun.node');

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export const sha256 = (d: Uint8Array): string => createHash('sha256').update(d).digest('hex');
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what: string, predicate: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export function commandExists(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** What the shim tests need that is missing (root, the build, the given tools as [command, Debian package]). */
export function missingShimRequirements(tools: [string, string][]): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (tun devices and network namespaces)');
  if (!fs.existsSync('/dev/net/tun')) missing.push('/dev/net/tun');
  for (const [file, what] of [
    [BUILT, 'the built CLI'],
    [TUN_ADDON, 'the built tun addon'],
    [SHIM, 'the built shim'],
    [ADDON, 'the built IPC addon'],
  ] as const) {
    if (!fs.existsSync(file)) missing.push(`${what} ${file} (run "npm run build")`);
  }
  for (const [tool, pkg] of [['ip', 'iproute2'], ['ss', 'iproute2'], ...tools]) {
    if (!commandExists(tool!)) missing.push(`${tool} (Debian package ${pkg})`);
  }
  return missing;
}

/** A process in its own process group, so that `kill` ends it with everything it started. */
export class Procs {
  private readonly children = new Set<ChildProcess>();

  start(argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): ChildProcess {
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    child.on('error', () => undefined);
    child.stdin!.on('error', () => undefined);
    return child;
  }

  kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      child.kill(signal);
    }
  }

  /** Runs to the end; output collected; killed (with its group) after `timeoutMs`. */
  run(
    argv: string[],
    opts: { input?: Buffer | string; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
  ): Promise<Result> {
    return new Promise((resolve, reject) => {
      const child = this.start(argv, { env: opts.env, cwd: opts.cwd });
      const out: Buffer[] = [];
      let err = '';
      child.stdout!.on('data', (d: Buffer) => out.push(d));
      child.stderr!.on('data', (d: Buffer) => {
        err += String(d);
      });
      const timer = setTimeout(() => {
        this.kill(child);
        reject(new Error(`${argv.join(' ')} timed out; stderr: ${err.slice(-2000)}`));
      }, opts.timeoutMs ?? 30_000);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout: Buffer.concat(out), stderr: err });
      });
      child.stdin!.end(opts.input);
    });
  }

  /** Kills every process still running (each with its group). */
  killAll(except?: ChildProcess): void {
    for (const c of [...this.children]) if (c !== except) this.kill(c);
  }
}

/** Output of a running process, as text, and a way to wait for a line in it. */
export function collect(child: ChildProcess): {
  text: () => string;
  waitFor: (re: RegExp, ms?: number) => Promise<RegExpExecArray>;
} {
  let text = '';
  child.stdout!.on('data', (d: Buffer) => {
    text += String(d);
  });
  child.stderr!.on('data', (d: Buffer) => {
    text += String(d);
  });
  return {
    text: () => text,
    waitFor: async (re, ms = 10_000) => {
      let m: RegExpExecArray | null = null;
      await waitFor(`${re} in the output (so far: ${text.slice(-500)})`, () => (m = re.exec(text)) !== null, ms);
      return m!;
    },
  };
}

export interface ShimTopologyOptions {
  /** A short tag making names unique: namespace, tun names, addresses' third octet. */
  tag: string;
  /** 1..250: the third octet of 10.73.N.0/24 and the v6 prefix fd00:73:N::/64. */
  subnet: number;
  /** Extra JSON for the daemon's config (e.g. tcp settings). */
  config?: Record<string, unknown>;
  /** The daemon's log level (default debug: the tests read its log). */
  logLevel?: string;
}

/** The daemon with a v4 and a v6 tun into a namespace of kernel peers. */
export class ShimTopology {
  readonly procs = new Procs();
  readonly ns: string;
  readonly stack: string;
  readonly kernel: string;
  readonly stack6: string;
  readonly kernel6: string;
  readonly dir: string;
  readonly socketPath: string;
  daemonLog = '';
  private daemon: ChildProcess | undefined;
  private nsMade = false;

  private constructor(private readonly opts: ShimTopologyOptions) {
    this.ns = `nuse${opts.tag}${process.pid}`;
    this.stack = `10.73.${opts.subnet}.2`;
    this.kernel = `10.73.${opts.subnet}.1`;
    this.stack6 = `fd00:73:${opts.subnet}::2`;
    this.kernel6 = `fd00:73:${opts.subnet}::1`;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `nuse-${opts.tag}-`));
    this.socketPath = path.join(this.dir, 'nuse.sock');
  }

  static async start(opts: ShimTopologyOptions): Promise<ShimTopology> {
    const t = new ShimTopology(opts);
    try {
      await t.up();
    } catch (e) {
      await t.stop();
      throw e;
    }
    return t;
  }

  private async up(): Promise<void> {
    execFileSync('ip', ['netns', 'add', this.ns]);
    this.nsMade = true;
    execFileSync('ip', ['-n', this.ns, 'link', 'set', 'lo', 'up']);
    const config = path.join(this.dir, 'nuse.json');
    fs.writeFileSync(config, JSON.stringify(this.opts.config ?? {}));
    const tun = `n${this.opts.tag}${process.pid}`.slice(0, 13);
    this.daemon = this.procs.start([
      process.execPath,
      CLI,
      'daemon',
      '--tun',
      `${tun}a,${this.stack}/24,netns=${this.ns}`,
      '--tun',
      `${tun}b,${this.stack6}/64,netns=${this.ns}`,
      '--socket',
      this.socketPath,
      '--config',
      config,
      '--log-format',
      'json',
      '--log-level',
      this.opts.logLevel ?? 'debug',
    ]);
    this.daemon.stdout!.resume();
    this.daemon.stderr!.on('data', (d: Buffer) => {
      this.daemonLog += String(d);
      if (this.daemonLog.length > 4_000_000) this.daemonLog = this.daemonLog.slice(-2_000_000);
    });
    const d = this.daemon;
    await waitFor('the daemon to be ready', () => /"msg":"ready"/.test(this.daemonLog) || d.exitCode !== null, 15_000);
    if (d.exitCode !== null) throw new Error(`the daemon exited: ${this.daemonLog}`);
    // IPv6 duplicate address detection would hold the kernel's address back for a second or two.
    await waitFor(
      "the namespace's IPv6 address",
      () => !execFileSync('ip', ['-n', this.ns, '-6', 'addr'], { encoding: 'utf8' }).includes('tentative'),
      10_000,
    );
  }

  /** argv run inside the namespace. */
  inNs(argv: string[]): string[] {
    return ['ip', 'netns', 'exec', this.ns, ...argv];
  }

  /** argv run through the shim on this daemon. */
  nuse(argv: string[]): string[] {
    return [process.execPath, CLI, 'run', '--socket', this.socketPath, '--', ...argv];
  }

  /** Whether a TCP listener on `port` is in the namespace (the kernel peers) or in this one. */
  listening(port: number, inNs: boolean): boolean {
    const argv = ['ss', '-Htln', `sport = :${port}`];
    const full = inNs ? this.inNs(argv) : argv;
    return execFileSync(full[0]!, full.slice(1), { encoding: 'utf8' }).trim() !== '';
  }

  async stop(): Promise<void> {
    this.procs.killAll(this.daemon);
    const d = this.daemon;
    if (d !== undefined && d.exitCode === null && d.signalCode === null) {
      this.procs.kill(d, 'SIGTERM');
      await waitFor('the daemon to stop', () => d.exitCode !== null || d.signalCode !== null, 5000).catch(() =>
        this.procs.kill(d),
      );
    }
    if (this.nsMade) {
      try {
        execFileSync('ip', ['netns', 'del', this.ns], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
