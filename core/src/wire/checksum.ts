/**
 * The Internet checksum (RFC 1071): the ones'-complement of the ones'-complement sum
 * of 16-bit big-endian words, with incremental update per RFC 1624.
 */

// A module-level copy: under jest's vm sandbox a global lookup costs ~170 ns.
const { floor } = Math;

/**
 * Adds `len` bytes of `buf` from `offset` to a running 32-bit partial sum (not yet
 * folded). An odd trailing byte is padded with zero, as RFC 1071 requires; so only
 * the last chunk of a multi-part sum may have odd length.
 */
export function sumBytes(buf: Uint8Array, offset = 0, len = buf.length - offset, initial = 0): number {
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
