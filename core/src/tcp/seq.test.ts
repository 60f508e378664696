import { seqAdd, seqDiff, seqGe, seqGt, seqInRange, seqLe, seqLt, seqMax, seqMin } from './seq';

const MAX = 0xffffffff;

describe('sequence numbers', () => {
  test('add wraps at 2^32, in both directions', () => {
    expect(seqAdd(MAX, 1)).toBe(0);
    expect(seqAdd(MAX - 9, 20)).toBe(10);
    expect(seqAdd(5, -10)).toBe(MAX - 4);
    expect(seqAdd(0, 0x100000000)).toBe(0);
  });

  test('comparisons hold across the wrap', () => {
    const before = MAX - 100;
    const after = 100; // 201 bytes later, past the wrap
    expect(seqLt(before, after)).toBe(true);
    expect(seqLe(before, after)).toBe(true);
    expect(seqGt(after, before)).toBe(true);
    expect(seqGe(after, before)).toBe(true);
    expect(seqLt(after, before)).toBe(false);
    expect(seqGt(before, after)).toBe(false);
    expect(seqLe(after, after)).toBe(true);
    expect(seqLt(after, after)).toBe(false);
    expect(seqMax(before, after)).toBe(after);
    expect(seqMin(before, after)).toBe(before);
  });

  test('distance is signed and right across the wrap', () => {
    expect(seqDiff(100, MAX - 100)).toBe(201);
    expect(seqDiff(MAX - 100, 100)).toBe(-201);
    expect(seqDiff(7, 7)).toBe(0);
  });

  test('windows straddling the wrap', () => {
    const lo = MAX - 10;
    const hi = seqAdd(lo, 1000);
    expect(seqInRange(lo, lo, hi)).toBe(true);
    expect(seqInRange(MAX, lo, hi)).toBe(true);
    expect(seqInRange(0, lo, hi)).toBe(true);
    expect(seqInRange(seqAdd(hi, -1), lo, hi)).toBe(true);
    expect(seqInRange(hi, lo, hi)).toBe(false);
    expect(seqInRange(seqAdd(lo, -1), lo, hi)).toBe(false);
  });

  test('the order is consistent with integer order for any base and offsets below 2^31', () => {
    let x = 12345;
    for (let i = 0; i < 10_000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const d1 = x % 0x40000000;
      const d2 = (x >>> 3) % 0x40000000;
      const base = (x * 2654435761) >>> 0;
      const a = seqAdd(base, d1);
      const b = seqAdd(base, d2);
      expect(seqLt(a, b)).toBe(d1 < d2);
      expect(seqDiff(b, a)).toBe(d2 - d1);
    }
  });
});
