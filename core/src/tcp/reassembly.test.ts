import { Random } from '../util/random';
import { ReceiveBuffer } from './reassembly';
import { seqAdd } from './seq';

const BASE = 1000;

/** Bytes whose value encodes their sequence offset from `origin`, so misplacement shows. */
function bytesAt(origin: number, seq: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = ((seq - origin + i) * 7 + 3) & 0xff;
  return out;
}

function setup(capacity = 10_000, origin = BASE) {
  const rb = new ReceiveBuffer({ capacity });
  rb.start(origin);
  /** Inserts `len` bytes at `origin + off` (sequence arithmetic wraps). */
  const put = (off: number, len: number) => rb.insert(seqAdd(origin, off), bytesAt(0, off, len));
  const expectBytes = (off: number, data: Uint8Array) => expect(data).toEqual(bytesAt(0, off, data.length));
  const blocks = () => rb.sackBlocks(4).map((b) => [b.left, b.right]);
  return { rb, put, expectBytes, blocks };
}

describe('ReceiveBuffer: in order', () => {
  test('a segment at rcvNxt advances rcvNxt and becomes readable', () => {
    const { rb, put, expectBytes } = setup();
    expect(put(0, 100)).toEqual({ accepted: 100, advanced: 100 });
    expect(rb.rcvNxt).toBe(BASE + 100);
    expect(rb.readable).toBe(100);
    expect(rb.hasOutOfOrder).toBe(false);
    expect(rb.window).toBe(10_000 - 100);
    expectBytes(0, rb.read());
    expect(rb.readable).toBe(0);
    expect(rb.window).toBe(10_000);
  });

  test('consecutive segments read back as one contiguous run', () => {
    const { rb, put, expectBytes } = setup();
    put(0, 10);
    put(10, 20);
    put(30, 5);
    expect(rb.rcvNxt).toBe(BASE + 35);
    expectBytes(0, rb.read());
  });

  test('an empty segment changes nothing', () => {
    const { rb } = setup();
    expect(rb.insert(BASE, new Uint8Array(0))).toEqual({ accepted: 0, advanced: 0 });
    expect(rb.rcvNxt).toBe(BASE);
  });

  test('read(max), readInto, peek and consume', () => {
    const { rb, put, expectBytes } = setup();
    put(0, 100);
    expectBytes(0, rb.peek(10));
    expect(rb.readable).toBe(100);
    expectBytes(0, rb.read(30));
    expect(rb.readable).toBe(70);
    const buf = new Uint8Array(50);
    expect(rb.readInto(buf)).toBe(50);
    expectBytes(30, buf);
    expect(rb.consume(5)).toBe(5);
    expectBytes(85, rb.read(1000));
    expect(rb.read()).toHaveLength(0);
    expect(rb.readInto(buf)).toBe(0);
    expect(rb.consume(3)).toBe(0);
  });

  test('irs option starts at irs + 1', () => {
    const rb = new ReceiveBuffer({ capacity: 100, irs: 0xffffffff });
    expect(rb.rcvNxt).toBe(0);
  });

  test('start() discards everything', () => {
    const { rb, put } = setup();
    put(0, 10);
    put(20, 10);
    rb.start(5);
    expect(rb.readable).toBe(0);
    expect(rb.hasOutOfOrder).toBe(false);
    expect(rb.outOfOrderBytes).toBe(0);
    expect(rb.rcvNxt).toBe(5);
  });
});

describe('ReceiveBuffer: out of order', () => {
  test('data above a hole is held and reported; filling the hole releases it', () => {
    const { rb, put, expectBytes, blocks } = setup();
    expect(put(100, 50)).toEqual({ accepted: 50, advanced: 0 });
    expect(rb.rcvNxt).toBe(BASE);
    expect(rb.readable).toBe(0);
    expect(rb.hasOutOfOrder).toBe(true);
    expect(rb.outOfOrderBytes).toBe(50);
    expect(blocks()).toEqual([[BASE + 100, BASE + 150]]);
    // Out-of-order data does not reduce the window: its slots are reserved.
    expect(rb.window).toBe(10_000);
    expect(put(0, 100)).toEqual({ accepted: 100, advanced: 150 });
    expect(rb.rcvNxt).toBe(BASE + 150);
    expect(rb.hasOutOfOrder).toBe(false);
    expect(rb.outOfOrderBytes).toBe(0);
    expect(blocks()).toEqual([]);
    expectBytes(0, rb.read());
  });

  test('a segment bridging two ranges merges them', () => {
    const { rb, put, blocks } = setup();
    put(100, 10);
    put(200, 10);
    expect(rb.outOfOrderRanges()).toHaveLength(2);
    expect(put(105, 100)).toEqual({ accepted: 90, advanced: 0 });
    expect(rb.outOfOrderRanges()).toEqual([{ left: BASE + 100, right: BASE + 210 }]);
    expect(blocks()).toEqual([[BASE + 100, BASE + 210]]);
    expect(rb.outOfOrderBytes).toBe(110);
  });

  test('adjacent ranges merge (touching, no overlap)', () => {
    const { rb, put } = setup();
    put(100, 10);
    put(120, 10);
    put(110, 10);
    expect(rb.outOfOrderRanges()).toEqual([{ left: BASE + 100, right: BASE + 130 }]);
    expect(rb.outOfOrderBytes).toBe(30);
  });

  test('filling the first hole releases only up to the next hole', () => {
    const { rb, put, blocks } = setup();
    put(10, 10);
    put(30, 10);
    expect(put(0, 10)).toEqual({ accepted: 10, advanced: 20 });
    expect(rb.rcvNxt).toBe(BASE + 20);
    expect(blocks()).toEqual([[BASE + 30, BASE + 40]]);
    expect(rb.outOfOrderBytes).toBe(10);
  });

  test('an in-order segment overlapping several ranges releases all of them', () => {
    const { rb, put, expectBytes } = setup();
    put(10, 5);
    put(20, 5);
    put(30, 5);
    expect(put(0, 32)).toEqual({ accepted: 20, advanced: 35 });
    expectBytes(0, rb.read());
    expect(rb.hasOutOfOrder).toBe(false);
  });

  // Every way a new segment [s, e) can meet a stored range [100, 200).
  const overlapCases: [string, number, number, number, [number, number][], number][] = [
    // name, start, end, accepted, resulting ranges (offsets), outOfOrderBytes
    [
      'entirely before, apart',
      20,
      50,
      30,
      [
        [20, 50],
        [100, 200],
      ],
      130,
    ],
    ['ends where the range starts', 50, 100, 50, [[50, 200]], 150],
    ['overlaps the left edge', 50, 150, 50, [[50, 200]], 150],
    ['same left edge, shorter', 100, 150, 0, [[100, 200]], 100],
    ['exact duplicate', 100, 200, 0, [[100, 200]], 100],
    ['strictly inside', 120, 180, 0, [[100, 200]], 100],
    ['same right edge, shorter', 150, 200, 0, [[100, 200]], 100],
    ['covers it entirely', 50, 250, 100, [[50, 250]], 200],
    ['same left edge, longer', 100, 250, 50, [[100, 250]], 150],
    ['overlaps the right edge', 150, 250, 50, [[100, 250]], 150],
    ['starts where the range ends', 200, 250, 50, [[100, 250]], 150],
    [
      'entirely after, apart',
      220,
      250,
      30,
      [
        [100, 200],
        [220, 250],
      ],
      130,
    ],
  ];
  test.each(overlapCases)('overlap: %s', (_name, s, e, accepted, ranges, ooo) => {
    const { rb, put } = setup();
    put(100, 100);
    expect(put(s, e - s)).toEqual({ accepted, advanced: 0 });
    expect(rb.outOfOrderRanges()).toEqual(ranges.map(([l, r]) => ({ left: BASE + l, right: BASE + r })));
    expect(rb.outOfOrderBytes).toBe(ooo);
  });

  test('overlap: first copy wins', () => {
    const { rb, put } = setup();
    put(10, 10);
    // A retransmission with different bytes for the same sequence numbers.
    const other = new Uint8Array(30).fill(0xee);
    expect(rb.insert(BASE + 5, other)).toEqual({ accepted: 20, advanced: 0 });
    expect(rb.insert(BASE, new Uint8Array(5).fill(0xaa))).toEqual({ accepted: 5, advanced: 35 });
    const got = rb.read();
    expect(Array.from(got.subarray(0, 5))).toEqual([0xaa, 0xaa, 0xaa, 0xaa, 0xaa]);
    expect(Array.from(got.subarray(5, 10))).toEqual(new Array(5).fill(0xee));
    expect(got.subarray(10, 20)).toEqual(bytesAt(0, 10, 10));
    expect(Array.from(got.subarray(20, 35))).toEqual(new Array(15).fill(0xee));
  });
});

describe('ReceiveBuffer: duplicates and the window', () => {
  test('data entirely below rcvNxt is a duplicate: nothing stored', () => {
    const { rb, put } = setup();
    put(0, 100);
    expect(put(0, 100)).toEqual({ accepted: 0, advanced: 0 });
    expect(put(50, 50)).toEqual({ accepted: 0, advanced: 0 });
    expect(rb.readable).toBe(100);
  });

  test('a segment straddling rcvNxt keeps only the new part', () => {
    const { rb, put, expectBytes } = setup();
    put(0, 100);
    expect(put(50, 100)).toEqual({ accepted: 50, advanced: 50 });
    expect(rb.rcvNxt).toBe(BASE + 150);
    expectBytes(0, rb.read());
  });

  test('data beyond the window is trimmed', () => {
    const { rb, put, expectBytes } = setup(100);
    expect(put(0, 150)).toEqual({ accepted: 100, advanced: 100 });
    expect(rb.window).toBe(0);
    expect(put(100, 10)).toEqual({ accepted: 0, advanced: 0 });
    expectBytes(0, rb.read(40));
    expect(rb.window).toBe(40);
    expect(put(100, 50)).toEqual({ accepted: 40, advanced: 40 });
    expectBytes(40, rb.read());
  });

  test('out-of-order data beyond the window is trimmed, and far-away sequence numbers ignored', () => {
    const { rb, put } = setup(100);
    expect(put(90, 20)).toEqual({ accepted: 10, advanced: 0 });
    expect(rb.outOfOrderRanges()).toEqual([{ left: BASE + 90, right: BASE + 100 }]);
    expect(put(100, 1)).toEqual({ accepted: 0, advanced: 0 });
    expect(put(0x7fffffff, 10)).toEqual({ accepted: 0, advanced: 0 });
    expect(put(-0x7fffffff, 10)).toEqual({ accepted: 0, advanced: 0 });
    expect(rb.outOfOrderBytes).toBe(10);
  });

  test('the window counts unread in-order bytes only', () => {
    const { rb, put } = setup(1000);
    put(0, 300);
    put(500, 200);
    expect(rb.window).toBe(700);
    // The right edge readSeq + capacity stays put: 200 out-of-order bytes are inside it.
    expect(seqAdd(rb.rcvNxt, rb.window)).toBe(BASE + 1000);
  });

  test('setCapacity: growing opens the window at once', () => {
    const { rb, put } = setup(100);
    put(0, 100);
    expect(rb.window).toBe(0);
    rb.setCapacity(300);
    expect(rb.window).toBe(200);
    expect(put(100, 250)).toEqual({ accepted: 200, advanced: 200 });
  });

  test('setCapacity: shrinking reports less window but still accepts up to the old edge', () => {
    const { rb, put, expectBytes } = setup(1000);
    put(0, 200);
    rb.setCapacity(300);
    expect(rb.window).toBe(100);
    // The peer may have been told it could send up to BASE + 1000.
    expect(put(200, 800)).toEqual({ accepted: 800, advanced: 800 });
    expect(rb.window).toBe(0);
    expect(put(1000, 10)).toEqual({ accepted: 0, advanced: 0 });
    expectBytes(0, rb.read());
    expect(rb.window).toBe(300);
    // From here on the new capacity rules.
    expect(put(1000, 400)).toEqual({ accepted: 300, advanced: 300 });
  });

  test('capacity must be a sane integer', () => {
    expect(() => new ReceiveBuffer({ capacity: -1 })).toThrow(RangeError);
    expect(() => new ReceiveBuffer({ capacity: 1.5 })).toThrow(RangeError);
    expect(() => new ReceiveBuffer({ capacity: 2 ** 31 })).toThrow(RangeError);
  });

  test('maxRanges: a segment opening one range too many is dropped, others still merge', () => {
    const rb = new ReceiveBuffer({ capacity: 1000, maxRanges: 2 });
    rb.start(0);
    rb.insert(10, new Uint8Array(5));
    rb.insert(20, new Uint8Array(5));
    expect(rb.insert(30, new Uint8Array(5))).toEqual({ accepted: 0, advanced: 0 });
    expect(rb.insert(15, new Uint8Array(5))).toEqual({ accepted: 5, advanced: 0 });
    expect(rb.insert(0, new Uint8Array(10))).toEqual({ accepted: 10, advanced: 25 });
  });
});

describe('ReceiveBuffer: sequence-space wrap-around', () => {
  test('in order across 2^32', () => {
    const origin = 0xffffff00;
    const { rb, put, expectBytes } = setup(10_000, origin);
    put(0, 200);
    put(200, 200);
    expect(rb.rcvNxt).toBe(0x90);
    expectBytes(0, rb.read());
  });

  test('out of order across 2^32, with SACK blocks in wrapped sequence numbers', () => {
    const origin = 0xffffff00;
    const { rb, put, expectBytes, blocks } = setup(10_000, origin);
    put(300, 50); // 0x2c..0x5e, past the wrap
    put(200, 50); // 0xffffffc8..0xfffffffa, just before the wrap
    expect(blocks()).toEqual([
      [0xffffffc8, 0xfffffffa],
      [0x2c, 0x5e],
    ]);
    put(250, 50); // bridges the wrap
    expect(blocks()).toEqual([[0xffffffc8, 0x5e]]);
    expect(put(0, 200)).toEqual({ accepted: 200, advanced: 350 });
    expect(rb.rcvNxt).toBe(0x5e);
    expectBytes(0, rb.read());
  });
});

describe('ReceiveBuffer: RFC 2018 §4 SACK block order', () => {
  // RFC 2018 §5 "Case 3": left edge 5000, eight 500-byte segments, the 2nd, 4th, 6th and
  // 8th dropped. Each ACK's first block holds the segment that triggered it, the rest
  // repeat the most recently reported blocks.
  test('RFC 2018 §5 case 3, then the 4th and 2nd segments arrive', () => {
    const rb = new ReceiveBuffer({ capacity: 65535 });
    rb.start(5000);
    const seg = (seq: number) => rb.insert(seq, new Uint8Array(500));
    const sack = () => rb.sackBlocks(4).map((b) => [b.left, b.right]);
    seg(5000);
    expect(rb.rcvNxt).toBe(5500);
    expect(sack()).toEqual([]);
    seg(6000);
    expect(rb.rcvNxt).toBe(5500);
    expect(sack()).toEqual([[6000, 6500]]);
    seg(7000);
    expect(sack()).toEqual([
      [7000, 7500],
      [6000, 6500],
    ]);
    seg(8000);
    expect(sack()).toEqual([
      [8000, 8500],
      [7000, 7500],
      [6000, 6500],
    ]);
    // "the 4th packet is received out of order": blocks 6000-7500, then 8000-8500.
    seg(6500);
    expect(rb.rcvNxt).toBe(5500);
    expect(sack()).toEqual([
      [6000, 7500],
      [8000, 8500],
    ]);
    // "the 2nd segment is received": ACK 7500, one block 8000-8500.
    expect(seg(5500)).toEqual({ accepted: 500, advanced: 2000 });
    expect(rb.rcvNxt).toBe(7500);
    expect(sack()).toEqual([[8000, 8500]]);
  });

  test('a duplicate out-of-order segment makes its range the first block again', () => {
    const { put, blocks } = setup();
    put(100, 10);
    put(200, 10);
    put(300, 10);
    expect(blocks()[0]).toEqual([BASE + 300, BASE + 310]);
    expect(put(100, 10)).toEqual({ accepted: 0, advanced: 0 });
    expect(blocks()).toEqual([
      [BASE + 100, BASE + 110],
      [BASE + 300, BASE + 310],
      [BASE + 200, BASE + 210],
    ]);
  });

  test('at most maxBlocks, newest first; older ranges drop off', () => {
    const { rb, put } = setup();
    for (let k = 1; k <= 6; k++) put(k * 100, 10);
    expect(rb.sackBlocks(3).map((b) => b.left - BASE)).toEqual([600, 500, 400]);
    expect(rb.sackBlocks().map((b) => b.left - BASE)).toEqual([600, 500, 400, 300]);
    expect(rb.sackBlocks(0)).toEqual([]);
  });

  test('blocks never cover rcvNxt or below', () => {
    const { rb, put } = setup();
    put(100, 10);
    put(0, 50);
    for (const b of rb.sackBlocks()) expect(b.left - rb.rcvNxt).toBeGreaterThan(0);
  });
});

describe('ReceiveBuffer: property', () => {
  /** Cuts [0, total) into random segments, shuffles, duplicates some, overlaps some. */
  function scramble(rand: Random, total: number, maxSeg: number): [number, number][] {
    const segs: [number, number][] = [];
    for (let at = 0; at < total; ) {
      const len = 1 + rand.int(maxSeg);
      segs.push([at, min(len, total - at)]);
      at += len;
    }
    const extra = rand.int(segs.length);
    for (let k = 0; k < extra; k++) {
      // Duplicates and arbitrary overlapping re-segmentations.
      const s = rand.int(total);
      segs.push([s, 1 + rand.int(min(3 * maxSeg, total - s))]);
    }
    for (let k = segs.length - 1; k > 0; k--) {
      const m = rand.int(k + 1);
      [segs[k], segs[m]] = [segs[m]!, segs[k]!];
    }
    return segs;
  }
  const { min } = Math;

  test.each([1, 2, 3, 4, 5, 6, 7, 8])(
    'random segmentation, order and duplication reassemble exactly (seed %i)',
    (seed) => {
      const rand = new Random(seed);
      const total = 2000 + rand.int(20_000);
      const payload = rand.fill(new Uint8Array(total));
      const origin = seed % 2 === 0 ? 0xffffffff - rand.int(total) : rand.u32();
      const capacity = total + rand.int(1000);
      const rb = new ReceiveBuffer({ capacity });
      rb.start(origin);
      let stored = 0;
      let advanced = 0;
      for (const [at, len] of scramble(rand, total, 1 + rand.int(1500))) {
        const r = rb.insert(seqAdd(origin, at), payload.subarray(at, at + len));
        stored += r.accepted;
        advanced += r.advanced;
        if (rb.outOfOrderBytes + rb.readable !== stored) throw new Error('byte accounting');
        // Invariants: ranges sorted, disjoint, non-adjacent, above rcvNxt.
        let prev = rb.rcvNxt;
        for (const r2 of rb.outOfOrderRanges()) {
          if (((r2.left - prev) | 0) <= 0 || ((r2.right - r2.left) | 0) <= 0) throw new Error('range invariant');
          prev = r2.right;
        }
      }
      expect(stored).toBe(total);
      expect(advanced).toBe(total);
      expect(rb.hasOutOfOrder).toBe(false);
      expect(rb.rcvNxt).toBe(seqAdd(origin, total));
      expect(rb.read()).toEqual(payload);
    },
  );

  test.each([11, 12, 13, 14])('a small window with interleaved reads delivers the same stream (seed %i)', (seed) => {
    const rand = new Random(seed);
    const total = 50_000;
    const payload = rand.fill(new Uint8Array(total));
    const origin = 0xffffffff - 20_000;
    const capacity = 3000 + rand.int(3000);
    const rb = new ReceiveBuffer({ capacity });
    rb.start(origin);
    const out = new Uint8Array(total);
    let got = 0;
    // A sender that keeps resending a scrambled copy of the window until all is read.
    for (let round = 0; got < total && round < 10_000; round++) {
      const lo = got + rb.readable;
      const span = min(capacity, total - lo);
      for (const [at, len] of scramble(rand, span, 700)) {
        if (rand.chance(0.3)) continue; // loss
        rb.insert(seqAdd(origin, lo + at), payload.subarray(lo + at, lo + at + len));
      }
      const buf = new Uint8Array(1 + rand.int(4000));
      const n = rb.readInto(buf);
      out.set(buf.subarray(0, n), got);
      got += n;
      expect(rb.readable + rb.window).toBe(capacity);
    }
    expect(got).toBe(total);
    expect(out).toEqual(payload);
  });
});
