import { parseIpv6 } from './address';
import { Icmpv6DestUnreachableCode, Icmpv6Repr, Icmpv6Type, Icmpv6View } from './icmpv6';
import { IpProtocol } from './ip-protocol';
import { Ipv6View } from './ipv6';
import { expectParseErrorOf, hex } from './test-support';

/** RFC 1071 §4.1 word by word over the RFC 8200 §8.1 pseudo-header and the message. */
function naiveChecksumV6(src: Uint8Array, dst: Uint8Array, message: Uint8Array): number {
  const pseudo = new Uint8Array(40 + message.length);
  pseudo.set(src, 0);
  pseudo.set(dst, 16);
  pseudo[34] = message.length >> 8;
  pseudo[35] = message.length & 0xff;
  pseudo[39] = IpProtocol.IPV6_ICMP;
  pseudo.set(message, 40);
  let sum = 0;
  for (let i = 0; i < pseudo.length; i += 2) {
    sum += (pseudo[i]! << 8) | (i + 1 < pseudo.length ? pseudo[i + 1]! : 0);
    if (sum > 0xffff) sum = (sum & 0xffff) + 1;
  }
  return ~sum & 0xffff;
}

function expectParseError(run: () => unknown, reason: string): void {
  expectParseErrorOf('icmpv6', run, reason);
}

const HOST_A = parseIpv6('2001:db8::1');
const HOST_B = parseIpv6('2001:db8::2');
const ROUTER = parseIpv6('2001:db8:ff::1');

function emit(repr: Icmpv6Repr, src = HOST_A, dst = HOST_B): Uint8Array {
  const buf = new Uint8Array(Icmpv6Repr.bufferLen(repr));
  expect(Icmpv6Repr.emit(repr, buf, 0, src, dst)).toBe(buf.length);
  return buf;
}

function roundTrip(bytes: Uint8Array, src = HOST_A, dst = HOST_B): Icmpv6Repr {
  return Icmpv6Repr.parse(Icmpv6View.parse(bytes), src, dst);
}

/** Echo request 2001:db8::1 → 2001:db8::2, id 0x1d0b, seq 7, "abcdefgh"; checksum 0x7598. */
const ECHO_REQUEST = hex('80 00 75 98 1d 0b 00 07 61 62 63 64 65 66 67 68');

/**
 * Packet Too Big from 2001:db8:ff::1 to 2001:db8::1, MTU 1280 (RFC 4443 §3.2), quoting
 * the header and first 8 bytes of a 1492-byte TCP packet.
 */
const PACKET_TOO_BIG = hex(`
  02 00 24 f8 00 00 05 00
  60 00 00 00 05 ac 06 40 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
  20 01 0d b8 ff ff 00 00 00 00 00 00 00 00 00 09 a9 f8 01 bb 01 02 03 04`);

describe('Icmpv6View: an echo request', () => {
  const view = Icmpv6View.parse(ECHO_REQUEST);

  test('the checksum covers the pseudo-header (RFC 4443 §2.3)', () => {
    const zeroed = ECHO_REQUEST.slice();
    zeroed[2] = 0;
    zeroed[3] = 0;
    expect(naiveChecksumV6(HOST_A, HOST_B, zeroed)).toBe(0x7598);
    expect(view.checksum).toBe(0x7598);
    expect(view.checksumValid(HOST_A, HOST_B)).toBe(true);
    expect(view.checksumValid(HOST_A, ROUTER)).toBe(false);
  });

  test('every field', () => {
    expect(view.type).toBe(Icmpv6Type.ECHO_REQUEST);
    expect(view.code).toBe(0);
    expect(view.identifier).toBe(0x1d0b);
    expect(view.sequence).toBe(7);
    expect(view.restOfHeader).toBe(0x1d0b0007);
    expect(view.body).toEqual(hex('61 62 63 64 65 66 67 68'));
  });

  test('repr: parse, then emit byte for byte', () => {
    const repr = roundTrip(ECHO_REQUEST);
    expect(repr).toEqual({ kind: 'echoRequest', identifier: 0x1d0b, sequence: 7, data: ECHO_REQUEST.subarray(8) });
    expect(emit(repr)).toEqual(ECHO_REQUEST);
  });

  test('the wrong addresses fail the checksum, unless told not to check', () => {
    expectParseError(
      () =>
        roundTrip(
          ECHO_REQUEST,
          HOST_B,
          HOST_A.map((byte, i) => (i === 15 ? 3 : byte)),
        ),
      'bad-checksum',
    );
    const repr = Icmpv6Repr.parse(view, ROUTER, HOST_A, { verifyChecksum: false });
    expect(repr.kind).toBe('echoRequest');
  });

  test('emit at an offset', () => {
    const repr = roundTrip(ECHO_REQUEST);
    const buf = new Uint8Array(64);
    expect(Icmpv6Repr.emit(repr, buf, 40, HOST_A, HOST_B)).toBe(16);
    expect(buf.subarray(40, 56)).toEqual(ECHO_REQUEST);
  });
});

describe('Icmpv6View: errors', () => {
  test('packet too big: the MTU and the quoted packet', () => {
    const repr = roundTrip(PACKET_TOO_BIG, ROUTER, HOST_A);
    expect(repr).toEqual({ kind: 'packetTooBig', mtu: 1280, invoking: PACKET_TOO_BIG.subarray(8) });
    expect(emit(repr, ROUTER, HOST_A)).toEqual(PACKET_TOO_BIG);

    const quoted = Ipv6View.parse(PACKET_TOO_BIG.subarray(8), { allowTruncated: true });
    expect(quoted.upperProtocol).toBe(IpProtocol.TCP);
    expect(quoted.src).toEqual(HOST_A);
    expect(quoted.payloadLen).toBe(1452);
    expect(quoted.upperPayload).toEqual(hex('a9 f8 01 bb 01 02 03 04'));
  });

  test.each<Icmpv6Repr>([
    { kind: 'destUnreachable', code: Icmpv6DestUnreachableCode.PORT_UNREACHABLE, invoking: hex('60 00 00 00') },
    { kind: 'timeExceeded', code: 0, invoking: new Uint8Array(48) },
    { kind: 'parameterProblem', code: 1, pointer: 40, invoking: new Uint8Array(56) },
    { kind: 'packetTooBig', mtu: 0xffffffff, invoking: new Uint8Array(0) },
    { kind: 'echoReply', identifier: 0, sequence: 0xffff, data: hex('ff') },
    // Neighbor Solicitation (RFC 4861 §4.3): reserved word, target, then options.
    { kind: 'raw', type: 135, code: 0, restOfHeader: 0, body: new Uint8Array(16) },
  ])('$kind round trip', (repr) => {
    expect(roundTrip(emit(repr))).toEqual(repr);
  });

  test.each([
    ['an echo request with a non-zero code', '80 01 00 00 00 01 00 02'],
    ['packet too big with a non-zero code', '02 01 00 00 00 00 05 00'],
    ['destination unreachable with non-zero unused bytes (RFC 4884 length)', '01 04 00 00 07 00 00 00'],
    ['time exceeded with non-zero unused bytes', '03 00 00 00 00 00 00 01'],
    ['a router advertisement', '86 00 00 00 40 00 07 08 00 00 00 00 00 00 00 00'],
  ])('kept raw, losslessly: %s', (_name, text) => {
    const message = hex(text);
    const checksum = naiveChecksumV6(HOST_A, HOST_B, message);
    message[2] = checksum >> 8;
    message[3] = checksum & 0xff;
    const repr = roundTrip(message);
    expect(repr.kind).toBe('raw');
    expect(emit(repr)).toEqual(message);
  });
});

describe('Icmpv6View: malformed messages', () => {
  test('shorter than 8 bytes', () => {
    for (let len = 0; len < 8; len++)
      expectParseError(() => Icmpv6View.parse(ECHO_REQUEST.subarray(0, len)), 'truncated');
  });

  test('a flipped bit', () => {
    const corrupt = ECHO_REQUEST.slice();
    corrupt[9] ^= 0x40;
    expectParseError(() => roundTrip(corrupt), 'bad-checksum');
  });
});

describe('Icmpv6Repr.emit refuses out-of-range fields', () => {
  test.each<[string, Icmpv6Repr]>([
    ['an identifier past 16 bits', { kind: 'echoRequest', identifier: 0x10000, sequence: 0, data: hex('') }],
    ['an MTU past 32 bits', { kind: 'packetTooBig', mtu: 2 ** 32, invoking: hex('') }],
    ['a negative pointer', { kind: 'parameterProblem', code: 0, pointer: -1, invoking: hex('') }],
    ['a code of 256', { kind: 'timeExceeded', code: 256, invoking: hex('') }],
  ])('%s', (_name, repr) => {
    expect(() => Icmpv6Repr.emit(repr, new Uint8Array(100), 0, HOST_A, HOST_B)).toThrow(RangeError);
  });

  test('IPv4 addresses, or a buffer too short', () => {
    const repr: Icmpv6Repr = { kind: 'echoRequest', identifier: 0, sequence: 0, data: new Uint8Array(10) };
    expect(() => Icmpv6Repr.emit(repr, new Uint8Array(18), 0, new Uint8Array(4), HOST_B)).toThrow(RangeError);
    expect(() => Icmpv6Repr.emit(repr, new Uint8Array(17), 0, HOST_A, HOST_B)).toThrow(RangeError);
  });
});
