/**
 * Interop with the Linux kernel's TCP over impaired paths. Same topology as
 * kernel-tcp.test.ts (harness/netns.ts); the impairments are applied by the project's
 * Shaper around the tun (nuse side: tx = what the stack sends, rx = what it receives)
 * and once by iptables' `statistic` match in the router namespace (kernel side).
 *
 * Each condition moves a file both ways, checking length and sha256:
 *   kernel → nuse: the stack GETs it from python3 http.server in S;
 *   nuse → kernel: curl in S GETs it from the stack's HTTP server.
 * Each also checks that the impairment really happened (drops, reorderings counted).
 *
 * Needs root, /dev/net/tun, the built addon, iproute2, iptables, python3, curl: the
 * suite FAILS (never skips) naming what is missing.
 */

import type { ShapeConfig } from '@nuse/core';
import { ADDR, assertRequirements, type DataFile, randomFile, type Topology } from './harness/netns';
import { createTopology, type NsServer, startHttpServer } from './harness/servers';
import { describeSocket, hashStdout, httpGet, serveHttp, withTimeout } from './harness/transfer';

const MB = 1_000_000;
const TRANSFER_TIMEOUT_MS = 60_000;

interface Condition {
  name: string;
  size: number;
  tx?: ShapeConfig;
  rx?: ShapeConfig;
  /** iptables random loss in R's FORWARD chain (both directions). */
  kernelLoss?: number;
  /** A tbf bottleneck (Mbit/s) on R's egress interfaces, both directions. */
  kernelRateMbit?: number;
  /** What must have happened for the condition to count as applied. */
  check: (t: Topology, rates: number[]) => void;
}

const lossDrops = (t: Topology): number =>
  (t.shaper.counters.drops['tx-loss'] ?? 0) + (t.shaper.counters.drops['rx-loss'] ?? 0);

const CONDITIONS: Condition[] = [
  {
    name: '20 ms RTT (10 ms each way)',
    size: 10 * MB,
    tx: { delayMs: 10 },
    rx: { delayMs: 10 },
    check: (t) => expect(t.shaper.counters.drops['tx-loss'] ?? 0).toBe(0),
  },
  {
    name: '1% loss each way (shaper)',
    size: 10 * MB,
    tx: { loss: 0.01 },
    rx: { loss: 0.01 },
    check: (t) => expect(lossDrops(t)).toBeGreaterThan(20),
  },
  {
    name: '5% loss each way (shaper)',
    size: 2 * MB,
    tx: { loss: 0.05 },
    rx: { loss: 0.05 },
    check: (t) => expect(lossDrops(t)).toBeGreaterThan(40),
  },
  {
    name: '1% loss in the kernel router (iptables statistic, both directions)',
    size: 10 * MB,
    kernelLoss: 0.01,
    check: (t) => expect(t.kernelLossDrops()).toBeGreaterThan(50),
  },
  {
    name: 'a 40 Mbit/s bottleneck in the kernel router (tbf, 100 kB tail-drop queue, both directions)',
    size: 5 * MB,
    kernelRateMbit: 40,
    // Each direction's goodput is at most the bottleneck's 5 MB/s, and no collapse below it.
    check: (_t, rates) => {
      expect(rates).toHaveLength(2);
      for (const r of rates) {
        expect(r).toBeLessThan(5.2 * MB);
        expect(r).toBeGreaterThan(1.5 * MB); // timed from curl's / the connect's start, on a busy CI machine
      }
    },
  },
  {
    name: '20 ms RTT and 1% loss each way',
    size: 2 * MB,
    tx: { delayMs: 10, loss: 0.01 },
    rx: { delayMs: 10, loss: 0.01 },
    check: (t) => expect(lossDrops(t)).toBeGreaterThan(5),
  },
  {
    name: 'reordering: 5 ms ± 4 ms jitter each way, packets overtake each other',
    size: 3 * MB,
    tx: { delayMs: 5, jitterMs: 4, jitterReorders: true },
    rx: { delayMs: 5, jitterMs: 4, jitterReorders: true },
    // The shaper does not count jitter's reorderings (the netem-style case below does).
    check: (t) => expect(t.shaper.config.rx).toMatchObject({ jitterMs: 4, jitterReorders: true }),
  },
  {
    name: 'reordering: 10% of packets jump a 5 ms delay (netem reorder)',
    size: 5 * MB,
    tx: { delayMs: 5, reorder: 0.1 },
    rx: { delayMs: 5, reorder: 0.1 },
    check: (t) => {
      expect(t.shaper.effects['tx-reordered'] ?? 0).toBeGreaterThan(50);
      expect(t.shaper.effects['rx-reordered'] ?? 0).toBeGreaterThan(50);
    },
  },
];

let t: Topology;
let http: NsServer;
const files = new Map<number, DataFile>();

beforeAll(async () => {
  assertRequirements('kernel TCP interop tests (impaired paths)', ['python3', 'curl', 'iptables', 'tc']);
  t = createTopology({ seed: 'kernel-tcp-impaired' });
  for (const c of CONDITIONS) {
    if (!files.has(c.size)) files.set(c.size, randomFile(t.dir, `f${c.size}.bin`, c.size));
  }
  http = await startHttpServer(t, t.dir, 8000);
}, 30_000);

afterAll(async () => {
  http?.stop();
  await t?.close();
});

describe.each(CONDITIONS)('$name', (c) => {
  const file = (): DataFile => files.get(c.size)!;
  /** Goodput of each transfer, bytes/s. */
  const rates: number[] = [];

  beforeAll(() => {
    t.shape(c.tx ?? {}, c.rx ?? {});
    for (const k of Object.keys(t.shaper.counters.drops)) delete t.shaper.counters.drops[k];
    for (const k of Object.keys(t.shaper.effects)) delete t.shaper.effects[k];
    t.clearKernelLoss();
    if (c.kernelLoss !== undefined) t.kernelLoss(c.kernelLoss);
    if (c.kernelRateMbit !== undefined) t.kernelRate(c.kernelRateMbit);
  });

  afterAll(() => {
    t.shape({}, {});
    t.clearKernelLoss();
    t.clearKernelRate();
  });

  test(`kernel → nuse: GET ${c.size / MB} MB from python3 http.server`, async () => {
    const f = file();
    const { socket, done } = httpGet(t.stack, ADDR.host, 8000, `/f${c.size}.bin`);
    const got = await withTimeout(done, TRANSFER_TIMEOUT_MS, 'GET', () => describeSocket(socket));
    expect(got.length).toBe(f.size);
    expect(got.sha256).toBe(f.sha256);
    rates.push(f.size / (got.ms / 1000));
    process.stdout.write(`  ${c.name}, kernel → nuse: ${(f.size / got.ms / 1000).toFixed(1)} MB/s\n`);
  }, 90_000);

  test(`nuse → kernel: curl GETs ${c.size / MB} MB from the stack`, async () => {
    const f = file();
    const { server } = serveHttp(t.stack, 8080, f.data);
    try {
      const curl = t.spawnS('curl', ['-sS', '--fail', '--max-time', '60', '-o', '-', `http://${ADDR.stack}:8080/f`]);
      const got = await withTimeout(hashStdout(curl, 'curl'), TRANSFER_TIMEOUT_MS, 'curl from nuse');
      expect(got.length).toBe(f.size);
      expect(got.sha256).toBe(f.sha256);
      rates.push(f.size / (got.ms / 1000));
      process.stdout.write(`  ${c.name}, nuse → kernel: ${(f.size / got.ms / 1000).toFixed(1)} MB/s\n`);
    } finally {
      server.close();
    }
  }, 90_000);

  test('the impairment was applied (drops or reorderings counted)', () => {
    c.check(t, rates);
  });
});
