/**
 * `nuse router` through the built CLI (node core/dist/cli/main.js). Needs the build
 * (npm run build), and for the running router root, /dev/net/tun, iproute2 and ping.
 * Without them the tests FAIL with the reason: they are never skipped. Namespaces are
 * deleted in afterAll even when a test fails; a router still running is killed.
 */

import { type ChildProcessWithoutNullStreams, execFile, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { assertRootRequirements } from '../testing/requirements';
import { deleteNetns, inNetns, sweepStaleNetns } from './kernel-hosts';

const execFileAsync = promisify(execFile);
jest.setTimeout(30_000);

const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli', 'main.js');
const NS1 = `nuse-rc1-${process.pid}`;
const NS2 = `nuse-rc2-${process.pid}`;
const T1 = `nrc1-${process.pid}`.slice(0, 15);
const T2 = `nrc2-${process.pid}`.slice(0, 15);

const children: ChildProcessWithoutNullStreams[] = [];

function needBuild(): void {
  if (!fs.existsSync(CLI)) throw new Error(`the CLI is not built (${CLI} is missing): run "npm run build"`);
}

function needRoot(): void {
  assertRootRequirements('the nuse router CLI tests', ['ping', 'tshark']);
}

/** Runs the CLI to completion: exit status, stdout, stderr. */
async function runCli(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync('node', [CLI, ...args], { timeout: 15_000 });
    return { status: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { status: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function linkExists(name: string, ns?: string): boolean {
  try {
    execFileSync('ip', [...(ns ? ['-n', ns] : []), 'link', 'show', 'dev', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  deleteNetns(NS1);
  deleteNetns(NS2);
});

describe('nuse router: the command line', () => {
  test.each([
    [[], /no links: give at least one --tun/],
    [['--tun', 'a,10.1.0.1'], /is not ADDR\/PREFIX/],
    [['--tun', 'a,10.1.0.1/24,loss=2'], /more than 100%/],
    [['--tun', 'a,10.1.0.1/24,route=nowhere'], /route=nowhere is not PREFIX or default/],
    [['--tun', 'a,10.1.0.1/24', '--tun', 'a,10.2.0.1/24'], /--tun a is given twice/],
    [['--tun', 'a,10.1.0.1/24', '--route', '10.9.0.0/16,dev=b'], /no link named "b"/],
    [['--tun', 'a,10.1.0.1/24', '--strip-option', '1'], /EOL and NOP cannot be stripped/],
    [['--tun', 'a,10.1.0.1/24', '--strip-option', 'bogus'], /"bogus" is not an option kind/],
    [['--tun', 'a,10.1.0.1/24', '--strip-option', '30', '--strip-option-on', 'b:tx'], /no link named "b"/],
    [['--tun', 'a,10.1.0.1/24', '--strip-syn-only'], /need --strip-option/],
    [['--tun', 'a,10.1.0.1/24', '--icmp-rate', 'fast'], /is not a whole number/],
    [['--tun', 'a,10.1.0.1/24', '--no-such-flag'], /unknown option/],
  ])('bad arguments %j: exit 2 with one line on stderr', async (args, message) => {
    needBuild();
    const { status, stdout, stderr } = await runCli(['router', ...args]);
    expect(status).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^nuse: /);
    expect(stderr).toMatch(message);
  });

  test('a namespace that does not exist: exit 1 with one line, no interface left behind', async () => {
    needBuild();
    needRoot();
    const { status, stderr } = await runCli(['router', '--tun', `${T1},10.92.1.1/24,netns=nuse-nonexistent-ns`]);
    expect(status).toBe(1);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^nuse: cannot open the links: ip link set dev .* netns nuse-nonexistent-ns failed/);
    expect(linkExists(T1)).toBe(false);
  });

  test('runs between two namespaces, applies delay, and on SIGINT removes its interfaces, prints counters, exits 0', async () => {
    needBuild();
    needRoot();
    sweepStaleNetns();
    for (const ns of [NS1, NS2]) execFileSync('ip', ['netns', 'add', ns]);
    const capture = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nuse-router-cli-')), 'router.pcapng');
    const child = spawn('node', [
      CLI,
      'router',
      '--tun',
      `${T1},10.92.1.1/24,addr=fd00:92:1::1/64,netns=${NS1},route=default`,
      '--tun',
      `${T2},10.92.2.1/24,addr=fd00:92:2::1/64,netns=${NS2},route=default,tx-delay=15ms`,
      '--stats-json',
      '--pcap',
      capture,
      '--stats-interval',
      '0.2',
      '--log-format',
      'json',
    ]);
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));

    const deadline = Date.now() + 10_000;
    while (!/"msg":"ready"/.test(stderr)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the router did not start:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(linkExists(T1, NS1)).toBe(true);
    expect(linkExists(T2, NS2)).toBe(true);
    expect(await inNetns(NS1, ['ip', 'route', 'show', 'default'])).toMatch(new RegExp(`default dev ${T1}`));

    const out = await inNetns(NS1, ['ping', '-n', '-c', '3', '-i', '0.2', '-W', '2', '10.92.2.1']);
    expect(out).toMatch(/3 received/);
    const min = Number(/rtt min\/avg\/max\/mdev = ([\d.]+)/.exec(out)![1]);
    expect(min).toBeGreaterThanOrEqual(15); // tx-delay: packets the router writes into tun 2
    expect(min).toBeLessThan(40);
    // Dual stack: addr= gave each host an IPv6 address, route=default an IPv6 default route.
    const out6 = await inNetns(NS1, ['ping', '-6', '-n', '-c', '2', '-i', '0.2', '-W', '2', 'fd00:92:2::1']);
    expect(out6).toMatch(/2 received/);
    expect(out6).toMatch(/ttl=63/);

    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(linkExists(T1, NS1)).toBe(false);
    expect(linkExists(T2, NS2)).toBe(false);
    const stats = JSON.parse(stdout.trim()) as {
      totals: { forwarded: number };
      ports: { name: string; counters: { forwarded: number } }[];
    };
    expect(stats.totals.forwarded).toBeGreaterThanOrEqual(10);
    expect(stats.ports.map((p) => p.name)).toEqual([T1, T2]);
    expect(stderr).toMatch(/"msg":"stopped"/);
    expect(stderr).toMatch(/"msg":"stats"/); // --stats-interval
    // The capture holds both tuns: each echo request read from one and written into the other.
    const { stdout: fields } = await execFileAsync('tshark', [
      '-r',
      capture,
      '-Y',
      'icmp.type == 8 && ip.dst == 10.92.2.1',
      '-T',
      'fields',
      '-e',
      'frame.interface_name',
    ]);
    expect(fields.trim().split('\n').sort()).toEqual([T1, T1, T1, T2, T2, T2]);
    fs.rmSync(path.dirname(capture), { recursive: true, force: true });
  });
});
