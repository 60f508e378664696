import { pseudoHeaderSumV4, pseudoHeaderSumV6 } from './checksum';
import { Icmpv4Repr } from './icmpv4';
import { Icmpv6Repr } from './icmpv6';
import { IpProtocol } from './ip-protocol';
import { Ipv4Repr } from './ipv4';
import { Ipv6Repr } from './ipv6';
import { TcpRepr } from './tcp';
import { UdpRepr } from './udp';

/** The transport part of a packet to build. */
export type UpperRepr =
  | { protocol: 'tcp'; repr: TcpRepr }
  | { protocol: 'udp'; repr: UdpRepr }
  | { protocol: 'icmpv4'; repr: Icmpv4Repr }
  | { protocol: 'icmpv6'; repr: Icmpv6Repr };

/** IP header fields for a packet to build; the family follows from the address length. */
export interface IpFields {
  src: Uint8Array;
  dst: Uint8Array;
  /** TTL or hop limit (default 64, RFC 1700's recommendation that Linux also uses). */
  ttl?: number;
  /** IPv4 only (default 0). */
  identification?: number;
  /** IPv4 only (default true: RFC 1191 path MTU discovery, as TCP does). */
  dontFragment?: boolean;
  dscp?: number;
  ecn?: number;
  /** IPv6 only (default 0). */
  flowLabel?: number;
}

const PROTOCOL_NUMBER = {
  tcp: IpProtocol.TCP,
  udp: IpProtocol.UDP,
  icmpv4: IpProtocol.ICMP,
  icmpv6: IpProtocol.IPV6_ICMP,
} as const;

/**
 * Builds a whole IPv4 or IPv6 packet (header, transport header with its checksum over
 * the right pseudo-header, payload) into a new buffer. For tools, tests and the demo;
 * the stack's own output path writes in place.
 */
export function buildPacket(ip: IpFields, upper: UpperRepr): Uint8Array {
  const protocol = PROTOCOL_NUMBER[upper.protocol];
  const upperLen = upperLength(upper);
  if (ip.src.length === 4 && ip.dst.length === 4) {
    if (upper.protocol === 'icmpv6') throw new RangeError('ICMPv6 needs IPv6 addresses');
    const header: Ipv4Repr = {
      src: ip.src,
      dst: ip.dst,
      protocol,
      payloadLen: upperLen,
      ttl: ip.ttl ?? 64,
      dscp: ip.dscp ?? 0,
      ecn: ip.ecn ?? 0,
      identification: ip.identification ?? 0,
      dontFragment: ip.dontFragment ?? true,
      moreFragments: false,
      fragmentOffset: 0,
      options: new Uint8Array(0),
    };
    const headerLen = Ipv4Repr.bufferLen(header);
    const packet = new Uint8Array(headerLen + upperLen);
    Ipv4Repr.emit(header, packet, 0);
    emitUpper(upper, packet, headerLen, pseudoHeaderSumV4(ip.src, ip.dst, protocol, upperLen), ip);
    return packet;
  }
  if (ip.src.length === 16 && ip.dst.length === 16) {
    if (upper.protocol === 'icmpv4') throw new RangeError('ICMPv4 needs IPv4 addresses');
    const header: Ipv6Repr = {
      src: ip.src,
      dst: ip.dst,
      protocol,
      payloadLen: upperLen,
      hopLimit: ip.ttl ?? 64,
      trafficClass: ((ip.dscp ?? 0) << 2) | (ip.ecn ?? 0),
      flowLabel: ip.flowLabel ?? 0,
      extensionHeaders: [],
    };
    const headerLen = Ipv6Repr.bufferLen(header);
    const packet = new Uint8Array(headerLen + upperLen);
    Ipv6Repr.emit(header, packet, 0);
    emitUpper(upper, packet, headerLen, pseudoHeaderSumV6(ip.src, ip.dst, protocol, upperLen), ip);
    return packet;
  }
  throw new RangeError('source and destination must both be IPv4 (4 bytes) or both IPv6 (16 bytes)');
}

function upperLength(upper: UpperRepr): number {
  switch (upper.protocol) {
    case 'tcp':
      return TcpRepr.bufferLen(upper.repr);
    case 'udp':
      return UdpRepr.bufferLen(upper.repr);
    case 'icmpv4':
      return Icmpv4Repr.bufferLen(upper.repr);
    case 'icmpv6':
      return Icmpv6Repr.bufferLen(upper.repr);
  }
}

function emitUpper(upper: UpperRepr, buf: Uint8Array, offset: number, pseudoSum: number, ip: IpFields): void {
  switch (upper.protocol) {
    case 'tcp':
      TcpRepr.emit(upper.repr, buf, offset, pseudoSum);
      return;
    case 'udp':
      UdpRepr.emit(upper.repr, buf, offset, pseudoSum);
      return;
    case 'icmpv4':
      // RFC 792: the ICMPv4 checksum covers the message only, no pseudo-header.
      Icmpv4Repr.emit(upper.repr, buf, offset);
      return;
    case 'icmpv6':
      Icmpv6Repr.emit(upper.repr, buf, offset, ip.src, ip.dst);
      return;
  }
}
