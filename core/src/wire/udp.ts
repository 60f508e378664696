/**
 * The UDP header (RFC 768) as a zero-copy view (UdpView) and a plain value (UdpRepr).
 *
 *    bytes  0–1  source port      2–3  destination port
 *           4–5  length (header and data, at least 8)
 *           6–7  checksum (pseudo-header, header and data)
 *
 * The checksum covers an IP pseudo-header the caller owns, so the view checks only the
 * lengths and UdpRepr.parse verifies the checksum from the caller's partial sum:
 * pseudoHeaderSumV4(src, dst, IpProtocol.UDP, view.length) or pseudoHeaderSumV6(…).
 */

import { fold, sumBytes } from './checksum';
import { checkInteger } from './ipv4';
import { ParseError } from './parse-error';

export const UDP_HEADER_LEN = 8;
/** The length field is 16 bits. */
export const UDP_MAX_LEN = 0xffff;

const CHECKSUM_OFFSET = 6;

/**
 * A validated UDP datagram: `parse` checks the length field once; after that no
 * accessor can fail. `bytes` ends at the length field's end: bytes of the IP payload
 * after it are not part of the datagram.
 */
export class UdpView {
  private constructor(readonly bytes: Uint8Array) {}

  static parse(bytes: Uint8Array): UdpView {
    if (bytes.length < UDP_HEADER_LEN) throw new ParseError('udp', 'truncated', `${bytes.length} bytes`);
    const length = (bytes[4]! << 8) | bytes[5]!;
    // RFC 768: the length counts the header too, so its minimum is 8.
    if (length < UDP_HEADER_LEN) throw new ParseError('udp', 'bad-length', `length ${length}`);
    if (length > bytes.length) throw new ParseError('udp', 'truncated', `length ${length} in ${bytes.length} bytes`);
    return new UdpView(length < bytes.length ? bytes.subarray(0, length) : bytes);
  }

  get srcPort(): number {
    return (this.bytes[0]! << 8) | this.bytes[1]!;
  }

  get dstPort(): number {
    return (this.bytes[2]! << 8) | this.bytes[3]!;
  }

  /** The length field: header plus data; also the pseudo-header's length. */
  get length(): number {
    return (this.bytes[4]! << 8) | this.bytes[5]!;
  }

  get checksum(): number {
    return (this.bytes[CHECKSUM_OFFSET]! << 8) | this.bytes[CHECKSUM_OFFSET + 1]!;
  }

  /** RFC 768: a zero checksum field means the sender computed none (IPv4 only). */
  get hasChecksum(): boolean {
    return this.checksum !== 0;
  }

  /** Whether the datagram sums correctly with the pseudo-header partial sum `pseudoSum`. */
  checksumValid(pseudoSum: number): boolean {
    return fold(sumBytes(this.bytes, 0, this.bytes.length, pseudoSum)) === 0xffff;
  }

  get payload(): Uint8Array {
    return this.bytes.subarray(UDP_HEADER_LEN);
  }
}

export interface UdpParseOptions {
  /**
   * Whether a zero checksum field means "no checksum" and is accepted unverified
   * (RFC 768, IPv4: pass true) or is an error (RFC 8200 §8.1, IPv6: the default).
   */
  allowZeroChecksum?: boolean;
  /** Verify a non-zero checksum (default true); false when a NIC already did. */
  verifyChecksum?: boolean;
}

/** A UDP datagram as plain values; `payload` aliases the parsed packet. */
export interface UdpRepr {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

export const UdpRepr = {
  /**
   * `pseudoSum`: the IP pseudo-header partial sum, with the UDP length as its length.
   * Throws ParseError 'bad-checksum', or 'zero-checksum' if a zero checksum is not allowed.
   */
  parse(view: UdpView, pseudoSum: number, options: UdpParseOptions = {}): UdpRepr {
    if (!view.hasChecksum) {
      if (options.allowZeroChecksum !== true) throw new ParseError('udp', 'zero-checksum');
    } else if (options.verifyChecksum !== false && !view.checksumValid(pseudoSum)) {
      throw new ParseError('udp', 'bad-checksum');
    }
    return { srcPort: view.srcPort, dstPort: view.dstPort, payload: view.payload };
  },

  /** The datagram's length, header included: the length field and the pseudo-header's length. */
  bufferLen(repr: UdpRepr): number {
    return UDP_HEADER_LEN + repr.payload.length;
  },

  /**
   * Writes the datagram (header and payload) at `offset` and returns its length.
   * `pseudoSum` is the IP pseudo-header partial sum for length `bufferLen(repr)`.
   * The payload may already sit at `offset + 8` in `buf` (then it is left in place).
   */
  emit(repr: UdpRepr, buf: Uint8Array, offset: number, pseudoSum: number): number {
    const length = UdpRepr.bufferLen(repr);
    checkInteger('srcPort', repr.srcPort, 0xffff);
    checkInteger('dstPort', repr.dstPort, 0xffff);
    checkInteger('length', length, UDP_MAX_LEN);
    if (offset < 0 || offset + length > buf.length) {
      throw new RangeError(`UDP datagram of ${length} bytes does not fit at offset ${offset} in ${buf.length}`);
    }
    buf[offset] = repr.srcPort >> 8;
    buf[offset + 1] = repr.srcPort & 0xff;
    buf[offset + 2] = repr.dstPort >> 8;
    buf[offset + 3] = repr.dstPort & 0xff;
    buf[offset + 4] = length >> 8;
    buf[offset + 5] = length & 0xff;
    buf[offset + CHECKSUM_OFFSET] = 0;
    buf[offset + CHECKSUM_OFFSET + 1] = 0;
    buf.set(repr.payload, offset + UDP_HEADER_LEN);
    // RFC 768: a computed checksum of zero is sent as all ones, since zero means "none".
    const checksum = ~fold(sumBytes(buf, offset, length, pseudoSum)) & 0xffff || 0xffff;
    buf[offset + CHECKSUM_OFFSET] = checksum >> 8;
    buf[offset + CHECKSUM_OFFSET + 1] = checksum & 0xff;
    return length;
  },
};
