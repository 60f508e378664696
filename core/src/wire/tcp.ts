/**
 * The TCP header (RFC 9293 §3.1) as a zero-copy view (TcpHeaderView) and a plain value
 * (TcpRepr), after smoltcp's wire/tcp.rs.
 *
 *    bytes  0–1  source port            2–3  destination port
 *           4–7  sequence number
 *          8–11  acknowledgment number
 *            12  data offset (high nibble) | reserved (3 bits) | AE (low bit)
 *            13  CWR ECE URG ACK PSH RST SYN FIN
 *         14–15  window                16–17  checksum          18–19  urgent pointer
 *         20–    options (0–40 bytes, padded to a multiple of 4), then the payload
 *
 * Sequence and acknowledgment numbers are plain unsigned 32-bit numbers here; the
 * wrap-around arithmetic lives in the sequence-number module.
 */

import { fold, sumBytes } from './checksum';
import { ParseError } from './parse-error';
import { encodeOptions, MAX_OPTIONS_LEN, optionsLength, parseOptions, type TcpOption } from './tcp-options';

/**
 * Control bits: the low 8 are RFC 9293 §3.1's (CWR and ECE from RFC 3168); the next 4
 * are the low nibble of byte 12, kept so that a parsed header re-emits byte for byte.
 */
export const TcpFlags = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
  /** The low bit of byte 12: NS in RFC 3540 (now historic), AE in AccECN. */
  AE: 0x100,
  /** The three bits of byte 12 between data offset and AE: reserved, sent as zero, ignored on receipt (RFC 9293 §3.1). */
  RESERVED: 0xe00,
  /** Every bit a flags value can hold. */
  ALL: 0xfff,
} as const;

/** The fixed part of the header: data offset 5. */
export const TCP_HEADER_LEN = 20;

/** Data offset 15 words: the fixed header plus 40 option bytes. */
export const TCP_MAX_HEADER_LEN = TCP_HEADER_LEN + MAX_OPTIONS_LEN;

const CHECKSUM_OFFSET = 16;

/**
 * A validated TCP segment: `parse` checks the fixed header and the data offset once;
 * after that no accessor can fail. Options are not decoded here (parseOptions(
 * view.optionBytes) or TcpRepr.parse do it), and the checksum is verified only on
 * request, since the caller owns the pseudo-header.
 *
 * `bytes` must be exactly the segment (the IP payload, link padding trimmed): the
 * payload is everything after the header.
 */
export class TcpHeaderView {
  /** Header length in bytes (data offset × 4), 20 to 60. */
  readonly headerLen: number;

  private constructor(readonly bytes: Uint8Array) {
    this.headerLen = (bytes[12]! >>> 4) << 2;
  }

  /** Throws ParseError('tcp', 'truncated' | 'bad-data-offset') for bytes that cannot be a TCP segment. */
  static parse(bytes: Uint8Array): TcpHeaderView {
    if (bytes.length < TCP_HEADER_LEN) {
      throw new ParseError('tcp', 'truncated', `${bytes.length} bytes, need ${TCP_HEADER_LEN}`);
    }
    const dataOffset = bytes[12]! >>> 4;
    // RFC 9293 §3.1: the data offset counts 32-bit words of header, at least the 5 fixed ones.
    if (dataOffset < 5) throw new ParseError('tcp', 'bad-data-offset', `data offset ${dataOffset}`);
    if (dataOffset << 2 > bytes.length) {
      throw new ParseError('tcp', 'truncated', `header of ${dataOffset << 2} bytes in ${bytes.length}`);
    }
    return new TcpHeaderView(bytes);
  }

  get srcPort(): number {
    return (this.bytes[0]! << 8) | this.bytes[1]!;
  }

  get dstPort(): number {
    return (this.bytes[2]! << 8) | this.bytes[3]!;
  }

  /** Sequence number, unsigned 32-bit. */
  get seq(): number {
    const b = this.bytes;
    return ((b[4]! << 24) | (b[5]! << 16) | (b[6]! << 8) | b[7]!) >>> 0;
  }

  /** Acknowledgment number, unsigned 32-bit (meaningful only with the ACK flag: see isAck). */
  get ack(): number {
    const b = this.bytes;
    return ((b[8]! << 24) | (b[9]! << 16) | (b[10]! << 8) | b[11]!) >>> 0;
  }

  /** Data offset in 32-bit words, 5 to 15. */
  get dataOffset(): number {
    return this.bytes[12]! >>> 4;
  }

  /** All 12 bits after the data offset (TcpFlags), reserved ones included. */
  get flags(): number {
    return ((this.bytes[12]! & 0x0f) << 8) | this.bytes[13]!;
  }

  // The flag tests are named isX because `ack` is the acknowledgment number.
  get isFin(): boolean {
    return (this.bytes[13]! & TcpFlags.FIN) !== 0;
  }

  get isSyn(): boolean {
    return (this.bytes[13]! & TcpFlags.SYN) !== 0;
  }

  get isRst(): boolean {
    return (this.bytes[13]! & TcpFlags.RST) !== 0;
  }

  get isPsh(): boolean {
    return (this.bytes[13]! & TcpFlags.PSH) !== 0;
  }

  get isAck(): boolean {
    return (this.bytes[13]! & TcpFlags.ACK) !== 0;
  }

  get isUrg(): boolean {
    return (this.bytes[13]! & TcpFlags.URG) !== 0;
  }

  get isEce(): boolean {
    return (this.bytes[13]! & TcpFlags.ECE) !== 0;
  }

  get isCwr(): boolean {
    return (this.bytes[13]! & TcpFlags.CWR) !== 0;
  }

  /** The receive window as sent, before any window scaling (RFC 7323 §2.3). */
  get window(): number {
    return (this.bytes[14]! << 8) | this.bytes[15]!;
  }

  get checksum(): number {
    return (this.bytes[16]! << 8) | this.bytes[17]!;
  }

  get urgentPointer(): number {
    return (this.bytes[18]! << 8) | this.bytes[19]!;
  }

  /** The option area (0 to 40 bytes, padding included), undecoded. */
  get optionBytes(): Uint8Array {
    return this.bytes.subarray(TCP_HEADER_LEN, this.headerLen);
  }

  get payload(): Uint8Array {
    return this.bytes.subarray(this.headerLen);
  }

  /**
   * RFC 9293 §3.1: the ones'-complement sum over pseudo-header, header and payload,
   * checksum field included, is all ones. `pseudoSum` is pseudoHeaderSumV4/V6 with
   * protocol 6 and length `bytes.length`.
   */
  verifyChecksum(pseudoSum: number): boolean {
    return fold(sumBytes(this.bytes, 0, this.bytes.length, pseudoSum)) === 0xffff;
  }
}

/**
 * A TCP segment as a plain value. `flags` holds all 12 bits after the data offset
 * (TcpFlags, reserved bits included). Numbers are written modulo their field width
 * and parsed as unsigned. A parsed repr's `payload` and raw options are subarrays of
 * the packet (no copy).
 */
export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  urgentPointer: number;
  options: TcpOption[];
  payload: Uint8Array;
}

export const TcpRepr = {
  /**
   * Decodes a view. With `pseudoSum` (see verifyChecksum) the checksum is verified first:
   * ParseError('tcp', 'bad-checksum'); without it, it is not checked (e.g. offloaded).
   * Malformed options: ParseError('tcp-option', …).
   */
  parse(view: TcpHeaderView, pseudoSum?: number): TcpRepr {
    if (pseudoSum !== undefined && !view.verifyChecksum(pseudoSum)) {
      throw new ParseError('tcp', 'bad-checksum', `checksum 0x${view.checksum.toString(16).padStart(4, '0')}`);
    }
    return {
      srcPort: view.srcPort,
      dstPort: view.dstPort,
      seq: view.seq,
      ack: view.ack,
      flags: view.flags,
      window: view.window,
      urgentPointer: view.urgentPointer,
      options: parseOptions(view.optionBytes),
      payload: view.payload,
    };
  },

  /** Header bytes, options and padding included. Throws a plain Error past 40 option bytes. */
  headerLen(repr: TcpRepr): number {
    const length = optionsLength(repr.options);
    if (length > MAX_OPTIONS_LEN) throw new Error(`TCP options need ${length} bytes, more than ${MAX_OPTIONS_LEN}`);
    return TCP_HEADER_LEN + length;
  },

  /** Bytes emit() writes: header plus payload. The TCP length for the pseudo-header. */
  bufferLen(repr: TcpRepr): number {
    return TcpRepr.headerLen(repr) + repr.payload.length;
  },

  /** RFC 9293 §3.4: SEG.LEN counts the payload plus one for each of SYN and FIN. */
  segmentLen(repr: TcpRepr): number {
    return repr.payload.length + (repr.flags & TcpFlags.SYN ? 1 : 0) + (repr.flags & TcpFlags.FIN ? 1 : 0);
  },

  /**
   * Writes header, options and payload at `buf[offset]` and fills in the checksum over
   * them and `pseudoSum` (pseudoHeaderSumV4/V6 with protocol 6 and length bufferLen(repr)).
   * Returns the bytes written. The payload is not copied when it already sits where it
   * belongs in `buf`, so a segment can be built in place. Throws a plain Error when the
   * buffer is too small or the options exceed 40 bytes.
   */
  emit(repr: TcpRepr, buf: Uint8Array, offset: number, pseudoSum: number): number {
    const headerLen = TcpRepr.headerLen(repr);
    const payload = repr.payload;
    const total = headerLen + payload.length;
    if (offset < 0 || offset + total > buf.length) {
      throw new Error(`TCP segment of ${total} bytes does not fit in ${buf.length - offset} at offset ${offset}`);
    }
    buf[offset] = repr.srcPort >>> 8;
    buf[offset + 1] = repr.srcPort;
    buf[offset + 2] = repr.dstPort >>> 8;
    buf[offset + 3] = repr.dstPort;
    buf[offset + 4] = repr.seq >>> 24;
    buf[offset + 5] = repr.seq >>> 16;
    buf[offset + 6] = repr.seq >>> 8;
    buf[offset + 7] = repr.seq;
    buf[offset + 8] = repr.ack >>> 24;
    buf[offset + 9] = repr.ack >>> 16;
    buf[offset + 10] = repr.ack >>> 8;
    buf[offset + 11] = repr.ack;
    buf[offset + 12] = ((headerLen >>> 2) << 4) | ((repr.flags >>> 8) & 0x0f);
    buf[offset + 13] = repr.flags;
    buf[offset + 14] = repr.window >>> 8;
    buf[offset + 15] = repr.window;
    buf[offset + CHECKSUM_OFFSET] = 0;
    buf[offset + CHECKSUM_OFFSET + 1] = 0;
    buf[offset + 18] = repr.urgentPointer >>> 8;
    buf[offset + 19] = repr.urgentPointer;
    encodeOptions(repr.options, buf, offset + TCP_HEADER_LEN);
    const payloadAt = offset + headerLen;
    if (payload.buffer !== buf.buffer || payload.byteOffset !== buf.byteOffset + payloadAt) {
      buf.set(payload, payloadAt);
    }
    // RFC 9293 §3.1: the checksum field counts as zero while summing.
    const checksum = ~fold(sumBytes(buf, offset, total, pseudoSum)) & 0xffff;
    buf[offset + CHECKSUM_OFFSET] = checksum >>> 8;
    buf[offset + CHECKSUM_OFFSET + 1] = checksum;
    return total;
  },
};
