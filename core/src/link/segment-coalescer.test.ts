import { parseIp } from '../wire/address';
import { internetChecksum, pseudoHeaderSumV4, pseudoHeaderSumV6, sumBytes } from '../wire/checksum';
import { buildPacket } from '../wire/packet';
import { TcpFlags, type TcpRepr } from '../wire/tcp';
import { type CoalescedPacket, SegmentCoalescer } from './segment-coalescer';

const MSS = 1000;

function segment(
  v6: boolean,
  seq: number,
  length: number,
  over: Partial<TcpRepr> & { ttl?: number; fill?: number } = {},
): Uint8Array {
  const { ttl, fill, ...tcp } = over;
  const payload = new Uint8Array(length);
  for (let i = 0; i < length; i++) payload[i] = (seq + i + (fill ?? 0)) & 0xff;
  const repr: TcpRepr = {
    srcPort: 40000,
    dstPort: 80,
    seq,
    ack: 777,
    flags: TcpFlags.ACK,
    window: 512,
    options: [{ kind: 'timestamps', tsVal: 11, tsEcr: 22 }],
    payload,
    ...tcp,
  } as TcpRepr;
  return buildPacket(
    {
      src: parseIp(v6 ? 'fd00::1' : '10.0.0.1'),
      dst: parseIp(v6 ? 'fd00::2' : '10.0.0.2'),
      ttl,
      dontFragment: true,
    },
    { protocol: 'tcp', repr },
  );
}

/**
 * What the kernel's GSO makes of a super-segment (tcp_gso_segment, inet_gso_segment):
 * the header repeated with each segment's sequence number and length, PSH only on the
 * last, the IPv4 Identification counting up, checksums computed in full.
 */
function kernelSegments(c: CoalescedPacket): Uint8Array[] {
  const p = c.packet;
  const v6 = p[0]! >> 4 === 6;
  const ipLen = v6 ? 40 : 20;
  const tcpLen = (p[ipLen + 12]! >> 4) * 4;
  const headerLen = ipLen + tcpLen;
  const data = p.subarray(headerLen);
  const seq0 = ((p[ipLen + 4]! << 24) | (p[ipLen + 5]! << 16) | (p[ipLen + 6]! << 8) | p[ipLen + 7]!) >>> 0;
  const id0 = (p[4]! << 8) | p[5]!;
  const out: Uint8Array[] = [];
  for (let at = 0, i = 0; at < data.length; at += c.gsoSize, i++) {
    const chunk = data.subarray(at, Math.min(data.length, at + c.gsoSize));
    const s = new Uint8Array(headerLen + chunk.length);
    s.set(p.subarray(0, headerLen));
    s.set(chunk, headerLen);
    const seq = (seq0 + at) >>> 0;
    s.set([seq >>> 24, (seq >>> 16) & 0xff, (seq >>> 8) & 0xff, seq & 0xff], ipLen + 4);
    if (at + c.gsoSize < data.length) s[ipLen + 13] = s[ipLen + 13]! & ~TcpFlags.PSH;
    const tcpLength = s.length - ipLen;
    if (v6) {
      s[4] = tcpLength >> 8;
      s[5] = tcpLength & 0xff;
    } else {
      s[2] = s.length >> 8;
      s[3] = s.length & 0xff;
      s[4] = ((id0 + i) >> 8) & 0xff;
      s[5] = (id0 + i) & 0xff;
      s[10] = 0;
      s[11] = 0;
      const ipSum = internetChecksum(s, 0, 20);
      s[10] = ipSum >> 8;
      s[11] = ipSum & 0xff;
    }
    s[ipLen + 16] = 0;
    s[ipLen + 17] = 0;
    const pseudo = v6
      ? pseudoHeaderSumV6(s.subarray(8, 24), s.subarray(24, 40), 6, tcpLength)
      : pseudoHeaderSumV4(s.subarray(12, 16), s.subarray(16, 20), 6, tcpLength);
    let total = pseudo + sumBytes(s, ipLen, tcpLength);
    while (total > 0xffff) total = (total & 0xffff) + Math.floor(total / 0x10000);
    const tcpSum = ~total & 0xffff;
    s[ipLen + 16] = tcpSum >> 8;
    s[ipLen + 17] = tcpSum & 0xff;
    out.push(s);
  }
  return out;
}

/** The packet with the IPv4 Identification and header checksum zeroed (GSO numbers them its own way). */
function withoutIpId(p: Uint8Array): Uint8Array {
  const q = p.slice();
  if (q[0]! >> 4 === 4) {
    q[4] = q[5] = q[10] = q[11] = 0;
  }
  return q;
}

function run(packets: Uint8Array[]): CoalescedPacket[] {
  const c = new SegmentCoalescer();
  for (const p of packets) c.add(p);
  return c.take();
}

describe('SegmentCoalescer', () => {
  test.each([false, true])(
    'v6=%s: a run of full segments and a short PSH one → one super-segment the kernel cuts back exactly',
    (v6) => {
      const sent: Uint8Array[] = [];
      for (let i = 0; i < 10; i++) sent.push(segment(v6, 5000 + i * MSS, MSS));
      sent.push(segment(v6, 5000 + 10 * MSS, 321, { flags: TcpFlags.ACK | TcpFlags.PSH }));
      const out = run(sent);
      expect(out.map((c) => [c.gsoSize, c.segments])).toEqual([[MSS, 11]]);
      const cut = kernelSegments(out[0]!);
      expect(cut.map(withoutIpId)).toEqual(sent.map(withoutIpId));
    },
  );

  test('sequence numbers that wrap around 2^32 still join', () => {
    const start = 2 ** 32 - 1500;
    const sent = [0, 1, 2].map((i) => segment(false, (start + i * MSS) >>> 0, MSS));
    const out = run(sent);
    expect(out).toHaveLength(1);
    expect(kernelSegments(out[0]!).map(withoutIpId)).toEqual(sent.map(withoutIpId));
  });

  test('what GSO would not rebuild exactly stays apart, in order', () => {
    const a = segment(false, 1000, MSS);
    const cases: [string, Uint8Array][] = [
      ['another ACK number', segment(false, 2000, MSS, { ack: 778 })],
      ['another window', segment(false, 2000, MSS, { window: 511 })],
      ['another timestamp', segment(false, 2000, MSS, { options: [{ kind: 'timestamps', tsVal: 12, tsEcr: 22 }] })],
      ['a gap in sequence', segment(false, 2001, MSS)],
      ['a FIN', segment(false, 2000, MSS, { flags: TcpFlags.ACK | TcpFlags.FIN })],
      ['another TTL', segment(false, 2000, MSS, { ttl: 5 })],
      ['a larger segment', segment(false, 2000, MSS + 1)],
      ['another port', segment(false, 2000, MSS, { srcPort: 40001 })],
    ];
    for (const [what, b] of cases) {
      const out = run([a, b]);
      expect({ what, out: out.map((c) => c.gsoSize) }).toEqual({ what, out: [0, 0] });
      expect(out.map((c) => c.packet)).toEqual([a, b]);
    }
  });

  test('a short or PSH segment ends its group; pure ACKs, SYNs and non-TCP pass through as they are', () => {
    const pureAck = segment(false, 9000, 0);
    const syn = segment(false, 1, 0, { flags: TcpFlags.SYN });
    const udp = buildPacket(
      { src: parseIp('10.0.0.1'), dst: parseIp('10.0.0.2') },
      { protocol: 'udp', repr: { srcPort: 1, dstPort: 2, payload: new Uint8Array(10) } },
    );
    const g1 = [segment(false, 1000, MSS), segment(false, 2000, 500)];
    const g2 = [segment(false, 2500, MSS), segment(false, 3500, MSS)];
    const out = run([pureAck, syn, ...g1, ...g2, udp]);
    expect(out.map((c) => [c.gsoSize, c.segments])).toEqual([
      [0, 1],
      [0, 1],
      [MSS, 2],
      [MSS, 2],
      [0, 1],
    ]);
    expect(out[0]!.packet).toBe(pureAck);
    expect(out[4]!.packet).toBe(udp);
  });

  test('at most 64 segments and 65535 bytes per super-segment', () => {
    const many = Array.from({ length: 130 }, (_, i) => segment(false, i * 500, 500));
    expect(run(many).map((c) => c.segments)).toEqual([64, 64, 2]);
    const big = Array.from({ length: 60 }, (_, i) => segment(false, i * 1400, 1400));
    const out = run(big);
    for (const c of out) expect(c.packet.length).toBeLessThanOrEqual(65_535);
    expect(out.reduce((n, c) => n + c.segments, 0)).toBe(60);
  });

  test('a lone segment is written as it is', () => {
    const a = segment(true, 1, MSS);
    expect(run([a])).toEqual([{ packet: a, gsoSize: 0, segments: 1 }]);
  });
});
