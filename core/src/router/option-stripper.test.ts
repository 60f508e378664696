import { Random } from '../util/random';
import { fold, sumBytes } from '../wire/checksum';
import { optionKindSet, STRIP_MALFORMED, stripTcpOptions } from './option-stripper';

/** A TCP segment with `options` (padded to 4 with EOL) and a valid checksum over a fixed pseudo-header sum. */
function segment(options: number[], payloadLen: number, rng: Random): Uint8Array {
  while (options.length % 4 !== 0) options.push(0);
  const seg = new Uint8Array(20 + options.length + payloadLen);
  rng.fill(seg.subarray(0, 12));
  seg[12] = ((20 + options.length) >> 2) << 4;
  seg[13] = 0x02;
  seg.set(options, 20);
  rng.fill(seg.subarray(20 + options.length));
  const cs = ~fold(sumBytes(seg, 0, seg.length, PSEUDO)) & 0xffff;
  seg[16] = cs >> 8;
  seg[17] = cs & 0xff;
  return seg;
}

const PSEUDO = 0x1234 + 0xabcd + 6;

function checksumOk(seg: Uint8Array): boolean {
  return fold(sumBytes(seg, 0, seg.length, PSEUDO)) === 0xffff;
}

describe('stripTcpOptions', () => {
  test('random option lists: stripped kinds become NOPs, everything else is kept, the checksum holds', () => {
    const rng = new Random('stripper');
    const kinds = optionKindSet([8, 30, 34]);
    for (let i = 0; i < 5000; i++) {
      const options: number[] = [];
      const expected: number[] = [];
      let stripped = 0;
      while (options.length < 36) {
        const r = rng.int(10);
        if (r === 0) {
          options.push(1);
          expected.push(1);
          continue;
        }
        const kind = [2, 3, 4, 8, 30, 34, 99][rng.int(7)]!;
        const len = 2 + rng.int(Math.min(10, 40 - options.length - 1));
        if (options.length + len > 40) break;
        const bytes = [kind, len, ...Array.from({ length: len - 2 }, () => rng.int(256))];
        options.push(...bytes);
        if (kinds[kind]) {
          expected.push(...Array(len).fill(1));
          stripped++;
        } else expected.push(...bytes);
      }
      const seg = segment(options, rng.int(64), rng);
      const before = seg.slice();
      expect(stripTcpOptions(seg, kinds)).toBe(stripped);
      expect(checksumOk(seg)).toBe(true);
      expect([...seg.subarray(20, 20 + expected.length)]).toEqual(expected);
      expect(
        Buffer.from(seg.subarray(20 + options.length)).equals(Buffer.from(before.subarray(20 + options.length))),
      ).toBe(true);
    }
  });

  test('bytes after EOL are padding, never options', () => {
    const rng = new Random(1);
    const seg = segment([0, 30, 2, 0], 0, rng);
    const before = seg.slice();
    expect(stripTcpOptions(seg, optionKindSet([30]))).toBe(0);
    expect(seg).toEqual(before);
  });

  test('malformed headers and lists are left alone', () => {
    const rng = new Random(2);
    const kinds = optionKindSet([30]);
    expect(stripTcpOptions(new Uint8Array(19), kinds)).toBe(STRIP_MALFORMED);
    const lowOffset = segment([], 0, rng);
    lowOffset[12] = 4 << 4;
    expect(stripTcpOptions(lowOffset, kinds)).toBe(STRIP_MALFORMED);
    const pastEnd = segment([30, 4, 0, 0], 0, rng);
    pastEnd[12] = 15 << 4;
    expect(stripTcpOptions(pastEnd, kinds)).toBe(STRIP_MALFORMED);
    // A strippable option before the bad one: still nothing is written.
    const seg = segment([30, 4, 0, 0, 2, 9, 0, 0], 0, rng);
    const before = seg.slice();
    expect(stripTcpOptions(seg, kinds)).toBe(STRIP_MALFORMED);
    expect(seg).toEqual(before);
  });

  test('kinds must be 2..255', () => {
    expect(() => optionKindSet([0])).toThrow(/EOL/);
    expect(() => optionKindSet([256])).toThrow(/not 0..255/);
  });
});
