import { Shaper } from '../link/shaper';
import { VirtualClock } from '../time/virtual-clock';
import { Random } from '../util/random';
import { formatIp, parseIp } from '../wire/address';
import { internetChecksum, pseudoHeaderSumV4, pseudoHeaderSumV6 } from '../wire/checksum';
import { Icmpv4Repr, Icmpv4View } from '../wire/icmpv4';
import { Icmpv6Repr, Icmpv6View } from '../wire/icmpv6';
import { IpProtocol } from '../wire/ip-protocol';
import { Ipv4Repr, Ipv4View } from '../wire/ipv4';
import { Ipv6View } from '../wire/ipv6';
import { buildPacket } from '../wire/packet';
import { TcpFlags, TcpHeaderView, type TcpRepr } from '../wire/tcp';
import { parseOptions, type TcpOption } from '../wire/tcp-options';
import { Router, type RouterOptions, type StripOptions } from './engine';
import { MemoryLink } from './test-links';

const A_HOST = '10.1.0.1';
const A_ROUTER = '10.1.0.2';
const B_HOST = '10.2.0.1';
const B_ROUTER = '10.2.0.2';
const A6_HOST = 'fd00:1::1';
const A6_ROUTER = 'fd00:1::2';
const B6_HOST = 'fd00:2::1';
const B6_ROUTER = 'fd00:2::2';

function setup(opts: Partial<RouterOptions> = {}, mtus: [number, number] = [1500, 1400]) {
  const clock = new VirtualClock();
  const a = new MemoryLink('a', mtus[0]);
  const b = new MemoryLink('b', mtus[1]);
  const router = new Router({ clock, icmpRateLimit: false, ...opts });
  const pa = router.addPort({ link: a, prefixes: ['10.1.0.1/24', 'fd00:1::1/64'], addresses: [A_ROUTER, A6_ROUTER] });
  const pb = router.addPort({ link: b, prefixes: ['10.2.0.1/24', 'fd00:2::1/64'], addresses: [B_ROUTER, B6_ROUTER] });
  return { clock, a, b, router, pa, pb };
}

function udp(src: string, dst: string, payload = new Uint8Array(32).fill(7), ip: { ttl?: number; df?: boolean } = {}) {
  return buildPacket(
    { src: parseIp(src), dst: parseIp(dst), ttl: ip.ttl, dontFragment: ip.df },
    { protocol: 'udp', repr: { srcPort: 1000, dstPort: 2000, payload } },
  );
}

function tcp(
  src: string,
  dst: string,
  options: TcpOption[],
  flags: number = TcpFlags.SYN,
  payload = new Uint8Array(0),
) {
  const repr: TcpRepr = {
    srcPort: 40000,
    dstPort: 80,
    seq: 123456,
    ack: 0,
    flags,
    window: 64240,
    urgentPointer: 0,
    options,
    payload,
  };
  return buildPacket({ src: parseIp(src), dst: parseIp(dst) }, { protocol: 'tcp', repr });
}

const MPTCP_CAPABLE: TcpOption = {
  kind: 'unknown',
  type: 30,
  data: Uint8Array.from([0x01, 0x81, 1, 2, 3, 4, 5, 6, 7, 8]),
};
const SYN_OPTIONS: TcpOption[] = [
  { kind: 'mss', mss: 1460 },
  { kind: 'sack-permitted' },
  { kind: 'timestamps', tsVal: 0x01020304, tsEcr: 0 },
  { kind: 'nop' },
  { kind: 'wscale', shift: 7 },
  MPTCP_CAPABLE,
];

/** The TCP segment of an IPv4 or IPv6 packet and whether its checksum holds. */
function tcpOf(packet: Uint8Array): { view: TcpHeaderView; checksumOk: boolean } {
  if (packet[0]! >> 4 === 4) {
    const ip = Ipv4View.parse(packet);
    const view = TcpHeaderView.parse(ip.payload);
    return { view, checksumOk: view.verifyChecksum(pseudoHeaderSumV4(ip.src, ip.dst, 6, ip.payload.length)) };
  }
  const ip = Ipv6View.parse(packet);
  const view = TcpHeaderView.parse(ip.upperPayload);
  return { view, checksumOk: view.verifyChecksum(pseudoHeaderSumV6(ip.src, ip.dst, 6, ip.upperLen)) };
}

function icmp4(packet: Uint8Array) {
  const ip = Ipv4View.parse(packet);
  expect(ip.protocol).toBe(IpProtocol.ICMP);
  return { ip, icmp: Icmpv4Repr.parse(Icmpv4View.parse(ip.payload)) };
}

function icmp6(packet: Uint8Array) {
  const ip = Ipv6View.parse(packet);
  expect(ip.upperProtocol).toBe(IpProtocol.IPV6_ICMP);
  return { ip, icmp: Icmpv6Repr.parse(Icmpv6View.parse(ip.upperPayload), ip.src, ip.dst) };
}

describe('IPv4 forwarding', () => {
  test('a packet crosses with its TTL decremented and both checksums still valid', () => {
    const { a, b, pa, pb } = setup();
    const packet = udp(A_HOST, B_HOST, new Uint8Array(100).fill(9), { ttl: 64 });
    const original = packet.slice();
    a.inject(packet);
    const [out] = b.take();
    expect(out).toBeDefined();
    const ip = Ipv4View.parse(out!); // verifies the incrementally updated header checksum
    expect(ip.ttl).toBe(63);
    expect(internetChecksum(out!, 0, 20)).toBe(0);
    // Only TTL and the header checksum changed.
    const diff = [...out!].map((v, i) => (v === original[i] ? -1 : i)).filter((i) => i >= 0);
    expect(diff.every((i) => i === 8 || i === 10 || i === 11)).toBe(true);
    expect(pa.counters).toMatchObject({ rxPackets: 1, forwarded: 1, drops: {} });
    expect(pb.counters).toMatchObject({ txPackets: 1, txBytes: out!.length });
    expect(a.take()).toEqual([]);
  });

  test('the TTL decrement keeps the checksum right across the carry (RFC 1624 corner cases)', () => {
    const { a, b } = setup();
    for (let ttl = 2; ttl <= 255; ttl++) {
      a.inject(udp(A_HOST, B_HOST, new Uint8Array(8).fill(ttl), { ttl }));
      const [out] = b.take();
      expect(Ipv4View.parse(out!).ttl).toBe(ttl - 1);
    }
  });

  test('TTL 1: dropped, ICMP time exceeded from the router address back to the source', () => {
    const { a, b, pa } = setup();
    const packet = udp(A_HOST, B_HOST, undefined, { ttl: 1 });
    const original = packet.slice();
    a.inject(packet);
    expect(b.take()).toEqual([]);
    const [err] = a.take();
    const { ip, icmp } = icmp4(err!);
    expect(formatIp(ip.src)).toBe(A_ROUTER);
    expect(formatIp(ip.dst)).toBe(A_HOST);
    expect(ip.ttl).toBe(64);
    expect(icmp).toMatchObject({ kind: 'timeExceeded', code: 0 });
    // RFC 1812 §4.3.2.3: the whole (small) invoking packet is quoted as received.
    expect(icmp.kind === 'timeExceeded' && Buffer.from(icmp.invoking).equals(Buffer.from(original))).toBe(true);
    expect(pa.counters.drops).toEqual({ 'ttl-exceeded': 1 });
    expect(pa.counters.events).toEqual({ 'icmp-time-exceeded': 1 });
  });

  test('TTL 0 is dropped too; a TTL-1 packet to the router itself is answered (RFC 1812 §5.3.1)', () => {
    const { a, pa } = setup();
    a.inject(udp(A_HOST, B_HOST, undefined, { ttl: 0 }));
    expect(icmp4(a.take()[0]!).icmp.kind).toBe('timeExceeded');
    const ping = buildPacket(
      { src: parseIp(A_HOST), dst: parseIp(B_ROUTER), ttl: 1 },
      { protocol: 'icmpv4', repr: { kind: 'echoRequest', identifier: 7, sequence: 3, data: Uint8Array.of(1, 2, 3) } },
    );
    a.inject(ping);
    const { ip, icmp } = icmp4(a.take()[0]!);
    expect(formatIp(ip.src)).toBe(B_ROUTER);
    expect(icmp).toMatchObject({ kind: 'echoReply', identifier: 7, sequence: 3, data: Uint8Array.of(1, 2, 3) });
    expect(pa.counters.events['echo-replies']).toBe(1);
  });

  test('no route: ICMP destination unreachable, net unreachable (code 0)', () => {
    const { a, pa } = setup();
    a.inject(udp(A_HOST, '192.0.2.1'));
    const { ip, icmp } = icmp4(a.take()[0]!);
    expect(formatIp(ip.src)).toBe(A_ROUTER);
    expect(icmp).toMatchObject({ kind: 'destUnreachable', code: 0 });
    expect(pa.counters.drops).toEqual({ 'no-route': 1 });
  });

  test('longest prefix wins; a gateway route resolves to the port holding the gateway', () => {
    const { a, b, router } = setup();
    const c = new MemoryLink('c');
    router.addPort({ link: c, prefixes: ['10.3.0.1/24'], addresses: ['10.3.0.2'] });
    router.addRoute('10.0.0.0/8', { dev: 'b' });
    router.addRoute('10.9.9.0/24', { via: '10.3.0.1' });
    router.addRoute('0.0.0.0/0', { dev: 'a' });
    a.inject(udp(A_HOST, '10.200.0.1'));
    expect(b.take()).toHaveLength(1);
    a.inject(udp(A_HOST, '10.9.9.9'));
    expect(c.take()).toHaveLength(1);
    b.inject(udp(B_HOST, '198.51.100.7'));
    expect(a.take()).toHaveLength(1);
    expect(router.stats().routes).toEqual([
      '10.1.0.0/24 dev a',
      '10.2.0.0/24 dev b',
      '10.3.0.0/24 dev c',
      '10.9.9.0/24 dev c',
      '10.0.0.0/8 dev b',
      '0.0.0.0/0 dev a',
      'fd00:1::/64 dev a',
      'fd00:2::/64 dev b',
    ]);
    expect(() => router.addRoute('10.0.0.0/8', { dev: 'nope' })).toThrow(/no port named "nope"/);
    expect(() => router.addRoute('10.0.0.0/8', { via: '192.0.2.1' })).toThrow(/on no port's prefix/);
  });

  test('DF and too big: ICMP fragmentation needed with the next-hop MTU (RFC 1191 §4)', () => {
    const { a, b, pa } = setup();
    a.inject(udp(A_HOST, B_HOST, new Uint8Array(1400), { df: true })); // 1428 bytes > 1400
    expect(b.take()).toEqual([]);
    const { icmp } = icmp4(a.take()[0]!);
    expect(icmp).toMatchObject({ kind: 'fragmentationNeeded', nextHopMtu: 1400 });
    expect(icmp.kind === 'fragmentationNeeded' && icmp.invoking.length).toBe(548); // 576 − 20 − 8
    expect(pa.counters.drops).toEqual({ 'too-big': 1 });
    expect(pa.counters.events).toEqual({ 'icmp-frag-needed': 1 });
  });

  test('without DF a packet larger than the MTU is fragmented; the fragments reassemble to the original', () => {
    const { a, b, pa } = setup({}, [1500, 576]);
    const payload = Uint8Array.from({ length: 1472 }, (_, i) => i & 0xff);
    // An IP header with options: a copied one (type 0x83, loose source route shape) and a non-copied one (7, record route).
    const opts = Uint8Array.from([0x83, 7, 4, 1, 2, 3, 4, 7, 7, 4, 0, 0, 0, 0, 1, 0]);
    const header: Ipv4Repr = {
      src: parseIp(A_HOST),
      dst: parseIp(B_HOST),
      protocol: IpProtocol.UDP,
      payloadLen: payload.length,
      ttl: 9,
      dscp: 0,
      ecn: 0,
      identification: 4242,
      dontFragment: false,
      moreFragments: false,
      fragmentOffset: 0,
      options: opts,
    };
    const packet = new Uint8Array(20 + opts.length + payload.length);
    Ipv4Repr.emit(header, packet);
    packet.set(payload, 20 + opts.length);
    a.inject(packet);
    const fragments = b.take().map((f) => Ipv4View.parse(f));
    expect(fragments.length).toBe(3);
    const data = new Uint8Array(payload.length);
    for (const [i, f] of fragments.entries()) {
      expect(f.bytes.length).toBeLessThanOrEqual(576);
      expect(f.ttl).toBe(8);
      expect(f.identification).toBe(4242);
      expect(f.dontFragment).toBe(false);
      expect(f.moreFragments).toBe(i < fragments.length - 1);
      expect(f.fragmentOffset % 8).toBe(0);
      // First fragment: every option; later ones only the copied option, padded.
      expect([...f.options]).toEqual(i === 0 ? [...opts] : [0x83, 7, 4, 1, 2, 3, 4, 0]);
      data.set(f.payload, f.fragmentOffset);
    }
    expect(Buffer.from(data).equals(Buffer.from(payload))).toBe(true);
    expect(pa.counters.events).toEqual({ fragmented: 1, fragments: 3 });
    expect(pa.counters.forwarded).toBe(1);
  });

  test('a fragment is fragmented further: offsets add up and the last piece keeps MF', () => {
    const { a, b } = setup({}, [1500, 576]);
    const header: Ipv4Repr = {
      src: parseIp(A_HOST),
      dst: parseIp(B_HOST),
      protocol: IpProtocol.UDP,
      payloadLen: 1000,
      ttl: 9,
      dscp: 0,
      ecn: 0,
      identification: 1,
      dontFragment: false,
      moreFragments: true,
      fragmentOffset: 1480,
      options: new Uint8Array(0),
    };
    const packet = new Uint8Array(1020);
    Ipv4Repr.emit(header, packet);
    a.inject(packet);
    const fragments = b.take().map((f) => Ipv4View.parse(f));
    expect(fragments.map((f) => [f.fragmentOffset, f.payload.length, f.moreFragments])).toEqual([
      [1480, 552, true],
      [2032, 448, true],
    ]);
  });

  test('martians, multicast and broadcast are dropped without ICMP', () => {
    const { a, b, pa } = setup();
    a.inject(udp('127.0.0.1', B_HOST));
    a.inject(udp('0.1.2.3', B_HOST));
    a.inject(udp('224.0.0.5', B_HOST));
    a.inject(udp('240.0.0.1', B_HOST));
    a.inject(udp(A_HOST, '127.0.0.1'));
    a.inject(udp(A_HOST, '0.0.0.0'));
    a.inject(udp(A_HOST, '239.1.1.1'));
    a.inject(udp(A_HOST, '255.255.255.255'));
    expect(a.take()).toEqual([]);
    expect(b.take()).toEqual([]);
    expect(pa.counters.drops).toEqual({
      'martian-source': 4,
      'martian-destination': 2,
      multicast: 1,
      broadcast: 1,
    });
  });

  test("directed broadcasts of the ports' prefixes are not forwarded, not valid sources, never answered (RFC 1812 §5.3.7, RFC 2644)", () => {
    const { a, b, pa } = setup();
    a.inject(udp(A_HOST, '10.2.0.255'));
    a.inject(udp(A_HOST, '10.2.0.255', undefined, { ttl: 1 }));
    a.inject(udp('10.1.0.255', B_HOST));
    a.inject(udp('10.1.0.255', B_HOST, undefined, { ttl: 1 }));
    expect(a.take()).toEqual([]);
    expect(b.take()).toEqual([]);
    expect(pa.counters.drops).toEqual({ 'directed-broadcast': 2, 'martian-source': 2 });
  });

  test('a duplicated packet is forwarded twice, each copy one hop older (the shaper copies it)', () => {
    const clock = new VirtualClock();
    const a = new MemoryLink('a', 1500);
    const b = new MemoryLink('b', 1500);
    const router = new Router({ clock, icmpRateLimit: false });
    router.addPort({ link: new Shaper(a, { clock, rx: { duplicate: 1 }, seed: 1 }), prefixes: ['10.1.0.1/24'] });
    router.addPort({ link: new Shaper(b, { clock, tx: { delayMs: 10 }, seed: 2 }), prefixes: ['10.2.0.1/24'] });
    a.inject(udp(A_HOST, B_HOST, undefined, { ttl: 2 }));
    clock.advance(50);
    expect(b.take().map((p) => p[8])).toEqual([1, 1]);
    expect(a.take()).toEqual([]); // no time exceeded
  });

  test('no ICMP error about an ICMP error or a non-initial fragment (RFC 1812 §4.3.2.7); echo requests still get one', () => {
    const { a, pa } = setup();
    const error = buildPacket(
      { src: parseIp(A_HOST), dst: parseIp('192.0.2.1') },
      { protocol: 'icmpv4', repr: { kind: 'destUnreachable', code: 3, invoking: new Uint8Array(28) } },
    );
    a.inject(error);
    const fragment = udp(A_HOST, '192.0.2.1');
    fragment[6] = 0x00;
    fragment[7] = 0x10; // offset 128 bytes
    fragment[10] = 0;
    fragment[11] = 0;
    const cs = internetChecksum(fragment, 0, 20);
    fragment[10] = cs >> 8;
    fragment[11] = cs & 0xff;
    a.inject(fragment);
    expect(a.take()).toEqual([]);
    expect(pa.counters.events).toEqual({ 'icmp-suppressed': 2 });
    const echo = buildPacket(
      { src: parseIp(A_HOST), dst: parseIp('192.0.2.1') },
      { protocol: 'icmpv4', repr: { kind: 'echoRequest', identifier: 1, sequence: 1, data: new Uint8Array(0) } },
    );
    a.inject(echo);
    expect(icmp4(a.take()[0]!).icmp.kind).toBe('destUnreachable');
  });

  test('ICMP errors are rate-limited by a token bucket', () => {
    const { a, pa, clock } = setup({ icmpRateLimit: { perSecond: 10, burst: 5 } });
    for (let i = 0; i < 20; i++) a.inject(udp(A_HOST, '192.0.2.1'));
    expect(a.take()).toHaveLength(5);
    expect(pa.counters.events['icmp-rate-limited']).toBe(15);
    clock.advance(300); // three tokens
    for (let i = 0; i < 5; i++) a.inject(udp(A_HOST, '192.0.2.1'));
    expect(a.take()).toHaveLength(3);
  });

  test('UDP to the router gets port unreachable; other protocols to it are dropped', () => {
    const { a, pa } = setup();
    a.inject(udp(A_HOST, A_ROUTER));
    const { ip, icmp } = icmp4(a.take()[0]!);
    expect(formatIp(ip.src)).toBe(A_ROUTER);
    expect(icmp).toMatchObject({ kind: 'destUnreachable', code: 3 });
    a.inject(tcp(A_HOST, A_ROUTER, []));
    expect(a.take()).toEqual([]);
    expect(pa.counters.drops).toEqual({ local: 2 });
  });

  test('a link that refuses a packet is counted on the outgoing port', () => {
    const { a, b, pb } = setup();
    b.accept = false;
    a.inject(udp(A_HOST, B_HOST));
    expect(pb.counters.drops).toEqual({ 'tx-refused': 1 });
    expect(b.counters.drops).toEqual({ queue: 1 });
  });
});

describe('IPv6 forwarding', () => {
  function udp6(src: string, dst: string, hopLimit = 64, payloadLen = 32) {
    return udp(src, dst, new Uint8Array(payloadLen).fill(3), { ttl: hopLimit });
  }

  test('a packet crosses with its hop limit decremented', () => {
    const { a, b, pa } = setup();
    const packet = udp6(A6_HOST, B6_HOST, 10);
    const original = packet.slice();
    a.inject(packet);
    const [out] = b.take();
    expect(out![7]).toBe(9);
    original[7] = 9;
    expect(Buffer.from(out!).equals(Buffer.from(original))).toBe(true);
    expect(pa.counters.forwarded).toBe(1);
  });

  test('hop limit 1: ICMPv6 time exceeded (RFC 4443 §3.3)', () => {
    const { a, b } = setup();
    a.inject(udp6(A6_HOST, B6_HOST, 1));
    expect(b.take()).toEqual([]);
    const { ip, icmp } = icmp6(a.take()[0]!);
    expect(formatIp(ip.src)).toBe(A6_ROUTER);
    expect(formatIp(ip.dst)).toBe(A6_HOST);
    expect(icmp).toMatchObject({ kind: 'timeExceeded', code: 0 });
  });

  test('no route: ICMPv6 destination unreachable code 0', () => {
    const { a } = setup();
    a.inject(udp6(A6_HOST, '2001:db8::1'));
    expect(icmp6(a.take()[0]!).icmp).toMatchObject({ kind: 'destUnreachable', code: 0 });
  });

  test('too big: packet too big with the next-hop MTU, the quote cut to fit 1280 bytes', () => {
    const { a, b, pa } = setup();
    a.inject(udp6(A6_HOST, B6_HOST, 64, 1400));
    expect(b.take()).toEqual([]);
    const reply = a.take()[0]!;
    expect(reply.length).toBe(1280);
    const { icmp } = icmp6(reply);
    expect(icmp).toMatchObject({ kind: 'packetTooBig', mtu: 1400 });
    expect(pa.counters.drops).toEqual({ 'too-big': 1 });
  });

  test('link-local and multicast are never forwarded; no error about an ICMPv6 error', () => {
    const { a, b, pa } = setup();
    a.inject(udp6('fe80::1', B6_HOST));
    a.inject(udp6(A6_HOST, 'fe80::2'));
    a.inject(udp6(A6_HOST, 'ff02::2'));
    a.inject(udp6('::', B6_HOST));
    a.inject(udp6('::1', B6_HOST));
    a.inject(
      buildPacket(
        { src: parseIp(A6_HOST), dst: parseIp('2001:db8::1') },
        { protocol: 'icmpv6', repr: { kind: 'destUnreachable', code: 4, invoking: new Uint8Array(48) } },
      ),
    );
    expect(a.take()).toEqual([]);
    expect(b.take()).toEqual([]);
    expect(pa.counters.drops).toEqual({ 'link-local': 2, multicast: 1, 'martian-source': 2, 'no-route': 1 });
    expect(pa.counters.events).toEqual({ 'icmp-suppressed': 1 });
  });

  test('the router answers pings to its IPv6 address', () => {
    const { a } = setup();
    a.inject(
      buildPacket(
        { src: parseIp(A6_HOST), dst: parseIp(B6_ROUTER) },
        { protocol: 'icmpv6', repr: { kind: 'echoRequest', identifier: 9, sequence: 8, data: Uint8Array.of(5) } },
      ),
    );
    const { ip, icmp } = icmp6(a.take()[0]!);
    expect(formatIp(ip.src)).toBe(B6_ROUTER);
    expect(icmp).toMatchObject({ kind: 'echoReply', identifier: 9, sequence: 8 });
  });
});

describe('TCP option stripping', () => {
  function stripSetup(strip: StripOptions) {
    return setup({ strip });
  }

  test('MPTCP (kind 30) becomes NOPs; the rest and the checksum stay right, IPv4 and IPv6', () => {
    const { a, b, pa } = stripSetup({ kinds: [30] });
    for (const [src, dst] of [
      [A_HOST, B_HOST],
      [A6_HOST, B6_HOST],
    ] as const) {
      const packet = tcp(src, dst, SYN_OPTIONS);
      const before = tcpOf(packet.slice());
      a.inject(packet);
      const out = b.take()[0]!;
      const { view, checksumOk } = tcpOf(out);
      expect(checksumOk).toBe(true);
      expect(view.headerLen).toBe(before.view.headerLen);
      const options = parseOptions(view.optionBytes);
      expect(options.filter((o) => o.kind === 'unknown')).toEqual([]);
      expect(options.filter((o) => o.kind !== 'nop' && o.kind !== 'eol')).toEqual(
        SYN_OPTIONS.filter((o) => o.kind !== 'nop' && o.kind !== 'unknown'),
      );
      expect(options.filter((o) => o.kind === 'nop').length).toBe(1 + 12);
    }
    expect(pa.counters.events).toEqual({ 'tcp-options-stripped': 2, 'tcp-segments-stripped': 2 });
  });

  test('several kinds at once: timestamps and MPTCP, with payload', () => {
    const { a, b } = stripSetup({ kinds: [8, 30] });
    const payload = Uint8Array.from({ length: 999 }, (_, i) => (i * 7) & 0xff);
    a.inject(tcp(A_HOST, B_HOST, SYN_OPTIONS, TcpFlags.ACK, payload));
    const { view, checksumOk } = tcpOf(b.take()[0]!);
    expect(checksumOk).toBe(true);
    expect(parseOptions(view.optionBytes).map((o) => o.kind)).toEqual([
      'mss',
      'sack-permitted',
      ...Array(10).fill('nop'),
      'nop',
      'wscale',
      ...Array(12).fill('nop'),
    ]);
    expect(Buffer.from(view.payload).equals(Buffer.from(payload))).toBe(true);
  });

  test('an odd-aligned option is stripped with a correct checksum (words straddle the option)', () => {
    const { a, b } = stripSetup({ kinds: [30] });
    const options: TcpOption[] = [{ kind: 'nop' }, { kind: 'unknown', type: 30, data: Uint8Array.of(0x21, 9, 8) }];
    for (let i = 0; i < 50; i++) {
      const rng = new Random(i);
      const payload = Uint8Array.from({ length: rng.int(100) }, () => rng.int(256));
      a.inject(tcp(A_HOST, B_HOST, options, TcpFlags.ACK, payload));
      const { view, checksumOk } = tcpOf(b.take()[0]!);
      expect(checksumOk).toBe(true);
      expect([...view.optionBytes]).toEqual([1, 1, 1, 1, 1, 1, 0, 0]);
    }
  });

  test('SYN-only leaves data segments alone', () => {
    const { a, b, pa } = stripSetup({ kinds: [30], synOnly: true });
    a.inject(tcp(A_HOST, B_HOST, [MPTCP_CAPABLE], TcpFlags.ACK));
    expect(parseOptions(tcpOf(b.take()[0]!).view.optionBytes)[0]).toMatchObject({ kind: 'unknown', type: 30 });
    a.inject(tcp(A_HOST, B_HOST, [MPTCP_CAPABLE], TcpFlags.SYN | TcpFlags.ACK));
    expect(parseOptions(tcpOf(b.take()[0]!).view.optionBytes)[0]).toEqual({ kind: 'nop' });
    expect(pa.counters.events['tcp-segments-stripped']).toBe(1);
  });

  test('only on a named port and direction', () => {
    const { a, b } = stripSetup({ kinds: [30], on: [{ port: 'b', direction: 'tx' }] });
    a.inject(tcp(A_HOST, B_HOST, [MPTCP_CAPABLE])); // into b: stripped
    expect(parseOptions(tcpOf(b.take()[0]!).view.optionBytes)[0]).toEqual({ kind: 'nop' });
    b.inject(tcp(B_HOST, A_HOST, [MPTCP_CAPABLE])); // from b into a: kept
    expect(parseOptions(tcpOf(a.take()[0]!).view.optionBytes)[0]).toMatchObject({ kind: 'unknown', type: 30 });
    const rx = stripSetup({ kinds: [30], on: [{ port: 'b', direction: 'rx' }] });
    rx.b.inject(tcp(B_HOST, A_HOST, [MPTCP_CAPABLE]));
    expect(parseOptions(tcpOf(rx.a.take()[0]!).view.optionBytes)[0]).toEqual({ kind: 'nop' });
    rx.a.inject(tcp(A_HOST, B_HOST, [MPTCP_CAPABLE]));
    expect(parseOptions(tcpOf(rx.b.take()[0]!).view.optionBytes)[0]).toMatchObject({ type: 30 });
  });

  test('a malformed option list is forwarded untouched and counted', () => {
    const { a, b, pa } = stripSetup({ kinds: [30] });
    for (const bad of [
      [30, 1, 0, 0], // length below 2
      [30, 12, 0, 0], // runs past the header
      [1, 1, 1, 30], // no length byte
    ]) {
      const packet = tcp(A_HOST, B_HOST, [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'nop' }, { kind: 'nop' }]);
      packet.set(bad, 40);
      // Fix the TCP checksum for the new option bytes, so only the options are wrong.
      packet[36] = 0;
      packet[37] = 0;
      const cs = ~((): number => {
        let s = pseudoHeaderSumV4(packet.subarray(12, 16), packet.subarray(16, 20), 6, packet.length - 20);
        for (let i = 20; i < packet.length; i += 2) s += (packet[i]! << 8) | (packet[i + 1] ?? 0);
        while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
        return s;
      })();
      packet[36] = (cs >> 8) & 0xff;
      packet[37] = cs & 0xff;
      const before = packet.slice();
      a.inject(packet);
      const out = b.take()[0]!;
      expect(Buffer.from(out.subarray(20)).equals(Buffer.from(before.subarray(20)))).toBe(true);
    }
    expect(pa.counters.events).toEqual({ 'tcp-options-malformed': 3 });
  });
});

describe('malformed input', () => {
  test('each is dropped and counted by cause, never thrown', () => {
    const { a, b, pa } = setup();
    const good = udp(A_HOST, B_HOST);
    const badChecksum = good.slice();
    badChecksum[10]! ^= 1;
    const shortLength = good.slice();
    shortLength[3] = 10; // total length 10 < header
    const badIhl = good.slice();
    badIhl[0] = 0x44;
    a.inject(new Uint8Array(0));
    a.inject(Uint8Array.of(0x50, 1, 2));
    a.inject(good.subarray(0, 12));
    a.inject(badChecksum);
    a.inject(shortLength);
    a.inject(badIhl);
    a.inject(udp(A6_HOST, B6_HOST).subarray(0, 50));
    expect(b.take()).toEqual([]);
    expect(a.take()).toEqual([]);
    expect(pa.counters.drops).toEqual({
      'not-ip': 2,
      'ipv4-truncated': 1,
      'ipv4-bad-checksum': 1,
      'ipv4-bad-length': 1,
      'ipv4-bad-header-length': 1,
      'ipv6-truncated': 1,
    });
  });

  test('random and mutated packets never throw and never hit an internal error', () => {
    const { a, b, router } = setup({ strip: { kinds: [8, 30] } });
    const rng = new Random('router-fuzz');
    const seeds: Uint8Array[] = [
      udp(A_HOST, B_HOST),
      tcp(A_HOST, B_HOST, SYN_OPTIONS),
      tcp(A6_HOST, B6_HOST, SYN_OPTIONS),
      udp(A6_HOST, B6_HOST, new Uint8Array(1500)),
      udp(A_HOST, A_ROUTER),
    ];
    for (let i = 0; i < 20_000; i++) {
      const base = seeds[rng.int(seeds.length)]!;
      let p: Uint8Array;
      if (rng.chance(0.1)) p = Uint8Array.from({ length: rng.int(120) }, () => rng.int(256));
      else {
        p = base.slice(0, rng.chance(0.2) ? rng.int(base.length + 1) : base.length);
        const flips = 1 + rng.int(4);
        for (let f = 0; f < flips && p.length > 0; f++) p[rng.int(p.length)] = rng.int(256);
      }
      a.inject(p);
      b.take();
      a.take();
    }
    const totals = router.stats().totals;
    expect(totals.drops['internal-error']).toBeUndefined();
    expect(router.lastError).toBeUndefined();
    expect(Object.values(totals.drops).reduce((x, y) => x + y, 0)).toBeGreaterThan(1000);
  });
});

describe('stats', () => {
  test('per port and totals; the links keep their own counters', () => {
    const { a, b, router } = setup();
    a.inject(udp(A_HOST, B_HOST));
    b.inject(udp(B_HOST, A_HOST));
    a.inject(udp(A_HOST, '192.0.2.9'));
    const stats = router.stats();
    expect(stats.ports.map((p) => p.name)).toEqual(['a', 'b']);
    expect(stats.ports[0]!.counters).toMatchObject({ rxPackets: 2, txPackets: 2, forwarded: 1 });
    expect(stats.ports[1]!.counters).toMatchObject({ rxPackets: 1, txPackets: 1, forwarded: 1 });
    expect(stats.totals).toEqual({
      forwarded: 2,
      drops: { 'no-route': 1 },
      events: { 'icmp-net-unreachable': 1 },
    });
    expect(stats.ports[0]!.link).toMatchObject({ rxPackets: 2, txPackets: 2 });
    router.close();
    a.inject(udp(A_HOST, B_HOST));
    expect(router.stats().ports[0]!.counters.rxPackets).toBe(2);
  });

  test('ports need unique names; a strip rule may not name EOL or NOP', () => {
    const { router, a } = setup();
    expect(() => router.addPort({ link: a })).toThrow(/exists already/);
    expect(() => new Router({ clock: new VirtualClock(), strip: { kinds: [1] } })).toThrow(/cannot be stripped/);
  });
});
