import { parseIpv4 } from './address';
import { Icmpv4DestUnreachableCode, Icmpv4Repr, Icmpv4Type, Icmpv4View } from './icmpv4';
import { IpProtocol } from './ip-protocol';
import { Ipv4View } from './ipv4';
import { expectParseErrorOf, hex, naiveChecksum } from './test-support';

/** RFC 1071 §4.1 word by word: independent of checksum.ts. */

function expectParseError(run: () => unknown, reason: string): void {
  expectParseErrorOf('icmpv4', run, reason);
}

function emit(repr: Icmpv4Repr): Uint8Array {
  const buf = new Uint8Array(Icmpv4Repr.bufferLen(repr));
  expect(Icmpv4Repr.emit(repr, buf)).toBe(buf.length);
  return buf;
}

/** The ICMP part of `ping -c1 8.8.8.8` from Linux: id 0x0b2d, seq 1, 56 data bytes. */
const ECHO_REQUEST = hex(`
  08 00 b9 7b 0b 2d 00 01 d2 7f 5b 65 00 00 00 00 3c 9e 0a 00 00 00 00 00
  10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f 20 21 22 23 24 25 26 27
  28 29 2a 2b 2c 2d 2e 2f 30 31 32 33 34 35 36 37`);

/**
 * A router's "fragmentation needed" (RFC 1191 §4) with next-hop MTU 1400, quoting the
 * header and first 8 bytes of a 1420-byte TCP packet with DF set.
 */
const FRAGMENTATION_NEEDED = hex(`
  03 04 47 ca 00 00 05 78
  45 00 05 8c 77 77 40 00 40 06 bf de c0 a8 01 64 cb 00 71 09 a9 f8 01 bb 01 02 03 04`);

describe('Icmpv4View: an echo request', () => {
  const view = Icmpv4View.parse(ECHO_REQUEST);

  test('the checksum in the packet is the RFC 1071 one', () => {
    const zeroed = ECHO_REQUEST.slice();
    zeroed[2] = 0;
    zeroed[3] = 0;
    expect(naiveChecksum(zeroed)).toBe(0xb97b);
    expect(view.checksum).toBe(0xb97b);
    expect(view.checksumValid).toBe(true);
  });

  test('every field', () => {
    expect(view.type).toBe(Icmpv4Type.ECHO_REQUEST);
    expect(view.code).toBe(0);
    expect(view.identifier).toBe(0x0b2d);
    expect(view.sequence).toBe(1);
    expect(view.restOfHeader).toBe(0x0b2d0001);
    expect(view.body).toHaveLength(56);
    expect(view.body[16]).toBe(0x10);
  });

  test('repr: parse, then emit byte for byte', () => {
    const repr = Icmpv4Repr.parse(view);
    expect(repr).toEqual({ kind: 'echoRequest', identifier: 0x0b2d, sequence: 1, data: ECHO_REQUEST.subarray(8) });
    expect(Icmpv4Repr.bufferLen(repr)).toBe(64);
    expect(emit(repr)).toEqual(ECHO_REQUEST);
  });

  test('the reply differs by type only, and its checksum by 0x0800', () => {
    const request = Icmpv4Repr.parse(view);
    const reply = emit({ ...request, kind: 'echoReply' } as Icmpv4Repr);
    expect(reply[0]).toBe(Icmpv4Type.ECHO_REPLY);
    expect(((reply[2]! << 8) | reply[3]!) - 0xb97b).toBe(0x0800);
    expect(Icmpv4Repr.parse(Icmpv4View.parse(reply)).kind).toBe('echoReply');
  });

  test('emit at an offset', () => {
    const repr = Icmpv4Repr.parse(view);
    const buf = new Uint8Array(100);
    expect(Icmpv4Repr.emit(repr, buf, 20)).toBe(64);
    expect(buf.subarray(20, 84)).toEqual(ECHO_REQUEST);
  });
});

describe('Icmpv4View: errors', () => {
  test('fragmentation needed: the next-hop MTU and the quoted packet', () => {
    const view = Icmpv4View.parse(FRAGMENTATION_NEEDED);
    expect(view.nextHopMtu).toBe(1400);
    const repr = Icmpv4Repr.parse(view);
    expect(repr).toEqual({ kind: 'fragmentationNeeded', nextHopMtu: 1400, invoking: FRAGMENTATION_NEEDED.subarray(8) });
    expect(emit(repr)).toEqual(FRAGMENTATION_NEEDED);

    // The quote is cut after 8 payload bytes: enough for the TCP ports (RFC 792).
    const quoted = Ipv4View.parse(view.body, { allowTruncated: true });
    expect(quoted.protocol).toBe(IpProtocol.TCP);
    expect(quoted.dontFragment).toBe(true);
    expect(quoted.src).toEqual(parseIpv4('192.168.1.100'));
    expect(quoted.dst).toEqual(parseIpv4('203.0.113.9'));
    expect(quoted.payload).toEqual(hex('a9 f8 01 bb 01 02 03 04'));
  });

  test('fragmentation needed from a pre-RFC 1191 router: MTU 0', () => {
    const repr: Icmpv4Repr = { kind: 'fragmentationNeeded', nextHopMtu: 0, invoking: new Uint8Array(28) };
    expect(Icmpv4Repr.parse(Icmpv4View.parse(emit(repr)))).toEqual(repr);
  });

  test.each<Icmpv4Repr>([
    { kind: 'destUnreachable', code: Icmpv4DestUnreachableCode.PORT_UNREACHABLE, invoking: hex('45 00 00 1c') },
    { kind: 'destUnreachable', code: Icmpv4DestUnreachableCode.ADMIN_PROHIBITED, invoking: new Uint8Array(0) },
    { kind: 'timeExceeded', code: 1, invoking: hex('45 00 00 1c 00 00') },
    { kind: 'parameterProblem', code: 0, pointer: 9, invoking: hex('45 00 00 1c 00 00 00 00 00') },
    { kind: 'echoReply', identifier: 0xffff, sequence: 0xffff, data: hex('01') },
    { kind: 'raw', type: 13, code: 0, restOfHeader: 0x12345678, body: new Uint8Array(12) }, // timestamp
  ])('$kind round trip', (repr) => {
    const bytes = emit(repr);
    expect(Icmpv4Repr.parse(Icmpv4View.parse(bytes))).toEqual(repr);
  });

  test.each([
    ['an echo request with a non-zero code', '08 01 00 00 00 01 00 02'],
    ['destination unreachable with non-zero unused bytes (RFC 4884 length)', '03 01 00 00 00 07 00 00'],
    ['fragmentation needed with non-zero unused bytes', '03 04 00 00 00 01 05 dc'],
    ['time exceeded with non-zero unused bytes', '0b 00 00 00 00 00 00 01'],
    ['parameter problem with non-zero unused bytes', '0c 00 00 00 05 00 00 01'],
    ['a redirect', '05 01 00 00 c0 00 02 01'],
  ])('kept raw, losslessly: %s', (_name, text) => {
    const message = hex(text);
    const checksum = naiveChecksum(message);
    message[2] = checksum >> 8;
    message[3] = checksum & 0xff;
    const repr = Icmpv4Repr.parse(Icmpv4View.parse(message));
    expect(repr.kind).toBe('raw');
    expect(emit(repr)).toEqual(message);
  });
});

describe('Icmpv4View: malformed messages', () => {
  test('shorter than 8 bytes', () => {
    for (let len = 0; len < 8; len++)
      expectParseError(() => Icmpv4View.parse(ECHO_REQUEST.subarray(0, len)), 'truncated');
  });

  test('a wrong checksum, unless told not to check', () => {
    const corrupt = ECHO_REQUEST.slice();
    corrupt[63] ^= 1;
    expectParseError(() => Icmpv4View.parse(corrupt), 'bad-checksum');
    expect(Icmpv4View.parse(corrupt, { verifyChecksum: false }).checksumValid).toBe(false);
  });

  test('an odd length is summed with a zero pad byte', () => {
    const repr: Icmpv4Repr = { kind: 'echoRequest', identifier: 1, sequence: 2, data: hex('ab cd ef') };
    const bytes = emit(repr);
    expect(naiveChecksum(bytes)).toBe(0);
    expect(Icmpv4Repr.parse(Icmpv4View.parse(bytes))).toEqual(repr);
  });
});

describe('Icmpv4Repr.emit refuses out-of-range fields', () => {
  test.each<[string, Icmpv4Repr]>([
    ['an identifier past 16 bits', { kind: 'echoRequest', identifier: 0x10000, sequence: 0, data: hex('') }],
    ['a negative sequence', { kind: 'echoReply', identifier: 0, sequence: -1, data: hex('') }],
    ['code 4 as destUnreachable', { kind: 'destUnreachable', code: 4, invoking: hex('') }],
    ['an MTU past 16 bits', { kind: 'fragmentationNeeded', nextHopMtu: 65536, invoking: hex('') }],
    ['a pointer past 8 bits', { kind: 'parameterProblem', code: 0, pointer: 256, invoking: hex('') }],
    ['a type of 256', { kind: 'raw', type: 256, code: 0, restOfHeader: 0, body: hex('') }],
  ])('%s', (_name, repr) => {
    expect(() => Icmpv4Repr.emit(repr, new Uint8Array(100))).toThrow(RangeError);
  });

  test('a buffer too short', () => {
    const repr: Icmpv4Repr = { kind: 'echoRequest', identifier: 0, sequence: 0, data: new Uint8Array(10) };
    expect(() => Icmpv4Repr.emit(repr, new Uint8Array(17))).toThrow(RangeError);
  });
});
