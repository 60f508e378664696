import { WireEnd } from '../link/sim-link';
import { VirtualClock } from '../time/virtual-clock';
import { Random } from '../util/random';
import { parseIp } from '../wire/address';
import { Icmpv4Repr, Icmpv4View } from '../wire/icmpv4';
import { Icmpv6Repr, Icmpv6View } from '../wire/icmpv6';
import { IpProtocol } from '../wire/ip-protocol';
import { Ipv4View } from '../wire/ipv4';
import { Ipv6View } from '../wire/ipv6';
import { buildPacket, type UpperRepr } from '../wire/packet';
import type { IcmpErrorReport } from './icmp-error';
import { IpLayer, type IpLayerOptions } from './ip-layer';
import { fragmentIpv4 } from './ipv4-fragments';

const US4 = parseIp('10.0.0.2');
const PEER4 = parseIp('10.0.0.1');
const US6 = parseIp('fd00::2');
const PEER6 = parseIp('fd00::1');

/** Our IP layer on one end of a wire; the test is the host at the other end, sending raw packets. */
function setup(opts: IpLayerOptions & { mtu?: number } = {}) {
  const clock = new VirtualClock();
  const [ours, peer] = WireEnd.pair(clock, opts.mtu ?? 1500, ['ours', 'peer']);
  const [ours6, peer6] = WireEnd.pair(clock, opts.mtu ?? 1500, ['ours6', 'peer6']);
  const ip = new IpLayer(clock, opts);
  ip.addInterface(ours, '10.0.0.2/24', 'eth0');
  ip.addInterface(ours6, 'fd00::2/64', 'eth1');
  const received: Uint8Array[] = [];
  peer.onReceive((p) => received.push(p));
  peer6.onReceive((p) => received.push(p));
  const send = (packet: Uint8Array): void => {
    (packet[0]! >> 4 === 4 ? peer : peer6).send(packet);
    clock.runUntilIdle({ until: clock.now() + 1 });
  };
  return { clock, ip, received, send };
}

function echoRequest(v6: boolean, data: Uint8Array, identifier = 0x1234, sequence = 7): UpperRepr {
  return v6
    ? { protocol: 'icmpv6', repr: { kind: 'echoRequest', identifier, sequence, data } }
    : { protocol: 'icmpv4', repr: { kind: 'echoRequest', identifier, sequence, data } };
}

/** The ICMP message of a received packet (IPv4 fragments reassembled by hand: ours are well formed). */
function icmpOf(packets: Uint8Array[]): { src: Uint8Array; dst: Uint8Array; repr: Icmpv4Repr | Icmpv6Repr } {
  const first = packets[0]!;
  if (first[0]! >> 4 === 6) {
    const ip = Ipv6View.parse(first);
    return { src: ip.src, dst: ip.dst, repr: Icmpv6Repr.parse(Icmpv6View.parse(ip.upperPayload), ip.src, ip.dst) };
  }
  const views = packets.map((p) => Ipv4View.parse(p)).sort((a, b) => a.fragmentOffset - b.fragmentOffset);
  const payload = Buffer.concat(views.map((v) => v.payload));
  return { src: views[0]!.src, dst: views[0]!.dst, repr: Icmpv4Repr.parse(Icmpv4View.parse(payload)) };
}

/** Builds an IPv6 packet carrying `upper` in fragments of `size` bytes (RFC 8200 §4.5). */
function ipv6Fragments(whole: Uint8Array, size: number, id: number): Uint8Array[] {
  const ip = Ipv6View.parse(whole);
  const data = ip.upperPayload;
  const out: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += size) {
    const end = Math.min(data.length, at + size);
    const more = end < data.length;
    const p = new Uint8Array(48 + end - at);
    p.set(whole.subarray(0, 40));
    const payloadLen = 8 + end - at;
    p[4] = payloadLen >> 8;
    p[5] = payloadLen & 0xff;
    p[6] = IpProtocol.IPV6_FRAGMENT;
    p.set([ip.upperProtocol, 0, at >> 8, (at & 0xf8) | (more ? 1 : 0), 0, 0, id >> 8, id & 0xff], 40);
    p.set(data.subarray(at, end), 48);
    out.push(p);
  }
  return out;
}

describe('IpLayer: ICMP echo (RFC 792, RFC 1122 §3.2.2.6, RFC 4443 §4.2)', () => {
  test.each([false, true])(
    'v6=%s: an echo request to our address is answered with the same id, sequence, data',
    (v6) => {
      const { ip, received, send } = setup();
      const data = new Random(1).fill(new Uint8Array(56));
      send(buildPacket({ src: v6 ? PEER6 : PEER4, dst: v6 ? US6 : US4 }, echoRequest(v6, data)));
      expect(received).toHaveLength(1);
      const { src, dst, repr } = icmpOf(received);
      expect(Buffer.from(src).equals(Buffer.from(v6 ? US6 : US4))).toBe(true);
      expect(Buffer.from(dst).equals(Buffer.from(v6 ? PEER6 : PEER4))).toBe(true);
      expect(repr).toMatchObject({ kind: 'echoReply', identifier: 0x1234, sequence: 7 });
      expect(Buffer.from((repr as { data: Uint8Array }).data).equals(Buffer.from(data))).toBe(true);
      expect(ip.icmp.counters).toMatchObject({ echoRequestsIn: 1, echoRepliesOut: 1 });
    },
  );

  test('an echo request to an address that is not ours is not answered (counted not-for-us)', () => {
    const { ip, received, send } = setup();
    send(buildPacket({ src: PEER4, dst: parseIp('10.0.0.99') }, echoRequest(false, new Uint8Array(8))));
    send(buildPacket({ src: PEER4, dst: parseIp('10.0.0.255') }, echoRequest(false, new Uint8Array(8))));
    expect(received).toHaveLength(0);
    expect(ip.drops['not-for-us']).toBe(2);
  });

  test('IPv4: a 4000-byte echo request in fragments is reassembled and answered in fragments', () => {
    const { ip, received, send } = setup();
    const data = new Random(2).fill(new Uint8Array(4000));
    const request = buildPacket(
      { src: PEER4, dst: US4, dontFragment: false, identification: 99 },
      echoRequest(false, data),
    );
    const fragments = fragmentIpv4(Ipv4View.parse(request), 1500)!;
    expect(fragments).toHaveLength(3);
    for (const f of [fragments[2]!, fragments[0]!, fragments[1]!]) send(f);
    expect(ip.counters.datagramsReassembled).toBe(1);
    // The 4028-byte reply does not fit 1500 either: it goes out in fragments, DF clear, as Linux sends it.
    expect(received.length).toBe(3);
    for (const p of received) expect(p.length).toBeLessThanOrEqual(1500);
    const { repr } = icmpOf(received);
    expect(repr.kind).toBe('echoReply');
    expect(Buffer.from((repr as { data: Uint8Array }).data).equals(Buffer.from(data))).toBe(true);
    expect(ip.counters.fragmentsOut).toBe(3);
  });

  test('IPv6: an echo request in fragments is reassembled and answered', () => {
    const { ip, received, send } = setup();
    const data = new Random(3).fill(new Uint8Array(1200));
    const whole = buildPacket({ src: PEER6, dst: US6 }, echoRequest(true, data, 5, 6));
    for (const f of ipv6Fragments(whole, 504, 77).reverse()) send(f);
    expect(ip.counters.datagramsReassembled).toBe(1);
    const { repr } = icmpOf(received);
    expect(repr).toMatchObject({ kind: 'echoReply', identifier: 5, sequence: 6 });
    expect(Buffer.from((repr as { data: Uint8Array }).data).equals(Buffer.from(data))).toBe(true);
  });

  test('IPv6: an echo request larger than the MTU is answered in fragments, data entire (RFC 4443 §4.2)', () => {
    const { ip, received, send } = setup();
    const data = new Random(4).fill(new Uint8Array(3000));
    const whole = buildPacket({ src: PEER6, dst: US6 }, echoRequest(true, data, 9, 10));
    for (const f of ipv6Fragments(whole, 1232, 78)) send(f);
    expect(received.length).toBe(3);
    for (const f of received) expect(f.length).toBeLessThanOrEqual(1500);
    // Reassemble by hand: every fragment is a fixed header, a Fragment header, then data.
    const pieces = received
      .map((f) => ({ offset: ((f[42]! << 8) | f[43]!) & 0xfff8, more: (f[43]! & 1) === 1, data: f.subarray(48) }))
      .sort((a, b) => a.offset - b.offset);
    expect(pieces.map((p) => p.more)).toEqual([true, true, false]);
    expect(new Set(received.map((f) => Buffer.from(f.subarray(44, 48)).toString('hex'))).size).toBe(1);
    const upper = Buffer.concat(pieces.map((p) => p.data));
    const reply = Icmpv6Repr.parse(Icmpv6View.parse(upper), US6, PEER6);
    expect(reply).toMatchObject({ kind: 'echoReply', identifier: 9, sequence: 10 });
    expect(Buffer.from((reply as { data: Uint8Array }).data).equals(Buffer.from(data))).toBe(true);
    expect(ip.counters.fragmentsOut).toBe(3);
  });

  test('IPv6: an atomic fragment (offset 0, M clear; RFC 6946) is processed at once', () => {
    const { ip, received, send } = setup();
    const whole = buildPacket({ src: PEER6, dst: US6 }, echoRequest(true, new Uint8Array(16)));
    const [atomic] = ipv6Fragments(whole, 4096, 1);
    send(atomic!);
    expect(received).toHaveLength(1);
    expect(ip.counters.datagramsReassembled).toBe(0);
    expect(ip.ipv6Reassembly.inProgress).toBe(0);
  });

  test('a TTL of 0 on a packet for us does not matter: a host does not forward (RFC 1122 §3.2.1.7)', () => {
    const { received, send } = setup();
    send(buildPacket({ src: PEER4, dst: US4, ttl: 0 }, echoRequest(false, new Uint8Array(8))));
    expect(received).toHaveLength(1);
  });
});

describe('IpLayer: invalid sources (RFC 1122 §3.2.1.3, RFC 4291 §2.5.3)', () => {
  test.each([
    '127.0.0.1',
    '0.0.0.5',
    '224.0.0.1',
    '240.0.0.1',
    '255.255.255.255',
    '10.0.0.255', // the directed broadcast of the interface's own /24
    '::1',
    '::',
    'ff02::1',
    '::ffff:127.0.0.1',
  ])('a packet from %s is dropped silently and counted, never answered', (src) => {
    const { ip, received, send } = setup();
    const v6 = src.includes(':');
    send(buildPacket({ src: parseIp(src), dst: v6 ? US6 : US4 }, echoRequest(v6, new Uint8Array(8))));
    expect(received).toHaveLength(0);
    expect(ip.drops['martian-source']).toBe(1);
    expect(ip.icmp.counters.echoRequestsIn).toBe(0);
  });

  test('a /31 has no broadcast address: its other end is a valid source (RFC 3021)', () => {
    const clock = new VirtualClock();
    const [ours, peer] = WireEnd.pair(clock, 1500, ['ours', 'peer']);
    const ip = new IpLayer(clock);
    ip.addInterface(ours, '10.9.0.0/31');
    const received: Uint8Array[] = [];
    peer.onReceive((p) => received.push(p));
    peer.send(
      buildPacket({ src: parseIp('10.9.0.1'), dst: parseIp('10.9.0.0') }, echoRequest(false, new Uint8Array(8))),
    );
    clock.runUntilIdle();
    expect(received).toHaveLength(1);
  });
});

describe('IpLayer: reassembly through input', () => {
  test('fragments are delivered to the transport whole; overlaps and malformed ones are counted drops', () => {
    const { ip, send } = setup();
    const got: Uint8Array[] = [];
    ip.registerProtocol(IpProtocol.UDP, (p) => got.push(p.payload.slice()));
    const body = new Random(4).fill(new Uint8Array(3000));
    const whole = buildPacket(
      { src: PEER4, dst: US4, dontFragment: false, identification: 5 },
      { protocol: 'udp', repr: { srcPort: 1, dstPort: 2, payload: body } },
    );
    const fragments = fragmentIpv4(Ipv4View.parse(whole), 1000)!;
    for (const f of fragments) send(f);
    expect(got).toHaveLength(1);
    expect(got[0]!.length).toBe(3008);
    // The same again with one fragment's bytes changed and resent: inconsistent overlap.
    const forged = fragments[1]!.slice();
    forged[forged.length - 1] ^= 1; // the UDP data, not the header: the IP checksum still holds
    send(fragments[0]!);
    send(fragments[1]!);
    send(forged);
    send(fragments[2]!);
    send(fragments[3]!);
    expect(got).toHaveLength(1);
    expect(ip.drops['ipv4-fragment-overlap']).toBe(1);
    expect(ip.drops['ipv4-fragment-of-discarded-datagram']).toBe(2);
  });

  test('reassembly timeout: ICMP time exceeded code 1 quoting fragment 0 (RFC 792); none without fragment 0', () => {
    const { ip, clock, received, send } = setup();
    const whole = buildPacket(
      { src: PEER4, dst: US4, dontFragment: false, identification: 9 },
      { protocol: 'udp', repr: { srcPort: 1, dstPort: 2, payload: new Uint8Array(3000) } },
    );
    const fragments = fragmentIpv4(Ipv4View.parse(whole), 1000)!;
    send(fragments[0]!);
    send(fragments[2]!);
    const other = buildPacket(
      { src: PEER4, dst: US4, dontFragment: false, identification: 10 },
      { protocol: 'udp', repr: { srcPort: 1, dstPort: 2, payload: new Uint8Array(3000) } },
    );
    send(fragmentIpv4(Ipv4View.parse(other), 1000)![1]!);
    clock.runUntilIdle();
    expect(clock.now()).toBeGreaterThanOrEqual(30_000);
    expect(received).toHaveLength(1);
    const { repr, dst } = icmpOf(received);
    expect(repr).toMatchObject({ kind: 'timeExceeded', code: 1 });
    expect(Buffer.from(dst).equals(Buffer.from(PEER4))).toBe(true);
    const quoted = Ipv4View.parse((repr as { invoking: Uint8Array }).invoking, { allowTruncated: true });
    expect(quoted.identification).toBe(9);
    expect(ip.drops['ipv4-reassembly-timeout']).toBe(2);
  });

  test('IPv6 reassembly timeout after 60 s (RFC 8200 §4.5): time exceeded code 1', () => {
    const { clock, received, send } = setup();
    const whole = buildPacket({ src: PEER6, dst: US6 }, echoRequest(true, new Uint8Array(2000)));
    send(ipv6Fragments(whole, 1000, 3)[0]!);
    clock.advance(59_990);
    expect(received).toHaveLength(0);
    clock.advance(20);
    expect(received).toHaveLength(1);
    expect(icmpOf(received).repr).toMatchObject({ kind: 'timeExceeded', code: 1 });
  });

  test('no ICMPv6 error about an ICMPv6 error, even behind a Fragment header (RFC 4443 §2.4 (e))', () => {
    const { clock, ip, received, send } = setup();
    const error = buildPacket(
      { src: PEER6, dst: US6 },
      {
        protocol: 'icmpv6',
        repr: { kind: 'destUnreachable', code: 1, invoking: new Uint8Array(1800) },
      },
    );
    send(ipv6Fragments(error, 1000, 4)[0]!);
    clock.advance(61_000);
    expect(received).toHaveLength(0); // the reassembly timed out, and said nothing
    expect(ip.icmp.counters.errorsOut).toBe(0);
  });

  test('ICMP errors we send are rate-limited (RFC 4443 §2.4 (f))', () => {
    const { clock, received, send, ip } = setup({ icmpErrorBurst: 3, icmpErrorsPerSecond: 1 });
    for (let id = 0; id < 10; id++) {
      const whole = buildPacket(
        { src: PEER4, dst: US4, dontFragment: false, identification: id },
        { protocol: 'udp', repr: { srcPort: 1, dstPort: 2, payload: new Uint8Array(3000) } },
      );
      send(fragmentIpv4(Ipv4View.parse(whole), 1000)![0]!);
    }
    clock.runUntilIdle();
    expect(received).toHaveLength(3);
    expect(ip.icmp.counters.errorsRateLimited).toBe(7);
  });

  test('close() drops fragments in progress and leaves no timer', () => {
    const { ip, clock, send } = setup();
    const whole = buildPacket({ src: PEER6, dst: US6 }, echoRequest(true, new Uint8Array(2000)));
    send(ipv6Fragments(whole, 1000, 3)[0]!);
    expect(clock.nextDue()).toBeDefined();
    ip.close();
    expect(clock.nextDue()).toBeUndefined();
  });
});

describe('IpLayer: output', () => {
  test('our IPv4 packets carry DF (RFC 1191); one over the MTU with DF is a counted drop, without DF it is fragmented', () => {
    const { ip, clock } = setup();
    const out: Uint8Array[] = [];
    ip.interfaces[0]!.link.onReceive(() => {});
    const peerEnd = (ip.interfaces[0]!.link as WireEnd).peer;
    peerEnd.onReceive((p) => out.push(p));
    const upper: UpperRepr = { protocol: 'udp', repr: { srcPort: 1, dstPort: 2, payload: new Uint8Array(100) } };
    expect(ip.send(US4, PEER4, upper)).toBe(true);
    clock.runUntilIdle();
    expect(Ipv4View.parse(out[0]!).dontFragment).toBe(true);
    const big: UpperRepr = { protocol: 'udp', repr: { srcPort: 1, dstPort: 2, payload: new Uint8Array(5000) } };
    expect(ip.send(US4, PEER4, big)).toBe(false);
    expect(ip.drops['tx-too-big']).toBe(1);
    expect(ip.send(US4, PEER4, big, { dontFragment: false })).toBe(true);
    clock.runUntilIdle();
    const frags = out.slice(1).map((p) => Ipv4View.parse(p));
    expect(frags).toHaveLength(4);
    expect(frags.every((f) => f.identification === frags[0]!.identification && !f.dontFragment)).toBe(true);
    expect(frags.map((f) => f.moreFragments)).toEqual([true, true, true, false]);
    expect(frags.reduce((n, f) => n + f.payload.length, 0)).toBe(5008);
  });
});

describe('IpLayer: ICMP errors to the transport, and path MTU', () => {
  function tcpQuote(src: Uint8Array, dst: Uint8Array, length = 1500): Uint8Array {
    const p = buildPacket(
      { src, dst },
      {
        protocol: 'tcp',
        repr: {
          srcPort: 40000,
          dstPort: 80,
          seq: 1000,
          ack: 0,
          flags: 0x10,
          window: 0,
          urgentPointer: 0,
          options: [],
          payload: new Uint8Array(length - (src.length === 4 ? 40 : 60)),
        },
      },
    );
    return p.subarray(0, src.length === 4 ? 28 : 1232);
  }

  test('errors reach the handler registered for the quoted protocol, with the mapped errno', () => {
    const { ip, send } = setup();
    const reports: IcmpErrorReport[] = [];
    ip.registerErrorHandler(IpProtocol.TCP, (r) => {
      reports.push(r);
      return true;
    });
    const router = parseIp('10.0.0.254');
    send(
      buildPacket(
        { src: router, dst: US4 },
        {
          protocol: 'icmpv4',
          repr: { kind: 'destUnreachable', code: 1, invoking: tcpQuote(US4, parseIp('10.9.9.9')) },
        },
      ),
    );
    send(
      buildPacket(
        { src: router, dst: US4 },
        { protocol: 'icmpv4', repr: { kind: 'timeExceeded', code: 0, invoking: tcpQuote(US4, parseIp('10.9.9.9')) } },
      ),
    );
    send(
      buildPacket(
        { src: PEER6, dst: US6 },
        { protocol: 'icmpv6', repr: { kind: 'destUnreachable', code: 4, invoking: tcpQuote(US6, PEER6) } },
      ),
    );
    expect(reports.map((r) => [r.kind, r.errno, r.hard, r.protocol])).toEqual([
      ['destination-unreachable', 'EHOSTUNREACH', false, IpProtocol.TCP],
      ['time-exceeded', 'EHOSTUNREACH', false, IpProtocol.TCP],
      ['destination-unreachable', 'ECONNREFUSED', true, IpProtocol.TCP],
    ]);
    expect(reports[0]!.transport.length).toBeGreaterThanOrEqual(8);
    expect([reports[0]!.srcPort, reports[0]!.dstPort]).toEqual([40000, 80]);
    expect(ip.counters.icmpErrorsDelivered).toBe(3);
  });

  test('RFC 5927: errors quoting a packet not from us, or with no handler, or malformed, are counted drops', () => {
    const { ip, send } = setup();
    ip.registerErrorHandler(IpProtocol.TCP, () => false);
    const icmp = (invoking: Uint8Array): Uint8Array =>
      buildPacket(
        { src: PEER4, dst: US4 },
        { protocol: 'icmpv4', repr: { kind: 'destUnreachable', code: 3, invoking } },
      );
    send(icmp(tcpQuote(parseIp('10.0.0.77'), PEER4)));
    send(icmp(tcpQuote(US4, PEER4)));
    const udp = buildPacket(
      { src: US4, dst: PEER4 },
      { protocol: 'udp', repr: { srcPort: 1, dstPort: 2, payload: new Uint8Array(8) } },
    );
    send(icmp(udp));
    send(icmp(new Uint8Array(10)));
    send(icmp(tcpQuote(US4, PEER4).subarray(0, 24)));
    expect(ip.drops).toMatchObject({
      'icmp-error-not-from-us': 1,
      'icmp-error-rejected': 1,
      'icmp-error-no-handler': 1,
      'icmp-quoted-malformed': 1,
      'icmp-quoted-truncated': 1,
    });
  });

  test('learnPathMtu: lowers route().mtu, never raises it, floors at 68 / 1280, plateau for 0 (RFC 1191 §5)', () => {
    const { ip, clock } = setup();
    const report = (mtu: number, v6 = false, quotedLength = 1500): IcmpErrorReport => ({
      version: v6 ? 6 : 4,
      kind: 'packet-too-big',
      type: v6 ? 2 : 3,
      code: v6 ? 0 : 4,
      errno: 'EMSGSIZE',
      hard: false,
      reporter: v6 ? PEER6 : PEER4,
      src: v6 ? US6 : US4,
      dst: v6 ? PEER6 : PEER4,
      protocol: IpProtocol.TCP,
      srcPort: 40000,
      dstPort: 80,
      transport: new Uint8Array(8),
      mtu,
      quotedLength,
    });
    expect(ip.route(PEER4)?.mtu).toBe(1500);
    expect(ip.learnPathMtu(report(1400))).toBe(1400);
    expect(ip.route(PEER4)).toMatchObject({ mtu: 1400, linkMtu: 1500 });
    expect(ip.learnPathMtu(report(1450))).toBeUndefined(); // never raised
    expect(ip.learnPathMtu(report(0, false, 1400))).toBe(1006); // the plateau below 1400
    expect(ip.learnPathMtu(report(20))).toBe(68);
    expect(ip.route(PEER4)?.mtu).toBe(68);
    expect(ip.learnPathMtu(report(600, true))).toBeUndefined(); // RFC 8201 §4: discarded
    expect(ip.drops['icmpv6-ptb-below-minimum']).toBe(1);
    expect(ip.route(PEER6)?.mtu).toBe(1500);
    expect(ip.learnPathMtu(report(1280, true))).toBe(1280);
    expect(ip.learnPathMtu(report(1000, true))).toBeUndefined();
    // RFC 1191 §6.3 / RFC 8201 §5.3: after 10 minutes the link MTU is tried again.
    clock.advance(10 * 60_000);
    expect(ip.route(PEER4)?.mtu).toBe(1500);
    expect(ip.route(PEER6)?.mtu).toBe(1500);
  });
});
