import { parseIpv4, parseIpv6 } from './address';
import { pseudoHeaderSumV4, pseudoHeaderSumV6 } from './checksum';
import { IpProtocol } from './ip-protocol';
import { Ipv4View } from './ipv4';
import { expectParseErrorOf, hex } from './test-support';
import { UdpRepr, UdpView } from './udp';

/** RFC 1071 §4.1 word by word over the RFC 768 pseudo-header and the datagram. */
function naiveChecksumV4(src: Uint8Array, dst: Uint8Array, datagram: Uint8Array): number {
  const all = new Uint8Array(12 + datagram.length);
  all.set(src, 0);
  all.set(dst, 4);
  all[9] = IpProtocol.UDP;
  all[10] = datagram.length >> 8;
  all[11] = datagram.length & 0xff;
  all.set(datagram, 12);
  let sum = 0;
  for (let i = 0; i < all.length; i += 2) {
    sum += (all[i]! << 8) | (i + 1 < all.length ? all[i + 1]! : 0);
    if (sum > 0xffff) sum = (sum & 0xffff) + 1;
  }
  return ~sum & 0xffff;
}

function expectParseError(run: () => unknown, reason: string): void {
  expectParseErrorOf('udp', run, reason);
}

const CLIENT = parseIpv4('10.0.0.2');
const RESOLVER = parseIpv4('10.0.0.1');

/** A DNS query for example.com in IPv4, 10.0.0.2:53124 → 10.0.0.1:53; UDP checksum 0xa0ac. */
const DNS_QUERY = hex(`
  45 00 00 39 1c 46 40 00 40 11 0a 6c 0a 00 00 02 0a 00 00 01
  cf 84 00 35 00 25 a0 ac ab cd 01 00 00 01 00 00 00 00 00 00
  07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00 01`);
const DATAGRAM = DNS_QUERY.subarray(20);

function pseudoV4(length: number): number {
  return pseudoHeaderSumV4(CLIENT, RESOLVER, IpProtocol.UDP, length);
}

describe('UdpView: a DNS query', () => {
  const ip = Ipv4View.parse(DNS_QUERY);
  const view = UdpView.parse(ip.payload);

  test('the checksum in the packet is the RFC 1071 one', () => {
    const zeroed = DATAGRAM.slice();
    zeroed[6] = 0;
    zeroed[7] = 0;
    expect(naiveChecksumV4(CLIENT, RESOLVER, zeroed)).toBe(0xa0ac);
    expect(view.checksum).toBe(0xa0ac);
    expect(view.hasChecksum).toBe(true);
    expect(view.checksumValid(pseudoHeaderSumV4(ip.src, ip.dst, ip.protocol, view.length))).toBe(true);
  });

  test('every field', () => {
    expect(view.srcPort).toBe(53124);
    expect(view.dstPort).toBe(53);
    expect(view.length).toBe(37);
    expect(view.payload).toHaveLength(29);
    expect(view.payload.subarray(0, 2)).toEqual(hex('ab cd'));
  });

  test('repr: parse, then emit byte for byte', () => {
    const repr = UdpRepr.parse(view, pseudoV4(view.length));
    expect(repr).toEqual({ srcPort: 53124, dstPort: 53, payload: DATAGRAM.subarray(8) });
    expect(UdpRepr.bufferLen(repr)).toBe(37);
    const buf = new Uint8Array(37);
    expect(UdpRepr.emit(repr, buf, 0, pseudoV4(37))).toBe(37);
    expect(buf).toEqual(DATAGRAM);
  });

  test('emit with the payload already in place (zero-copy send)', () => {
    const buf = new Uint8Array(60);
    buf.set(DATAGRAM.subarray(8), 20 + 8);
    const repr = { srcPort: 53124, dstPort: 53, payload: buf.subarray(28, 57) };
    UdpRepr.emit(repr, buf, 20, pseudoV4(37));
    expect(buf.subarray(20, 57)).toEqual(DATAGRAM);
  });

  test('bytes after the length field are not part of the datagram', () => {
    const longer = new Uint8Array(DATAGRAM.length + 5);
    longer.set(DATAGRAM);
    const trimmed = UdpView.parse(longer);
    expect(trimmed.bytes).toHaveLength(37);
    expect(UdpRepr.parse(trimmed, pseudoV4(37)).payload).toHaveLength(29);
  });
});

describe('UDP checksum rules', () => {
  test('zero means "no checksum" over IPv4 (RFC 768) when the caller allows it', () => {
    const unchecked = DATAGRAM.slice();
    unchecked[6] = 0;
    unchecked[7] = 0;
    const view = UdpView.parse(unchecked);
    expect(view.hasChecksum).toBe(false);
    expect(UdpRepr.parse(view, pseudoV4(37), { allowZeroChecksum: true }).dstPort).toBe(53);
  });

  test('zero is an error by default, as over IPv6 (RFC 8200 §8.1)', () => {
    const unchecked = DATAGRAM.slice();
    unchecked[6] = 0;
    unchecked[7] = 0;
    expectParseError(() => UdpRepr.parse(UdpView.parse(unchecked), pseudoV4(37)), 'zero-checksum');
  });

  test('a wrong checksum, unless told not to check', () => {
    const corrupt = DATAGRAM.slice();
    corrupt[20] ^= 0x01;
    const view = UdpView.parse(corrupt);
    expectParseError(() => UdpRepr.parse(view, pseudoV4(37)), 'bad-checksum');
    expectParseError(() => UdpRepr.parse(view, pseudoV4(37), { allowZeroChecksum: true }), 'bad-checksum');
    expect(UdpRepr.parse(view, pseudoV4(37), { verifyChecksum: false }).srcPort).toBe(53124);
    // The right bytes with the wrong addresses fail too.
    expectParseError(
      () => UdpRepr.parse(UdpView.parse(DATAGRAM), pseudoHeaderSumV4(RESOLVER, RESOLVER, 17, 37)),
      'bad-checksum',
    );
  });

  test('a computed checksum of zero goes out as 0xffff (RFC 768), and verifies', () => {
    const repr = { srcPort: 1000, dstPort: 2000, payload: new Uint8Array(2) };
    const buf = new Uint8Array(10);
    UdpRepr.emit(repr, buf, 0, pseudoV4(10));
    // A payload word equal to that checksum brings the sum to all ones: checksum 0.
    const payload = Uint8Array.of(buf[6]!, buf[7]!);
    UdpRepr.emit({ ...repr, payload }, buf, 0, pseudoV4(10));
    expect(buf.subarray(6, 8)).toEqual(hex('ff ff'));
    expect(naiveChecksumV4(CLIENT, RESOLVER, buf.slice().fill(0, 6, 8))).toBe(0);
    expect(UdpRepr.parse(UdpView.parse(buf), pseudoV4(10)).payload).toEqual(payload);
  });

  test('over IPv6 with the v6 pseudo-header', () => {
    const src = parseIpv6('2001:db8::1');
    const dst = parseIpv6('2001:db8::2');
    const repr = { srcPort: 5000, dstPort: 6000, payload: hex('68 69 21') };
    const buf = new Uint8Array(11);
    UdpRepr.emit(repr, buf, 0, pseudoHeaderSumV6(src, dst, IpProtocol.UDP, 11));
    expect(buf).toEqual(hex('13 88 17 70 00 0b f0 01 68 69 21'));
    expect(UdpRepr.parse(UdpView.parse(buf), pseudoHeaderSumV6(src, dst, IpProtocol.UDP, 11))).toEqual(repr);
  });
});

describe('UdpView: malformed datagrams', () => {
  test('shorter than the header', () => {
    for (let len = 0; len < 8; len++) expectParseError(() => UdpView.parse(DATAGRAM.subarray(0, len)), 'truncated');
  });

  test('a length field below 8', () => {
    for (const length of [0, 1, 7]) {
      const bad = DATAGRAM.slice();
      bad[4] = 0;
      bad[5] = length;
      expectParseError(() => UdpView.parse(bad), 'bad-length');
    }
  });

  test('a length field beyond the buffer', () => {
    expectParseError(() => UdpView.parse(DATAGRAM.subarray(0, 36)), 'truncated');
  });

  test('an empty datagram is fine', () => {
    const view = UdpView.parse(hex('00 07 00 09 00 08 00 00'));
    expect(view.payload).toHaveLength(0);
  });
});

describe('UdpRepr.emit refuses what no header can hold', () => {
  test.each([
    ['a port past 16 bits', { srcPort: 65536, dstPort: 0, payload: new Uint8Array(0) }],
    ['a negative port', { srcPort: 0, dstPort: -1, payload: new Uint8Array(0) }],
    ['a payload past 65527 bytes', { srcPort: 0, dstPort: 0, payload: new Uint8Array(65528) }],
  ])('%s', (_name, repr) => {
    expect(() => UdpRepr.emit(repr, new Uint8Array(70000), 0, 0)).toThrow(RangeError);
  });

  test('a buffer too short', () => {
    expect(() =>
      UdpRepr.emit({ srcPort: 1, dstPort: 2, payload: new Uint8Array(4) }, new Uint8Array(11), 0, 0),
    ).toThrow(RangeError);
  });
});
