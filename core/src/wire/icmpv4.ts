/**
 * ICMP for IPv4 (RFC 792) as a zero-copy view (Icmpv4View) and a plain value
 * (Icmpv4Repr), a union on `kind`.
 *
 *    bytes  0  type    1  code    2–3  checksum (over the whole ICMP message)
 *           4–7  rest of header, by type: identifier and sequence (echo), unused
 *                (errors), next-hop MTU in 6–7 (fragmentation needed, RFC 1191 §4),
 *                pointer in 4 (parameter problem)
 *           8–   body: echo data, or the invoking packet (errors)
 *
 * A message gets a structured kind only if it is exactly what its RFC describes (echo
 * code 0, unused bytes zero); anything else is kept raw. Parsing therefore never loses
 * a bit: every parsed message emits byte for byte again. One consequence: an error that
 * carries RFC 4884 extensions (a length in its unused bytes) comes back as `raw`.
 */

import { fold, sumBytes } from './checksum';
import { checkInteger } from './ipv4';
import { ParseError } from './parse-error';

export const ICMPV4_HEADER_LEN = 8;

export const Icmpv4Type = {
  ECHO_REPLY: 0,
  DEST_UNREACHABLE: 3,
  REDIRECT: 5,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
  PARAMETER_PROBLEM: 12,
} as const;

/** Destination Unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1). */
export const Icmpv4DestUnreachableCode = {
  NET_UNREACHABLE: 0,
  HOST_UNREACHABLE: 1,
  PROTOCOL_UNREACHABLE: 2,
  PORT_UNREACHABLE: 3,
  /** Has its own kind, `fragmentationNeeded`. */
  FRAGMENTATION_NEEDED: 4,
  SOURCE_ROUTE_FAILED: 5,
  NET_UNKNOWN: 6,
  HOST_UNKNOWN: 7,
  NET_PROHIBITED: 9,
  HOST_PROHIBITED: 10,
  ADMIN_PROHIBITED: 13,
} as const;

export const Icmpv4TimeExceededCode = {
  TTL_EXCEEDED: 0,
  REASSEMBLY_TIME_EXCEEDED: 1,
} as const;

const CHECKSUM_OFFSET = 2;

export interface Icmpv4ParseOptions {
  /** Verify the checksum (default true). */
  verifyChecksum?: boolean;
}

/**
 * A validated ICMPv4 message: `parse` checks the length and (by default) the checksum
 * once; after that no accessor can fail. `bytes` is the whole message (the IPv4
 * payload): ICMP has no length field of its own.
 */
export class Icmpv4View {
  private constructor(readonly bytes: Uint8Array) {}

  static parse(bytes: Uint8Array, options: Icmpv4ParseOptions = {}): Icmpv4View {
    if (bytes.length < ICMPV4_HEADER_LEN) throw new ParseError('icmpv4', 'truncated', `${bytes.length} bytes`);
    // RFC 792: the checksum covers the ICMP message, starting with the type.
    if (options.verifyChecksum !== false && fold(sumBytes(bytes)) !== 0xffff) {
      throw new ParseError('icmpv4', 'bad-checksum');
    }
    return new Icmpv4View(bytes);
  }

  get type(): number {
    return this.bytes[0]!;
  }

  get code(): number {
    return this.bytes[1]!;
  }

  get checksum(): number {
    return (this.bytes[CHECKSUM_OFFSET]! << 8) | this.bytes[CHECKSUM_OFFSET + 1]!;
  }

  get checksumValid(): boolean {
    return fold(sumBytes(this.bytes)) === 0xffff;
  }

  /** Bytes 4–7 as one unsigned 32-bit number. */
  get restOfHeader(): number {
    const b = this.bytes;
    return ((b[4]! << 24) | (b[5]! << 16) | (b[6]! << 8) | b[7]!) >>> 0;
  }

  /** Echo identifier (bytes 4–5). */
  get identifier(): number {
    return (this.bytes[4]! << 8) | this.bytes[5]!;
  }

  /** Echo sequence number (bytes 6–7). */
  get sequence(): number {
    return (this.bytes[6]! << 8) | this.bytes[7]!;
  }

  /** Fragmentation needed: the next-hop MTU (bytes 6–7, RFC 1191 §4; 0 from old routers). */
  get nextHopMtu(): number {
    return (this.bytes[6]! << 8) | this.bytes[7]!;
  }

  /** Parameter problem: the offset of the bad byte in the invoking packet (byte 4). */
  get pointer(): number {
    return this.bytes[4]!;
  }

  /** Everything after the 8-byte header: echo data, or the invoking packet of an error. */
  get body(): Uint8Array {
    return this.bytes.subarray(ICMPV4_HEADER_LEN);
  }
}

export interface Icmpv4Echo {
  kind: 'echoRequest' | 'echoReply';
  identifier: number;
  sequence: number;
  data: Uint8Array;
}

/** Type 3, any code but 4. */
export interface Icmpv4DestUnreachable {
  kind: 'destUnreachable';
  code: number;
  /** The invoking packet, as much as was sent: its IP header and at least 8 bytes (RFC 792). */
  invoking: Uint8Array;
}

/** Type 3 code 4: the packet needed fragmenting but had DF set (RFC 1191 §4). */
export interface Icmpv4FragmentationNeeded {
  kind: 'fragmentationNeeded';
  nextHopMtu: number;
  invoking: Uint8Array;
}

export interface Icmpv4TimeExceeded {
  kind: 'timeExceeded';
  /** Icmpv4TimeExceededCode. */
  code: number;
  invoking: Uint8Array;
}

export interface Icmpv4ParameterProblem {
  kind: 'parameterProblem';
  code: number;
  /** Offset of the bad byte in the invoking packet. */
  pointer: number;
  invoking: Uint8Array;
}

/** Any other message, kept whole. */
export interface Icmpv4Raw {
  kind: 'raw';
  type: number;
  code: number;
  /** Bytes 4–7 as an unsigned 32-bit number. */
  restOfHeader: number;
  body: Uint8Array;
}

/** An ICMPv4 message as plain values; the byte fields alias the parsed packet. */
export type Icmpv4Repr =
  | Icmpv4Echo
  | Icmpv4DestUnreachable
  | Icmpv4FragmentationNeeded
  | Icmpv4TimeExceeded
  | Icmpv4ParameterProblem
  | Icmpv4Raw;

export const Icmpv4Repr = {
  parse(view: Icmpv4View): Icmpv4Repr {
    const { type, code, restOfHeader, body } = view;
    switch (type) {
      case Icmpv4Type.ECHO_REQUEST:
      case Icmpv4Type.ECHO_REPLY:
        if (code !== 0) break;
        return {
          kind: type === Icmpv4Type.ECHO_REQUEST ? 'echoRequest' : 'echoReply',
          identifier: view.identifier,
          sequence: view.sequence,
          data: body,
        };
      case Icmpv4Type.DEST_UNREACHABLE:
        if (code === Icmpv4DestUnreachableCode.FRAGMENTATION_NEEDED) {
          if (restOfHeader >>> 16 !== 0) break;
          return { kind: 'fragmentationNeeded', nextHopMtu: view.nextHopMtu, invoking: body };
        }
        if (restOfHeader !== 0) break;
        return { kind: 'destUnreachable', code, invoking: body };
      case Icmpv4Type.TIME_EXCEEDED:
        if (restOfHeader !== 0) break;
        return { kind: 'timeExceeded', code, invoking: body };
      case Icmpv4Type.PARAMETER_PROBLEM:
        if ((restOfHeader & 0x00ffffff) !== 0) break;
        return { kind: 'parameterProblem', code, pointer: view.pointer, invoking: body };
    }
    return { kind: 'raw', type, code, restOfHeader, body };
  },

  /** The whole message's length. */
  bufferLen(repr: Icmpv4Repr): number {
    return ICMPV4_HEADER_LEN + bodyOf(repr).length;
  },

  /**
   * Writes the message at `offset`, checksum included, and returns its length. Throws
   * RangeError for fields out of range (or destUnreachable with code 4, which is
   * `fragmentationNeeded`).
   */
  emit(repr: Icmpv4Repr, buf: Uint8Array, offset = 0): number {
    const body = bodyOf(repr);
    const length = ICMPV4_HEADER_LEN + body.length;
    if (offset < 0 || offset + length > buf.length) {
      throw new RangeError(`ICMPv4 message of ${length} bytes does not fit at offset ${offset} in ${buf.length}`);
    }
    const [type, code, restOfHeader] = headerOf(repr);
    buf[offset] = type;
    buf[offset + 1] = code;
    buf[offset + CHECKSUM_OFFSET] = 0;
    buf[offset + CHECKSUM_OFFSET + 1] = 0;
    buf[offset + 4] = restOfHeader >>> 24;
    buf[offset + 5] = (restOfHeader >>> 16) & 0xff;
    buf[offset + 6] = (restOfHeader >>> 8) & 0xff;
    buf[offset + 7] = restOfHeader & 0xff;
    buf.set(body, offset + ICMPV4_HEADER_LEN);
    const checksum = ~fold(sumBytes(buf, offset, length)) & 0xffff;
    buf[offset + CHECKSUM_OFFSET] = checksum >> 8;
    buf[offset + CHECKSUM_OFFSET + 1] = checksum & 0xff;
    return length;
  },
};

function bodyOf(repr: Icmpv4Repr): Uint8Array {
  switch (repr.kind) {
    case 'echoRequest':
    case 'echoReply':
      return repr.data;
    case 'raw':
      return repr.body;
    default:
      return repr.invoking;
  }
}

/** Type, code and bytes 4–7 of a repr, range-checked. */
function headerOf(repr: Icmpv4Repr): [number, number, number] {
  switch (repr.kind) {
    case 'echoRequest':
    case 'echoReply':
      checkInteger('identifier', repr.identifier, 0xffff);
      checkInteger('sequence', repr.sequence, 0xffff);
      return [
        repr.kind === 'echoRequest' ? Icmpv4Type.ECHO_REQUEST : Icmpv4Type.ECHO_REPLY,
        0,
        repr.identifier * 0x10000 + repr.sequence,
      ];
    case 'destUnreachable':
      checkInteger('code', repr.code, 0xff);
      if (repr.code === Icmpv4DestUnreachableCode.FRAGMENTATION_NEEDED) {
        throw new RangeError('destination unreachable code 4 is the fragmentationNeeded kind');
      }
      return [Icmpv4Type.DEST_UNREACHABLE, repr.code, 0];
    case 'fragmentationNeeded':
      checkInteger('nextHopMtu', repr.nextHopMtu, 0xffff);
      return [Icmpv4Type.DEST_UNREACHABLE, Icmpv4DestUnreachableCode.FRAGMENTATION_NEEDED, repr.nextHopMtu];
    case 'timeExceeded':
      checkInteger('code', repr.code, 0xff);
      return [Icmpv4Type.TIME_EXCEEDED, repr.code, 0];
    case 'parameterProblem':
      checkInteger('code', repr.code, 0xff);
      checkInteger('pointer', repr.pointer, 0xff);
      return [Icmpv4Type.PARAMETER_PROBLEM, repr.code, repr.pointer * 0x1000000];
    case 'raw':
      checkInteger('type', repr.type, 0xff);
      checkInteger('code', repr.code, 0xff);
      checkInteger('restOfHeader', repr.restOfHeader, 0xffffffff);
      return [repr.type, repr.code, repr.restOfHeader];
  }
}
