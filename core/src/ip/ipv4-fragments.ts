import { fold, sumBytes } from '../wire/checksum';
import { IPV4_HEADER_LEN, IPV4_MAX_PACKET_LEN, type Ipv4View } from '../wire/ipv4';
import type { Fragment } from './fragment-reassembler';

/** What IPv4 reassembly keeps of fragment 0: its header (options included) and the first 8 data bytes. */
export interface Ipv4FirstFragment {
  /** Header and up to 8 bytes of data: the header of the reassembled datagram, and RFC 792's quote. */
  headerAndPrefix: Uint8Array;
  headerLen: number;
}

/** RFC 791 §3.2: fragments belong together when source, destination, protocol and identification agree. */
export function ipv4FragmentKey(ip: Ipv4View): string {
  const s = ip.src;
  const d = ip.dst;
  return String.fromCharCode(
    (s[0]! << 8) | s[1]!,
    (s[2]! << 8) | s[3]!,
    (d[0]! << 8) | d[1]!,
    (d[2]! << 8) | d[3]!,
    ip.protocol,
    ip.identification,
  );
}

/** A parsed IPv4 fragment as the reassembler takes it. */
export function ipv4Fragment(ip: Ipv4View): Fragment<Ipv4FirstFragment> {
  const offset = ip.fragmentOffset;
  return {
    key: ipv4FragmentKey(ip),
    offset,
    data: ip.payload,
    more: ip.moreFragments,
    // The total length field bounds header plus data (RFC 791 §3.1); the header is at least 20 bytes.
    maxEnd: IPV4_MAX_PACKET_LEN - IPV4_HEADER_LEN,
    first:
      offset === 0
        ? { headerAndPrefix: ip.bytes.slice(0, Math.min(ip.bytes.length, ip.headerLen + 8)), headerLen: ip.headerLen }
        : undefined,
  };
}

/**
 * The whole datagram: fragment 0's header (RFC 791 §3.2: its options are the datagram's)
 * with MF and the offset cleared, the total length set and the checksum recomputed,
 * followed by the reassembled data. Undefined when it would exceed 65535 bytes.
 */
export function rebuildIpv4Datagram(first: Ipv4FirstFragment, data: Uint8Array): Uint8Array | undefined {
  const totalLen = first.headerLen + data.length;
  if (totalLen > IPV4_MAX_PACKET_LEN) return undefined;
  const packet = new Uint8Array(totalLen);
  packet.set(first.headerAndPrefix.subarray(0, first.headerLen), 0);
  packet.set(data, first.headerLen);
  packet[2] = totalLen >> 8;
  packet[3] = totalLen & 0xff;
  packet[6] = packet[6]! & 0xc0; // keep the reserved and DF bits; MF and the offset go
  packet[7] = 0;
  packet[10] = 0;
  packet[11] = 0;
  const checksum = ~fold(sumBytes(packet, 0, first.headerLen)) & 0xffff;
  packet[10] = checksum >> 8;
  packet[11] = checksum & 0xff;
  return packet;
}

/**
 * Cuts an IPv4 packet (DF clear) into fragments of at most `mtu` bytes (RFC 791 §3.2,
 * "Fragmentation"): each carries the header, a multiple of 8 data bytes but the last,
 * the right offset and MF. Fragment 0 keeps every option; the others keep only options
 * whose copied flag is set (RFC 791 §3.1). Undefined when the MTU leaves no room for 8
 * bytes of data.
 */
export function fragmentIpv4(packet: Ipv4View, mtu: number): Uint8Array[] | undefined {
  const firstHeader = packet.bytes.subarray(0, packet.headerLen);
  const laterHeader = headerWithCopiedOptions(packet);
  const data = packet.payload;
  const fragments: Uint8Array[] = [];
  const baseOffset = packet.fragmentOffset;
  const baseMore = packet.moreFragments;
  // A (bogus) fragment whose data would end past what a 13-bit offset in 8-byte units can address.
  if (baseOffset + data.length > 0xffff) return undefined;
  let at = 0;
  while (at < data.length) {
    const header = at === 0 ? firstHeader : laterHeader;
    const room = Math.floor((mtu - header.length) / 8) * 8;
    if (room < 8) return undefined;
    const length = Math.min(room, data.length - at);
    const last = at + length === data.length;
    fragments.push(buildFragment(header, data.subarray(at, at + length), baseOffset + at, !last || baseMore));
    at += length;
  }
  return fragments;
}

function buildFragment(header: Uint8Array, data: Uint8Array, offset: number, more: boolean): Uint8Array {
  const headerLen = header.length;
  const totalLen = headerLen + data.length;
  const f = new Uint8Array(totalLen);
  f.set(header, 0);
  f.set(data, headerLen);
  f[0] = 0x40 | (headerLen / 4);
  f[2] = totalLen >> 8;
  f[3] = totalLen & 0xff;
  const flagsAndOffset = (header[6]! & 0x80) | (more ? 0x20 : 0);
  f[6] = flagsAndOffset | ((offset / 8) >> 8);
  f[7] = (offset / 8) & 0xff;
  f[10] = 0;
  f[11] = 0;
  const checksum = ~fold(sumBytes(f, 0, headerLen)) & 0xffff;
  f[10] = checksum >> 8;
  f[11] = checksum & 0xff;
  return f;
}

/** The fixed header followed by the options with the copied flag (bit 0x80 of the type), padded to 4 bytes. */
function headerWithCopiedOptions(packet: Ipv4View): Uint8Array {
  const options = packet.options;
  const kept: number[] = [];
  for (let i = 0; i < options.length; ) {
    const type = options[i]!;
    if (type === 0) break; // End of Option List
    if (type === 1) {
      i++; // No Operation: not copied
      continue;
    }
    const length = options[i + 1];
    if (length === undefined || length < 2 || i + length > options.length) break; // malformed: keep what came before
    if (type & 0x80) for (let k = 0; k < length; k++) kept.push(options[i + k]!);
    i += length;
  }
  while (kept.length % 4 !== 0) kept.push(0);
  const header = new Uint8Array(IPV4_HEADER_LEN + kept.length);
  header.set(packet.bytes.subarray(0, IPV4_HEADER_LEN), 0);
  header.set(kept, IPV4_HEADER_LEN);
  return header;
}
