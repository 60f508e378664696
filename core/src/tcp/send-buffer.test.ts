import { Random } from '../util/random';
import { SendBuffer } from './send-buffer';
import { seqAdd } from './seq';

const ISS1 = 5001;

/** `len` bytes whose values encode their stream offset, so misplacement shows. */
function stream(off: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = ((off + i) * 13 + 1) & 0xff;
  return out;
}

function setup(capacity = 10_000, blockSize?: number, origin = ISS1) {
  const sb = new SendBuffer<string>(blockSize === undefined ? { capacity } : { capacity, blockSize });
  sb.start(origin);
  let written = 0;
  /** Writes the next `len` bytes of the test stream. */
  const write = (len: number, meta?: string) => {
    const n = sb.write(stream(written, len), meta);
    written += n;
    return n;
  };
  const at = (off: number) => seqAdd(origin, off);
  const metas = () => sb.metaRanges().map((r) => [(r.start - origin) | 0, (r.end - origin) | 0, r.meta]);
  return { sb, write, at, metas };
}

describe('SendBuffer: write, read, ack', () => {
  test('bytes written are read back at their sequence numbers', () => {
    const { sb, write, at } = setup();
    expect(write(100)).toBe(100);
    expect(write(50)).toBe(50);
    expect(sb.length).toBe(150);
    expect(sb.startSeq).toBe(ISS1);
    expect(sb.endSeq).toBe(at(150));
    expect(sb.read(at(0), 1000)).toEqual(stream(0, 150));
    expect(sb.read(at(20), 30)).toEqual(stream(20, 30));
    expect(sb.read(at(149), 30)).toEqual(stream(149, 1));
  });

  test('reads outside the buffer or of no length are empty', () => {
    const { sb, write, at } = setup();
    write(100);
    expect(sb.read(at(100), 10)).toHaveLength(0);
    expect(sb.read(at(-1), 10)).toHaveLength(0);
    expect(sb.read(at(0), 0)).toHaveLength(0);
    expect(sb.read(at(0), -5)).toHaveLength(0);
    expect(sb.read(at(0x40000000), 10)).toHaveLength(0);
  });

  test('write copies: the caller may reuse its buffer', () => {
    const { sb, at } = setup();
    const buf = new Uint8Array([1, 2, 3]);
    sb.write(buf);
    buf.fill(9);
    expect(Array.from(sb.read(at(0), 3))).toEqual([1, 2, 3]);
  });

  test('ack drops acknowledged bytes and returns how many', () => {
    const { sb, write, at } = setup();
    write(300);
    expect(sb.ack(at(100))).toBe(100);
    expect(sb.startSeq).toBe(at(100));
    expect(sb.length).toBe(200);
    expect(sb.read(at(100), 50)).toEqual(stream(100, 50));
    expect(sb.read(at(50), 50)).toHaveLength(0);
    // Old and duplicate acks free nothing.
    expect(sb.ack(at(100))).toBe(0);
    expect(sb.ack(at(50))).toBe(0);
    // An ack past the data (it covers a FIN) is clamped.
    expect(sb.ack(at(301))).toBe(200);
    expect(sb.length).toBe(0);
    expect(sb.startSeq).toBe(at(300));
    write(10);
    expect(sb.read(at(300), 10)).toEqual(stream(300, 10));
  });

  test('capacity bounds writes; acks free room; setCapacity at run time', () => {
    const { sb, write, at } = setup(100);
    expect(sb.free).toBe(100);
    expect(write(70)).toBe(70);
    expect(write(70)).toBe(30);
    expect(sb.free).toBe(0);
    expect(write(1)).toBe(0);
    sb.ack(at(40));
    expect(sb.free).toBe(40);
    sb.setCapacity(50);
    expect(sb.free).toBe(0);
    expect(sb.length).toBe(60);
    sb.setCapacity(200);
    expect(sb.free).toBe(140);
    expect(write(140)).toBe(140);
    expect(sb.read(at(40), 1000)).toEqual(stream(40, 200));
    expect(() => sb.setCapacity(-1)).toThrow(RangeError);
  });

  test('start() before any data; start() after early writes moves them', () => {
    const sb = new SendBuffer<string>({ capacity: 100 });
    sb.write(stream(0, 10), 'm');
    sb.start(0xfffffffa);
    expect(sb.startSeq).toBe(0xfffffffa);
    expect(sb.read(0xfffffffa, 100)).toEqual(stream(0, 10));
    expect(sb.metaAt(3)).toEqual({ start: 0xfffffffa, end: 4, meta: 'm' });
  });
});

describe('SendBuffer: chunks', () => {
  test('a read inside one block is a view, not a copy', () => {
    const { sb, write, at } = setup(10_000, 1000);
    write(500);
    const a = sb.read(at(0), 100);
    const b = sb.read(at(100), 100);
    expect(a.buffer).toBe(b.buffer);
    expect(b.byteOffset).toBe(a.byteOffset + 100);
  });

  test('small writes share a block; big writes get their own', () => {
    const { sb, write, at } = setup(100_000, 1000);
    for (let k = 0; k < 10; k++) write(100);
    expect(sb.read(at(0), 1).buffer).toBe(sb.read(at(999), 1).buffer);
    write(5000);
    expect(sb.read(at(1000), 5000)).toEqual(stream(1000, 5000));
    expect(sb.read(at(1000), 5000).buffer).toBe(sb.read(at(5999), 1).buffer);
  });

  test('a read across blocks returns the right bytes', () => {
    const { sb, write, at } = setup(10_000, 100);
    for (let k = 0; k < 30; k++) write(37);
    for (const [s, n] of [
      [0, 1110],
      [90, 20],
      [99, 2],
      [150, 500],
      [1000, 200],
    ] as const) {
      expect(sb.read(at(s), n)).toEqual(stream(s, Math.min(n, 1110 - s)));
    }
  });

  test('ack across blocks, partial first block, then more writes', () => {
    const { sb, write, at } = setup(10_000, 100);
    write(450);
    expect(sb.ack(at(250))).toBe(250);
    expect(sb.read(at(250), 200)).toEqual(stream(250, 200));
    write(300);
    expect(sb.ack(at(449))).toBe(199);
    expect(sb.read(at(449), 1000)).toEqual(stream(449, 301));
    expect(sb.ack(at(750))).toBe(301);
    expect(sb.length).toBe(0);
    write(50);
    expect(sb.read(at(750), 100)).toEqual(stream(750, 50));
  });

  test('views handed out keep their bytes after the data is acknowledged and more is written', () => {
    const { sb, write, at } = setup(200, 100);
    write(150);
    const v = sb.read(at(120), 30);
    sb.ack(at(150));
    for (let k = 0; k < 10; k++) {
      write(150);
      sb.ack(sb.endSeq);
    }
    expect(v).toEqual(stream(120, 30));
  });
});

describe('SendBuffer: metadata ranges (DESIGN.md decision 4)', () => {
  test('a read never crosses a metadata boundary', () => {
    const { sb, write, at, metas } = setup();
    write(100, 'a');
    write(100, 'b');
    write(100);
    expect(metas()).toEqual([
      [0, 100, 'a'],
      [100, 200, 'b'],
      [200, 300, undefined],
    ]);
    expect(sb.read(at(0), 1000)).toEqual(stream(0, 100));
    expect(sb.read(at(50), 1000)).toEqual(stream(50, 50));
    expect(sb.read(at(100), 1000)).toEqual(stream(100, 100));
    expect(sb.read(at(199), 1000)).toHaveLength(1);
    expect(sb.read(at(200), 1000)).toEqual(stream(200, 100));
  });

  test('writes with the identical meta extend one range', () => {
    const { write, metas } = setup();
    write(10, 'a');
    write(10, 'a');
    write(10);
    write(10);
    expect(metas()).toEqual([
      [0, 20, 'a'],
      [20, 40, undefined],
    ]);
  });

  test('metaAt gives the range and its meta', () => {
    const { sb, write, at } = setup();
    write(100, 'a');
    write(100, 'b');
    expect(sb.metaAt(at(150))).toEqual({ start: at(100), end: at(200), meta: 'b' });
    expect(sb.metaAt(at(0))).toEqual({ start: at(0), end: at(100), meta: 'a' });
    expect(sb.metaAt(at(200))).toBeUndefined();
    expect(sb.metaAt(at(-1))).toBeUndefined();
  });

  test('setMeta splits the ranges it cuts', () => {
    const { sb, write, at, metas } = setup();
    write(300);
    sb.setMeta(at(100), at(150), 'm1');
    expect(metas()).toEqual([
      [0, 100, undefined],
      [100, 150, 'm1'],
      [150, 300, undefined],
    ]);
    sb.setMeta(at(140), at(200), 'm2');
    expect(metas()).toEqual([
      [0, 100, undefined],
      [100, 140, 'm1'],
      [140, 200, 'm2'],
      [200, 300, undefined],
    ]);
    // Across several ranges, replacing them.
    sb.setMeta(at(50), at(250), 'm3');
    expect(metas()).toEqual([
      [0, 50, undefined],
      [50, 250, 'm3'],
      [250, 300, undefined],
    ]);
    expect(sb.read(at(0), 1000)).toHaveLength(50);
    expect(sb.read(at(60), 1000)).toHaveLength(190);
  });

  test('setMeta coalesces with identical neighbours and clips to the buffer', () => {
    const { sb, write, at, metas } = setup();
    write(100, 'a');
    write(100, 'b');
    write(100, 'a');
    sb.setMeta(at(100), at(200), 'a');
    expect(metas()).toEqual([[0, 300, 'a']]);
    sb.setMeta(at(-50), at(50), 'x');
    sb.setMeta(at(250), at(1000), 'y');
    expect(metas()).toEqual([
      [0, 50, 'x'],
      [50, 250, 'a'],
      [250, 300, 'y'],
    ]);
    sb.setMeta(at(400), at(500), 'z'); // outside: nothing
    sb.setMeta(at(60), at(60), 'z'); // empty: nothing
    expect(metas()).toHaveLength(3);
    sb.setMeta(at(0), at(300), undefined);
    expect(metas()).toEqual([[0, 300, undefined]]);
  });

  test('ack trims metadata ranges', () => {
    const { sb, write, at, metas } = setup();
    write(100, 'a');
    write(100, 'b');
    sb.ack(at(150));
    expect(metas()).toEqual([[150, 200, 'b']]);
    expect(sb.read(at(150), 1000)).toHaveLength(50);
    sb.ack(at(200));
    expect(metas()).toEqual([]);
    write(10, 'b');
    expect(metas()).toEqual([[200, 210, 'b']]);
  });

  test('the segmentLimit hook and the limit argument cap a segment', () => {
    const { sb, write, at } = setup();
    write(1000);
    const asked: [number, number][] = [];
    sb.segmentLimit = (seq, len) => {
      asked.push([seq, len]);
      return 300;
    };
    expect(sb.read(at(0), 500)).toEqual(stream(0, 300));
    expect(asked).toEqual([[at(0), 500]]);
    expect(sb.read(at(0), 500, () => 100)).toEqual(stream(0, 100));
    expect(sb.read(at(0), 200, () => 10_000)).toHaveLength(200);
    sb.segmentLimit = () => 0;
    expect(sb.read(at(0), 500)).toHaveLength(0);
    sb.segmentLimit = undefined;
    expect(sb.read(at(0), 500, (_s, len) => len - 1)).toHaveLength(499);
  });
});

describe('SendBuffer: sequence-space wrap-around', () => {
  test('write, read, metadata and ack across 2^32', () => {
    const origin = 0xffffff00;
    const { sb, write, at, metas } = setup(10_000, 100, origin);
    write(200, 'a');
    write(200, 'b');
    expect(sb.endSeq).toBe(0x90);
    expect(sb.read(at(250), 1000)).toEqual(stream(250, 150));
    expect(sb.read(0x10, 1000)).toEqual(stream(0x110, 400 - 0x110));
    expect(metas()).toEqual([
      [0, 200, 'a'],
      [200, 400, 'b'],
    ]);
    sb.setMeta(0xfffffff0, 0x10, 'w');
    expect(sb.read(0xfffffff0, 1000)).toEqual(stream(0xf0, 0x20));
    expect(sb.ack(0x20)).toBe(0x120);
    expect(sb.startSeq).toBe(0x20);
    // Offset 0x120 lies in the second part of 'b', split by 'w': [0x110, 400).
    expect(sb.read(0x20, 1000)).toEqual(stream(0x120, 400 - 0x120));
  });
});

describe('SendBuffer: property', () => {
  test.each([1, 2, 3, 4, 5])('random writes, metadata, reads and acks (seed %i)', (seed) => {
    const rand = new Random(seed);
    const origin = seed % 2 ? 0xffffffff - rand.int(50_000) : rand.u32();
    const capacity = 1000 + rand.int(20_000);
    const sb = new SendBuffer<number>({ capacity, blockSize: 64 + rand.int(4000) });
    sb.start(origin);
    const all = rand.fill(new Uint8Array(400_000));
    // Model: meta of each stream offset.
    const metaOf: (number | undefined)[] = [];
    let una = 0;
    let end = 0;
    for (let step = 0; step < 2000 && end < all.length - 5000; step++) {
      const action = rand.int(10);
      if (action < 3) {
        const len = rand.int(3000);
        const meta = rand.chance(0.5) ? undefined : rand.int(4);
        const n = sb.write(all.subarray(end, end + len), meta);
        expect(n).toBe(Math.min(len, capacity - (end - una)));
        for (let k = 0; k < n; k++) metaOf[end + k] = meta;
        end += n;
      } else if (action < 4 && end > una) {
        const s = una + rand.int(end - una);
        const e = s + 1 + rand.int(end - s);
        const meta = rand.chance(0.3) ? undefined : rand.int(4);
        sb.setMeta(seqAdd(origin, s), seqAdd(origin, e), meta);
        for (let k = s; k < e; k++) metaOf[k] = meta;
      } else if (action < 8 && end > una) {
        const s = una + rand.int(end - una);
        const max = 1 + rand.int(3000);
        const got = sb.read(seqAdd(origin, s), max);
        // As long as possible without crossing a metadata change.
        let run = 0;
        while (run < max && s + run < end && metaOf[s + run] === metaOf[s]) run++;
        expect(got.length).toBe(run);
        expect(Buffer.compare(got, all.subarray(s, s + run))).toBe(0);
        const m = sb.metaAt(seqAdd(origin, s))!;
        expect(m.meta).toBe(metaOf[s]);
      } else if (end > una) {
        const upTo = una + rand.int(end - una + 1);
        expect(sb.ack(seqAdd(origin, upTo))).toBe(upTo - una);
        una = upTo;
      }
      expect(sb.length).toBe(end - una);
      expect(sb.startSeq).toBe(seqAdd(origin, una));
      // Ranges partition the buffer, and neighbours differ.
      const ranges = sb.metaRanges();
      let at = seqAdd(origin, una);
      for (let k = 0; k < ranges.length; k++) {
        if (ranges[k]!.start !== at) throw new Error(`range ${k} starts at ${ranges[k]!.start}, expected ${at}`);
        if (k > 0 && ranges[k]!.meta === ranges[k - 1]!.meta) throw new Error(`ranges ${k - 1} and ${k} not coalesced`);
        at = ranges[k]!.end;
      }
      expect(at).toBe(seqAdd(origin, end));
    }
  });
});
