/**
 * Interop: capture files written by core/src/link must be read by Wireshark's own
 * parser (tshark) exactly as intended: addresses, ports, ICMP types, valid
 * checksums, frame count, and for pcapng the interface names, directions,
 * timestamps and snaplen truncation.
 *
 * tshark is a hard requirement of this test (it fails, never skips, without it).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import {
  FileSink,
  finish,
  internetChecksum,
  LinkBase,
  PcapngWriter,
  PcapTap,
  PcapWriter,
  pseudoHeaderSumV4,
  pseudoHeaderSumV6,
  sumBytes,
  VIRTUAL_CAPTURE_EPOCH_MS,
  VirtualClock,
} from '@nuse/core';

// ---- Packets, built by hand (RFC 791, 768, 792, 8200) -----------------------------

const IPPROTO_ICMP = 1;
const IPPROTO_UDP = 17;

function ipv4Address(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number));
}

function ipv6Address(groups: number[]): Uint8Array {
  const a = new Uint8Array(16);
  groups.forEach((g, i) => {
    a[2 * i] = g >>> 8;
    a[2 * i + 1] = g & 0xff;
  });
  return a;
}

function put16(b: Uint8Array, offset: number, v: number): void {
  b[offset] = v >>> 8;
  b[offset + 1] = v & 0xff;
}

/** An IPv4 header (RFC 791 §3.1, no options, DF set) in front of `payload`, with its header checksum. */
function ipv4(src: Uint8Array, dst: Uint8Array, protocol: number, payload: Uint8Array, id: number): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  p[0] = 0x45;
  put16(p, 2, p.length);
  put16(p, 4, id);
  put16(p, 6, 0x4000);
  p[8] = 64;
  p[9] = protocol;
  p.set(src, 12);
  p.set(dst, 16);
  put16(p, 10, internetChecksum(p, 0, 20));
  p.set(payload, 20);
  return p;
}

/** An IPv6 header (RFC 8200 §3) in front of `payload`. */
function ipv6(src: Uint8Array, dst: Uint8Array, nextHeader: number, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(40 + payload.length);
  p[0] = 0x60;
  put16(p, 4, payload.length);
  p[6] = nextHeader;
  p[7] = 64;
  p.set(src, 8);
  p.set(dst, 24);
  p.set(payload, 40);
  return p;
}

/** A UDP datagram (RFC 768) whose checksum covers `pseudoHeaderSum`; 0 is sent as 0xffff. */
function udp(srcPort: number, dstPort: number, data: Uint8Array, pseudoHeaderSum: (length: number) => number) {
  const u = new Uint8Array(8 + data.length);
  put16(u, 0, srcPort);
  put16(u, 2, dstPort);
  put16(u, 4, u.length);
  u.set(data, 8);
  put16(u, 6, finish(pseudoHeaderSum(u.length) + sumBytes(u)) || 0xffff);
  return u;
}

/** An ICMP echo request (type 8) or reply (type 0), RFC 792. */
function icmpEcho(type: 0 | 8, ident: number, seq: number, data: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + data.length);
  m[0] = type;
  put16(m, 4, ident);
  put16(m, 6, seq);
  m.set(data, 8);
  put16(m, 2, internetChecksum(m));
  return m;
}

const HOST_A = ipv4Address('192.0.2.1');
const HOST_B = ipv4Address('198.51.100.2');
const HOST_A6 = ipv6Address([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
const HOST_B6 = ipv6Address([0x2001, 0xdb8, 0, 0, 0, 0, 0, 2]);
const text = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s));

const udp4 = ipv4(
  HOST_A,
  HOST_B,
  IPPROTO_UDP,
  udp(40001, 40002, text('hello from nuse'), (len) => pseudoHeaderSumV4(HOST_A, HOST_B, IPPROTO_UDP, len)),
  1,
);
const echoRequest = ipv4(HOST_A, HOST_B, IPPROTO_ICMP, icmpEcho(8, 0x1234, 1, text('ping payload')), 2);
const echoReply = ipv4(HOST_B, HOST_A, IPPROTO_ICMP, icmpEcho(0, 0x1234, 1, text('ping payload')), 3);
const udp6 = ipv6(
  HOST_A6,
  HOST_B6,
  IPPROTO_UDP,
  udp(40003, 40004, text('over IPv6'), (len) => pseudoHeaderSumV6(HOST_A6, HOST_B6, IPPROTO_UDP, len)),
);
const bigUdp4 = ipv4(
  HOST_A,
  HOST_B,
  IPPROTO_UDP,
  udp(40005, 40006, new Uint8Array(200).fill(0x61), (len) => pseudoHeaderSumV4(HOST_A, HOST_B, IPPROTO_UDP, len)),
  4,
);

// ---- tshark -------------------------------------------------------------------------

const FIELDS = [
  'frame.number',
  'frame.time_epoch',
  'frame.len',
  'frame.cap_len',
  'frame.interface_name',
  'frame.packet_flags_direction',
  'ip.src',
  'ip.dst',
  'ip.checksum.status',
  'ipv6.src',
  'ipv6.dst',
  'udp.srcport',
  'udp.dstport',
  'udp.checksum.status',
  'icmp.type',
  'icmp.checksum.status',
  '_ws.malformed',
] as const;
type Frame = Record<(typeof FIELDS)[number], string>;

/** Runs tshark on a file and returns one object per frame, keyed by field name. */
function tsharkFrames(file: string): Frame[] {
  const args = [
    '-r',
    file,
    '-n',
    // Wireshark does not check checksums by default; these packets must be valid.
    '-o',
    'ip.check_checksum:TRUE',
    '-o',
    'udp.check_checksum:TRUE',
    '-T',
    'fields',
    '-E',
    'separator=/t',
    ...FIELDS.flatMap((f) => ['-e', f]),
  ];
  let out: string;
  try {
    out = execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new Error(
        'tshark is not installed, and this interop test requires it (it never skips). ' +
          'Install it with `sudo apt-get install -y tshark` (Debian/Ubuntu; answer "no" to non-root capture) ' +
          'or your distribution’s wireshark-cli package, then re-run.',
      );
    }
    throw new Error(`tshark failed to read ${file}: ${e.message}\n${e.stderr ?? ''}`);
  }
  return out
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const values = line.split('\t');
      return Object.fromEntries(FIELDS.map((f, i) => [f, values[i] ?? ''])) as Frame;
    });
}

/** Checksum status 1 is "Good" (2 would be "Unverified", 0 "Bad"). */
const GOOD = '1';

// ---- A minimal two-ended in-memory link, so the pcapng file comes from real taps -------

class WireEnd extends LinkBase {
  peer: WireEnd | undefined;
  constructor(
    name: string,
    private readonly clock: VirtualClock,
    private readonly delayMs: number,
  ) {
    super(name, 1500);
  }
  protected transmit(packet: Uint8Array): boolean {
    const peer = this.peer;
    if (peer === undefined) return false;
    this.clock.setTimer(this.delayMs, () => peer.deliver(packet));
    return true;
  }
}

function wire(clock: VirtualClock, name: string, delayMs: number): [WireEnd, WireEnd] {
  const a = new WireEnd(name, clock, delayMs);
  const b = new WireEnd(`${name}-peer`, clock, delayMs);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** Unix seconds as tshark prints frame.time_epoch (nanosecond digits). */
function epoch(virtualMs: number): string {
  const ns = BigInt(VIRTUAL_CAPTURE_EPOCH_MS) * 1_000_000n + BigInt(Math.round(virtualMs * 1e6));
  return `${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`;
}

describe('tshark reads our capture files', () => {
  let dir: string;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nuse-pcap-tshark-'));
  });

  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('classic pcap: IPv4 UDP, ICMP echo request and reply, IPv6 UDP, valid checksums', () => {
    const file = path.join(dir, 'sample.pcap');
    const writer = new PcapWriter(new FileSink(file));
    const id = writer.addInterface({ name: 'any' });
    [udp4, echoRequest, echoReply, udp6].forEach((p, i) => {
      writer.writePacket(id, 1_577_836_800 + i, 123_456_789, p);
    });
    writer.close();

    const frames = tsharkFrames(file);
    expect(frames).toHaveLength(4);
    expect(frames.map((f) => f['frame.number'])).toEqual(['1', '2', '3', '4']);
    // Microsecond resolution: the nanoseconds beyond µs are dropped.
    expect(frames.map((f) => f['frame.time_epoch'])).toEqual([
      '1577836800.123456000',
      '1577836801.123456000',
      '1577836802.123456000',
      '1577836803.123456000',
    ]);
    const [u4, req, rep, u6] = frames as [Frame, Frame, Frame, Frame];
    expect(u4).toMatchObject({
      'frame.len': String(udp4.length),
      'ip.src': '192.0.2.1',
      'ip.dst': '198.51.100.2',
      'ip.checksum.status': GOOD,
      'udp.srcport': '40001',
      'udp.dstport': '40002',
      'udp.checksum.status': GOOD,
      'icmp.type': '',
    });
    expect(req).toMatchObject({
      'ip.src': '192.0.2.1',
      'ip.dst': '198.51.100.2',
      'icmp.type': '8',
      'icmp.checksum.status': GOOD,
    });
    expect(rep).toMatchObject({
      'ip.src': '198.51.100.2',
      'ip.dst': '192.0.2.1',
      'icmp.type': '0',
      'icmp.checksum.status': GOOD,
    });
    expect(u6).toMatchObject({
      'ip.src': '',
      'ipv6.src': '2001:db8::1',
      'ipv6.dst': '2001:db8::2',
      'udp.srcport': '40003',
      'udp.dstport': '40004',
      'udp.checksum.status': GOOD,
    });
    // Classic pcap carries neither interface names nor directions.
    for (const f of frames) {
      expect(f['frame.interface_name']).toBe('');
      expect(f['frame.packet_flags_direction']).toBe('');
      expect(f['_ws.malformed']).toBe('');
    }
  });

  it('pcapng from PcapTaps on three links: interface names, directions, ns timestamps, snaplen', () => {
    const file = path.join(dir, 'sample.pcapng');
    const clock = new VirtualClock();
    const writer = new PcapngWriter(new FileSink(file));
    const [path0, peer0] = wire(clock, 'path0', 1.5);
    const [path1, peer1] = wire(clock, 'path1', 0.000_25);
    const tap0 = new PcapTap(path0, writer, { clock });
    new PcapTap(path1, writer, { clock });

    tap0.send(udp4); // t=0, outbound on path0
    tap0.send(echoRequest); // t=0, outbound on path0
    peer0.onReceive((p) => {
      if (p[9] === IPPROTO_ICMP) peer0.send(echoReply); // arrives at t=3
    });
    clock.advance(2);
    peer1.send(udp6); // arrives on path1 at t=2.00025
    clock.runUntilIdle();
    // A third interface, declared after packets were written (IDBs may come mid-section),
    // keeping only the IPv4 and UDP headers of each packet.
    const [path2] = wire(clock, 'path2', 1);
    const tap2 = new PcapTap(path2, writer, { clock, snaplen: 28, ownsWriter: true });
    clock.advance(1);
    tap2.send(bigUdp4); // t=4, outbound on path2, truncated
    tap2.close();

    const frames = tsharkFrames(file);
    expect(frames).toHaveLength(5);
    expect(frames.map((f) => f['frame.number'])).toEqual(['1', '2', '3', '4', '5']);
    expect(frames.map((f) => f['frame.time_epoch'])).toEqual([epoch(0), epoch(0), epoch(2.00025), epoch(3), epoch(4)]);
    expect(frames.map((f) => f['frame.interface_name'])).toEqual(['path0', 'path0', 'path1', 'path0', 'path2']);
    // epb_flags direction: 1 inbound, 2 outbound (pcapng §4.3.1).
    expect(frames.map((f) => Number(f['frame.packet_flags_direction']))).toEqual([2, 2, 1, 1, 2]);
    const [u4, req, u6, rep, big] = frames as [Frame, Frame, Frame, Frame, Frame];
    expect(u4).toMatchObject({
      'ip.src': '192.0.2.1',
      'udp.srcport': '40001',
      'udp.checksum.status': GOOD,
      'ip.checksum.status': GOOD,
    });
    expect(req).toMatchObject({ 'icmp.type': '8', 'icmp.checksum.status': GOOD });
    expect(u6).toMatchObject({ 'ipv6.src': '2001:db8::1', 'ipv6.dst': '2001:db8::2', 'udp.dstport': '40004' });
    expect(rep).toMatchObject({ 'ip.src': '198.51.100.2', 'icmp.type': '0', 'icmp.checksum.status': GOOD });
    expect(big).toMatchObject({
      'frame.len': String(bigUdp4.length),
      'frame.cap_len': '28',
      'ip.src': '192.0.2.1',
      'udp.srcport': '40005',
      'udp.dstport': '40006',
    });
    for (const f of [u4, req, u6, rep]) {
      expect(f['frame.cap_len']).toBe(f['frame.len']);
      expect(f['_ws.malformed']).toBe('');
    }
  });
});
