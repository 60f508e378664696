/**
 * The interop harness cleans up after itself (harness/netns.ts): `close()` removes the
 * namespaces, the veth pair, the tun and the processes it started; a process killed
 * with SIGTERM cleans up in its signal handler; one killed with SIGKILL leaves its
 * namespaces behind, and the next run's `sweepStale()` removes them (their pid is dead)
 * with the processes still running inside, and their scratch directories.
 *
 * The killed processes run the compiled harness (test/dist/harness/netns.js, built by
 * `npx tsc -b`). Needs root, /dev/net/tun, the built addon and iproute2: the suite FAILS
 * (never skips) naming what is missing.
 */

import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assertRequirements, ip, sweepStale, Topology } from './harness/netns';

const DIST = path.resolve(__dirname, '..', 'dist', 'harness', 'netns.js');

function namespaces(): string[] {
  return ip(['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
}

/** Running (a zombie waiting for its parent to reap it counts as dead). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(() => {
  assertRequirements('interop harness tests', []);
  if (!fs.existsSync(DIST)) throw new Error(`the compiled harness ${DIST} is missing: run "npx tsc -b" first`);
});

test('close() removes the namespaces, veth, tun and the processes started in them', async () => {
  const t = Topology.create();
  const child = t.spawnS('sleep', ['1000']);
  await sleep(100);
  expect(namespaces()).toEqual(expect.arrayContaining([t.nsR, t.nsS]));
  expect(ip(['-n', t.nsR, '-o', 'link', 'show', 'dev', t.tunName])).toContain(t.tunName);
  expect(ip(['-n', t.nsS, '-o', 'addr', 'show', 'dev', t.vethS])).toContain('10.71.2.2/24');
  expect(alive(child.pid!)).toBe(true);
  await t.close();
  await t.close(); // idempotent
  expect(namespaces()).not.toEqual(expect.arrayContaining([t.nsR]));
  expect(namespaces()).not.toEqual(expect.arrayContaining([t.nsS]));
  await sleep(50);
  expect(alive(child.pid!)).toBe(false);
  expect(fs.existsSync(t.dir)).toBe(false);
  expect(() => execFileSync('ip', ['link', 'show', 'dev', t.vethR], { stdio: 'ignore' })).toThrow();
});

/** Starts a node process that builds a topology and a `sleep` in S, and reports the names. */
async function startVictim(): Promise<{ pid: number; nsR: string; nsS: string; sleeper: number; dir: string }> {
  const script = `
    const { Topology } = require(${JSON.stringify(DIST)});
    const t = Topology.create();
    const c = t.spawnS('sleep', ['1000']);
    c.on('spawn', () => console.log(JSON.stringify({ nsR: t.nsR, nsS: t.nsS, sleeper: c.pid, dir: t.dir })));
    setInterval(() => {}, 1000);
  `;
  const victim = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  victim.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    victim.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    victim.on('exit', (code) => reject(new Error(`the topology process exited (${code}): ${err}`)));
  });
  return { pid: victim.pid!, ...(JSON.parse(line) as { nsR: string; nsS: string; sleeper: number; dir: string }) };
}

async function waitUntil(what: string, predicate: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('a process killed with SIGTERM removes its topology on the way out', async () => {
  const v = await startVictim();
  expect(namespaces()).toEqual(expect.arrayContaining([v.nsR, v.nsS]));
  process.kill(v.pid, 'SIGTERM');
  await waitUntil('the namespaces to go', () => !namespaces().includes(v.nsR) && !namespaces().includes(v.nsS), 5000);
  await waitUntil('the sleep in S to die', () => !alive(v.sleeper), 2000);
  expect(fs.existsSync(v.dir)).toBe(false);
}, 20_000);

test('a process killed with SIGKILL leaves its namespaces; sweepStale() removes them and what runs inside', async () => {
  const v = await startVictim();
  process.kill(v.pid, 'SIGKILL');
  await waitUntil('the process to die', () => !alive(v.pid), 2000);
  expect(namespaces()).toEqual(expect.arrayContaining([v.nsR, v.nsS]));
  expect(alive(v.sleeper)).toBe(true);
  expect(fs.existsSync(v.dir)).toBe(true);
  const removed = sweepStale();
  expect(fs.existsSync(v.dir)).toBe(false);
  expect(removed).toEqual(expect.arrayContaining([v.nsR, v.nsS]));
  expect(namespaces()).not.toEqual(expect.arrayContaining([v.nsR]));
  expect(namespaces()).not.toEqual(expect.arrayContaining([v.nsS]));
  await waitUntil('the sleep in S to die', () => !alive(v.sleeper), 2000);
}, 20_000);
