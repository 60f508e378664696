/**
 * Joins consecutive TCP segments of one flow into a super-segment that the kernel cuts
 * back into the same segments (generic segmentation offload through a tun opened with
 * IFF_VNET_HDR): one system call and one trip through the kernel's stack for dozens of
 * segments, instead of one each.
 *
 * Only segments the kernel's TCP GSO rebuilds exactly are joined: same addresses, ports,
 * TTL/hop limit and TOS/traffic class, IPv4 without options and not fragmented, the same
 * TCP header apart from the sequence number and the checksum (same ACK number, window
 * and options — timestamps included), ACK-only flags except PSH on the last segment,
 * contiguous sequence numbers, every segment but the last exactly `gsoSize` bytes of
 * payload and the last at most that. The kernel gives every segment the super-segment's
 * header with its own sequence number and length, PSH only on the last, and increments
 * the IPv4 Identification per segment (tcp_gso_segment, inet_gso_segment).
 */

import { fold, pseudoHeaderSumV4, pseudoHeaderSumV6 } from '../wire/checksum';

/** What goes to the device: a packet, or a super-segment with the payload size of its segments. */
export interface CoalescedPacket {
  readonly packet: Uint8Array;
  /** 0 for a plain packet; else the payload bytes per segment (the MSS the kernel cuts at). */
  readonly gsoSize: number;
  /** How many packets this stands for. */
  readonly segments: number;
}

/** The kernel cuts at most this many segments from one super-segment (GSO_MAX_SEGS is larger; this keeps bursts short). */
const MAX_SEGMENTS = 64;
const MAX_IP_PACKET = 65_535;
const TCP = 6;
const ACK = 0x10;
const PSH = 0x08;

interface Group {
  readonly first: Uint8Array;
  readonly ipLen: number;
  readonly tcpLen: number;
  readonly gsoSize: number;
  readonly parts: Uint8Array[];
  payloadBytes: number;
  nextSeq: number;
  /** A segment shorter than gsoSize, or with PSH, ended the group. */
  closed: boolean;
}

/**
 * Collects packets in order and hands back what to write: runs of joinable segments as
 * super-segments, everything else as it came.
 */
export class SegmentCoalescer {
  private readonly out: CoalescedPacket[] = [];
  private group: Group | undefined;

  add(packet: Uint8Array): void {
    const g = this.group;
    if (g !== undefined && !g.closed && this.joins(g, packet)) return;
    this.endGroup();
    this.group = this.startGroup(packet);
    if (this.group === undefined) this.out.push({ packet, gsoSize: 0, segments: 1 });
  }

  /** Everything collected since the last call, in order. */
  take(): CoalescedPacket[] {
    this.endGroup();
    return this.out.splice(0);
  }

  private startGroup(packet: Uint8Array): Group | undefined {
    const shape = tcpShape(packet);
    if (shape === undefined) return undefined;
    const { ipLen, tcpLen } = shape;
    const payload = packet.length - ipLen - tcpLen;
    const flags = packet[ipLen + 13]!;
    if (payload === 0 || (flags & ~PSH) !== ACK) return undefined;
    return {
      first: packet,
      ipLen,
      tcpLen,
      gsoSize: payload,
      parts: [packet],
      payloadBytes: payload,
      nextSeq: (readU32(packet, ipLen + 4) + payload) >>> 0,
      closed: (flags & PSH) !== 0,
    };
  }

  private joins(g: Group, p: Uint8Array): boolean {
    const { first, ipLen, tcpLen } = g;
    const headerLen = ipLen + tcpLen;
    if (p.length <= headerLen || g.parts.length >= MAX_SEGMENTS) return false;
    const payload = p.length - headerLen;
    if (payload > g.gsoSize || headerLen + g.payloadBytes + payload > MAX_IP_PACKET) return false;
    if (p[0] !== first[0]) return false; // version and IPv4 header length
    if (ipLen === 20) {
      // TOS, protocol, addresses, flags/fragment offset, TTL: as the first's.
      if (p[1] !== first[1] || p[6] !== first[6] || p[7] !== first[7] || p[8] !== first[8] || p[9] !== first[9])
        return false;
      if (!sameBytes(p, first, 12, 20)) return false;
    } else {
      // Traffic class and flow label, next header, hop limit, addresses.
      if (!sameBytes(p, first, 0, 4) || p[6] !== first[6] || p[7] !== first[7] || !sameBytes(p, first, 8, 40))
        return false;
    }
    if (((p[ipLen + 12]! >> 4) & 0x0f) * 4 !== tcpLen) return false;
    const flags = p[ipLen + 13]!;
    if ((flags & ~PSH) !== ACK) return false;
    // Ports, then ACK number, data offset, window, urgent pointer, options: all as the first's.
    if (!sameBytes(p, first, ipLen, ipLen + 4) || !sameBytes(p, first, ipLen + 8, ipLen + 13)) return false;
    if (!sameBytes(p, first, ipLen + 14, ipLen + 16) || !sameBytes(p, first, ipLen + 18, headerLen)) return false;
    if (readU32(p, ipLen + 4) !== g.nextSeq) return false;
    g.parts.push(p);
    g.payloadBytes += payload;
    g.nextSeq = (g.nextSeq + payload) >>> 0;
    if (payload < g.gsoSize || (flags & PSH) !== 0) g.closed = true;
    return true;
  }

  private endGroup(): void {
    const g = this.group;
    this.group = undefined;
    if (g === undefined) return;
    if (g.parts.length === 1) {
      this.out.push({ packet: g.first, gsoSize: 0, segments: 1 });
      return;
    }
    this.out.push({ packet: superSegment(g), gsoSize: g.gsoSize, segments: g.parts.length });
  }
}

/** IPv4 (no options, not a fragment) or IPv6 (no extension headers) carrying TCP; undefined otherwise. */
function tcpShape(p: Uint8Array): { ipLen: number; tcpLen: number } | undefined {
  if (p.length < 40) return undefined;
  const version = p[0]! >> 4;
  let ipLen: number;
  if (version === 4) {
    if (p[0] !== 0x45 || p[9] !== TCP) return undefined;
    // MF clear and offset zero (DF may be set).
    if ((p[6]! & 0x3f) !== 0 || p[7] !== 0) return undefined;
    if (((p[2]! << 8) | p[3]!) !== p.length) return undefined;
    ipLen = 20;
  } else if (version === 6) {
    if (p[6] !== TCP || ((p[4]! << 8) | p[5]!) !== p.length - 40) return undefined;
    ipLen = 40;
  } else {
    return undefined;
  }
  if (p.length < ipLen + 20) return undefined;
  const tcpLen = (p[ipLen + 12]! >> 4) * 4;
  if (tcpLen < 20 || p.length < ipLen + tcpLen) return undefined;
  return { ipLen, tcpLen };
}

/** The group as one packet: the first segment's headers, every payload, lengths and checksums set for GSO. */
function superSegment(g: Group): Uint8Array {
  const headerLen = g.ipLen + g.tcpLen;
  const total = headerLen + g.payloadBytes;
  const out = new Uint8Array(total);
  out.set(g.first.subarray(0, headerLen), 0);
  let at = headerLen;
  for (const part of g.parts) {
    out.set(part.subarray(headerLen), at);
    at += part.length - headerLen;
  }
  const last = g.parts[g.parts.length - 1]!;
  out[g.ipLen + 13] = last[g.ipLen + 13]!; // PSH as the last segment had it
  const tcpLength = total - g.ipLen;
  let pseudo: number;
  if (g.ipLen === 20) {
    out[2] = total >> 8;
    out[3] = total & 0xff;
    out[10] = 0;
    out[11] = 0;
    const sum = ipv4HeaderChecksum(out);
    out[10] = sum >> 8;
    out[11] = sum & 0xff;
    pseudo = pseudoHeaderSumV4(out.subarray(12, 16), out.subarray(16, 20), TCP, tcpLength);
  } else {
    out[4] = tcpLength >> 8;
    out[5] = tcpLength & 0xff;
    pseudo = pseudoHeaderSumV6(out.subarray(8, 24), out.subarray(24, 40), TCP, tcpLength);
  }
  // NEEDS_CSUM: the field holds the pseudo-header sum, folded and not complemented; the
  // kernel adds the sum of each segment's TCP header and payload.
  const partial = fold(pseudo);
  out[g.ipLen + 16] = partial >> 8;
  out[g.ipLen + 17] = partial & 0xff;
  return out;
}

function ipv4HeaderChecksum(p: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
  return ~fold(sum) & 0xffff;
}

function readU32(p: Uint8Array, at: number): number {
  return ((p[at]! << 24) | (p[at + 1]! << 16) | (p[at + 2]! << 8) | p[at + 3]!) >>> 0;
}

function sameBytes(a: Uint8Array, b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (a[i] !== b[i]) return false;
  return true;
}
