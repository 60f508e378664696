import { pseudoHeaderSumV4, pseudoHeaderSumV6 } from './checksum';
import { ParseError } from './parse-error';
import { TCP_HEADER_LEN, TcpFlags, TcpHeaderView, TcpRepr } from './tcp';
import { findOption, type TcpOption } from './tcp-options';

function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** RFC 1071 written out the slow way, independent of checksum.ts: 16-bit words, carries folded at the end. */
function naiveChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += bytes[i]! * 256 + (i + 1 < bytes.length ? bytes[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return 0xffff - sum;
}

const SRC_V4 = hex('c0 00 02 01'); // 192.0.2.1
const DST_V4 = hex('c6 33 64 02'); // 198.51.100.2
const SRC_V6 = hex('20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01'); // 2001:db8::1
const DST_V6 = hex('20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02'); // 2001:db8::2

// RFC 9293 §3.1 pseudo-headers, laid out byte by byte.
function pseudoHeaderV4(length: number): Uint8Array {
  return concat(SRC_V4, DST_V4, new Uint8Array([0, 6, length >>> 8, length & 0xff]));
}
function pseudoHeaderV6(length: number): Uint8Array {
  return concat(SRC_V6, DST_V6, new Uint8Array([0, 0, length >>> 8, length & 0xff, 0, 0, 0, 6]));
}

function emit(repr: TcpRepr, pseudoSum: number): Uint8Array {
  const buf = new Uint8Array(TcpRepr.bufferLen(repr));
  expect(TcpRepr.emit(repr, buf, 0, pseudoSum)).toBe(buf.length);
  return buf;
}
function v4Sum(repr: TcpRepr): number {
  return pseudoHeaderSumV4(SRC_V4, DST_V4, 6, TcpRepr.bufferLen(repr));
}
function v6Sum(repr: TcpRepr): number {
  return pseudoHeaderSumV6(SRC_V6, DST_V6, 6, TcpRepr.bufferLen(repr));
}

function parseError(fn: () => unknown): ParseError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ParseError) return e;
    throw e;
  }
  throw new Error('parsed without error');
}

const LINUX_SYN_OPTIONS: TcpOption[] = [
  { kind: 'mss', mss: 1460 },
  { kind: 'sack-permitted' },
  { kind: 'timestamps', tsVal: 1_000_000, tsEcr: 0 },
  { kind: 'nop' },
  { kind: 'wscale', shift: 7 },
];

const SYN_TEMPL: TcpRepr = {
  srcPort: 54321,
  dstPort: 80,
  seq: 0x12345678,
  ack: 0,
  flags: TcpFlags.SYN,
  window: 64240,
  urgentPointer: 0,
  options: LINUX_SYN_OPTIONS,
  payload: new Uint8Array(0),
};

// The SYN above with its checksum field zeroed: 20 fixed bytes, then 20 of options.
const SYN_BYTES_NO_CHECKSUM = hex(`
  d4 31 00 50  12 34 56 78  00 00 00 00  a0 02 fa f0  00 00 00 00
  02 04 05 b4  04 02  08 0a 00 0f 42 40 00 00 00 00  01  03 03 07`);

function withChecksum(bytes: Uint8Array, checksum: number): Uint8Array {
  const out = bytes.slice();
  out[16] = checksum >>> 8;
  out[17] = checksum & 0xff;
  return out;
}

describe('TCP: known-answer vectors', () => {
  test('Linux-style SYN over IPv4: bytes and checksum (computed by Python, and by a naive RFC 1071 loop)', () => {
    const naive = naiveChecksum(concat(pseudoHeaderV4(40), SYN_BYTES_NO_CHECKSUM));
    expect(naive).toBe(0xe15a);
    expect(emit(SYN_TEMPL, v4Sum(SYN_TEMPL))).toEqual(withChecksum(SYN_BYTES_NO_CHECKSUM, 0xe15a));
  });

  test('Linux-style SYN over IPv6', () => {
    const naive = naiveChecksum(concat(pseudoHeaderV6(40), SYN_BYTES_NO_CHECKSUM));
    expect(naive).toBe(0x721d);
    expect(emit(SYN_TEMPL, v6Sum(SYN_TEMPL))).toEqual(withChecksum(SYN_BYTES_NO_CHECKSUM, 0x721d));
  });

  test('the view reads every field of the SYN', () => {
    const view = TcpHeaderView.parse(withChecksum(SYN_BYTES_NO_CHECKSUM, 0xe15a));
    expect(view.srcPort).toBe(54321);
    expect(view.dstPort).toBe(80);
    expect(view.seq).toBe(0x12345678);
    expect(view.ack).toBe(0);
    expect(view.dataOffset).toBe(10);
    expect(view.headerLen).toBe(40);
    expect(view.flags).toBe(TcpFlags.SYN);
    expect([view.isFin, view.isSyn, view.isRst, view.isPsh, view.isAck, view.isUrg, view.isEce, view.isCwr]).toEqual([
      false,
      true,
      false,
      false,
      false,
      false,
      false,
      false,
    ]);
    expect(view.window).toBe(64240);
    expect(view.checksum).toBe(0xe15a);
    expect(view.urgentPointer).toBe(0);
    expect(view.optionBytes).toEqual(SYN_BYTES_NO_CHECKSUM.subarray(20));
    expect(view.payload.length).toBe(0);
    expect(view.verifyChecksum(pseudoHeaderSumV4(SRC_V4, DST_V4, 6, 40))).toBe(true);
    expect(view.verifyChecksum(pseudoHeaderSumV6(SRC_V6, DST_V6, 6, 40))).toBe(false);
  });

  test('SYN parses back to the template, options included', () => {
    const bytes = emit(SYN_TEMPL, v4Sum(SYN_TEMPL));
    const repr = TcpRepr.parse(TcpHeaderView.parse(bytes), v4Sum(SYN_TEMPL));
    expect(repr).toEqual(SYN_TEMPL);
    expect(findOption(repr.options, 'mss')?.mss).toBe(1460);
  });

  test('SYN-ACK, ECN setup (RFC 3168 §6.1.1: SYN-ACK carries ECE)', () => {
    const synAck: TcpRepr = {
      ...SYN_TEMPL,
      srcPort: 80,
      dstPort: 54321,
      seq: 0xfedcba98,
      ack: 0x12345679,
      flags: TcpFlags.SYN | TcpFlags.ACK | TcpFlags.ECE,
      window: 65160,
      options: [{ kind: 'mss', mss: 1440 }, { kind: 'nop' }, { kind: 'nop' }, { kind: 'sack-permitted' }],
    };
    const bytes = emit(synAck, v6Sum(synAck));
    expect(bytes.subarray(0, 16)).toEqual(hex('00 50 d4 31 fe dc ba 98 12 34 56 79 70 52 fe 88'));
    expect(bytes.subarray(20)).toEqual(hex('02 04 05 a0 01 01 04 02'));
    expect(naiveChecksum(concat(pseudoHeaderV6(28), bytes))).toBe(0);
    const view = TcpHeaderView.parse(bytes);
    expect([view.isSyn, view.isAck, view.isEce, view.isCwr]).toEqual([true, true, true, false]);
    expect(TcpRepr.parse(view, v6Sum(synAck))).toEqual(synAck);
  });

  test('data segment with an odd-length payload and no options', () => {
    const data: TcpRepr = {
      ...SYN_TEMPL,
      seq: 0xffffffff,
      ack: 0x80000000,
      flags: TcpFlags.PSH | TcpFlags.ACK,
      window: 501,
      options: [],
      payload: new TextEncoder().encode('GET / HTTP/1.0\r\n\r\n!'),
    };
    const bytes = emit(data, v4Sum(data));
    expect(bytes.length).toBe(20 + 19);
    expect(bytes.subarray(0, 16)).toEqual(hex('d4 31 00 50 ff ff ff ff 80 00 00 00 50 18 01 f5'));
    expect(naiveChecksum(concat(pseudoHeaderV4(39), bytes))).toBe(0);
    const view = TcpHeaderView.parse(bytes);
    expect(view.seq).toBe(0xffffffff);
    expect(view.ack).toBe(0x80000000);
    expect(view.headerLen).toBe(TCP_HEADER_LEN);
    expect(view.optionBytes.length).toBe(0);
    expect(new TextDecoder().decode(view.payload)).toBe('GET / HTTP/1.0\r\n\r\n!');
    expect(TcpRepr.parse(view, v4Sum(data))).toEqual(data);
    expect(TcpRepr.segmentLen(data)).toBe(19);
  });

  test('every flag bit, AE and the reserved bits survive a round trip', () => {
    for (const flags of [
      TcpFlags.FIN,
      TcpFlags.RST,
      TcpFlags.URG,
      TcpFlags.CWR,
      TcpFlags.AE,
      TcpFlags.RESERVED,
      0xfff,
    ]) {
      const repr: TcpRepr = { ...SYN_TEMPL, flags, urgentPointer: 0xbeef, options: [] };
      const bytes = emit(repr, v4Sum(repr));
      expect(bytes[12]).toBe(0x50 | (flags >>> 8));
      expect(bytes[13]).toBe(flags & 0xff);
      const view = TcpHeaderView.parse(bytes);
      expect(view.flags).toBe(flags);
      expect(view.urgentPointer).toBe(0xbeef);
      expect(TcpRepr.parse(view)).toEqual(repr);
    }
  });

  test('segmentLen counts SYN and FIN (RFC 9293 §3.4)', () => {
    expect(TcpRepr.segmentLen(SYN_TEMPL)).toBe(1);
    expect(TcpRepr.segmentLen({ ...SYN_TEMPL, flags: TcpFlags.FIN | TcpFlags.ACK, payload: new Uint8Array(3) })).toBe(
      4,
    );
    expect(TcpRepr.segmentLen({ ...SYN_TEMPL, flags: TcpFlags.SYN | TcpFlags.FIN })).toBe(2);
  });

  test('numbers are written modulo their width and read back unsigned', () => {
    const repr: TcpRepr = { ...SYN_TEMPL, seq: -1, ack: 2 ** 32 + 5, options: [] };
    const parsed = TcpRepr.parse(TcpHeaderView.parse(emit(repr, 0)));
    expect(parsed.seq).toBe(0xffffffff);
    expect(parsed.ack).toBe(5);
  });
});

describe('TCP: zero copy and emission in place', () => {
  test('a parsed payload is a view of the packet', () => {
    const repr: TcpRepr = { ...SYN_TEMPL, flags: TcpFlags.ACK, payload: hex('01 02 03') };
    const bytes = emit(repr, 0);
    const parsed = TcpRepr.parse(TcpHeaderView.parse(bytes));
    expect(parsed.payload.buffer).toBe(bytes.buffer);
    expect(parsed.payload.byteOffset).toBe(40);
  });

  test('emit at an offset leaves the bytes around the segment alone', () => {
    const buf = new Uint8Array(14 + 40 + 8).fill(0xee);
    expect(TcpRepr.emit(SYN_TEMPL, buf, 14, v4Sum(SYN_TEMPL))).toBe(40);
    expect(buf.subarray(14, 54)).toEqual(withChecksum(SYN_BYTES_NO_CHECKSUM, 0xe15a));
    expect(buf.subarray(0, 14)).toEqual(new Uint8Array(14).fill(0xee));
    expect(buf.subarray(54)).toEqual(new Uint8Array(8).fill(0xee));
  });

  test('a payload already in place in the buffer is kept, and the checksum covers it', () => {
    const buf = new Uint8Array(20 + 12 + 5);
    const headerLen = 32;
    buf.set(hex('68 65 6c 6c 6f'), headerLen);
    const repr: TcpRepr = {
      ...SYN_TEMPL,
      flags: TcpFlags.ACK | TcpFlags.PSH,
      options: [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'timestamps', tsVal: 7, tsEcr: 9 }],
      payload: buf.subarray(headerLen),
    };
    expect(TcpRepr.headerLen(repr)).toBe(headerLen);
    expect(TcpRepr.emit(repr, buf, 0, v4Sum(repr))).toBe(37);
    expect(new TextDecoder().decode(buf.subarray(headerLen))).toBe('hello');
    expect(TcpHeaderView.parse(buf).verifyChecksum(v4Sum(repr))).toBe(true);
  });
});

describe('TCP: malformed segments → ParseError', () => {
  const valid = withChecksum(SYN_BYTES_NO_CHECKSUM, 0xe15a);

  test.each([0, 1, 19])('%i bytes: truncated', (length) => {
    const error = parseError(() => TcpHeaderView.parse(valid.subarray(0, length)));
    expect([error.layer, error.reason]).toEqual(['tcp', 'truncated']);
  });

  test.each([0, 1, 4])('data offset %i: bad-data-offset (RFC 9293 §3.1: at least 5)', (dataOffset) => {
    const bytes = valid.slice();
    bytes[12] = (dataOffset << 4) | (bytes[12]! & 0x0f);
    const error = parseError(() => TcpHeaderView.parse(bytes));
    expect([error.layer, error.reason]).toEqual(['tcp', 'bad-data-offset']);
  });

  test('a header longer than the segment: truncated', () => {
    for (let length = 20; length < 40; length++) {
      const error = parseError(() => TcpHeaderView.parse(valid.subarray(0, length)));
      expect([error.layer, error.reason]).toEqual(['tcp', 'truncated']);
    }
    expect(TcpHeaderView.parse(valid.subarray(0, 40)).headerLen).toBe(40);
  });

  test('data offset 15 in a 20-byte segment: truncated', () => {
    const bytes = valid.slice(0, 20);
    bytes[12] = 0xf0;
    expect(parseError(() => TcpHeaderView.parse(bytes)).reason).toBe('truncated');
  });

  test('every single-bit flip fails the checksum (RFC 1071 detects all of them)', () => {
    const pseudoSum = pseudoHeaderSumV4(SRC_V4, DST_V4, 6, 40);
    for (let bit = 0; bit < valid.length * 8; bit++) {
      const bytes = valid.slice();
      bytes[bit >>> 3]! ^= 0x80 >>> (bit & 7);
      let view: TcpHeaderView;
      try {
        view = TcpHeaderView.parse(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(ParseError); // a flip in the data offset
        continue;
      }
      expect(view.verifyChecksum(pseudoSum)).toBe(false);
    }
  });

  test('bad checksum: ParseError(tcp, bad-checksum); skipped without a pseudo-header sum', () => {
    const pseudoSum = pseudoHeaderSumV4(SRC_V4, DST_V4, 6, 40);
    for (const index of [0, 5, 13, 16, 17, 30, 39]) {
      const bytes = valid.slice();
      bytes[index]! ^= 0x01;
      const view = TcpHeaderView.parse(bytes);
      expect(view.verifyChecksum(pseudoSum)).toBe(false);
      const error = parseError(() => TcpRepr.parse(view, pseudoSum));
      expect([error.layer, error.reason]).toEqual(['tcp', 'bad-checksum']);
      expect(() => TcpRepr.parse(view)).not.toThrow();
    }
    // A wrong pseudo-header (another destination) fails too.
    const otherDst = pseudoHeaderSumV4(SRC_V4, hex('c6 33 64 03'), 6, 40);
    expect(parseError(() => TcpRepr.parse(TcpHeaderView.parse(valid), otherDst)).reason).toBe('bad-checksum');
  });

  test('a malformed option: ParseError from the tcp-option layer', () => {
    const bytes = valid.slice();
    bytes[21] = 5; // MSS length 5
    const error = parseError(() => TcpRepr.parse(TcpHeaderView.parse(bytes)));
    expect([error.layer, error.reason]).toEqual(['tcp-option', 'bad-length']);
  });
});

describe('TCP: emission errors are programming errors', () => {
  test('options over 40 bytes', () => {
    const repr: TcpRepr = { ...SYN_TEMPL, options: [{ kind: 'unknown', type: 30, data: new Uint8Array(40) }] };
    expect(() => TcpRepr.headerLen(repr)).toThrow(/more than 40/);
    expect(() => TcpRepr.emit(repr, new Uint8Array(100), 0, 0)).toThrow(/more than 40/);
    try {
      TcpRepr.bufferLen(repr);
    } catch (e) {
      expect(e).not.toBeInstanceOf(ParseError);
    }
  });

  test('a buffer too small', () => {
    expect(() => TcpRepr.emit(SYN_TEMPL, new Uint8Array(39), 0, 0)).toThrow(/does not fit/);
    expect(() => TcpRepr.emit(SYN_TEMPL, new Uint8Array(40), 1, 0)).toThrow(/does not fit/);
  });
});
