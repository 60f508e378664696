/**
 * The IPv6 header (RFC 8200 §3) and its extension header chain (§4) as a zero-copy view
 * (Ipv6View) and a plain value (Ipv6Repr), after smoltcp's wire/ipv6.rs.
 *
 *    bytes  0–3   version (4 bits) | traffic class (8) | flow label (20)
 *           4–5   payload length (everything after these 40 bytes)
 *           6     next header     7  hop limit
 *           8–23  source address  24–39  destination address
 *          40–    extension headers, then the upper-layer payload
 *
 * Extension headers are walked, never interpreted: Hop-by-Hop (0), Routing (43),
 * Destination Options (60) and AH (51) are skipped by their length fields, the Fragment
 * header (44) is decoded for the reassembler. The walk ends at any other Next Header
 * value (TCP, UDP, ICMPv6, ESP, No Next Header, or one unknown here), which becomes the
 * upper-layer protocol. Jumbograms (RFC 2675, payload length 0) are not supported: a
 * zero payload length means an empty payload.
 */

import { IpProtocol } from './ip-protocol';
import { checkInteger } from './ipv4';
import { ParseError } from './parse-error';

export const IPV6_HEADER_LEN = 40;
/** The payload length field is 16 bits. */
export const IPV6_MAX_PAYLOAD_LEN = 0xffff;
/** RFC 8200 §5: every link carries packets of this size. */
export const IPV6_MIN_MTU = 1280;

const FRAGMENT_HEADER_LEN = 8;
const FRAGMENT_OFFSET_MASK = 0xfff8;
const FRAGMENT_MORE = 0x0001;

export interface Ipv6ParseOptions {
  /**
   * Accept a payload length beyond the buffer (default false); the payload is then what
   * the buffer holds, and the extension headers must still fit in it. For the packet
   * quoted in an ICMPv6 error (RFC 4443 §3), which is cut to fit the minimum MTU.
   */
  allowTruncated?: boolean;
}

/** Where the extension header walk ended. */
interface ChainEnd {
  upperProtocol: number;
  upperOffset: number;
  /** The last Fragment header met, or -1. */
  fragmentHeaderOffset: number;
}

/**
 * A validated IPv6 packet: `parse` checks the version and the payload length and walks
 * the extension headers once; after that no accessor can fail. `bytes` ends at the
 * payload length: link-layer padding after it is not part of the packet.
 *
 * A real fragment (offset ≠ 0 or M set) ends the walk at its Fragment header: what
 * follows is fragment data, not headers (RFC 8200 §4.5), so `upperProtocol` is the
 * Fragment header's Next Header and `upperPayload` the fragment data, for the
 * reassembler. An atomic fragment (offset 0, M clear; RFC 6946) is walked through.
 */
export class Ipv6View {
  private constructor(
    /** The packet: fixed header, extension headers and upper-layer payload. */
    readonly bytes: Uint8Array,
    /** Offset of the upper-layer payload (after the last extension header walked). */
    readonly upperOffset: number,
    /** The Next Header value that ended the walk (IpProtocol). */
    readonly upperProtocol: number,
    /** Offset of the Fragment header, or -1 if there is none (the unfragmentable part ends here). */
    readonly fragmentHeaderOffset: number,
  ) {}

  static parse(bytes: Uint8Array, options: Ipv6ParseOptions = {}): Ipv6View {
    if (bytes.length < IPV6_HEADER_LEN) throw new ParseError('ipv6', 'truncated', `${bytes.length} bytes`);
    const version = bytes[0]! >> 4;
    if (version !== 6) throw new ParseError('ipv6', 'bad-version', `version ${version}`);
    const declaredEnd = IPV6_HEADER_LEN + ((bytes[4]! << 8) | bytes[5]!);
    if (declaredEnd > bytes.length && options.allowTruncated !== true) {
      throw new ParseError('ipv6', 'truncated', `payload ends at ${declaredEnd}, buffer at ${bytes.length}`);
    }
    const packet = declaredEnd < bytes.length ? bytes.subarray(0, declaredEnd) : bytes;
    const chain = walkExtensionHeaders(packet);
    return new Ipv6View(packet, chain.upperOffset, chain.upperProtocol, chain.fragmentHeaderOffset);
  }

  get version(): number {
    return this.bytes[0]! >> 4;
  }

  /** The traffic class octet: DSCP and ECN (RFC 8200 §7, RFC 2474, RFC 3168). */
  get trafficClass(): number {
    return ((this.bytes[0]! & 0x0f) << 4) | (this.bytes[1]! >> 4);
  }

  get dscp(): number {
    return this.trafficClass >> 2;
  }

  get ecn(): number {
    return this.trafficClass & 0x03;
  }

  /** RFC 6437 flow label, 20 bits. */
  get flowLabel(): number {
    return ((this.bytes[1]! & 0x0f) << 16) | (this.bytes[2]! << 8) | this.bytes[3]!;
  }

  /** The payload length field: extension headers plus upper-layer payload. */
  get payloadLen(): number {
    return (this.bytes[4]! << 8) | this.bytes[5]!;
  }

  /** True when parsed with `allowTruncated` and the buffer ends before the payload length. */
  get isTruncated(): boolean {
    return this.bytes.length < IPV6_HEADER_LEN + this.payloadLen;
  }

  /** The fixed header's Next Header: the first extension header, or the upper protocol. */
  get nextHeader(): number {
    return this.bytes[6]!;
  }

  get hopLimit(): number {
    return this.bytes[7]!;
  }

  /** The source address (aliases the packet). */
  get src(): Uint8Array {
    return this.bytes.subarray(8, 24);
  }

  /** The destination address (aliases the packet). */
  get dst(): Uint8Array {
    return this.bytes.subarray(24, 40);
  }

  /** The extension headers walked, raw. */
  get extensionHeaderBytes(): Uint8Array {
    return this.bytes.subarray(IPV6_HEADER_LEN, this.upperOffset);
  }

  /** The upper-layer payload (or, for a real fragment, the fragment data). */
  get upperPayload(): Uint8Array {
    return this.bytes.subarray(this.upperOffset);
  }

  /**
   * The upper-layer length for the pseudo-header (RFC 8200 §8.1): the payload length
   * minus the extension headers.
   */
  get upperLen(): number {
    return IPV6_HEADER_LEN + this.payloadLen - this.upperOffset;
  }

  get hasFragmentHeader(): boolean {
    return this.fragmentHeaderOffset >= 0;
  }

  /** A real fragment: a Fragment header with a non-zero offset or the M flag. */
  get isFragment(): boolean {
    return this.hasFragmentHeader && (this.fragmentOffset !== 0 || this.moreFragments);
  }

  /** The Fragment header's offset, in bytes (0 without one). */
  get fragmentOffset(): number {
    const at = this.fragmentHeaderOffset;
    return at < 0 ? 0 : ((this.bytes[at + 2]! << 8) | this.bytes[at + 3]!) & FRAGMENT_OFFSET_MASK;
  }

  /** The Fragment header's M flag (false without one). */
  get moreFragments(): boolean {
    const at = this.fragmentHeaderOffset;
    return at >= 0 && (this.bytes[at + 3]! & FRAGMENT_MORE) !== 0;
  }

  /** The Fragment header's identification (0 without one). */
  get fragmentIdentification(): number {
    const at = this.fragmentHeaderOffset;
    if (at < 0) return 0;
    const b = this.bytes;
    return ((b[at + 4]! << 24) | (b[at + 5]! << 16) | (b[at + 6]! << 8) | b[at + 7]!) >>> 0;
  }
}

/**
 * Walks the chain from the fixed header's Next Header. RFC 8200 §4: each extension
 * header starts with Next Header; all but Fragment and AH give their length in 8-byte
 * units after the first 8 bytes.
 */
function walkExtensionHeaders(packet: Uint8Array): ChainEnd {
  let type = packet[6]!;
  let offset = IPV6_HEADER_LEN;
  let fragmentHeaderOffset = -1;
  for (;;) {
    if (!isWalkedExtensionHeader(type)) return { upperProtocol: type, upperOffset: offset, fragmentHeaderOffset };
    // RFC 8200 §4.1: Hop-by-Hop Options may only come immediately after the fixed header.
    if (type === IpProtocol.IPV6_HOP_BY_HOP && offset !== IPV6_HEADER_LEN) {
      throw new ParseError('ipv6', 'misplaced-hop-by-hop', `at offset ${offset}`);
    }
    if (offset + 2 > packet.length) {
      throw new ParseError(
        'ipv6',
        'extension-header-overrun',
        `header ${type} at ${offset}, payload ends at ${packet.length}`,
      );
    }
    const length = extensionHeaderLen(type, packet[offset + 1]!);
    if (offset + length > packet.length) {
      throw new ParseError(
        'ipv6',
        'extension-header-overrun',
        `header ${type} of ${length} bytes at ${offset}, payload ends at ${packet.length}`,
      );
    }
    const next = packet[offset]!;
    if (type === IpProtocol.IPV6_FRAGMENT) {
      fragmentHeaderOffset = offset;
      if (isRealFragment(packet, offset)) {
        return { upperProtocol: next, upperOffset: offset + length, fragmentHeaderOffset };
      }
    }
    type = next;
    offset += length;
  }
}

/** A Fragment header (at `at`) with a non-zero offset or the M flag: fragment data follows it. */
function isRealFragment(bytes: Uint8Array, at: number): boolean {
  return (((bytes[at + 2]! << 8) | bytes[at + 3]!) & (FRAGMENT_OFFSET_MASK | FRAGMENT_MORE)) !== 0;
}

function isWalkedExtensionHeader(type: number): boolean {
  return (
    type === IpProtocol.IPV6_HOP_BY_HOP ||
    type === IpProtocol.IPV6_ROUTING ||
    type === IpProtocol.IPV6_FRAGMENT ||
    type === IpProtocol.IPV6_DESTINATION_OPTIONS ||
    type === IpProtocol.AH
  );
}

/** An extension header's length in bytes from its second byte. */
function extensionHeaderLen(type: number, lengthField: number): number {
  // RFC 8200 §4.5: the Fragment header is always 8 bytes (its second byte is reserved).
  if (type === IpProtocol.IPV6_FRAGMENT) return FRAGMENT_HEADER_LEN;
  // RFC 4302 §2.2: AH's Payload Len is in 4-byte units, minus 2.
  if (type === IpProtocol.AH) return (lengthField + 2) * 4;
  // RFC 8200 §4.3, §4.4, §4.6: Hdr Ext Len in 8-byte units, not counting the first 8.
  return (lengthField + 1) * 8;
}

/** One extension header as on the wire, its own Next Header byte included. */
export interface Ipv6ExtensionHeader {
  /** Its type: the Next Header value that names it (IpProtocol). */
  type: number;
  /** The whole header. On emit, byte 0 (Next Header) is rewritten to name what follows. */
  bytes: Uint8Array;
}

const NO_EXTENSION_HEADERS: readonly Ipv6ExtensionHeader[] = Object.freeze([]);

/**
 * An IPv6 header as plain values, with its extension headers raw, so that a parsed
 * packet emits byte for byte again. `protocol` and `payloadLen` describe what follows
 * the chain (the pseudo-header's Next Header and length, RFC 8200 §8.1); the payload
 * travels separately. Addresses are copies; extension header bytes alias the packet.
 */
export interface Ipv6Repr {
  src: Uint8Array;
  dst: Uint8Array;
  /** The Next Header value that ends the extension header chain (IpProtocol). */
  protocol: number;
  /** Bytes after the extension headers. */
  payloadLen: number;
  hopLimit: number;
  trafficClass: number;
  flowLabel: number;
  extensionHeaders: readonly Ipv6ExtensionHeader[];
}

export const Ipv6Repr = {
  parse(view: Ipv6View): Ipv6Repr {
    return {
      src: view.src.slice(),
      dst: view.dst.slice(),
      protocol: view.upperProtocol,
      payloadLen: view.upperLen,
      hopLimit: view.hopLimit,
      trafficClass: view.trafficClass,
      flowLabel: view.flowLabel,
      extensionHeaders: view.upperOffset === IPV6_HEADER_LEN ? NO_EXTENSION_HEADERS : listExtensionHeaders(view),
    };
  },

  /** The length of the fixed header and the extension headers; the payload follows. */
  bufferLen(repr: Ipv6Repr): number {
    let length = IPV6_HEADER_LEN;
    for (const header of repr.extensionHeaders) length += header.bytes.length;
    return length;
  },

  /**
   * Writes the fixed header and the extension headers at `offset`, chaining their Next
   * Header fields, and returns their length. The payload is the caller's to place after.
   * Throws RangeError for a repr that would not parse back to itself.
   */
  emit(repr: Ipv6Repr, buf: Uint8Array, offset = 0): number {
    const headerLen = Ipv6Repr.bufferLen(repr);
    checkRepr(repr, headerLen);
    if (offset < 0 || offset + headerLen > buf.length) {
      throw new RangeError(`IPv6 headers of ${headerLen} bytes do not fit at offset ${offset} in ${buf.length}`);
    }
    const headers = repr.extensionHeaders;
    const payloadLen = headerLen - IPV6_HEADER_LEN + repr.payloadLen;
    buf[offset] = 0x60 | (repr.trafficClass >> 4);
    buf[offset + 1] = ((repr.trafficClass & 0x0f) << 4) | (repr.flowLabel >> 16);
    buf[offset + 2] = (repr.flowLabel >> 8) & 0xff;
    buf[offset + 3] = repr.flowLabel & 0xff;
    buf[offset + 4] = payloadLen >> 8;
    buf[offset + 5] = payloadLen & 0xff;
    buf[offset + 6] = headers.length > 0 ? headers[0]!.type : repr.protocol;
    buf[offset + 7] = repr.hopLimit;
    buf.set(repr.src, offset + 8);
    buf.set(repr.dst, offset + 24);
    let at = offset + IPV6_HEADER_LEN;
    for (let i = 0; i < headers.length; i++) {
      const header = headers[i]!;
      buf.set(header.bytes, at);
      buf[at] = i + 1 < headers.length ? headers[i + 1]!.type : repr.protocol;
      at += header.bytes.length;
    }
    return headerLen;
  },
};

function listExtensionHeaders(view: Ipv6View): Ipv6ExtensionHeader[] {
  const headers: Ipv6ExtensionHeader[] = [];
  const bytes = view.bytes;
  let type = view.nextHeader;
  let offset = IPV6_HEADER_LEN;
  while (offset < view.upperOffset) {
    const length = extensionHeaderLen(type, bytes[offset + 1]!);
    headers.push({ type, bytes: bytes.subarray(offset, offset + length) });
    type = bytes[offset]!;
    offset += length;
  }
  return headers;
}

function checkRepr(repr: Ipv6Repr, headerLen: number): void {
  if (repr.src.length !== 16 || repr.dst.length !== 16) throw new RangeError('IPv6 addresses are 16 bytes');
  checkInteger('payloadLen', repr.payloadLen, IPV6_MAX_PAYLOAD_LEN - (headerLen - IPV6_HEADER_LEN));
  checkInteger('protocol', repr.protocol, 0xff);
  checkInteger('hopLimit', repr.hopLimit, 0xff);
  checkInteger('trafficClass', repr.trafficClass, 0xff);
  checkInteger('flowLabel', repr.flowLabel, 0xfffff);
  const headers = repr.extensionHeaders;
  const last = headers.length - 1;
  const endsInRealFragment =
    last >= 0 && headers[last]!.type === IpProtocol.IPV6_FRAGMENT && isRealFragment(headers[last]!.bytes, 0);
  // Unless fragment data follows, a walked type here would be read back as one more header.
  if (!endsInRealFragment && isWalkedExtensionHeader(repr.protocol)) {
    throw new RangeError(`protocol ${repr.protocol} is an extension header; list it in extensionHeaders`);
  }
  for (let i = 0; i <= last; i++) {
    const { type, bytes } = headers[i]!;
    if (!isWalkedExtensionHeader(type)) throw new RangeError(`type ${type} is not an extension header walked here`);
    if (type === IpProtocol.IPV6_HOP_BY_HOP && i !== 0) throw new RangeError('Hop-by-Hop must come first');
    if (bytes.length < 2 || bytes.length !== extensionHeaderLen(type, bytes[1]!)) {
      throw new RangeError(`extension header ${type}: ${bytes.length} bytes disagree with its length field`);
    }
    if (type === IpProtocol.IPV6_FRAGMENT && i !== last && isRealFragment(bytes, 0)) {
      throw new RangeError('a Fragment header of a real fragment must end the chain: fragment data follows it');
    }
  }
}
