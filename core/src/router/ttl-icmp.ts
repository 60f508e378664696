/**
 * What a router does to a packet's hop count, and the ICMP errors it sends back:
 *
 * - TTL (RFC 1812 §5.3.1) and hop limit (RFC 8200 §3) decrement in place, the IPv4
 *   header checksum updated incrementally (RFC 1624 eqn. 3; RFC 1812 §5.2.2 allows
 *   it), never recomputed;
 * - ICMPv4 errors (RFC 792, RFC 1812 §4.3.2) and ICMPv6 errors (RFC 4443 §2.4, §3):
 *   who may get one (never for an error, a non-initial fragment, a multicast or
 *   broadcast packet, an invalid source), what they quote, and a rate limit.
 */

import type { Clock } from '../time/clock';
import { updateChecksum16 } from '../wire/checksum';
import type { Icmpv4Repr } from '../wire/icmpv4';
import { ICMPV4_HEADER_LEN, Icmpv4Type } from '../wire/icmpv4';
import type { Icmpv6Repr } from '../wire/icmpv6';
import { ICMPV6_HEADER_LEN } from '../wire/icmpv6';
import { IpProtocol } from '../wire/ip-protocol';
import type { Ipv4View } from '../wire/ipv4';
import { IPV4_HEADER_LEN } from '../wire/ipv4';
import type { Ipv6View } from '../wire/ipv6';
import { IPV6_HEADER_LEN, IPV6_MIN_MTU } from '../wire/ipv6';
import { buildPacket } from '../wire/packet';
import {
  isLimitedBroadcastV4,
  isMartianSourceV4,
  isMulticastV4,
  isMulticastV6,
  isUnspecifiedV6,
} from './address-class';
import { ipv4ToInt } from './route-table';

/** TTL of the packets the router itself originates (RFC 1700's 64, as Linux). */
export const ROUTER_TTL = 64;

/**
 * RFC 1812 §4.3.2.3: an ICMPv4 error carries "as much of the original datagram as
 * possible without the length of the ICMP datagram exceeding 576 bytes".
 */
export const ICMPV4_ERROR_MAX_LEN = 576;

/**
 * Decrements an IPv4 packet's TTL in place and patches the header checksum
 * (RFC 1624: the word at bytes 8–9 is TTL | protocol). The caller has checked TTL > 1.
 */
export function decrementTtlV4(packet: Uint8Array): void {
  const oldWord = (packet[8]! << 8) | packet[9]!;
  packet[8] = packet[8]! - 1;
  const checksum = (packet[10]! << 8) | packet[11]!;
  const updated = updateChecksum16(checksum, oldWord, oldWord - 0x100);
  packet[10] = updated >>> 8;
  packet[11] = updated & 0xff;
}

/** Decrements an IPv6 packet's hop limit in place (RFC 8200 §3: no header checksum to fix). */
export function decrementHopLimitV6(packet: Uint8Array): void {
  packet[7] = packet[7]! - 1;
}

/** ICMPv4 types that are errors (RFC 792; RFC 1812 §4.3.2.7 "An ICMP error message"). */
function isIcmpv4ErrorType(type: number): boolean {
  return (
    type === Icmpv4Type.DEST_UNREACHABLE ||
    type === 4 || // Source Quench (deprecated, RFC 6633), still an error message
    type === Icmpv4Type.REDIRECT ||
    type === Icmpv4Type.TIME_EXCEEDED ||
    type === Icmpv4Type.PARAMETER_PROBLEM
  );
}

/**
 * RFC 1812 §4.3.2.7: an ICMP error MUST NOT be sent in response to an ICMP error, a
 * packet to a broadcast or multicast address, a non-initial fragment, or a packet whose
 * source does not name a single host (network 0, loopback, multicast, broadcast,
 * class E). The packet has passed header validation (the other exclusion).
 */
export function mayAnswerWithIcmpV4(ip: Ipv4View): boolean {
  const src = ipv4ToInt(ip.bytes, 12);
  const dst = ipv4ToInt(ip.bytes, 16);
  if (isMartianSourceV4(src)) return false;
  if (isMulticastV4(dst) || isLimitedBroadcastV4(dst)) return false;
  if (ip.fragmentOffset !== 0) return false;
  if (ip.protocol === IpProtocol.ICMP) {
    const payload = ip.payload;
    // A message too short to have a type cannot be shown not to be an error: stay silent.
    if (payload.length < 1 || isIcmpv4ErrorType(payload[0]!)) return false;
  }
  return true;
}

/**
 * RFC 4443 §2.4 (e): no ICMPv6 error in response to an ICMPv6 error or a Redirect, to a
 * packet to a multicast address (the Packet Too Big exception is moot: the router does
 * not forward multicast), or from a source that names no single node (unspecified,
 * multicast).
 */
export function mayAnswerWithIcmpV6(ip: Ipv6View): boolean {
  const b = ip.bytes;
  if (isUnspecifiedV6(b, 8) || isMulticastV6(b, 8)) return false;
  if (isMulticastV6(b, 24)) return false;
  // Behind a non-initial fragment the ICMPv6 type is not visible: answer, as RFC 4443 allows.
  if (ip.upperProtocol === IpProtocol.IPV6_ICMP && ip.fragmentOffset === 0) {
    const upper = ip.upperPayload;
    if (upper.length < 1) return false;
    const type = upper[0]!;
    if (type < 128 || type === 137) return false; // §2.1: types 0–127 are errors; 137 is Redirect
  }
  return true;
}

/** The ICMPv4 errors the router sends. */
export type Icmpv4ErrorKind =
  | { kind: 'timeExceeded' }
  | { kind: 'netUnreachable' }
  | { kind: 'portUnreachable' }
  | { kind: 'fragmentationNeeded'; nextHopMtu: number };

/**
 * Builds an ICMPv4 error about `invoking` (the packet as received), from the router's
 * address `src` to the invoking packet's source. It quotes the IP header and as much of
 * the payload as keeps the message within 576 bytes (RFC 1812 §4.3.2.3).
 */
export function buildIcmpv4Error(
  error: Icmpv4ErrorKind,
  invoking: Ipv4View,
  src: Uint8Array,
  identification: number,
): Uint8Array {
  const room = ICMPV4_ERROR_MAX_LEN - IPV4_HEADER_LEN - ICMPV4_HEADER_LEN;
  const quoted = invoking.bytes.subarray(0, Math.min(invoking.bytes.length, room));
  let repr: Icmpv4Repr;
  switch (error.kind) {
    case 'timeExceeded':
      // RFC 792: code 0, "time to live exceeded in transit".
      repr = { kind: 'timeExceeded', code: 0, invoking: quoted };
      break;
    case 'netUnreachable':
      // RFC 1812 §5.2.7.1: no route to the destination network: code 0.
      repr = { kind: 'destUnreachable', code: 0, invoking: quoted };
      break;
    case 'portUnreachable':
      repr = { kind: 'destUnreachable', code: 3, invoking: quoted };
      break;
    case 'fragmentationNeeded':
      // RFC 1191 §4: code 4 with the next-hop MTU in the low 16 bits of bytes 4–7.
      repr = { kind: 'fragmentationNeeded', nextHopMtu: error.nextHopMtu, invoking: quoted };
      break;
  }
  return buildPacket(
    { src, dst: invoking.src, ttl: ROUTER_TTL, identification, dontFragment: false },
    { protocol: 'icmpv4', repr },
  );
}

/** The ICMPv6 errors the router sends. */
export type Icmpv6ErrorKind =
  | { kind: 'timeExceeded' }
  | { kind: 'noRoute' }
  | { kind: 'portUnreachable' }
  | { kind: 'packetTooBig'; mtu: number };

/**
 * Builds an ICMPv6 error about `invoking`, from the router's address `src` to the
 * invoking packet's source. RFC 4443 §2.4 (c): the message quotes as much of the
 * invoking packet as fits without exceeding the minimum IPv6 MTU (1280 bytes).
 */
export function buildIcmpv6Error(error: Icmpv6ErrorKind, invoking: Ipv6View, src: Uint8Array): Uint8Array {
  const room = IPV6_MIN_MTU - IPV6_HEADER_LEN - ICMPV6_HEADER_LEN;
  const quoted = invoking.bytes.subarray(0, Math.min(invoking.bytes.length, room));
  let repr: Icmpv6Repr;
  switch (error.kind) {
    case 'timeExceeded':
      // RFC 4443 §3.3: code 0, hop limit exceeded in transit.
      repr = { kind: 'timeExceeded', code: 0, invoking: quoted };
      break;
    case 'noRoute':
      // RFC 4443 §3.1: code 0, no route to destination.
      repr = { kind: 'destUnreachable', code: 0, invoking: quoted };
      break;
    case 'portUnreachable':
      repr = { kind: 'destUnreachable', code: 4, invoking: quoted };
      break;
    case 'packetTooBig':
      // RFC 4443 §3.2: the MTU of the next-hop link.
      repr = { kind: 'packetTooBig', mtu: error.mtu, invoking: quoted };
      break;
  }
  return buildPacket({ src, dst: invoking.src, ttl: ROUTER_TTL }, { protocol: 'icmpv6', repr });
}

/**
 * A token bucket limiting the ICMP errors the router originates: RFC 1812 §4.3.2.8
 * (SHOULD limit, configurable) and RFC 4443 §2.4 (f) (MUST limit, token bucket
 * suggested). `perSecond` tokens accrue per second up to `burst`.
 */
export class IcmpRateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly clock: Clock,
    readonly perSecond: number,
    readonly burst: number,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Takes a token if one is left; false means the error must not be sent. */
  take(): boolean {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSecond) / 1000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
