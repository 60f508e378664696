import type { ShapeConfig } from '../link/shaper';
import type { TcpRecovery } from './config';
import type { TcpConnection } from './connection';
import { payload, pump, sha256, sink, twoStacks } from './test-harness';

const MB = 1_000_000;

/**
 * Client and server each send `size` bytes at the same time, half-close, and read
 * until EOF; both then close. Returns what each side received.
 */
function exchange(size: number, opts: Parameters<typeof twoStacks>[0] & { limitMs?: number } = {}) {
  const env = twoStacks(opts);
  const { tcpA, tcpB, clock, addrB } = env;
  const upData = payload(size, 11);
  const downData = payload(size, 22);
  const listener = tcpB.listen(80);
  let server: TcpConnection | undefined;
  let atServer: ReturnType<typeof sink> | undefined;
  const closed: string[] = [];
  listener.onAcceptable = () => {
    const s = listener.accept()!;
    server = s;
    atServer = sink(s, () => tcpB.poke(s));
    s.events.onClosed = (e) => closed.push(`server:${e?.code ?? 'ok'}`);
    pump(s, downData, () => tcpB.poke(s));
  };
  const client = tcpA.connect({ address: addrB, port: 80 });
  const atClient = sink(client, () => tcpA.poke(client));
  client.events.onClosed = (e) => closed.push(`client:${e?.code ?? 'ok'}`);
  pump(client, upData, () => tcpA.poke(client));
  const started = clock.now();
  clock.runUntilIdle({ until: opts.limitMs ?? 3_600_000 });
  return { env, client, server, atServer, atClient, upData, downData, closed, elapsedMs: clock.now() - started };
}

function expectIntact(r: ReturnType<typeof exchange>, size: number): void {
  expect(r.atServer!.bytes()).toBe(size);
  expect(sha256(r.atServer!.chunks)).toBe(sha256(r.upData));
  expect(r.atClient.bytes()).toBe(size);
  expect(sha256(r.atClient.chunks)).toBe(sha256(r.downData));
  expect(r.atServer!.eof()).toBe(true);
  expect(r.atClient.eof()).toBe(true);
  // Both sent FIN after their data and both reach CLOSED (one through TIME-WAIT).
  expect(r.closed.sort()).toEqual(['client:ok', 'server:ok']);
}

const both = (c: ShapeConfig) => ({ aToB: c, bToA: c });

describe('TCP: 10 MB each way between two stacks over impaired paths (virtual time)', () => {
  const cases: [string, ReturnType<typeof both>][] = [
    ['no loss, 20 ms RTT', both({ delayMs: 10 })],
    ['1% random loss, 20 ms RTT', both({ delayMs: 10, loss: 0.01 })],
    ['5% random loss, 20 ms RTT', both({ delayMs: 10, loss: 0.05 })],
    ['10% random loss, 20 ms RTT', both({ delayMs: 10, loss: 0.1 })],
    [
      'loss bursts (Gilbert–Elliott, 3% mean, bursts of ~4)',
      both({ delayMs: 10, lossBurst: { pGoodToBad: 0.008, pBadToGood: 0.25 } }),
    ],
    ['reordering (jitter ±8 ms)', both({ delayMs: 10, jitterMs: 8 })],
    ['duplication 5%', both({ delayMs: 10, duplicate: 0.05 })],
    ['corruption 2% (dropped by checksums)', both({ delayMs: 10, corrupt: 0.02 })],
    ['1 ms RTT', both({ delayMs: 0.5 })],
    ['300 ms RTT with 1% loss', both({ delayMs: 150, loss: 0.01 })],
    [
      '20 Mbit/s bottleneck with a 64 kB tail-drop queue',
      both({ delayMs: 10, rateBytesPerSec: 2_500_000, queueBytes: 64_000 }),
    ],
  ];
  test.each(cases)('%s', (_name, shape) => {
    const r = exchange(10 * MB, { ...shape, seed: 5 });
    expectIntact(r, 10 * MB);
  });

  // The default loss detection is RACK-TLP (RFC 8985); RFC 6675's DupThresh rules stay
  // available and tested over the same impaired paths.
  const recoveries: TcpRecovery[] = ['rfc6675'];
  describe.each(recoveries)('recovery: %s', (recovery) => {
    test.each(cases.filter(([name]) => name !== 'no loss, 20 ms RTT'))('%s', (_name, shape) => {
      const r = exchange(10 * MB, { ...shape, seed: 5, config: { recovery } });
      expectIntact(r, 10 * MB);
    });
  });

  test('corrupted segments are counted as checksum drops, never delivered', () => {
    const r = exchange(2 * MB, { ...both({ delayMs: 5, corrupt: 0.05 }), seed: 9 });
    expectIntact(r, 2 * MB);
    const drops = (r.env.tcpA.drops['bad-checksum'] ?? 0) + (r.env.tcpB.drops['bad-checksum'] ?? 0);
    const ipDrops =
      Object.values(r.env.ipA.drops).reduce((a, b) => a + b, 0) +
      Object.values(r.env.ipB.drops).reduce((a, b) => a + b, 0);
    expect(drops + ipDrops).toBeGreaterThan(0);
  });

  test('IPv6', () => {
    const r = exchange(2 * MB, { ...both({ delayMs: 10, loss: 0.02 }), seed: 6, v6: true });
    expectIntact(r, 2 * MB);
  });

  test('same seed, same run', () => {
    const a = exchange(MB, { ...both({ delayMs: 10, loss: 0.03, jitterMs: 3 }), seed: 12 });
    const b = exchange(MB, { ...both({ delayMs: 10, loss: 0.03, jitterMs: 3 }), seed: 12 });
    expect(a.elapsedMs).toBe(b.elapsedMs);
    expect(a.client.stats).toEqual(b.client.stats);
  });
});
