import { VirtualClock } from '../time/virtual-clock';
import { type ShapeConfig, Shaper } from './shaper';
import { SimPath } from './sim-link';

/** A packet whose first 4 bytes number it, so arrivals can be matched to sends. */
function numbered(i: number, size: number): Uint8Array {
  const p = new Uint8Array(size);
  p[0] = i >>> 24;
  p[1] = (i >>> 16) & 0xff;
  p[2] = (i >>> 8) & 0xff;
  p[3] = i & 0xff;
  for (let k = 4; k < size; k++) p[k] = (i + k) & 0xff;
  return p;
}
const numberOf = (p: Uint8Array): number => ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;

interface Arrival {
  n: number;
  sentAt: number;
  at: number;
  packet: Uint8Array;
}

/**
 * Sends `count` numbered packets from A to B over a path shaped by `cfg`, one every
 * `intervalMs`, and records what arrives at B.
 */
function run(cfg: ShapeConfig, count: number, opts: { size?: number; intervalMs?: number; seed?: number } = {}) {
  const clock = new VirtualClock();
  const path = new SimPath({ clock, aToB: cfg, seed: opts.seed ?? 7, mtu: 9000 });
  const size = opts.size ?? 100;
  const interval = opts.intervalMs ?? 1;
  const sentAt: number[] = [];
  const arrivals: Arrival[] = [];
  path.b.onReceive((packet) => {
    const n = numberOf(packet);
    arrivals.push({ n, sentAt: sentAt[n]!, at: clock.now(), packet });
  });
  let accepted = 0;
  for (let i = 0; i < count; i++) {
    clock.setTimer(i * interval, () => {
      sentAt[i] = clock.now();
      if (path.a.send(numbered(i, size))) accepted++;
    });
  }
  clock.runUntilIdle();
  return { arrivals, accepted, path, clock };
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const stddev = (xs: number[]): number => {
  const m = mean(xs);
  return Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
};

describe('Shaper', () => {
  test('an empty config delivers every packet, in order, unchanged', () => {
    const { arrivals } = run({}, 1000);
    expect(arrivals.map((a) => a.n)).toEqual([...Array(1000).keys()]);
    for (const a of arrivals) expect(a.packet).toEqual(numbered(a.n, 100));
  });

  test('delay: every packet takes exactly the configured delay', () => {
    const { arrivals } = run({ delayMs: 25 }, 1000);
    expect(arrivals).toHaveLength(1000);
    for (const a of arrivals) expect(a.at - a.sentAt).toBeCloseTo(25, 9);
  });

  test('random loss: 10% over 10,000 packets is 10% ± 1%', () => {
    const { arrivals, path } = run({ loss: 0.1 }, 10_000);
    const lossRate = 1 - arrivals.length / 10_000;
    expect(lossRate).toBeGreaterThan(0.09);
    expect(lossRate).toBeLessThan(0.11);
    expect(path.a.counters.drops['tx-loss']).toBe(10_000 - arrivals.length);
  });

  test.each([0.01, 0.05, 0.3])('random loss of %p stays within 3 standard deviations over 20,000 packets', (p) => {
    const n = 20_000;
    const { arrivals } = run({ loss: p }, n, { seed: 99 });
    const lost = n - arrivals.length;
    const sigma = Math.sqrt(n * p * (1 - p));
    expect(Math.abs(lost - n * p)).toBeLessThan(3 * sigma);
  });

  test('Gilbert–Elliott bursts: the mean loss and mean burst length match the model', () => {
    // p = 1%, r = 25%: stationary P(bad) = p / (p + r) ≈ 3.85%; bursts average 1/r = 4 packets.
    const ge = { pGoodToBad: 0.01, pBadToGood: 0.25 };
    const n = 100_000;
    const { arrivals } = run({ lossBurst: ge }, n, { intervalMs: 0.01 });
    const received = new Uint8Array(n);
    for (const a of arrivals) received[a.n] = 1;
    const lossRate = 1 - arrivals.length / n;
    const expected = ge.pGoodToBad / (ge.pGoodToBad + ge.pBadToGood);
    expect(Math.abs(lossRate - expected)).toBeLessThan(0.004);
    const bursts: number[] = [];
    let burst = 0;
    for (let i = 0; i < n; i++) {
      if (received[i] === 0) {
        burst++;
      } else if (burst > 0) {
        bursts.push(burst);
        burst = 0;
      }
    }
    expect(mean(bursts)).toBeGreaterThan(3.6);
    expect(mean(bursts)).toBeLessThan(4.4);
    // Random loss of the same mean would give bursts of ~1.04 packets: these are bursts.
  });

  test('rate: delivered throughput holds within 2% of the configured rate', () => {
    // Offer 2 MB/s (1000-byte packets every 0.5 ms) to a 1 MB/s bottleneck for 10 s.
    const rate = 1_000_000;
    const { arrivals, path } = run({ rateBytesPerSec: rate, queueBytes: 50_000 }, 20_000, {
      size: 1000,
      intervalMs: 0.5,
    });
    const first = arrivals[0]!.at;
    const last = arrivals[arrivals.length - 1]!.at;
    const throughput = ((arrivals.length - 1) * 1000) / ((last - first) / 1000);
    expect(Math.abs(throughput - rate) / rate).toBeLessThan(0.02);
    // The overload is dropped at the tail of the bounded queue, and counted.
    expect(path.a.counters.drops['tx-queue']).toBe(20_000 - arrivals.length);
    // Queueing delay never exceeds what the bounded queue holds: 50 kB at 1 MB/s = 50 ms (+1 packet).
    for (const a of arrivals) expect(a.at - a.sentAt).toBeLessThanOrEqual(51 + 1e-9);
  });

  test('rate below the bottleneck: nothing is dropped, each packet is delayed by its serialisation time', () => {
    const { arrivals } = run({ rateBytesPerSec: 1_000_000 }, 1000, { size: 500, intervalMs: 1 });
    expect(arrivals).toHaveLength(1000);
    for (const a of arrivals) expect(a.at - a.sentAt).toBeCloseTo(0.5, 9);
  });

  test('queuePackets limits the queue by count', () => {
    const { arrivals, path } = run({ rateBytesPerSec: 1000, queuePackets: 5 }, 100, { size: 100, intervalMs: 0 });
    expect(arrivals.map((a) => a.n)).toEqual([0, 1, 2, 3, 4]);
    expect(path.a.counters.drops['tx-queue']).toBe(95);
  });

  test('uniform jitter: delays spread over ±jitter around the mean, and packets get reordered', () => {
    const { arrivals, path } = run({ delayMs: 50, jitterMs: 10 }, 10_000);
    const delays = arrivals.map((a) => a.at - a.sentAt);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(40);
    expect(Math.max(...delays)).toBeLessThanOrEqual(60);
    expect(Math.abs(mean(delays) - 50)).toBeLessThan(0.3);
    // Uniform on [-j, j] has standard deviation j/√3.
    expect(Math.abs(stddev(delays) - 10 / Math.sqrt(3))).toBeLessThan(0.2);
    const outOfOrder = arrivals.filter((a, i) => i > 0 && a.n < arrivals[i - 1]!.n).length;
    expect(outOfOrder).toBeGreaterThan(1000);
    expect(path.b.counters.rxPackets).toBe(10_000);
  });

  test('normal jitter has the configured standard deviation', () => {
    const { arrivals } = run({ delayMs: 100, jitterMs: 5, jitterDistribution: 'normal' }, 10_000);
    const delays = arrivals.map((a) => a.at - a.sentAt);
    expect(Math.abs(mean(delays) - 100)).toBeLessThan(0.2);
    expect(Math.abs(stddev(delays) - 5)).toBeLessThan(0.2);
  });

  test('jitter without reordering keeps packets in order', () => {
    const { arrivals } = run({ delayMs: 50, jitterMs: 10, jitterReorders: false }, 10_000);
    expect(arrivals.map((a) => a.n)).toEqual([...Array(10_000).keys()]);
    const delays = arrivals.map((a) => a.at - a.sentAt);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(40);
  });

  test('reorder: the configured fraction skips the delay and overtakes', () => {
    const { arrivals, path } = run({ delayMs: 20, reorder: 0.25 }, 10_000);
    const early = arrivals.filter((a) => a.at - a.sentAt < 1).length;
    expect(Math.abs(early / 10_000 - 0.25)).toBeLessThan(0.015);
    expect(path.a.effects['tx-reordered']).toBe(early);
    expect(arrivals).toHaveLength(10_000);
  });

  test('duplication: 10% duplicates gives 1.1× the packets ± 1%', () => {
    const { arrivals, path } = run({ duplicate: 0.1 }, 10_000);
    const extra = arrivals.length - 10_000;
    expect(Math.abs(extra / 10_000 - 0.1)).toBeLessThan(0.01);
    expect(path.a.effects['tx-duplicated']).toBe(extra);
    const seen = new Set(arrivals.map((a) => a.n));
    expect(seen.size).toBe(10_000);
  });

  test('a duplicate is a buffer of its own: changing one copy in place leaves the other as sent', () => {
    const clock = new VirtualClock();
    const path = new SimPath({ clock, aToB: { duplicate: 1 }, seed: 1 });
    const arrived: Uint8Array[] = [];
    path.b.onReceive((packet) => {
      arrived.push(packet.slice()); // as it arrived
      packet.fill(0xee); // then changed in place, as a router decrements a TTL
    });
    path.a.send(numbered(1, 100));
    clock.runUntilIdle();
    expect(arrived).toEqual([numbered(1, 100), numbered(1, 100)]);
  });

  test('corruption: 5% of packets arrive with exactly one bit flipped', () => {
    const { arrivals, path } = run({ corrupt: 0.05 }, 10_000, { size: 200 });
    // No loss, delay or reordering: the i-th arrival is the i-th packet sent.
    expect(arrivals).toHaveLength(10_000);
    let corrupted = 0;
    arrivals.forEach((a, i) => {
      const original = numbered(i, 200);
      let bits = 0;
      for (let k = 0; k < 200; k++) bits += popcount(a.packet[k]! ^ original[k]!);
      expect(bits).toBeLessThanOrEqual(1);
      corrupted += bits;
    });
    expect(Math.abs(corrupted / 10_000 - 0.05)).toBeLessThan(0.006);
    expect(path.a.effects['tx-corrupted']).toBe(corrupted);
  });

  test('MTU: packets larger than the shaper MTU are dropped and counted', () => {
    const { arrivals, path } = run({ mtu: 1280 }, 100, { size: 1400 });
    expect(arrivals).toHaveLength(0);
    expect(path.a.counters.drops['tx-mtu']).toBe(100);
    expect(path.a.mtu).toBe(1280);
  });

  test('up/down: down drops what is in flight, refuses new packets, and tells listeners', () => {
    const clock = new VirtualClock();
    const path = new SimPath({ clock, aToB: { delayMs: 10 } });
    const events: string[] = [];
    path.a.onStateChange((up) => events.push(`a:${up}`));
    path.b.onStateChange((up) => events.push(`b:${up}`));
    const got: number[] = [];
    path.b.onReceive((p) => got.push(numberOf(p)));
    path.a.send(numbered(1, 64));
    clock.advance(5);
    path.setUp(false);
    expect(path.a.send(numbered(2, 64))).toBe(false);
    clock.advance(50);
    expect(got).toEqual([]);
    expect(path.a.counters.drops['tx-down']).toBe(2);
    path.setUp(true);
    expect(path.a.send(numbered(3, 64))).toBe(true);
    clock.advance(50);
    expect(got).toEqual([3]);
    expect(events).toEqual(['a:false', 'b:false', 'a:true', 'b:true']);
    expect(clock.pendingTimers).toBe(0);
  });

  test("a shaper's own down switch cuts the path without touching the inner link", () => {
    const clock = new VirtualClock();
    const path = new SimPath({ clock });
    const outer = new Shaper(path.a, { clock });
    const got: number[] = [];
    path.b.onReceive((p) => got.push(numberOf(p)));
    outer.setUp(false);
    expect(path.a.isUp).toBe(true);
    expect(outer.send(numbered(1, 64))).toBe(false);
    outer.setUp(true);
    expect(outer.send(numbered(2, 64))).toBe(true);
    clock.runUntilIdle();
    expect(got).toEqual([2]);
  });

  test('rx impairments apply to arriving packets', () => {
    const clock = new VirtualClock();
    const path = new SimPath({ clock });
    const receiver = new Shaper(path.b, { clock, rx: { delayMs: 30, loss: 0.5 }, seed: 3 });
    const times: number[] = [];
    receiver.onReceive(() => times.push(clock.now()));
    for (let i = 0; i < 1000; i++) path.a.send(numbered(i, 64));
    clock.runUntilIdle();
    expect(times.every((t) => t === 30)).toBe(true);
    expect(Math.abs(times.length - 500)).toBeLessThan(50);
    expect(receiver.counters.drops['rx-loss']).toBe(1000 - times.length);
  });

  test('configure changes impairments at run time', () => {
    const clock = new VirtualClock();
    const path = new SimPath({ clock, aToB: { delayMs: 10 } });
    const times: number[] = [];
    path.b.onReceive(() => times.push(clock.now()));
    path.a.send(numbered(1, 64));
    clock.runUntilIdle();
    path.configure({ aToB: { delayMs: 100 } });
    path.a.send(numbered(2, 64));
    clock.runUntilIdle();
    expect(times).toEqual([10, 110]);
  });

  test('same seed, same run; another seed, another run', () => {
    const cfg: ShapeConfig = { delayMs: 20, jitterMs: 5, loss: 0.05, duplicate: 0.02, corrupt: 0.01 };
    const trace = (seed: number) =>
      run(cfg, 2000, { seed }).arrivals.map((a) => `${a.n}@${a.at.toFixed(6)}:${a.packet[10]}`);
    expect(trace(5)).toEqual(trace(5));
    expect(trace(5)).not.toEqual(trace(6));
  });
});

function popcount(x: number): number {
  let c = 0;
  while (x) {
    c += x & 1;
    x >>= 1;
  }
  return c;
}
