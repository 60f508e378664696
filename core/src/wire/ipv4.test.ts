import { parseIpv4 } from './address';
import { IpProtocol } from './ip-protocol';
import { IPV4_HEADER_LEN, Ipv4Repr, Ipv4View } from './ipv4';
import { expectParseErrorOf, hex, naiveChecksum } from './test-support';

/** RFC 1071 §4.1 word by word: independent of checksum.ts. */

function expectParseError(run: () => unknown, reason: string): void {
  expectParseErrorOf('ipv4', run, reason);
}

/** Rewrites the header checksum after a test edits a header field. */
function fixChecksum(packet: Uint8Array): Uint8Array {
  const headerLen = (packet[0]! & 0x0f) * 4;
  packet[10] = 0;
  packet[11] = 0;
  const checksum = naiveChecksum(packet.subarray(0, headerLen));
  packet[10] = checksum >> 8;
  packet[11] = checksum & 0xff;
  return packet;
}

/**
 * `ping -c1 8.8.8.8` from 192.168.1.100, as Linux sends it: DF set, TTL 64, ICMP echo
 * request id 0x0b2d seq 1 with 56 bytes (a struct timeval, then 0x10, 0x11, …).
 * Header checksum 0xc53d, computed by hand with the RFC 1071 loop.
 */
const PING = hex(`
  45 00 00 54 a3 4f 40 00 40 01 c5 3d c0 a8 01 64 08 08 08 08
  08 00 b9 7b 0b 2d 00 01 d2 7f 5b 65 00 00 00 00 3c 9e 0a 00 00 00 00 00
  10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f 20 21 22 23 24 25 26 27
  28 29 2a 2b 2c 2d 2e 2f 30 31 32 33 34 35 36 37`);

/** An IGMPv3 report header with a Router Alert option (RFC 2113), IHL 6, DSCP CS6. */
const ROUTER_ALERT = hex(`
  46 c0 00 20 00 00 40 00 01 02 42 00 c0 00 02 01 e0 00 00 16 94 04 00 00
  00 00 00 00 00 00 00 00`);

describe('Ipv4View: a ping as Linux sends it', () => {
  const view = Ipv4View.parse(PING);

  test('the checksum in the capture is the RFC 1071 one', () => {
    const header = PING.slice(0, 20);
    header[10] = 0;
    header[11] = 0;
    expect(naiveChecksum(header)).toBe(0xc53d);
    expect(view.checksum).toBe(0xc53d);
    expect(view.checksumValid).toBe(true);
  });

  test('every field', () => {
    expect(view.version).toBe(4);
    expect(view.headerLen).toBe(20);
    expect(view.dscp).toBe(0);
    expect(view.ecn).toBe(0);
    expect(view.totalLen).toBe(84);
    expect(view.isTruncated).toBe(false);
    expect(view.identification).toBe(0xa34f);
    expect(view.reservedFlag).toBe(false);
    expect(view.dontFragment).toBe(true);
    expect(view.moreFragments).toBe(false);
    expect(view.fragmentOffset).toBe(0);
    expect(view.isFragment).toBe(false);
    expect(view.ttl).toBe(64);
    expect(view.protocol).toBe(IpProtocol.ICMP);
    expect(view.src).toEqual(parseIpv4('192.168.1.100'));
    expect(view.dst).toEqual(parseIpv4('8.8.8.8'));
    expect(view.options).toHaveLength(0);
    expect(view.payload).toEqual(PING.subarray(20));
    expect(view.bytes).toBe(PING); // no trailing bytes: no new view
  });

  test('the payload is a view, not a copy', () => {
    expect(view.payload.buffer).toBe(PING.buffer);
    expect(view.payload.byteOffset).toBe(PING.byteOffset + 20);
  });

  test('repr: parse, then emit byte for byte', () => {
    const repr = Ipv4Repr.parse(view);
    expect(repr).toEqual({
      src: parseIpv4('192.168.1.100'),
      dst: parseIpv4('8.8.8.8'),
      protocol: IpProtocol.ICMP,
      payloadLen: 64,
      ttl: 64,
      dscp: 0,
      ecn: 0,
      identification: 0xa34f,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      options: new Uint8Array(0),
    });
    expect(Ipv4Repr.bufferLen(repr)).toBe(20);
    const buf = new Uint8Array(84).fill(0xee);
    expect(Ipv4Repr.emit(repr, buf)).toBe(20);
    expect(buf.subarray(0, 20)).toEqual(PING.subarray(0, 20));
    expect(buf[20]).toBe(0xee); // the payload is the caller's
  });

  test('repr addresses are copies: they outlive the packet buffer', () => {
    const packet = PING.slice();
    const repr = Ipv4Repr.parse(Ipv4View.parse(packet));
    packet.fill(0);
    expect(repr.src).toEqual(parseIpv4('192.168.1.100'));
  });

  test('emit at an offset', () => {
    const repr = Ipv4Repr.parse(view);
    const buf = new Uint8Array(30);
    Ipv4Repr.emit(repr, buf, 10);
    expect(buf.subarray(10, 30)).toEqual(PING.subarray(0, 20));
  });
});

describe('Ipv4View: options, trailing bytes, fragments', () => {
  test('options are kept raw, their length given by IHL', () => {
    const view = Ipv4View.parse(ROUTER_ALERT);
    expect(view.headerLen).toBe(24);
    expect(view.options).toEqual(hex('94 04 00 00'));
    expect(view.payload).toHaveLength(8);
    expect(view.dscp).toBe(48);
    expect(view.ttl).toBe(1);
    const repr = Ipv4Repr.parse(view);
    const buf = new Uint8Array(24);
    expect(Ipv4Repr.emit(repr, buf)).toBe(24);
    expect(buf).toEqual(ROUTER_ALERT.subarray(0, 24));
  });

  test('bytes after the total length (Ethernet padding) are not part of the packet', () => {
    const padded = new Uint8Array(ROUTER_ALERT.length + 14);
    padded.set(ROUTER_ALERT);
    padded.fill(0xaa, ROUTER_ALERT.length);
    const view = Ipv4View.parse(padded);
    expect(view.bytes).toHaveLength(32);
    expect(view.payload).toEqual(new Uint8Array(8));
  });

  test.each([
    // [flags+offset word, isFragment, moreFragments, offset in bytes, dontFragment]
    [0x2000, true, true, 0, false], // first fragment
    [0x20b9, true, true, 185 * 8, false], // middle fragment
    [0x00b9, true, false, 185 * 8, false], // last fragment
    [0x4000, false, false, 0, true], // DF only
    [0x1fff, true, false, 8191 * 8, false], // the largest offset
  ])('flags and offset word %#x', (word, isFragment, moreFragments, offset, dontFragment) => {
    const packet = PING.slice();
    packet[6] = word >> 8;
    packet[7] = word & 0xff;
    const view = Ipv4View.parse(fixChecksum(packet));
    expect(view.isFragment).toBe(isFragment);
    expect(view.moreFragments).toBe(moreFragments);
    expect(view.fragmentOffset).toBe(offset);
    expect(view.dontFragment).toBe(dontFragment);
    const buf = new Uint8Array(20);
    Ipv4Repr.emit(Ipv4Repr.parse(view), buf);
    expect(buf).toEqual(packet.subarray(0, 20));
  });

  test('the reserved flag is readable but not kept: it is sent as zero (RFC 791)', () => {
    const packet = PING.slice();
    packet[6] |= 0x80;
    const view = Ipv4View.parse(fixChecksum(packet));
    expect(view.reservedFlag).toBe(true);
    const buf = new Uint8Array(20);
    Ipv4Repr.emit(Ipv4Repr.parse(view), buf);
    expect(buf[6]).toBe(0x40);
  });

  test('ECN and DSCP share the second byte', () => {
    const packet = PING.slice();
    packet[1] = (46 << 2) | 0b11; // EF, CE
    const view = Ipv4View.parse(fixChecksum(packet));
    expect(view.dscp).toBe(46);
    expect(view.ecn).toBe(3);
  });
});

describe('Ipv4View: the packet quoted in an ICMP error', () => {
  // The first 28 bytes of a 1420-byte TCP packet, as quoted by a router.
  const quoted = hex(`
    45 00 05 8c 77 77 40 00 40 06 bf de c0 a8 01 64 cb 00 71 09 a9 f8 01 bb 01 02 03 04`);

  test('refused as truncated by default', () => {
    expectParseError(() => Ipv4View.parse(quoted), 'truncated');
  });

  test('with allowTruncated: the header, and the payload that is there', () => {
    const view = Ipv4View.parse(quoted, { allowTruncated: true });
    expect(view.isTruncated).toBe(true);
    expect(view.totalLen).toBe(1420);
    expect(view.protocol).toBe(IpProtocol.TCP);
    expect(view.payload).toEqual(hex('a9 f8 01 bb 01 02 03 04'));
    expect(Ipv4Repr.parse(view).payloadLen).toBe(1400);
  });
});

describe('Ipv4View: malformed packets', () => {
  function withByte(packet: Uint8Array, at: number, value: number): Uint8Array {
    const copy = packet.slice();
    copy[at] = value;
    return copy;
  }

  test('shorter than the fixed header', () => {
    for (let len = 0; len < 20; len++) expectParseError(() => Ipv4View.parse(PING.subarray(0, len)), 'truncated');
  });

  test('a version other than 4', () => {
    expectParseError(() => Ipv4View.parse(withByte(PING, 0, 0x65)), 'bad-version');
    expectParseError(() => Ipv4View.parse(withByte(PING, 0, 0x05)), 'bad-version');
  });

  test('IHL below 5', () => {
    for (const ihl of [0, 1, 4]) {
      expectParseError(() => Ipv4View.parse(withByte(PING, 0, 0x40 | ihl)), 'bad-header-length');
    }
  });

  test('IHL beyond the buffer', () => {
    expectParseError(() => Ipv4View.parse(withByte(PING, 0, 0x4f).subarray(0, 40)), 'truncated');
  });

  test('total length shorter than the header', () => {
    expectParseError(() => Ipv4View.parse(fixChecksum(withByte(withByte(PING, 2, 0), 3, 19))), 'bad-length');
    expectParseError(() => Ipv4View.parse(fixChecksum(withByte(ROUTER_ALERT, 3, 20))), 'bad-length');
  });

  test('total length beyond the buffer', () => {
    expectParseError(() => Ipv4View.parse(PING.subarray(0, 83)), 'truncated');
  });

  test('a wrong checksum, unless told not to check', () => {
    const corrupt = withByte(PING, 8, 63); // TTL changed, checksum not updated
    expectParseError(() => Ipv4View.parse(corrupt), 'bad-checksum');
    const view = Ipv4View.parse(corrupt, { verifyChecksum: false });
    expect(view.ttl).toBe(63);
    expect(view.checksumValid).toBe(false);
  });

  test('a flipped bit in the payload does not matter: the checksum covers the header only', () => {
    expect(() => Ipv4View.parse(withByte(PING, 50, 0))).not.toThrow();
  });
});

describe('Ipv4Repr.emit refuses what no header can hold', () => {
  const base = Ipv4Repr.parse(Ipv4View.parse(PING));
  const buf = new Uint8Array(100);

  test.each([
    ['options not a multiple of 4', { options: new Uint8Array(3) }],
    ['options over 40 bytes', { options: new Uint8Array(44) }],
    ['a payload past 65535', { payloadLen: 65516 }],
    ['a fragment offset not a multiple of 8', { fragmentOffset: 12 }],
    ['a fragment offset past 13 bits', { fragmentOffset: 65536 }],
    ['a TTL of 256', { ttl: 256 }],
    ['a DSCP of 64', { dscp: 64 }],
    ['an ECN of 4', { ecn: 4 }],
    ['a 16-byte address', { src: new Uint8Array(16) }],
    ['a fractional identification', { identification: 1.5 }],
  ])('%s', (_name, change) => {
    expect(() => Ipv4Repr.emit({ ...base, ...change }, buf)).toThrow(RangeError);
  });

  test('a buffer too short', () => {
    expect(() => Ipv4Repr.emit(base, new Uint8Array(19))).toThrow(RangeError);
    expect(() => Ipv4Repr.emit(base, new Uint8Array(30), 11)).toThrow(RangeError);
  });

  test('the largest payload fits', () => {
    Ipv4Repr.emit({ ...base, payloadLen: 65535 - IPV4_HEADER_LEN }, buf);
    expect((buf[2]! << 8) | buf[3]!).toBe(65535);
  });
});
