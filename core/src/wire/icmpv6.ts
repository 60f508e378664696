/**
 * ICMP for IPv6 (RFC 4443) as a zero-copy view (Icmpv6View) and a plain value
 * (Icmpv6Repr), a union on `kind`.
 *
 *    bytes  0  type    1  code    2–3  checksum (IPv6 pseudo-header + message, §2.3)
 *           4–7  by type: identifier and sequence (echo), MTU (packet too big),
 *                pointer (parameter problem), unused (other errors)
 *           8–   body: echo data, or as much of the invoking packet as fits in the
 *                minimum MTU (errors, §2.4 (c))
 *
 * As in icmpv4.ts, only a message exactly as RFC 4443 describes it gets a structured
 * kind; everything else (Neighbor Discovery, MLD, RFC 4884 extensions, non-zero unused
 * bytes) is kept raw, so every parsed message emits byte for byte again.
 *
 * The checksum needs the IPv6 addresses, so the view checks only the structure and
 * Icmpv6Repr.parse verifies the checksum.
 */

import { fold, pseudoHeaderSumV6, sumBytes } from './checksum';
import { IpProtocol } from './ip-protocol';
import { checkInteger } from './ipv4';
import { ParseError } from './parse-error';

export const ICMPV6_HEADER_LEN = 8;

export const Icmpv6Type = {
  DEST_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAMETER_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
} as const;

/** RFC 4443 §3.1. */
export const Icmpv6DestUnreachableCode = {
  NO_ROUTE: 0,
  ADMIN_PROHIBITED: 1,
  BEYOND_SCOPE: 2,
  ADDRESS_UNREACHABLE: 3,
  PORT_UNREACHABLE: 4,
  SOURCE_POLICY_FAILED: 5,
  REJECT_ROUTE: 6,
} as const;

/** RFC 4443 §3.3. */
export const Icmpv6TimeExceededCode = {
  HOP_LIMIT_EXCEEDED: 0,
  REASSEMBLY_TIME_EXCEEDED: 1,
} as const;

/** RFC 4443 §3.4. */
export const Icmpv6ParameterProblemCode = {
  ERRONEOUS_HEADER_FIELD: 0,
  UNRECOGNIZED_NEXT_HEADER: 1,
  UNRECOGNIZED_OPTION: 2,
} as const;

const CHECKSUM_OFFSET = 2;

/** A validated ICMPv6 message: at least the 8-byte header. `bytes` is the whole message. */
export class Icmpv6View {
  private constructor(readonly bytes: Uint8Array) {}

  static parse(bytes: Uint8Array): Icmpv6View {
    if (bytes.length < ICMPV6_HEADER_LEN) throw new ParseError('icmpv6', 'truncated', `${bytes.length} bytes`);
    return new Icmpv6View(bytes);
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

  /** RFC 4443 §2.3: the checksum covers the pseudo-header (RFC 8200 §8.1) and the message. */
  checksumValid(src: Uint8Array, dst: Uint8Array): boolean {
    const pseudo = pseudoHeaderSumV6(src, dst, IpProtocol.IPV6_ICMP, this.bytes.length);
    return fold(sumBytes(this.bytes, 0, this.bytes.length, pseudo)) === 0xffff;
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

  /** Packet too big: the next-hop link's MTU (§3.2). */
  get mtu(): number {
    return this.restOfHeader;
  }

  /** Parameter problem: the offset of the bad byte in the invoking packet (§3.4). */
  get pointer(): number {
    return this.restOfHeader;
  }

  /** Everything after the 8-byte header: echo data, or the invoking packet of an error. */
  get body(): Uint8Array {
    return this.bytes.subarray(ICMPV6_HEADER_LEN);
  }
}

export interface Icmpv6Echo {
  kind: 'echoRequest' | 'echoReply';
  identifier: number;
  sequence: number;
  data: Uint8Array;
}

export interface Icmpv6DestUnreachable {
  kind: 'destUnreachable';
  /** Icmpv6DestUnreachableCode. */
  code: number;
  /** The invoking packet, as much as was sent. */
  invoking: Uint8Array;
}

/** §3.2: the packet was larger than the next link's MTU. Code 0. */
export interface Icmpv6PacketTooBig {
  kind: 'packetTooBig';
  mtu: number;
  invoking: Uint8Array;
}

export interface Icmpv6TimeExceeded {
  kind: 'timeExceeded';
  /** Icmpv6TimeExceededCode. */
  code: number;
  invoking: Uint8Array;
}

export interface Icmpv6ParameterProblem {
  kind: 'parameterProblem';
  /** Icmpv6ParameterProblemCode. */
  code: number;
  pointer: number;
  invoking: Uint8Array;
}

/** Any other message (Neighbor Discovery, MLD, …), kept whole. */
export interface Icmpv6Raw {
  kind: 'raw';
  type: number;
  code: number;
  /** Bytes 4–7 as an unsigned 32-bit number. */
  restOfHeader: number;
  body: Uint8Array;
}

/** An ICMPv6 message as plain values; the byte fields alias the parsed packet. */
export type Icmpv6Repr =
  | Icmpv6Echo
  | Icmpv6DestUnreachable
  | Icmpv6PacketTooBig
  | Icmpv6TimeExceeded
  | Icmpv6ParameterProblem
  | Icmpv6Raw;

export interface Icmpv6ParseOptions {
  /** Verify the checksum (default true). */
  verifyChecksum?: boolean;
}

export const Icmpv6Repr = {
  /** `src` and `dst` are the IPv6 addresses the message came with, for the checksum. */
  parse(view: Icmpv6View, src: Uint8Array, dst: Uint8Array, options: Icmpv6ParseOptions = {}): Icmpv6Repr {
    if (options.verifyChecksum !== false && !view.checksumValid(src, dst)) {
      throw new ParseError('icmpv6', 'bad-checksum');
    }
    const { type, code, restOfHeader, body } = view;
    switch (type) {
      case Icmpv6Type.ECHO_REQUEST:
      case Icmpv6Type.ECHO_REPLY:
        if (code !== 0) break;
        return {
          kind: type === Icmpv6Type.ECHO_REQUEST ? 'echoRequest' : 'echoReply',
          identifier: view.identifier,
          sequence: view.sequence,
          data: body,
        };
      case Icmpv6Type.DEST_UNREACHABLE:
        if (restOfHeader !== 0) break;
        return { kind: 'destUnreachable', code, invoking: body };
      case Icmpv6Type.PACKET_TOO_BIG:
        if (code !== 0) break;
        return { kind: 'packetTooBig', mtu: view.mtu, invoking: body };
      case Icmpv6Type.TIME_EXCEEDED:
        if (restOfHeader !== 0) break;
        return { kind: 'timeExceeded', code, invoking: body };
      case Icmpv6Type.PARAMETER_PROBLEM:
        return { kind: 'parameterProblem', code, pointer: view.pointer, invoking: body };
    }
    return { kind: 'raw', type, code, restOfHeader, body };
  },

  /** The whole message's length (also the pseudo-header's upper-layer length). */
  bufferLen(repr: Icmpv6Repr): number {
    return ICMPV6_HEADER_LEN + bodyOf(repr).length;
  },

  /**
   * Writes the message at `offset` with its checksum over the pseudo-header of `src`
   * and `dst`, and returns its length. Throws RangeError for fields out of range.
   */
  emit(repr: Icmpv6Repr, buf: Uint8Array, offset: number, src: Uint8Array, dst: Uint8Array): number {
    const body = bodyOf(repr);
    const length = ICMPV6_HEADER_LEN + body.length;
    if (offset < 0 || offset + length > buf.length) {
      throw new RangeError(`ICMPv6 message of ${length} bytes does not fit at offset ${offset} in ${buf.length}`);
    }
    if (src.length !== 16 || dst.length !== 16) throw new RangeError('IPv6 addresses are 16 bytes');
    const [type, code, restOfHeader] = headerOf(repr);
    buf[offset] = type;
    buf[offset + 1] = code;
    buf[offset + CHECKSUM_OFFSET] = 0;
    buf[offset + CHECKSUM_OFFSET + 1] = 0;
    buf[offset + 4] = restOfHeader >>> 24;
    buf[offset + 5] = (restOfHeader >>> 16) & 0xff;
    buf[offset + 6] = (restOfHeader >>> 8) & 0xff;
    buf[offset + 7] = restOfHeader & 0xff;
    buf.set(body, offset + ICMPV6_HEADER_LEN);
    const pseudo = pseudoHeaderSumV6(src, dst, IpProtocol.IPV6_ICMP, length);
    const checksum = ~fold(sumBytes(buf, offset, length, pseudo)) & 0xffff;
    buf[offset + CHECKSUM_OFFSET] = checksum >> 8;
    buf[offset + CHECKSUM_OFFSET + 1] = checksum & 0xff;
    return length;
  },
};

function bodyOf(repr: Icmpv6Repr): Uint8Array {
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
function headerOf(repr: Icmpv6Repr): [number, number, number] {
  switch (repr.kind) {
    case 'echoRequest':
    case 'echoReply':
      checkInteger('identifier', repr.identifier, 0xffff);
      checkInteger('sequence', repr.sequence, 0xffff);
      return [
        repr.kind === 'echoRequest' ? Icmpv6Type.ECHO_REQUEST : Icmpv6Type.ECHO_REPLY,
        0,
        repr.identifier * 0x10000 + repr.sequence,
      ];
    case 'destUnreachable':
      checkInteger('code', repr.code, 0xff);
      return [Icmpv6Type.DEST_UNREACHABLE, repr.code, 0];
    case 'packetTooBig':
      checkInteger('mtu', repr.mtu, 0xffffffff);
      return [Icmpv6Type.PACKET_TOO_BIG, 0, repr.mtu];
    case 'timeExceeded':
      checkInteger('code', repr.code, 0xff);
      return [Icmpv6Type.TIME_EXCEEDED, repr.code, 0];
    case 'parameterProblem':
      checkInteger('code', repr.code, 0xff);
      checkInteger('pointer', repr.pointer, 0xffffffff);
      return [Icmpv6Type.PARAMETER_PROBLEM, repr.code, repr.pointer];
    case 'raw':
      checkInteger('type', repr.type, 0xff);
      checkInteger('code', repr.code, 0xff);
      checkInteger('restOfHeader', repr.restOfHeader, 0xffffffff);
      return [repr.type, repr.code, repr.restOfHeader];
  }
}
