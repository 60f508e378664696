import { Random } from './random';

describe('Random', () => {
  test('same seed, same sequence; different seeds differ', () => {
    const a = new Random(42);
    const b = new Random(42);
    const c = new Random(43);
    const sa = Array.from({ length: 100 }, () => a.u32());
    expect(Array.from({ length: 100 }, () => b.u32())).toEqual(sa);
    expect(Array.from({ length: 100 }, () => c.u32())).not.toEqual(sa);
    expect(new Random('path-1').u32()).toBe(new Random('path-1').u32());
  });

  test('floats are uniform on [0, 1)', () => {
    const r = new Random(1);
    const buckets = new Array(10).fill(0);
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const x = r.float();
      expect(x >= 0 && x < 1).toBe(true);
      buckets[Math.floor(x * 10)]++;
    }
    // Chi-squared with 9 degrees of freedom: 27.9 is the 0.1% critical value.
    const chi2 = buckets.reduce((s, o) => s + (o - n / 10) ** 2 / (n / 10), 0);
    expect(chi2).toBeLessThan(27.9);
  });

  test('normal() has the requested mean and standard deviation', () => {
    const r = new Random(9);
    const xs = Array.from({ length: 50_000 }, () => r.normal(10, 2));
    const m = xs.reduce((a, b) => a + b) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
    expect(Math.abs(m - 10)).toBeLessThan(0.05);
    expect(Math.abs(sd - 2)).toBeLessThan(0.05);
  });

  test('fork gives independent, reproducible streams', () => {
    const x = new Random(5).fork('tx');
    const y = new Random(5).fork('tx');
    const z = new Random(5).fork('rx');
    const first = x.u32();
    expect(y.u32()).toBe(first);
    expect(z.u32()).not.toBe(first);
  });

  test('fill covers odd lengths and int() stays in range', () => {
    const r = new Random(3);
    const buf = r.fill(new Uint8Array(7));
    expect(buf.some((b) => b !== 0)).toBe(true);
    for (let i = 0; i < 1000; i++) {
      const k = r.int(6);
      expect(Number.isInteger(k) && k >= 0 && k < 6).toBe(true);
    }
    expect(r.chance(0)).toBe(false);
    expect(r.chance(1)).toBe(true);
  });
});
