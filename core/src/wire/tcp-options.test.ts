import { ParseError } from './parse-error';
import {
  encodeOptions,
  findOption,
  findUnknownOption,
  MAX_OPTIONS_LEN,
  OptionSpace,
  optionSize,
  optionsLength,
  parseOptions,
  type TcpOption,
  TcpOptionKind,
} from './tcp-options';

function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function encode(options: TcpOption[]): Uint8Array {
  const buf = new Uint8Array(optionsLength(options));
  expect(encodeOptions(options, buf, 0)).toBe(buf.length);
  return buf;
}

function parseError(bytes: Uint8Array): ParseError {
  try {
    parseOptions(bytes);
  } catch (e) {
    if (e instanceof ParseError) return e;
    throw e;
  }
  throw new Error('parsed without error');
}

// The option layout of a Linux SYN: MSS, SACK-permitted, timestamps, NOP, window scale.
const LINUX_SYN_OPTIONS = hex('02 04 05 b4  04 02  08 0a 1a 2b 3c 4d 00 00 00 00  01  03 03 07');
const LINUX_SYN_LIST: TcpOption[] = [
  { kind: 'mss', mss: 1460 },
  { kind: 'sack-permitted' },
  { kind: 'timestamps', tsVal: 0x1a2b3c4d, tsEcr: 0 },
  { kind: 'nop' },
  { kind: 'wscale', shift: 7 },
];

describe('TCP options: known answers', () => {
  test('Linux SYN layout parses to MSS, SACK-permitted, timestamps, NOP, window scale', () => {
    expect(parseOptions(LINUX_SYN_OPTIONS)).toEqual(LINUX_SYN_LIST);
  });

  test('Linux SYN layout encodes byte for byte', () => {
    expect(optionsLength(LINUX_SYN_LIST)).toBe(20);
    expect(encode(LINUX_SYN_LIST)).toEqual(LINUX_SYN_OPTIONS);
  });

  test('NOP NOP timestamps (the established-state layout, RFC 7323 Appendix A)', () => {
    const bytes = hex('01 01 08 0a ff ff ff ff 80 00 00 01');
    const list = parseOptions(bytes);
    expect(list).toEqual([
      { kind: 'nop' },
      { kind: 'nop' },
      { kind: 'timestamps', tsVal: 0xffffffff, tsEcr: 0x80000001 },
    ]);
    expect(encode(list)).toEqual(bytes);
  });

  test('SACK with 1 to 4 blocks (RFC 2018 §3: length 2 + 8n)', () => {
    for (let n = 1; n <= 4; n++) {
      const blocks = Array.from({ length: n }, (_, i) => ({
        left: (0xfffffff0 + i * 0x100) >>> 0,
        right: 0x10 + i * 0x100,
      }));
      const list: TcpOption[] = [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'sack', blocks }];
      const bytes = encode(list);
      expect(bytes[2]).toBe(TcpOptionKind.SACK);
      expect(bytes[3]).toBe(2 + 8 * n);
      expect(bytes.subarray(4, 12)).toEqual(hex('ff ff ff f0 00 00 00 10'));
      expect(parseOptions(bytes)).toEqual(list);
    }
  });

  test('window scale above 14 is exposed as received (RFC 7323 §2.3: the caller clamps)', () => {
    expect(parseOptions(hex('03 03 0f 00'))).toEqual([{ kind: 'wscale', shift: 15 }, { kind: 'eol' }]);
    expect(parseOptions(hex('03 03 ff 00'))).toEqual([{ kind: 'wscale', shift: 255 }, { kind: 'eol' }]);
  });

  test('empty option area', () => {
    expect(parseOptions(new Uint8Array(0))).toEqual([]);
    expect(optionsLength([])).toBe(0);
    expect(encode([])).toEqual(new Uint8Array(0));
  });
});

describe('TCP options: EOL and padding', () => {
  test('a list that does not end on 4 bytes is padded with EOL and zeros', () => {
    const list: TcpOption[] = [
      { kind: 'mss', mss: 536 },
      { kind: 'wscale', shift: 0 },
    ];
    expect(optionsLength(list)).toBe(8);
    const bytes = encode(list);
    expect(bytes).toEqual(hex('02 04 02 18 03 03 00 00'));
    // The documented normalisation: the parsed list shows the implicit EOL.
    expect(parseOptions(bytes)).toEqual([...list, { kind: 'eol' }]);
    expect(encode(parseOptions(bytes))).toEqual(bytes);
  });

  test('an explicit EOL at a 4-byte boundary still takes a word of padding', () => {
    const list: TcpOption[] = [{ kind: 'mss', mss: 1460 }, { kind: 'eol' }];
    const bytes = encode(list);
    expect(bytes).toEqual(hex('02 04 05 b4 00 00 00 00'));
    expect(parseOptions(bytes)).toEqual(list);
  });

  test('EOL followed by more than the minimal padding keeps it', () => {
    const bytes = hex('02 04 05 b4 00 00 00 00 00 00 00 00');
    const list = parseOptions(bytes);
    expect(list).toEqual([
      { kind: 'mss', mss: 1460 },
      { kind: 'eol', padding: new Uint8Array(7) },
    ]);
    expect(encode(list)).toEqual(bytes);
  });

  test('non-zero bytes after EOL are ignored as options but kept for re-emission', () => {
    const bytes = hex('01 00 02 04 ff ff 13 37');
    const list = parseOptions(bytes);
    expect(list).toEqual([{ kind: 'nop' }, { kind: 'eol', padding: hex('02 04 ff ff 13 37') }]);
    expect(findOption(list, 'mss')).toBeUndefined();
    expect(encode(list)).toEqual(bytes);
  });

  test('EOL as the first byte ends the list at once', () => {
    const bytes = new Uint8Array(40);
    const list = parseOptions(bytes);
    expect(list).toEqual([{ kind: 'eol', padding: new Uint8Array(39) }]);
    expect(encode(list)).toEqual(bytes);
    expect(parseOptions(hex('00 00 00 00'))).toEqual([{ kind: 'eol' }]);
  });

  test('NOP padding is kept as NOP entries', () => {
    const bytes = hex('03 03 07 01');
    expect(parseOptions(bytes)).toEqual([{ kind: 'wscale', shift: 7 }, { kind: 'nop' }]);
    expect(encode(parseOptions(bytes))).toEqual(bytes);
  });
});

describe('TCP options: unknown kinds round-trip as raw bytes', () => {
  test('MPTCP MP_CAPABLE (kind 30, length 12, RFC 8684 §3.1)', () => {
    const bytes = hex('1e 0c 01 01 01 02 03 04 05 06 07 08');
    const list = parseOptions(bytes);
    expect(list).toEqual([{ kind: 'unknown', type: TcpOptionKind.MPTCP, data: hex('01 01 01 02 03 04 05 06 07 08') }]);
    expect(findUnknownOption(list, TcpOptionKind.MPTCP)?.data.length).toBe(10);
    expect(encode(list)).toEqual(bytes);
  });

  test('raw option data is a view of the packet, not a copy', () => {
    const bytes = hex('1e 04 00 81');
    const option = findUnknownOption(parseOptions(bytes), 30)!;
    expect(option.data.buffer).toBe(bytes.buffer);
    expect(option.data.byteOffset).toBe(2);
  });

  test('TFO cookie (kind 34), TCP-AO (kind 29), zero-length data (kind 253) beside known options', () => {
    const bytes = hex('02 04 05 b4  22 0a 11 22 33 44 55 66 77 88  1d 06 01 02 aa bb  fd 02  01 01');
    const list = parseOptions(bytes);
    expect(list).toEqual([
      { kind: 'mss', mss: 1460 },
      { kind: 'unknown', type: TcpOptionKind.FAST_OPEN, data: hex('11 22 33 44 55 66 77 88') },
      { kind: 'unknown', type: TcpOptionKind.AUTHENTICATION, data: hex('01 02 aa bb') },
      { kind: 'unknown', type: 253, data: new Uint8Array(0) },
      { kind: 'nop' },
      { kind: 'nop' },
    ]);
    expect(encode(list)).toEqual(bytes);
  });

  test('obsolete echo options (kinds 6, 7) are unknown, not errors', () => {
    const bytes = hex('06 06 00 00 00 01 07 06 00 00 00 01');
    expect(parseOptions(bytes).map((o) => o.kind)).toEqual(['unknown', 'unknown']);
    expect(encode(parseOptions(bytes))).toEqual(bytes);
  });
});

describe('TCP options: malformed input → ParseError', () => {
  test.each([
    ['a kind without its length byte', '01 01 01 02', 'truncated'],
    ['unknown kind without its length byte', '1e', 'truncated'],
    ['length 0 (RFC 9293 MUST-7)', '1e 00 00 00', 'bad-length'],
    ['length 1', '02 01 00 00', 'bad-length'],
    ['length past the area', '1e 0c 01 01', 'truncated'],
    ['MSS of length 3', '02 03 05 00', 'bad-length'],
    ['MSS of length 5', '02 05 05 b4 00 00 00 00', 'bad-length'],
    ['MSS cut short', '01 01 02 04 05', 'truncated'],
    ['window scale of length 2', '03 02 00 00', 'bad-length'],
    ['window scale of length 4', '03 04 07 00', 'bad-length'],
    ['SACK-permitted of length 3', '04 03 00 00', 'bad-length'],
    ['timestamps of length 9', '08 09 00 00 00 00 00 00 00 00 00 00', 'bad-length'],
    ['timestamps of length 11', '08 0b 00 00 00 00 00 00 00 00 00 00', 'bad-length'],
    ['SACK with no block', '05 02 00 00', 'bad-length'],
    ['SACK of length 9', `05 09 ${'00 '.repeat(10)}`, 'bad-length'],
    ['SACK of length 11', `05 0b ${'00 '.repeat(10)}`, 'bad-length'],
    ['SACK with 5 blocks', `05 2a ${'00 '.repeat(40)}`, 'bad-length'],
  ])('%s', (_name, bytes, reason) => {
    const error = parseError(hex(bytes));
    expect(error.layer).toBe('tcp-option');
    expect(error.reason).toBe(reason);
    expect(error.message).toMatch(/^tcp-option: /);
  });

  test('options after a malformed one do not rescue it', () => {
    expect(parseError(hex('02 04 05 b4 03 02 01 01')).reason).toBe('bad-length');
  });
});

describe('TCP options: encoding errors are programming errors', () => {
  function encodeError(options: TcpOption[], bufLen = 64): Error {
    try {
      encodeOptions(options, new Uint8Array(bufLen), 0);
    } catch (e) {
      expect(e).not.toBeInstanceOf(ParseError);
      return e as Error;
    }
    throw new Error('encoded without error');
  }

  test('more than 40 bytes', () => {
    const list: TcpOption[] = [
      { kind: 'timestamps', tsVal: 1, tsEcr: 2 },
      { kind: 'sack', blocks: [1, 2, 3].map((i) => ({ left: i, right: i + 1 })) },
      { kind: 'nop' },
    ];
    expect(optionsLength(list)).toBe(40);
    expect(encodeError([...list, { kind: 'nop' }, { kind: 'nop' }, { kind: 'nop' }, { kind: 'nop' }]).message).toMatch(
      /more than 40/,
    );
    expect(encodeError([{ kind: 'unknown', type: 30, data: new Uint8Array(39) }]).message).toMatch(/more than 40/);
  });

  test('an option after EOL', () => {
    expect(encodeError([{ kind: 'eol' }, { kind: 'nop' }]).message).toMatch(/after EOL/);
  });

  test('a SACK with 0 or 5 blocks', () => {
    expect(encodeError([{ kind: 'sack', blocks: [] }]).message).toMatch(/1 to 4 blocks/);
    const five = [1, 2, 3, 4, 5].map((i) => ({ left: i, right: i }));
    expect(encodeError([{ kind: 'sack', blocks: five }]).message).toMatch(/1 to 4 blocks|more than 40/);
  });

  test('a typed kind disguised as unknown', () => {
    expect(encodeError([{ kind: 'unknown', type: 2, data: hex('05 b4') }]).message).toMatch(/typed form/);
    expect(encodeError([{ kind: 'unknown', type: 8, data: new Uint8Array(8) }]).message).toMatch(/typed form/);
  });

  test('a buffer too small', () => {
    expect(encodeError(LINUX_SYN_LIST, 19).message).toMatch(/do not fit/);
  });

  test('encoding at an offset leaves the bytes around it alone', () => {
    const buf = new Uint8Array(30).fill(0xee);
    expect(encodeOptions(LINUX_SYN_LIST, buf, 5)).toBe(20);
    expect(buf.subarray(5, 25)).toEqual(LINUX_SYN_OPTIONS);
    expect(buf.subarray(0, 5)).toEqual(new Uint8Array(5).fill(0xee));
    expect(buf.subarray(25)).toEqual(new Uint8Array(5).fill(0xee));
  });
});

describe('TCP options: sizes, search and space accounting', () => {
  test('optionSize per kind', () => {
    expect(LINUX_SYN_LIST.map(optionSize)).toEqual([4, 2, 10, 1, 3]);
    expect(optionSize({ kind: 'eol' })).toBe(1);
    expect(optionSize({ kind: 'eol', padding: new Uint8Array(3) })).toBe(4);
    expect(optionSize({ kind: 'sack', blocks: [{ left: 0, right: 1 }] })).toBe(10);
    expect(optionSize({ kind: 'unknown', type: 30, data: new Uint8Array(10) })).toBe(12);
  });

  test('findOption narrows to the kind', () => {
    expect(findOption(LINUX_SYN_LIST, 'mss')?.mss).toBe(1460);
    expect(findOption(LINUX_SYN_LIST, 'wscale')?.shift).toBe(7);
    expect(findOption(LINUX_SYN_LIST, 'timestamps')?.tsVal).toBe(0x1a2b3c4d);
    expect(findOption(LINUX_SYN_LIST, 'sack-permitted')).toEqual({ kind: 'sack-permitted' });
    expect(findOption(LINUX_SYN_LIST, 'sack')).toBeUndefined();
    expect(findUnknownOption(LINUX_SYN_LIST, TcpOptionKind.MPTCP)).toBeUndefined();
  });

  test('OptionSpace: a SYN with MPTCP leaves no room for a 3-block SACK', () => {
    const space = new OptionSpace();
    expect(space.limit).toBe(MAX_OPTIONS_LEN);
    expect(space.remaining).toBe(40);
    expect(space.tryReserveOption({ kind: 'timestamps', tsVal: 0, tsEcr: 0 })).toBe(true);
    expect(space.tryReserve(2)).toBe(true); // NOP NOP before the timestamps
    expect(space.tryReserve(12)).toBe(true); // MP_CAPABLE with a key
    expect(space.used).toBe(24);
    expect(space.remaining).toBe(16);
    expect(space.tryReserve(26)).toBe(false);
    expect(space.remaining).toBe(16); // a refusal reserves nothing
    expect(space.tryReserve(10)).toBe(true); // one SACK block
    expect(space.tryReserve(7)).toBe(false);
    expect(space.tryReserve(6)).toBe(true);
    expect(space.remaining).toBe(0);
    expect(space.tryReserve(0)).toBe(true);
    expect(space.tryReserve(-1)).toBe(false);
    space.reset();
    expect(space.remaining).toBe(40);
  });

  test('OptionSpace: unpadded reservations up to 40 always encode', () => {
    const space = new OptionSpace();
    const list: TcpOption[] = [
      { kind: 'mss', mss: 1460 },
      { kind: 'wscale', shift: 9 },
      { kind: 'unknown', type: 30, data: new Uint8Array(28) },
      { kind: 'sack-permitted' },
    ];
    for (const option of list) expect(space.tryReserveOption(option)).toBe(true);
    expect(space.remaining).toBe(1);
    expect(optionsLength(list)).toBe(40);
    expect(encode(list).length).toBe(40);
  });
});
