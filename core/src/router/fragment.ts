/**
 * IPv4 fragmentation by a router (RFC 791 §2.3 and §3.2 "Fragmentation", RFC 1812
 * §4.2.2.7 and §5.2.6): a packet without DF that is larger than the next link's MTU is
 * cut into fragments whose data lengths are multiples of 8 bytes. The first fragment
 * keeps every option; later ones only the options whose "copied" flag is set (RFC 791
 * §3.1). A packet that is itself a fragment is cut further: offsets add up, and only
 * the last piece keeps the original MF flag. IPv6 routers never fragment (RFC 8200 §5).
 */

import { internetChecksum } from '../wire/checksum';
import { IPV4_HEADER_LEN, type Ipv4View } from '../wire/ipv4';

const FLAG_MORE_FRAGMENTS = 0x2000;
const FLAG_DONT_FRAGMENT = 0x4000;

/**
 * The options to repeat in every fragment after the first: those whose type has the
 * copied flag (0x80), padded with zeros (EOL) to a multiple of 4 bytes. A malformed
 * option list is copied up to the bad option, which cannot be delimited.
 */
export function copiedOptions(options: Uint8Array): Uint8Array {
  const copied: number[] = [];
  let at = 0;
  while (at < options.length) {
    const type = options[at]!;
    if (type === 0) break; // End of Option List (copied flag clear)
    if (type === 1) {
      at++; // No Operation (copied flag clear)
      continue;
    }
    if (at + 1 >= options.length) break;
    const length = options[at + 1]!;
    if (length < 2 || at + length > options.length) break;
    if ((type & 0x80) !== 0) for (let i = at; i < at + length; i++) copied.push(options[i]!);
    at += length;
  }
  while (copied.length % 4 !== 0) copied.push(0);
  return Uint8Array.from(copied);
}

/**
 * Cuts `ip` (already prepared for the next hop: TTL decremented) into fragments of at
 * most `mtu` bytes. The caller has checked that DF is clear and that the packet is
 * larger than `mtu`; `mtu` is at least 68 (RFC 791: every module must forward a
 * 68-byte datagram), so every fragment carries at least 8 bytes of data. Returns no
 * fragments for a packet whose data would end beyond the 65,535 bytes an offset can
 * address (a bogus fragment: the caller drops it).
 */
export function fragmentIpv4(ip: Ipv4View, mtu: number): Uint8Array[] {
  const packet = ip.bytes;
  const firstHeaderLen = ip.headerLen;
  const payload = ip.payload;
  const baseOffset = ip.fragmentOffset;
  const lastHasMore = ip.moreFragments;
  if (baseOffset + payload.length > 0xffff) return [];
  const laterOptions = copiedOptions(ip.options);
  const laterHeaderLen = IPV4_HEADER_LEN + laterOptions.length;

  const fragments: Uint8Array[] = [];
  let done = 0;
  while (done < payload.length) {
    const first = done === 0;
    const headerLen = first ? firstHeaderLen : laterHeaderLen;
    // RFC 791 §3.2: NFB, the number of 8-byte blocks that fit after the header.
    const room = ((mtu - headerLen) >> 3) << 3;
    if (room < 8) return []; // no room for data: the caller counts the drop
    const dataLen = Math.min(room, payload.length - done);
    const isLast = done + dataLen >= payload.length;
    const fragment = new Uint8Array(headerLen + dataLen);
    fragment.set(packet.subarray(0, IPV4_HEADER_LEN), 0);
    if (first) fragment.set(ip.options, IPV4_HEADER_LEN);
    else fragment.set(laterOptions, IPV4_HEADER_LEN);
    fragment.set(payload.subarray(done, done + dataLen), headerLen);

    fragment[0] = 0x40 | (headerLen >> 2);
    const totalLen = headerLen + dataLen;
    fragment[2] = totalLen >> 8;
    fragment[3] = totalLen & 0xff;
    const more = isLast ? lastHasMore : true;
    // DF is clear (or we would not be here); the reserved bit is sent as zero.
    const flagsAndOffset = (more ? FLAG_MORE_FRAGMENTS : 0) | ((baseOffset + done) >> 3);
    fragment[6] = (flagsAndOffset >> 8) & ~(FLAG_DONT_FRAGMENT >> 8);
    fragment[7] = flagsAndOffset & 0xff;
    fragment[10] = 0;
    fragment[11] = 0;
    const checksum = internetChecksum(fragment, 0, headerLen);
    fragment[10] = checksum >> 8;
    fragment[11] = checksum & 0xff;
    fragments.push(fragment);
    done += dataLen;
  }
  return fragments;
}
