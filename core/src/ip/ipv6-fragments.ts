import { IPV6_HEADER_LEN, IPV6_MAX_PAYLOAD_LEN, IPV6_MIN_MTU, type Ipv6View } from '../wire/ipv6';
import type { Fragment } from './fragment-reassembler';

const FRAGMENT_HEADER_LEN = 8;
/** RFC 4443 §2.4 (c): an ICMPv6 error quotes as much as fits in the minimum MTU. */
const MAX_QUOTE = IPV6_MIN_MTU - IPV6_HEADER_LEN - 8;

/** What IPv6 reassembly keeps of the first fragment (offset 0). */
export interface Ipv6FirstFragment {
  /** The unfragmentable part (fixed header and extension headers before the Fragment header) and the Fragment header. */
  headers: Uint8Array;
  /** The first fragment as received, cut to what an ICMPv6 error may quote. */
  quote: Uint8Array;
}

/** RFC 8200 §4.5: fragments belong together when source, destination and Fragment Identification agree. */
export function ipv6FragmentKey(ip: Ipv6View): string {
  let k = '';
  const s = ip.src;
  const d = ip.dst;
  for (let i = 0; i < 16; i += 2) k += String.fromCharCode((s[i]! << 8) | s[i + 1]!);
  for (let i = 0; i < 16; i += 2) k += String.fromCharCode((d[i]! << 8) | d[i + 1]!);
  const id = ip.fragmentIdentification;
  return k + String.fromCharCode(id >>> 16, id & 0xffff);
}

/** A parsed IPv6 fragment (a Fragment header with an offset or the M flag) as the reassembler takes it. */
export function ipv6Fragment(ip: Ipv6View): Fragment<Ipv6FirstFragment> {
  const offset = ip.fragmentOffset;
  const headersEnd = ip.fragmentHeaderOffset + FRAGMENT_HEADER_LEN;
  return {
    key: ipv6FragmentKey(ip),
    offset,
    data: ip.upperPayload,
    more: ip.moreFragments,
    // RFC 8200 §4.5: the reassembled payload length (everything after the fixed header) fits 16 bits.
    maxEnd: IPV6_MAX_PAYLOAD_LEN - (headersEnd - IPV6_HEADER_LEN),
    first:
      offset === 0
        ? { headers: ip.bytes.slice(0, headersEnd), quote: ip.bytes.slice(0, Math.min(ip.bytes.length, MAX_QUOTE)) }
        : undefined,
  };
}

/**
 * The whole packet (RFC 8200 §4.5 "reassembly"): the first fragment's unfragmentable
 * part, its Fragment header turned into an atomic one (offset 0, M clear, which the
 * parser walks through, RFC 6946), then the reassembled data; the payload length set.
 * Undefined when the payload would exceed 65535 bytes.
 */
export function rebuildIpv6Packet(first: Ipv6FirstFragment, data: Uint8Array): Uint8Array | undefined {
  const headersLen = first.headers.length;
  const payloadLen = headersLen - IPV6_HEADER_LEN + data.length;
  if (payloadLen > IPV6_MAX_PAYLOAD_LEN) return undefined;
  const packet = new Uint8Array(headersLen + data.length);
  packet.set(first.headers, 0);
  packet.set(data, headersLen);
  packet[4] = payloadLen >> 8;
  packet[5] = payloadLen & 0xff;
  const fragmentHeader = headersLen - FRAGMENT_HEADER_LEN;
  packet[fragmentHeader + 2] = 0;
  packet[fragmentHeader + 3] = 0;
  return packet;
}

/**
 * Cuts one of our own packets (a fixed header, no extension headers, as `buildPacket`
 * makes them) into fragments of at most `mtu` bytes (RFC 8200 §4.5: the fixed header is
 * the unfragmentable part; each fragment carries a Fragment header with the original Next
 * Header, and every piece but the last is a multiple of 8 bytes). Undefined when `mtu`
 * leaves no room for 8 bytes of data or the packet carries extension headers.
 */
export function fragmentIpv6(packet: Uint8Array, mtu: number, identification: number): Uint8Array[] | undefined {
  const nextHeader = packet[6]!;
  // Hop-by-hop (0), routing (43), fragment (44), destination options (60): not ours to cut.
  if ([0, 43, 44, 60].includes(nextHeader)) return undefined;
  const data = packet.subarray(IPV6_HEADER_LEN);
  const room = Math.floor((mtu - IPV6_HEADER_LEN - FRAGMENT_HEADER_LEN) / 8) * 8;
  if (room < 8) return undefined;
  const fragments: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += room) {
    const length = Math.min(room, data.length - at);
    const more = at + length < data.length;
    const f = new Uint8Array(IPV6_HEADER_LEN + FRAGMENT_HEADER_LEN + length);
    f.set(packet.subarray(0, IPV6_HEADER_LEN));
    const payloadLen = FRAGMENT_HEADER_LEN + length;
    f[4] = payloadLen >> 8;
    f[5] = payloadLen & 0xff;
    f[6] = 44; // a Fragment header follows
    const h = IPV6_HEADER_LEN;
    f[h] = nextHeader;
    f[h + 1] = 0;
    f[h + 2] = at >> 8;
    f[h + 3] = (at & 0xf8) | (more ? 1 : 0);
    f[h + 4] = (identification >>> 24) & 0xff;
    f[h + 5] = (identification >>> 16) & 0xff;
    f[h + 6] = (identification >>> 8) & 0xff;
    f[h + 7] = identification & 0xff;
    f.set(data.subarray(at, at + length), h + FRAGMENT_HEADER_LEN);
    fragments.push(f);
  }
  return fragments;
}
