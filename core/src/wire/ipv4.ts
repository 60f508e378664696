/**
 * The IPv4 header (RFC 791 §3.1) as a zero-copy view (Ipv4View) and a plain value
 * (Ipv4Repr), after smoltcp's wire/ipv4.rs.
 *
 *    bytes  0    version (high nibble) | IHL, header length in 32-bit words
 *           1    DSCP (6 bits, RFC 2474) | ECN (2 bits, RFC 3168)
 *           2–3  total length           4–5  identification
 *           6–7  flags (reserved, DF, MF) | fragment offset in 8-byte units
 *           8    TTL      9  protocol   10–11 header checksum
 *          12–15 source address        16–19 destination address
 *          20–   options (IHL × 4 − 20 bytes), then the payload up to total length
 */

import { fold, sumBytes } from './checksum';
import { ParseError } from './parse-error';

export const IPV4_HEADER_LEN = 20;
export const IPV4_MAX_OPTIONS_LEN = 40;
export const IPV4_MAX_HEADER_LEN = IPV4_HEADER_LEN + IPV4_MAX_OPTIONS_LEN;
/** The total length field is 16 bits. */
export const IPV4_MAX_PACKET_LEN = 0xffff;

const FLAG_RESERVED = 0x8000;
const FLAG_DONT_FRAGMENT = 0x4000;
const FLAG_MORE_FRAGMENTS = 0x2000;
const FRAGMENT_OFFSET_MASK = 0x1fff;
const CHECKSUM_OFFSET = 10;

export interface Ipv4ParseOptions {
  /** Verify the header checksum (default true); false when a NIC already did. */
  verifyChecksum?: boolean;
  /**
   * Accept a total length beyond the buffer (default false); the payload is then what
   * the buffer holds. For the packet quoted in an ICMP error, which carries only the
   * header and the first bytes of the payload (RFC 792, RFC 1812 §4.3.2.3).
   */
  allowTruncated?: boolean;
}

/**
 * A validated IPv4 packet: `parse` checks version, header length, total length and
 * (by default) the header checksum once; after that no accessor can fail. `bytes`
 * ends at the total length: link-layer padding after it is not part of the packet.
 */
export class Ipv4View {
  private constructor(
    /** The packet: header, options and payload, up to the total length. */
    readonly bytes: Uint8Array,
  ) {}

  static parse(bytes: Uint8Array, options: Ipv4ParseOptions = {}): Ipv4View {
    if (bytes.length < IPV4_HEADER_LEN) throw new ParseError('ipv4', 'truncated', `${bytes.length} bytes`);
    const version = bytes[0]! >> 4;
    if (version !== 4) throw new ParseError('ipv4', 'bad-version', `version ${version}`);
    const headerLen = (bytes[0]! & 0x0f) * 4;
    // RFC 791 §3.1: "the minimum value for a correct header is 5" (words).
    if (headerLen < IPV4_HEADER_LEN) throw new ParseError('ipv4', 'bad-header-length', `IHL ${headerLen / 4}`);
    if (headerLen > bytes.length) {
      throw new ParseError('ipv4', 'truncated', `header of ${headerLen} bytes in ${bytes.length}`);
    }
    const totalLen = (bytes[2]! << 8) | bytes[3]!;
    if (totalLen < headerLen) {
      throw new ParseError('ipv4', 'bad-length', `total length ${totalLen} < header length ${headerLen}`);
    }
    if (totalLen > bytes.length && options.allowTruncated !== true) {
      throw new ParseError('ipv4', 'truncated', `total length ${totalLen} in ${bytes.length} bytes`);
    }
    // RFC 1071: the ones'-complement sum over a correct header, checksum included, is all ones.
    if (options.verifyChecksum !== false && fold(sumBytes(bytes, 0, headerLen)) !== 0xffff) {
      throw new ParseError('ipv4', 'bad-checksum');
    }
    return new Ipv4View(totalLen < bytes.length ? bytes.subarray(0, totalLen) : bytes);
  }

  get version(): number {
    return this.bytes[0]! >> 4;
  }

  /** Header length in bytes (IHL × 4), 20 to 60. */
  get headerLen(): number {
    return (this.bytes[0]! & 0x0f) * 4;
  }

  /** Differentiated Services Code Point (RFC 2474 §3). */
  get dscp(): number {
    return this.bytes[1]! >> 2;
  }

  /** Explicit Congestion Notification codepoint (RFC 3168 §5). */
  get ecn(): number {
    return this.bytes[1]! & 0x03;
  }

  /** The total length field: header plus payload. */
  get totalLen(): number {
    return (this.bytes[2]! << 8) | this.bytes[3]!;
  }

  /** True when parsed with `allowTruncated` and the buffer ends before the total length. */
  get isTruncated(): boolean {
    return this.bytes.length < this.totalLen;
  }

  get identification(): number {
    return (this.bytes[4]! << 8) | this.bytes[5]!;
  }

  private get flagsAndOffset(): number {
    return (this.bytes[6]! << 8) | this.bytes[7]!;
  }

  /** The first flag bit, which RFC 791 reserves ("must be zero"); ignored on receipt. */
  get reservedFlag(): boolean {
    return (this.flagsAndOffset & FLAG_RESERVED) !== 0;
  }

  /** DF: do not fragment (RFC 791 §3.1; set for path MTU discovery, RFC 1191). */
  get dontFragment(): boolean {
    return (this.flagsAndOffset & FLAG_DONT_FRAGMENT) !== 0;
  }

  /** MF: more fragments follow. */
  get moreFragments(): boolean {
    return (this.flagsAndOffset & FLAG_MORE_FRAGMENTS) !== 0;
  }

  /** Where this fragment's payload sits in the original payload, in bytes. */
  get fragmentOffset(): number {
    return (this.flagsAndOffset & FRAGMENT_OFFSET_MASK) * 8;
  }

  /** RFC 791 §2.3: a fragment has MF set or a non-zero offset (the last one has only the offset). */
  get isFragment(): boolean {
    return (this.flagsAndOffset & (FLAG_MORE_FRAGMENTS | FRAGMENT_OFFSET_MASK)) !== 0;
  }

  get ttl(): number {
    return this.bytes[8]!;
  }

  /** The payload's protocol (IpProtocol). */
  get protocol(): number {
    return this.bytes[9]!;
  }

  get checksum(): number {
    return (this.bytes[CHECKSUM_OFFSET]! << 8) | this.bytes[CHECKSUM_OFFSET + 1]!;
  }

  /** Whether the header checksum is correct (parse checks it unless told not to). */
  get checksumValid(): boolean {
    return fold(sumBytes(this.bytes, 0, this.headerLen)) === 0xffff;
  }

  /** The source address (aliases the packet). */
  get src(): Uint8Array {
    return this.bytes.subarray(12, 16);
  }

  /** The destination address (aliases the packet). */
  get dst(): Uint8Array {
    return this.bytes.subarray(16, 20);
  }

  /** The raw option bytes, never interpreted here (RFC 791 §3.1 "Options"). */
  get options(): Uint8Array {
    return this.bytes.subarray(IPV4_HEADER_LEN, this.headerLen);
  }

  /** The bytes between the header and the total length (or the buffer's end, if truncated). */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.headerLen);
  }
}

/**
 * An IPv4 header as plain values: everything needed to emit it byte for byte again,
 * except the reserved flag, which is always sent as zero. `payloadLen` counts the bytes
 * after the header; the payload itself travels separately (it follows the header the
 * caller emits). Addresses are copies; `options` aliases the parsed packet.
 */
export interface Ipv4Repr {
  src: Uint8Array;
  dst: Uint8Array;
  /** IpProtocol of the payload. */
  protocol: number;
  payloadLen: number;
  ttl: number;
  dscp: number;
  ecn: number;
  identification: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** In bytes, a multiple of 8. */
  fragmentOffset: number;
  /** Raw options, a multiple of 4 bytes and at most 40 (pad with EOL/NOP zeros yourself). */
  options: Uint8Array;
}

export const Ipv4Repr = {
  parse(view: Ipv4View): Ipv4Repr {
    return {
      src: view.src.slice(),
      dst: view.dst.slice(),
      protocol: view.protocol,
      payloadLen: view.totalLen - view.headerLen,
      ttl: view.ttl,
      dscp: view.dscp,
      ecn: view.ecn,
      identification: view.identification,
      dontFragment: view.dontFragment,
      moreFragments: view.moreFragments,
      fragmentOffset: view.fragmentOffset,
      options: view.options,
    };
  },

  /** The header's length in bytes; the payload (`payloadLen` bytes) follows it. */
  bufferLen(repr: Ipv4Repr): number {
    return IPV4_HEADER_LEN + repr.options.length;
  },

  /**
   * Writes the header at `offset` with its checksum and returns its length. The payload
   * is the caller's to place after it. Throws RangeError for a repr no header can hold.
   */
  emit(repr: Ipv4Repr, buf: Uint8Array, offset = 0): number {
    const headerLen = Ipv4Repr.bufferLen(repr);
    checkRepr(repr, headerLen);
    if (offset < 0 || offset + headerLen > buf.length) {
      throw new RangeError(`IPv4 header of ${headerLen} bytes does not fit at offset ${offset} in ${buf.length}`);
    }
    const totalLen = headerLen + repr.payloadLen;
    const flagsAndOffset =
      (repr.dontFragment ? FLAG_DONT_FRAGMENT : 0) |
      (repr.moreFragments ? FLAG_MORE_FRAGMENTS : 0) |
      (repr.fragmentOffset / 8);
    buf[offset] = 0x40 | (headerLen / 4);
    buf[offset + 1] = (repr.dscp << 2) | repr.ecn;
    buf[offset + 2] = totalLen >> 8;
    buf[offset + 3] = totalLen & 0xff;
    buf[offset + 4] = repr.identification >> 8;
    buf[offset + 5] = repr.identification & 0xff;
    buf[offset + 6] = flagsAndOffset >> 8;
    buf[offset + 7] = flagsAndOffset & 0xff;
    buf[offset + 8] = repr.ttl;
    buf[offset + 9] = repr.protocol;
    buf[offset + CHECKSUM_OFFSET] = 0;
    buf[offset + CHECKSUM_OFFSET + 1] = 0;
    buf.set(repr.src, offset + 12);
    buf.set(repr.dst, offset + 16);
    buf.set(repr.options, offset + IPV4_HEADER_LEN);
    const checksum = ~fold(sumBytes(buf, offset, headerLen)) & 0xffff;
    buf[offset + CHECKSUM_OFFSET] = checksum >> 8;
    buf[offset + CHECKSUM_OFFSET + 1] = checksum & 0xff;
    return headerLen;
  },
};

function checkRepr(repr: Ipv4Repr, headerLen: number): void {
  if (repr.src.length !== 4 || repr.dst.length !== 4) throw new RangeError('IPv4 addresses are 4 bytes');
  if (repr.options.length % 4 !== 0 || repr.options.length > IPV4_MAX_OPTIONS_LEN) {
    throw new RangeError(`IPv4 options must be a multiple of 4 bytes, at most 40: got ${repr.options.length}`);
  }
  checkInteger('payloadLen', repr.payloadLen, IPV4_MAX_PACKET_LEN - headerLen);
  checkInteger('protocol', repr.protocol, 0xff);
  checkInteger('ttl', repr.ttl, 0xff);
  checkInteger('dscp', repr.dscp, 0x3f);
  checkInteger('ecn', repr.ecn, 0x03);
  checkInteger('identification', repr.identification, 0xffff);
  checkInteger('fragmentOffset', repr.fragmentOffset, FRAGMENT_OFFSET_MASK * 8);
  if (repr.fragmentOffset % 8 !== 0) {
    throw new RangeError(`IPv4 fragmentOffset ${repr.fragmentOffset} is not a multiple of 8`);
  }
}

/**
 * For the emitters in wire/: typed arrays silently wrap out-of-range numbers, so a bad
 * repr field is caught here as a RangeError instead of going out as a wrong packet.
 */
export function checkInteger(name: string, value: number, max: number): void {
  // `% 1` rather than Number.isInteger: also false for NaN, and no global lookup on a hot path.
  if (!(value >= 0 && value <= max && value % 1 === 0)) throw new RangeError(`${name} ${value} is not in 0..${max}`);
}
