import { Random } from '../util/random';
import {
  finish,
  fold,
  internetChecksum,
  pseudoHeaderSumV4,
  pseudoHeaderSumV6,
  sumBytes,
  updateChecksum16,
  updateChecksum32,
} from './checksum';

/** RFC 1071 §4.1, word by word with the carry folded at once: an oracle independent of sumBytes. */
function naiveSum(bytes: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += (bytes[i]! << 8) | (i + 1 < bytes.length ? bytes[i + 1]! : 0);
    if (sum > 0xffff) sum = (sum & 0xffff) + 1;
  }
  return sum;
}

function hex(text: string): Uint8Array {
  return Uint8Array.from(text.match(/[0-9a-f]{2}/gi) ?? [], (pair) => Number.parseInt(pair, 16));
}

describe('RFC 1071 Internet checksum', () => {
  test('the example of RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2', () => {
    const bytes = hex('00 01 f2 03 f4 f5 f6 f7');
    expect(fold(sumBytes(bytes))).toBe(0xddf2);
    expect(naiveSum(bytes)).toBe(0xddf2);
    expect(internetChecksum(bytes)).toBe(0x220d);
    expect(finish(0xddf2)).toBe(0x220d);
  });

  test('an odd trailing byte is padded with zero on the right', () => {
    expect(sumBytes(hex('01'))).toBe(0x0100);
    expect(fold(sumBytes(hex('00 01 f2 03 f4 f5 f6 f7 ab')))).toBe(fold(0xddf2 + 0xab00));
  });

  test('sums of every length 0..200 at every alignment match the naive loop', () => {
    const random = new Random('checksum-lengths');
    const buf = random.fill(new Uint8Array(210));
    for (let offset = 0; offset < 8; offset++) {
      for (let len = 0; len <= 200; len++) {
        expect(fold(sumBytes(buf, offset, len))).toBe(naiveSum(buf.subarray(offset, offset + len)));
      }
    }
  });

  test('large buffers and views into larger buffers (wide 32-bit path) match the naive loop', () => {
    const random = new Random('checksum-wide');
    const backing = random.fill(new Uint8Array(70_000));
    for (let k = 0; k < 300; k++) {
      const viewStart = random.int(64);
      const view = backing.subarray(viewStart, viewStart + 66_000);
      const offset = random.int(100);
      const len = k < 20 ? 65_536 - k : random.int(9000);
      expect(fold(sumBytes(view, offset, len))).toBe(naiveSum(view.subarray(offset, offset + len)));
    }
    const allOnes = new Uint8Array(65_536).fill(0xff);
    expect(fold(sumBytes(allOnes, 2))).toBe(0xffff);
  });

  test('a sum split into even-length parts equals the whole', () => {
    const buf = new Random('checksum-parts').fill(new Uint8Array(101));
    const parts = sumBytes(buf, 64, 37, sumBytes(buf, 20, 44, sumBytes(buf, 0, 20)));
    expect(fold(parts)).toBe(fold(sumBytes(buf)));
  });

  test('a buffer with its checksum inserted sums to all ones', () => {
    const buf = new Random('checksum-verify').fill(new Uint8Array(40));
    buf[10] = 0;
    buf[11] = 0;
    const checksum = internetChecksum(buf);
    buf[10] = checksum >> 8;
    buf[11] = checksum & 0xff;
    expect(fold(sumBytes(buf))).toBe(0xffff);
    expect(internetChecksum(buf)).toBe(0);
  });

  test('all-ones words do not overflow the fold (64 KiB of 0xff)', () => {
    const buf = new Uint8Array(65536).fill(0xff);
    expect(fold(sumBytes(buf))).toBe(0xffff);
    expect(naiveSum(buf)).toBe(0xffff);
  });
});

describe('RFC 1624 incremental update', () => {
  /**
   * Eqn. 3 and a full recompute agree exactly, except when the new data is all zero:
   * then the full checksum is 0xffff and eqn. 3 gives its other zero, 0x0000 (§3).
   */
  function sameChecksum(incremental: number, data: Uint8Array): boolean {
    if (data.every((byte) => byte === 0)) return incremental === 0x0000 || incremental === 0xffff;
    return incremental === internetChecksum(data);
  }

  function randomWord(random: Random): number {
    // Edge words often: 0, 0xffff and their neighbours are where ones' complement bites.
    const edges = [0x0000, 0xffff, 0x0001, 0xfffe, 0x8000];
    return random.chance(0.3) ? edges[random.int(edges.length)]! : random.u32() & 0xffff;
  }

  test('updateChecksum16 equals a full recompute: 10,000 random word changes', () => {
    const random = new Random('rfc1624-16');
    const failures: string[] = [];
    for (let n = 0; n < 10_000; n++) {
      const data = new Uint8Array(2 * (1 + random.int(32)));
      if (!random.chance(0.1)) random.fill(data);
      const before = internetChecksum(data);
      const at = 2 * random.int(data.length / 2);
      const oldWord = (data[at]! << 8) | data[at + 1]!;
      const newWord = randomWord(random);
      data[at] = newWord >> 8;
      data[at + 1] = newWord & 0xff;
      const updated = updateChecksum16(before, oldWord, newWord);
      if (!sameChecksum(updated, data)) failures.push(`case ${n}: ${updated} for ${Buffer.from(data).toString('hex')}`);
    }
    expect(failures).toEqual([]);
  });

  test('updateChecksum32 equals a full recompute: 10,000 random 32-bit field changes', () => {
    const random = new Random('rfc1624-32');
    const failures: string[] = [];
    const view = (data: Uint8Array) => new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let n = 0; n < 10_000; n++) {
      const data = random.fill(new Uint8Array(4 * (1 + random.int(16))));
      const before = internetChecksum(data);
      const at = 4 * random.int(data.length / 4);
      const oldValue = view(data).getUint32(at);
      const newValue = random.chance(0.1) ? 0 : random.u32();
      view(data).setUint32(at, newValue);
      const updated = updateChecksum32(before, oldValue, newValue);
      if (!sameChecksum(updated, data)) failures.push(`case ${n}: ${updated} for ${Buffer.from(data).toString('hex')}`);
    }
    expect(failures).toEqual([]);
  });
});

describe('pseudo-header sums', () => {
  test('IPv4 (RFC 768): src, dst, zero, protocol, length', () => {
    const src = hex('0a 00 00 02');
    const dst = hex('0a 00 00 01');
    const pseudo = hex('0a 00 00 02 0a 00 00 01 00 11 00 25');
    expect(fold(pseudoHeaderSumV4(src, dst, 17, 37))).toBe(naiveSum(pseudo));
  });

  test('IPv4: the UDP checksum of a known DNS query', () => {
    // 10.0.0.2:53124 → 10.0.0.1:53, a query for example.com, checksum 0xa0ac.
    const udp = hex(
      'cf 84 00 35 00 25 a0 ac ab cd 01 00 00 01 00 00 00 00 00 00 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00 01',
    );
    const pseudo = pseudoHeaderSumV4(hex('0a000002'), hex('0a000001'), 17, udp.length);
    expect(fold(sumBytes(udp, 0, udp.length, pseudo))).toBe(0xffff);
  });

  test('IPv6 (RFC 8200 §8.1): src, dst, 32-bit length, zeros, next header', () => {
    const random = new Random('pseudo-v6');
    for (const length of [0, 8, 1280, 0xffff, 0x10000, 0x12345678]) {
      const src = random.fill(new Uint8Array(16));
      const dst = random.fill(new Uint8Array(16));
      const pseudo = new Uint8Array(40);
      pseudo.set(src, 0);
      pseudo.set(dst, 16);
      new DataView(pseudo.buffer).setUint32(32, length);
      pseudo[39] = 58;
      expect(fold(pseudoHeaderSumV6(src, dst, 58, length))).toBe(naiveSum(pseudo));
    }
  });
});
