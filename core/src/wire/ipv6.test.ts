import { parseIpv6 } from './address';
import { fold, pseudoHeaderSumV6, sumBytes } from './checksum';
import { IpProtocol } from './ip-protocol';
import { IPV6_HEADER_LEN, type Ipv6ExtensionHeader, Ipv6Repr, Ipv6View } from './ipv6';
import { expectParseErrorOf, hex } from './test-support';

function expectParseError(run: () => unknown, reason: string): void {
  expectParseErrorOf('ipv6', run, reason);
}

const SRC = parseIpv6('2001:db8::1');
const DST = parseIpv6('2001:db8::2');
const ADDRESSES = `
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02`;

/** An IPv6 packet from SRC to DST: the first 4 bytes, next header, hop limit 64, then `rest`. */
function packet(firstWord: string, nextHeader: number, rest: string): Uint8Array {
  const tail = hex(rest);
  const bytes = new Uint8Array(IPV6_HEADER_LEN + tail.length);
  bytes.set(hex(firstWord), 0);
  bytes[4] = tail.length >> 8;
  bytes[5] = tail.length & 0xff;
  bytes[6] = nextHeader;
  bytes[7] = 64;
  bytes.set(hex(ADDRESSES), 8);
  bytes.set(tail, IPV6_HEADER_LEN);
  return bytes;
}

/** Emits the headers of `repr` and appends `payload`. */
function emitWith(repr: Ipv6Repr, payload: Uint8Array): Uint8Array {
  const headerLen = Ipv6Repr.bufferLen(repr);
  const buf = new Uint8Array(headerLen + payload.length);
  expect(Ipv6Repr.emit(repr, buf)).toBe(headerLen);
  buf.set(payload, headerLen);
  return buf;
}

/** `ping -6 2001:db8::2`: flow label 0x12345, an echo request id 0x1d0b seq 7, data "abcdefgh". */
const PING = hex(`
  60 01 23 45 00 10 3a 40 ${ADDRESSES}
  80 00 75 98 1d 0b 00 07 61 62 63 64 65 66 67 68`);

/**
 * UDP 5000 → 6000 "hi!" behind Hop-by-Hop (Router Alert, RFC 2711) and Destination
 * Options (a PadN option), traffic class 0xb8 (EF), flow label 0xabcde.
 */
const WITH_EXTENSIONS = hex(`
  6b 8a bc de 00 23 00 40 ${ADDRESSES}
  3c 00 05 02 00 00 01 00
  11 01 01 0c 00 00 00 00 00 00 00 00 00 00 00 00
  13 88 17 70 00 0b f0 01 68 69 21`);

/** The second fragment (offset 1232, M set, id 0xdeadbeef) of a UDP datagram: 16 bytes of data. */
const FRAGMENT = hex(`
  60 00 00 00 00 18 2c 40 ${ADDRESSES}
  11 00 04 d1 de ad be ef
  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f`);

describe('Ipv6View: an echo request', () => {
  const view = Ipv6View.parse(PING);

  test('every field', () => {
    expect(view.version).toBe(6);
    expect(view.trafficClass).toBe(0);
    expect(view.flowLabel).toBe(0x12345);
    expect(view.payloadLen).toBe(16);
    expect(view.nextHeader).toBe(IpProtocol.IPV6_ICMP);
    expect(view.hopLimit).toBe(64);
    expect(view.src).toEqual(SRC);
    expect(view.dst).toEqual(DST);
    expect(view.upperProtocol).toBe(IpProtocol.IPV6_ICMP);
    expect(view.upperOffset).toBe(40);
    expect(view.upperLen).toBe(16);
    expect(view.upperPayload).toEqual(PING.subarray(40));
    expect(view.extensionHeaderBytes).toHaveLength(0);
    expect(view.hasFragmentHeader).toBe(false);
    expect(view.isFragment).toBe(false);
    expect(view.fragmentHeaderOffset).toBe(-1);
    expect(view.fragmentOffset).toBe(0);
    expect(view.moreFragments).toBe(false);
    expect(view.fragmentIdentification).toBe(0);
    expect(view.isTruncated).toBe(false);
  });

  test('repr: parse, then emit byte for byte', () => {
    const repr = Ipv6Repr.parse(view);
    expect(repr).toEqual({
      src: SRC,
      dst: DST,
      protocol: IpProtocol.IPV6_ICMP,
      payloadLen: 16,
      hopLimit: 64,
      trafficClass: 0,
      flowLabel: 0x12345,
      extensionHeaders: [],
    });
    expect(Ipv6Repr.bufferLen(repr)).toBe(40);
    expect(emitWith(repr, view.upperPayload)).toEqual(PING);
  });

  test('bytes after the payload length (link padding) are not part of the packet', () => {
    const padded = new Uint8Array(PING.length + 10);
    padded.set(PING);
    const padView = Ipv6View.parse(padded);
    expect(padView.bytes).toHaveLength(PING.length);
    expect(padView.upperPayload).toEqual(PING.subarray(40));
  });
});

describe('Ipv6View: extension headers', () => {
  test('Hop-by-Hop and Destination Options are walked to the UDP payload', () => {
    const view = Ipv6View.parse(WITH_EXTENSIONS);
    expect(view.trafficClass).toBe(0xb8);
    expect(view.dscp).toBe(46);
    expect(view.ecn).toBe(0);
    expect(view.flowLabel).toBe(0xabcde);
    expect(view.nextHeader).toBe(IpProtocol.IPV6_HOP_BY_HOP);
    expect(view.upperProtocol).toBe(IpProtocol.UDP);
    expect(view.upperOffset).toBe(40 + 8 + 16);
    expect(view.upperLen).toBe(11);
    expect(view.extensionHeaderBytes).toHaveLength(24);
    // RFC 8200 §8.1: the pseudo-header length leaves the extension headers out.
    const pseudo = pseudoHeaderSumV6(view.src, view.dst, IpProtocol.UDP, view.upperLen);
    expect(fold(sumBytes(view.upperPayload, 0, view.upperLen, pseudo))).toBe(0xffff);

    const repr = Ipv6Repr.parse(view);
    expect(repr.protocol).toBe(IpProtocol.UDP);
    expect(repr.payloadLen).toBe(11);
    expect(repr.extensionHeaders.map((header) => [header.type, header.bytes.length])).toEqual([
      [IpProtocol.IPV6_HOP_BY_HOP, 8],
      [IpProtocol.IPV6_DESTINATION_OPTIONS, 16],
    ]);
    expect(Ipv6Repr.bufferLen(repr)).toBe(64);
    expect(emitWith(repr, view.upperPayload)).toEqual(WITH_EXTENSIONS);
  });

  test('a real fragment ends the walk: what follows is fragment data', () => {
    const view = Ipv6View.parse(FRAGMENT);
    expect(view.nextHeader).toBe(IpProtocol.IPV6_FRAGMENT);
    expect(view.hasFragmentHeader).toBe(true);
    expect(view.isFragment).toBe(true);
    expect(view.fragmentHeaderOffset).toBe(40);
    expect(view.fragmentOffset).toBe(1232);
    expect(view.moreFragments).toBe(true);
    expect(view.fragmentIdentification).toBe(0xdeadbeef);
    expect(view.upperProtocol).toBe(IpProtocol.UDP);
    expect(view.upperOffset).toBe(48);
    expect(view.upperPayload).toEqual(FRAGMENT.subarray(48));
    const repr = Ipv6Repr.parse(view);
    expect(repr.payloadLen).toBe(16);
    expect(emitWith(repr, view.upperPayload)).toEqual(FRAGMENT);
  });

  test('a first fragment (offset 0, M set) also ends the walk, even before another header', () => {
    // Fragment → Destination Options: the options are fragmentable, so they are fragment data.
    const view = Ipv6View.parse(packet('60000000', 44, '3c 00 00 01 00 00 00 2a  11 00 01 04 00 00 00 00'));
    expect(view.isFragment).toBe(true);
    expect(view.fragmentOffset).toBe(0);
    expect(view.moreFragments).toBe(true);
    expect(view.fragmentIdentification).toBe(42);
    expect(view.upperProtocol).toBe(IpProtocol.IPV6_DESTINATION_OPTIONS);
    expect(view.upperOffset).toBe(48);
  });

  test('an atomic fragment (offset 0, M clear; RFC 6946) is walked through', () => {
    const view = Ipv6View.parse(packet('60000000', 44, '11 00 00 00 00 00 00 07  13 88 17 70 00 08 00 00'));
    expect(view.hasFragmentHeader).toBe(true);
    expect(view.isFragment).toBe(false);
    expect(view.fragmentIdentification).toBe(7);
    expect(view.upperProtocol).toBe(IpProtocol.UDP);
    expect(view.upperOffset).toBe(48);
  });

  test('a Routing header, and AH with its 4-byte length unit (RFC 4302 §2.2)', () => {
    // Routing (type 4, 0 segments left, Hdr Ext Len 2 → 24 bytes), then AH with
    // Payload Len 4 → (4 + 2) × 4 = 24 bytes, then TCP.
    const routing = `33 02 04 00 00 00 00 00 ${'00 '.repeat(16)}`;
    const ah = `06 04 00 00 00 00 01 00 00 00 00 01 ${'ab '.repeat(12)}`;
    const view = Ipv6View.parse(packet('60000000', 43, `${routing} ${ah} 00 50 00 50`));
    expect(view.upperProtocol).toBe(IpProtocol.TCP);
    expect(view.upperOffset).toBe(40 + 24 + 24);
    expect(view.upperPayload).toEqual(hex('00 50 00 50'));
    const repr = Ipv6Repr.parse(view);
    expect(repr.extensionHeaders.map((header: Ipv6ExtensionHeader) => header.type)).toEqual([43, 51]);
    expect(emitWith(repr, view.upperPayload)).toEqual(view.bytes);
  });

  test('ESP, No Next Header and unknown values end the walk (RFC 8200 §4.7)', () => {
    for (const nextHeader of [IpProtocol.ESP, IpProtocol.IPV6_NO_NEXT_HEADER, 253]) {
      const view = Ipv6View.parse(packet('60000000', nextHeader, '01 02 03 04'));
      expect(view.upperProtocol).toBe(nextHeader);
      expect(view.upperOffset).toBe(40);
    }
  });

  test('the repr keeps the chain raw, and emit links the Next Header fields', () => {
    const hopByHop = hex('ff 00 01 04 00 00 00 00'); // its Next Header byte is rewritten by emit
    const fragment = hex('ff 00 00 00 12 34 56 78');
    const repr: Ipv6Repr = {
      src: SRC,
      dst: DST,
      protocol: IpProtocol.UDP,
      payloadLen: 0,
      hopLimit: 255,
      trafficClass: 0x12,
      flowLabel: 0xfffff,
      extensionHeaders: [
        { type: IpProtocol.IPV6_HOP_BY_HOP, bytes: hopByHop },
        { type: IpProtocol.IPV6_FRAGMENT, bytes: fragment },
      ],
    };
    const buf = emitWith(repr, new Uint8Array(0));
    expect(buf[6]).toBe(IpProtocol.IPV6_HOP_BY_HOP);
    expect(buf[40]).toBe(IpProtocol.IPV6_FRAGMENT);
    expect(buf[48]).toBe(IpProtocol.UDP);
    expect(hopByHop[0]).toBe(0xff); // the repr is not modified
    const view = Ipv6View.parse(buf);
    expect(view.payloadLen).toBe(16);
    expect(view.trafficClass).toBe(0x12);
    expect(view.flowLabel).toBe(0xfffff);
    expect(view.hopLimit).toBe(255);
    expect(view.fragmentIdentification).toBe(0x12345678);
  });
});

describe('Ipv6View: the packet quoted in an ICMPv6 error', () => {
  // Header and first 8 bytes of a 1492-byte TCP packet.
  const quoted = hex(`60 00 00 00 05 ac 06 40 ${ADDRESSES} a9 f8 01 bb 01 02 03 04`);

  test('refused as truncated by default', () => {
    expectParseError(() => Ipv6View.parse(quoted), 'truncated');
  });

  test('with allowTruncated: the header, and the payload that is there', () => {
    const view = Ipv6View.parse(quoted, { allowTruncated: true });
    expect(view.isTruncated).toBe(true);
    expect(view.upperProtocol).toBe(IpProtocol.TCP);
    expect(view.upperPayload).toEqual(hex('a9 f8 01 bb 01 02 03 04'));
  });

  test('extension headers must still fit in what is there', () => {
    const cut = packet('60000000', 0, '11 01 00 00 00 00 00 00 00 00').subarray(0, 48);
    cut[5] = 100;
    expectParseError(() => Ipv6View.parse(cut, { allowTruncated: true }), 'extension-header-overrun');
  });
});

describe('Ipv6View: malformed packets', () => {
  test('shorter than the fixed header', () => {
    for (let len = 0; len < 40; len++) expectParseError(() => Ipv6View.parse(PING.subarray(0, len)), 'truncated');
  });

  test('a version other than 6', () => {
    const bad = PING.slice();
    bad[0] = 0x40;
    expectParseError(() => Ipv6View.parse(bad), 'bad-version');
  });

  test('payload length beyond the buffer', () => {
    expectParseError(() => Ipv6View.parse(PING.subarray(0, PING.length - 1)), 'truncated');
  });

  test('an extension header that runs past the payload', () => {
    // Hdr Ext Len 1 says 16 bytes; only 8 are there.
    expectParseError(
      () => Ipv6View.parse(packet('60000000', 0, '11 01 00 00 00 00 00 00')),
      'extension-header-overrun',
    );
    // Not even the two bytes of Next Header and length.
    expectParseError(() => Ipv6View.parse(packet('60000000', 60, '11')), 'extension-header-overrun');
    expectParseError(() => Ipv6View.parse(packet('60000000', 44, '11 00 00 00 00 00 00')), 'extension-header-overrun');
    expectParseError(
      () => Ipv6View.parse(packet('60000000', 51, `06 04 ${'00 '.repeat(20)}`)),
      'extension-header-overrun',
    );
    // Payload length shorter than the buffer cuts the chain too.
    const cut = WITH_EXTENSIONS.slice();
    cut[5] = 20;
    expectParseError(() => Ipv6View.parse(cut), 'extension-header-overrun');
  });

  test('Hop-by-Hop anywhere but first (RFC 8200 §4.1)', () => {
    expectParseError(
      () => Ipv6View.parse(packet('60000000', 60, '00 00 01 04 00 00 00 00  11 00 01 04 00 00 00 00')),
      'misplaced-hop-by-hop',
    );
  });
});

describe('Ipv6Repr.emit refuses reprs that would not parse back', () => {
  const base = Ipv6Repr.parse(Ipv6View.parse(PING));
  const buf = new Uint8Array(200);
  const header = (type: number, text: string): Ipv6ExtensionHeader => ({ type, bytes: hex(text) });

  test.each([
    ['a 4-byte address', { src: new Uint8Array(4) }],
    ['a flow label past 20 bits', { flowLabel: 0x100000 }],
    ['a traffic class of 256', { trafficClass: 256 }],
    ['a payload past 65535', { payloadLen: 65536 }],
    ['an extension header type as the protocol', { protocol: IpProtocol.IPV6_ROUTING }],
    [
      'Hop-by-Hop after another header',
      {
        extensionHeaders: [header(60, '00 00 01 04 00 00 00 00'), header(0, '00 00 01 04 00 00 00 00')],
      },
    ],
    ['a length that disagrees with Hdr Ext Len', { extensionHeaders: [header(60, '00 01 01 04 00 00 00 00')] }],
    ['a Fragment header of the wrong size', { extensionHeaders: [header(44, '00 00 00 00 00 00 00 00 00')] }],
    ['a type that is not an extension header', { extensionHeaders: [header(6, '00 00 01 04 00 00 00 00')] }],
    [
      'a real fragment before another header',
      {
        extensionHeaders: [header(44, '00 00 00 01 00 00 00 01'), header(60, '00 00 01 04 00 00 00 00')],
      },
    ],
  ])('%s', (_name, change) => {
    expect(() => Ipv6Repr.emit({ ...base, ...change } as Ipv6Repr, buf)).toThrow(RangeError);
  });

  test('a buffer too short', () => {
    expect(() => Ipv6Repr.emit(base, new Uint8Array(39))).toThrow(RangeError);
  });

  test('a real fragment may carry any Next Header, even an extension header', () => {
    const repr = { ...base, protocol: 60, payloadLen: 8, extensionHeaders: [header(44, '3c 00 00 01 00 00 00 01')] };
    const view = Ipv6View.parse(emitWith(repr, new Uint8Array(8)));
    expect(Ipv6Repr.parse(view)).toEqual(repr);
  });
});
