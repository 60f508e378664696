/**
 * `nuse daemon` as a user runs it: the built CLI (core/bin/nuse.js) in a child process,
 * with a real tun whose kernel side lives in a network namespace of its own. Needs
 * root, /dev/net/tun, the built addon and iproute2; without them the tests FAIL with the
 * reason (never skipped). Argument errors are checked without root.
 */

import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { assertRootRequirements } from '../testing/requirements';

const execFileAsync = promisify(execFile);

const CLI = path.resolve(__dirname, '..', '..', 'bin', 'nuse.js');
const BUILT = path.resolve(__dirname, '..', '..', 'dist', 'cli', 'main.js');
const NS = `nusetest-d${process.pid}`;
const NAME = `nused${process.pid}`.slice(0, 15);
const STACK = '198.18.21.2';
const KERNEL = '198.18.21.1';

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

describe('nuse daemon: argument errors (one line, exit 2)', () => {
  beforeAll(() => {
    if (!fs.existsSync(BUILT)) throw new Error(`the CLI is not built (${BUILT}): run "npm run build"`);
  });

  test.each([
    [['daemon'], /^nuse: no links: give at least one --tun/],
    [['daemon', '--tun', 'x'], /^nuse: --tun "x": expected NAME,ADDR\/PREFIX/],
    [['daemon', '--tun', 'n0,10.0.0.2/24,loss=200%'], /more than 100%/],
    [['daemon', '--bogus'], /^nuse: unknown option '--bogus'/],
    [
      ['daemon', '--config', '/nonexistent/nuse.json'],
      /^nuse: cannot read config \/nonexistent\/nuse\.json: no such file/,
    ],
    [['daemon', '--tun', 'n0,10.0.0.2/24', '--route', 'default,via=10.5.0.1'], /10\.5\.0\.1 is not on any link/],
    [['daemon', '--tun', 'n0,10.0.0.2/24', '--log-level', 'loud'], /bad log level/],
    [['frobnicate'], /^nuse: unknown command 'frobnicate'/],
    [
      ['daemon', '--tun', 'n0,10.0.0.2/24', '--kernel', '10.0.0.0/33'],
      /^nuse: --kernel: "10\.0\.0\.0\/33" is not a prefix/,
    ],
    [['run', '--kernel', 'fd00::/129', '--', 'true'], /^nuse: run --kernel: "fd00::\/129" is not a prefix/],
    [['run', '--only', 'ten', '--', 'true'], /^nuse: run --only: "ten" is not a prefix/],
  ])('nuse %j', async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  test('--help lists the daemon and its flags', async () => {
    const r = await run(['daemon', '--help']);
    expect(r.code).toBe(0);
    for (const flag of ['--tun <spec>', '--route <spec>', '--config <file>', '--log-level'])
      expect(r.stdout).toContain(flag);
  });
});

interface Daemon {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let daemons = 0;
/** Control sockets live in a directory of this run's, removed at the end (even for killed daemons). */
const socketDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nuse-daemon-test-'));
afterAll(() => fs.rmSync(socketDir, { recursive: true, force: true }));
/** A control socket path of its own for each daemon, so tests never meet another daemon's. */
function socketPath(): string {
  return path.join(socketDir, `${daemons++}.sock`);
}

function startDaemon(args: string[]): Daemon {
  const child = spawn(process.execPath, [CLI, 'daemon', '--log-format', 'json', '--socket', socketPath(), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  const lines: Record<string, unknown>[] = [];
  child.stderr!.on('data', (d: Buffer) => {
    err += String(d);
    const complete = err.split('\n').slice(0, -1);
    lines.length = 0;
    for (const l of complete) {
      try {
        lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, lines, stderr: () => err, exited };
}

async function waitFor(predicate: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function linkExistsIn(ns: string, name: string): boolean {
  try {
    execFileSync('ip', ['-n', ns, 'link', 'show', 'dev', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('nuse daemon on a real tun (root)', () => {
  const running: Daemon[] = [];

  beforeAll(() => {
    assertRootRequirements('the daemon tests', ['curl']);
    execFileSync('ip', ['netns', 'add', NS]);
  });

  afterEach(async () => {
    for (const d of running.splice(0)) {
      if (d.child.exitCode === null && d.child.signalCode === null) {
        d.child.kill('SIGKILL');
        await d.exited;
      }
    }
  });

  afterAll(() => {
    try {
      execFileSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  });

  test('starts, owns its address, refuses a closed port with RST, and SIGINT removes the interface and exits 0', async () => {
    const d = startDaemon(['--tun', `${NAME},${STACK}/24,netns=${NS},mtu=1400`]);
    running.push(d);
    await waitFor(() => d.lines.some((l) => l.msg === 'ready'), `"ready" in the log; stderr so far:\n${d.stderr()}`);
    expect(d.lines.find((l) => l.msg === 'link up')).toMatchObject({
      name: NAME,
      address: `${STACK}/24`,
      peer: KERNEL,
      mtu: 1400,
      netns: NS,
    });
    const shown = execFileSync('ip', ['-n', NS, '-o', 'addr', 'show', 'dev', NAME], { encoding: 'utf8' });
    expect(shown).toContain(`inet ${KERNEL}/24`);

    // A kernel client connecting to a port nobody listens on: the stack answers RST.
    const curl = await execFileAsync('ip', [
      'netns',
      'exec',
      NS,
      'curl',
      '-sS',
      '--max-time',
      '5',
      `http://${STACK}:8080/`,
    ]).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(curl.code).toBe(7); // curl: "Failed to connect"
    expect(curl.stderr).toMatch(/Connection refused|Couldn't connect to server/);

    d.child.kill('SIGINT');
    const exit = await d.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(linkExistsIn(NS, NAME)).toBe(false);
    const stopped = d.lines.find((l) => l.msg === 'stopped');
    expect(stopped).toMatchObject({ reason: 'SIGINT' });
    expect(d.lines.find((l) => l.msg === 'link down')).toMatchObject({ name: NAME });
  });

  test('SIGTERM stops it the same way', async () => {
    const d = startDaemon(['--tun', `${NAME},${STACK}/24,netns=${NS}`]);
    running.push(d);
    await waitFor(() => d.lines.some((l) => l.msg === 'ready'), `"ready"; stderr:\n${d.stderr()}`);
    d.child.kill('SIGTERM');
    expect(await d.exited).toEqual({ code: 0, signal: null });
    expect(d.lines.find((l) => l.msg === 'stopped')).toMatchObject({ reason: 'SIGTERM' });
    expect(linkExistsIn(NS, NAME)).toBe(false);
  });

  test('a name already taken: exit 1 with one line naming the cause, and no interface left behind', async () => {
    const first = startDaemon(['--tun', `${NAME},${STACK}/24,netns=${NS}`]);
    running.push(first);
    await waitFor(() => first.lines.some((l) => l.msg === 'ready'), `"ready"; stderr:\n${first.stderr()}`);
    // The first daemon's interface is in NS; in this namespace the name is free, so take
    // it with a second link of the same daemon instead: two links, same name, refused up front.
    const r = await run(['daemon', '--tun', `${NAME},${STACK}/24`, '--tun', `${NAME},198.18.22.2/24`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is given twice/);
    // A daemon holding a name in this namespace, and a second one wanting it: EBUSY from the kernel.
    const holder = `nuseh${process.pid}`.slice(0, 15);
    const second = startDaemon(['--tun', `${holder},198.18.23.2/24`]);
    running.push(second);
    await waitFor(() => second.lines.some((l) => l.msg === 'ready'), `"ready"; stderr:\n${second.stderr()}`);
    const busy = await run(['daemon', '--socket', socketPath(), '--tun', `${holder},198.18.24.2/24`]);
    expect(busy.code).toBe(1);
    expect(busy.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(busy.stderr).toMatch(/^nuse: cannot create tun interface .*name is taken/);
    // The holder's interface is untouched by the failed attempt.
    expect(execFileSync('ip', ['-o', 'addr', 'show', 'dev', holder], { encoding: 'utf8' })).toContain('198.18.23.1/24');
  });
});
