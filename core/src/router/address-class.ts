/**
 * Address classes a router must treat specially: what it never forwards and never
 * answers with an ICMP error. IPv4: RFC 1812 §4.2.2.11 and §5.3.7 ("Martian Address
 * Filtering"), RFC 1122 §3.2.1.3; IPv6: RFC 4291 §2.5 and §2.7.
 *
 * IPv4 addresses are 32-bit unsigned integers (see ipv4ToInt); IPv6 addresses are 16
 * bytes at an offset in a packet, so that nothing is copied on the forwarding path.
 */

/** 0.0.0.0/8: "this network" (RFC 1122 §3.2.1.3 (a), (b)). */
function isThisNetworkV4(a: number): boolean {
  return a >>> 24 === 0;
}

/** 127.0.0.0/8: loopback (RFC 1122 §3.2.1.3 (g)). */
export function isLoopbackV4(a: number): boolean {
  return a >>> 24 === 127;
}

/** 224.0.0.0/4: multicast (RFC 1112 §4, formerly class D). */
export function isMulticastV4(a: number): boolean {
  return a >>> 28 === 0xe;
}

/** 255.255.255.255: the limited broadcast address (RFC 919, RFC 1812 §5.3.5.1). */
export function isLimitedBroadcastV4(a: number): boolean {
  return a === 0xffffffff;
}

/** 240.0.0.0/4 other than the limited broadcast: reserved, formerly class E. */
function isReservedV4(a: number): boolean {
  return a >>> 28 === 0xf && a !== 0xffffffff;
}

/**
 * RFC 1812 §5.3.7: a router SHOULD NOT forward a packet whose source is on network 0,
 * MUST NOT forward one from 127/8, and must not forward one whose source is a
 * multicast, broadcast or class E address (§4.2.2.11: such a source is invalid).
 */
export function isMartianSourceV4(a: number): boolean {
  return isThisNetworkV4(a) || isLoopbackV4(a) || isMulticastV4(a) || isLimitedBroadcastV4(a) || isReservedV4(a);
}

/**
 * RFC 1812 §5.3.7: a router MUST NOT forward a packet to 0.0.0.0/8 or 127/8, and class
 * E destinations are invalid (§4.2.2.11 (d)). Multicast and broadcast destinations are
 * not martians but are not forwarded either (no multicast routing, §5.3.5.1).
 */
export function isMartianDestinationV4(a: number): boolean {
  return isThisNetworkV4(a) || isLoopbackV4(a) || isReservedV4(a);
}

/** ff00::/8 (RFC 4291 §2.7). */
export function isMulticastV6(bytes: Uint8Array, at: number): boolean {
  return bytes[at] === 0xff;
}

/** fe80::/10 (RFC 4291 §2.5.6): routers must not forward packets with link-local sources or destinations. */
export function isLinkLocalV6(bytes: Uint8Array, at: number): boolean {
  return bytes[at] === 0xfe && (bytes[at + 1]! & 0xc0) === 0x80;
}

/** :: (RFC 4291 §2.5.2): must never be a destination, nor the source of a forwarded packet. */
export function isUnspecifiedV6(bytes: Uint8Array, at: number): boolean {
  for (let i = 0; i < 16; i++) if (bytes[at + i] !== 0) return false;
  return true;
}

/** ::1 (RFC 4291 §2.5.3): "must never be sent outside a single node" and never forwarded. */
export function isLoopbackV6(bytes: Uint8Array, at: number): boolean {
  for (let i = 0; i < 15; i++) if (bytes[at + i] !== 0) return false;
  return bytes[at + 15] === 1;
}

/**
 * Why an IPv4 packet from `src` to `dst` must not be forwarded (nor answered with an
 * ICMP error), as a drop cause, or undefined when nothing is wrong with the addresses.
 */
export function unforwardableV4(src: number, dst: number): string | undefined {
  if (isMartianSourceV4(src)) return 'martian-source';
  if (isMartianDestinationV4(dst)) return 'martian-destination';
  if (isMulticastV4(dst)) return 'multicast';
  if (isLimitedBroadcastV4(dst)) return 'broadcast';
  return undefined;
}

/**
 * The same for IPv6 (addresses at 8 and 24 in `packet`): RFC 4291 §2.5.2, §2.5.3 and
 * §2.7 forbid unspecified, loopback and multicast sources; an unspecified or loopback
 * destination is never forwarded, nor multicast (no multicast routing). Link-local
 * scope is checked separately: a link-local destination may be the router itself.
 */
export function unforwardableV6(packet: Uint8Array): string | undefined {
  if (isUnspecifiedV6(packet, 8) || isLoopbackV6(packet, 8) || isMulticastV6(packet, 8)) return 'martian-source';
  if (isUnspecifiedV6(packet, 24) || isLoopbackV6(packet, 24)) return 'martian-destination';
  if (isMulticastV6(packet, 24)) return 'multicast';
  return undefined;
}
