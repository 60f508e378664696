/**
 * The Internet checksum (RFC 1071): the ones'-complement of the ones'-complement sum
 * of 16-bit big-endian words, with incremental update per RFC 1624.
 */

// A module-level copy: under jest's vm sandbox a global lookup costs ~170 ns.
const { floor } = Math;

/** Below this many bytes the word-view setup costs more than it saves. */
const WIDE_MIN_LEN = 128;
/** True on little-endian hosts, where a Uint32Array reads bytes in reverse of network order. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Adds `len` bytes of `buf` from `offset` to a running partial sum (not yet folded).
 * An odd trailing byte is padded with zero, as RFC 1071 requires; so only the last
 * chunk of a multi-part sum may have odd length.
 */
export function sumBytes(buf: Uint8Array, offset = 0, len = buf.length - offset, initial = 0): number {
  const start = buf.byteOffset + offset;
  // The 32-bit path needs an even start (so words pair the same bytes) and a 4-aligned view.
  if (len >= WIDE_MIN_LEN && (start & 1) === 0) {
    const lead = start & 2; // 0 or 2 bytes to reach 4-byte alignment
    const words = (len - lead) >>> 2;
    const sum = initial + sumBytesNarrow(buf, offset, lead) + sumWords(buf.buffer as ArrayBuffer, start + lead, words);
    const done = lead + words * 4;
    return sumBytesNarrow(buf, offset + done, len - done, sum);
  }
  return sumBytesNarrow(buf, offset, len, initial);
}

/**
 * RFC 1071 §2(B)–(C): the ones'-complement sum is independent of byte order and can be
 * taken in wider words. Sums 32-bit native words (each is two 16-bit words; a double
 * holds 2^21 of them without loss), folds, and swaps back to network order on a
 * little-endian host.
 */
function sumWords(buffer: ArrayBuffer, byteOffset: number, count: number): number {
  if (count === 0) return 0;
  const words = new Uint32Array(buffer, byteOffset, count);
  let sum = 0;
  let i = 0;
  const end4 = count - (count & 3);
  while (i < end4) {
    sum += words[i]! + words[i + 1]! + words[i + 2]! + words[i + 3]!;
    i += 4;
  }
  while (i < count) sum += words[i++]!;
  const folded = fold(sum);
  return LITTLE_ENDIAN ? ((folded & 0xff) << 8) | (folded >>> 8) : folded;
}

/** Byte-at-a-time summing in network order: any alignment, any length. */
function sumBytesNarrow(buf: Uint8Array, offset: number, len: number, initial = 0): number {
  let sum = initial;
  let i = offset;
  const end = offset + len;
  // Eight bytes a turn: the partial sum stays far below 2^53 for any packet size,
  // and folding is deferred to the end.
  const end8 = end - ((end - i) & 7);
  while (i < end8) {
    sum +=
      ((buf[i]! << 8) | buf[i + 1]!) +
      ((buf[i + 2]! << 8) | buf[i + 3]!) +
      ((buf[i + 4]! << 8) | buf[i + 5]!) +
      ((buf[i + 6]! << 8) | buf[i + 7]!);
    i += 8;
  }
  while (i + 1 < end) {
    sum += (buf[i]! << 8) | buf[i + 1]!;
    i += 2;
  }
  if (i < end) sum += buf[i]! << 8;
  return sum;
}

/** Folds a partial sum to 16 bits (end-around carry). */
export function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + floor(sum / 0x10000);
  return sum;
}

/** The checksum to store in a header: the complement of the folded sum. */
export function finish(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/** The Internet checksum of a byte range. */
export function internetChecksum(buf: Uint8Array, offset = 0, len = buf.length - offset): number {
  return finish(sumBytes(buf, offset, len));
}

/**
 * RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered data
 * changes from `oldWord` to `newWord`: HC' = ~(~HC + ~m + m').
 */
export function updateChecksum16(checksum: number, oldWord: number, newWord: number): number {
  const sum = (~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  return ~fold(sum) & 0xffff;
}

/** RFC 1624 for a 32-bit field (an IPv4 address, a sequence number): two words. */
export function updateChecksum32(checksum: number, oldValue: number, newValue: number): number {
  const c = updateChecksum16(checksum, (oldValue >>> 16) & 0xffff, (newValue >>> 16) & 0xffff);
  return updateChecksum16(c, oldValue & 0xffff, newValue & 0xffff);
}

/**
 * The partial sum of the IPv4 pseudo-header (RFC 9293 §3.1, RFC 768):
 * source, destination, zero, protocol, upper-layer length.
 */
export function pseudoHeaderSumV4(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  return sumBytes(src, 0, 4) + sumBytes(dst, 0, 4) + protocol + length;
}

/**
 * The partial sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination,
 * 32-bit upper-layer length, 24 zero bits, next header.
 */
export function pseudoHeaderSumV6(src: Uint8Array, dst: Uint8Array, nextHeader: number, length: number): number {
  return sumBytes(src, 0, 16) + sumBytes(dst, 0, 16) + floor(length / 0x10000) + (length & 0xffff) + nextHeader;
}
