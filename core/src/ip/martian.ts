/**
 * Addresses a packet may not come from (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7, RFC 4291
 * §2.5.3 and §2.7): such packets are dropped silently and counted, never answered.
 */

import type { Prefix } from '../wire/address';

/** Not unspecified, multicast (224/4, ff00::/8) or the limited broadcast address. */
export function isUnicast(a: Uint8Array): boolean {
  // Runs for every segment: plain loops, no closures.
  let zero = true;
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) zero = false;
  if (zero) return false;
  if (a.length === 4) {
    if ((a[0]! & 0xf0) === 0xe0) return false;
    return !(a[0] === 0xff && a[1] === 0xff && a[2] === 0xff && a[3] === 0xff);
  }
  return a[0] !== 0xff;
}

/**
 * Whether `src` is not a valid source for a packet arriving on an interface whose
 * prefix is `onLink`: for IPv4, "this network" 0/8, loopback 127/8, multicast 224/4,
 * reserved 240/4 (with the limited broadcast), and the directed broadcast of the
 * interface's own prefix; for IPv6, unspecified ::, loopback ::1, multicast ff00::/8
 * and IPv4-mapped addresses (which never appear on the wire, RFC 4942 §2.2).
 */
export function isMartianSource(src: Uint8Array, onLink: Prefix): boolean {
  if (src.length === 4) {
    const first = src[0]!;
    if (first === 0 || first === 127 || first >= 224) return true;
    return isDirectedBroadcast(src, onLink);
  }
  if (src[0] === 0xff) return true;
  let zeroPrefix = true;
  for (let i = 0; i < 10; i++) if (src[i] !== 0) zeroPrefix = false;
  if (!zeroPrefix) return false;
  const tail = src.subarray(10);
  if (tail[0] === 0xff && tail[1] === 0xff) return true; // ::ffff:0:0/96, IPv4-mapped
  // :: and ::1
  for (let i = 0; i < 5; i++) if (tail[i] !== 0) return false;
  return tail[5] === 0 || tail[5] === 1;
}

/** The all-ones host part of an IPv4 prefix of /30 or shorter (a /31 has none: RFC 3021). */
export function isDirectedBroadcast(address: Uint8Array, prefix: Prefix): boolean {
  if (address.length !== 4 || prefix.family !== 4 || prefix.length > 30 || !prefix.contains(address)) return false;
  for (let bit = prefix.length; bit < 32; bit++) {
    if (((address[bit >> 3]! >> (7 - (bit & 7))) & 1) === 0) return false;
  }
  return true;
}
