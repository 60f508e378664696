import { encodeOptions, findUnknownOption, OptionSpace, optionSize, ParseError, parseOptions } from '@nuse/core';
import {
  emitMptcpOption,
  isInfiniteMapping,
  MpCapableFlag,
  MpTcpRstFlag,
  MpTcpRstReason,
  type MptcpOption,
  mptcpOptionLength,
  parseMptcpOption,
  parseTcpOption,
  toTcpOption,
  writeMptcpOption,
} from './mptcp-option';

/** Bytes from hex text; whitespace is ignored. */
function hex(text: string): Uint8Array {
  return Uint8Array.from(text.match(/[0-9a-f]{2}/gi) ?? [], (pair) => Number.parseInt(pair, 16));
}

/** `option` is the whole option (kind 30 and length first), as RFC 8684's figures draw it. */
function expectOption(option: string, repr: MptcpOption): void {
  const bytes = hex(option);
  expect(bytes[0]).toBe(30);
  expect(bytes[1]).toBe(bytes.length);
  const data = bytes.subarray(2);
  expect(parseMptcpOption(data)).toEqual(repr);
  expect(mptcpOptionLength(repr)).toBe(bytes.length);
  expect(emitMptcpOption(repr)).toEqual(data);
}

function parseError(data: Uint8Array): ParseError {
  try {
    parseMptcpOption(data);
  } catch (e) {
    if (e instanceof ParseError) return e;
    throw e;
  }
  throw new Error(`parsed without error: ${Buffer.from(data).toString('hex')}`);
}

const KEY_A = 0x0102030405060708n;
const KEY_B = 0xf1f2f3f4f5f6f7f8n;
const SHA256 = MpCapableFlag.HMAC_SHA256;

describe('MP_CAPABLE (RFC 8684 §3.1)', () => {
  test('SYN: Length 4, version 1, flags A and H', () => {
    expectOption('1e 04 01 81', { subtype: 'mp-capable', version: 1, flags: MpCapableFlag.CHECKSUM_REQUIRED | SHA256 });
  });
  test("SYN-ACK: Length 12, the sender's key", () => {
    expectOption('1e 0c 01 01 0102030405060708', {
      subtype: 'mp-capable',
      version: 1,
      flags: SHA256,
      senderKey: KEY_A,
    });
  });
  test('third ACK: Length 20, both keys', () => {
    expectOption('1e 14 01 01 f1f2f3f4f5f6f7f8 0102030405060708', {
      subtype: 'mp-capable',
      version: 1,
      flags: SHA256,
      senderKey: KEY_B,
      receiverKey: KEY_A,
    });
  });
  test('first data: Length 22 with the data-level length, 24 with the checksum too', () => {
    const base = { subtype: 'mp-capable', version: 1, flags: SHA256, senderKey: KEY_B, receiverKey: KEY_A } as const;
    expectOption('1e 16 01 01 f1f2f3f4f5f6f7f8 0102030405060708 05dc', { ...base, dataLevelLength: 1500 });
    expectOption('1e 18 01 81 f1f2f3f4f5f6f7f8 0102030405060708 05dc beef', {
      ...base,
      flags: 0x81,
      dataLevelLength: 1500,
      checksum: 0xbeef,
    });
  });
  test('version 0 (RFC 6824) parses by its Length too, and the version is kept', () => {
    expect(parseMptcpOption(hex('00 81 0102030405060708'))).toEqual({
      subtype: 'mp-capable',
      version: 0,
      flags: 0x81,
      senderKey: KEY_A,
    });
  });
  test('every other Length is bad-length', () => {
    for (let length = 3; length <= 40; length++) {
      if ([4, 12, 20, 22, 24].includes(length)) continue;
      const data = new Uint8Array(length - 2);
      data[0] = 0x01;
      expect(parseError(data)).toMatchObject({ layer: 'mptcp-option', reason: 'bad-length' });
    }
  });
  test('a field after a missing one cannot be emitted', () => {
    expect(() => mptcpOptionLength({ subtype: 'mp-capable', version: 1, flags: 1, receiverKey: 1n })).toThrow(
      'sender key',
    );
    expect(() =>
      mptcpOptionLength({ subtype: 'mp-capable', version: 1, flags: 1, senderKey: 1n, dataLevelLength: 1 }),
    ).toThrow('receiver key');
    expect(() =>
      mptcpOptionLength({ subtype: 'mp-capable', version: 1, flags: 1, senderKey: 1n, receiverKey: 2n, checksum: 3 }),
    ).toThrow('data-level length');
  });
});

describe('MP_JOIN (RFC 8684 §3.2)', () => {
  test('SYN: Length 12, B flag, address ID, token, random', () => {
    expectOption('1e 0c 11 02 a1b2c3d4 01020304', {
      subtype: 'mp-join',
      form: 'syn',
      backup: true,
      addressId: 2,
      receiverToken: 0xa1b2c3d4,
      senderRandom: 0x01020304,
    });
  });
  test('SYN-ACK: Length 16, 64-bit truncated HMAC, random', () => {
    expectOption('1e 10 10 00 8899aabbccddeeff fffffffe', {
      subtype: 'mp-join',
      form: 'syn-ack',
      backup: false,
      addressId: 0,
      senderTruncatedHmac: 0x8899aabbccddeeffn,
      senderRandom: 0xfffffffe,
    });
  });
  test('third ACK: Length 24, 160-bit HMAC', () => {
    const hmac = hex('000102030405060708090a0b0c0d0e0f10111213');
    expectOption('1e 18 10 00 000102030405060708090a0b0c0d0e0f10111213', {
      subtype: 'mp-join',
      form: 'ack',
      senderHmac: hmac,
    });
  });
  test('reserved bits are kept so that the bytes round-trip', () => {
    expectOption('1e 0c 1f 07 00000001 00000002', {
      subtype: 'mp-join',
      form: 'syn',
      backup: true,
      addressId: 7,
      receiverToken: 1,
      senderRandom: 2,
      reserved: 7,
    });
    expectOption('1e 18 1a bc 000102030405060708090a0b0c0d0e0f10111213', {
      subtype: 'mp-join',
      form: 'ack',
      senderHmac: hex('000102030405060708090a0b0c0d0e0f10111213'),
      reserved: 0xabc,
    });
  });
  test('Lengths other than 12, 16, 24 are bad-length; an ACK HMAC must be 20 bytes', () => {
    for (const length of [3, 4, 11, 13, 15, 17, 20, 23, 25, 40]) {
      const data = new Uint8Array(length - 2);
      data[0] = 0x10;
      expect(parseError(data).reason).toBe('bad-length');
    }
    expect(() => emitMptcpOption({ subtype: 'mp-join', form: 'ack', senderHmac: new Uint8Array(8) })).toThrow('20');
  });
});

describe('DSS (RFC 8684 §3.3)', () => {
  test('a 64-bit data ACK alone (flags A a): Length 12', () => {
    expectOption('1e 0c 20 03 0000000100000002', {
      subtype: 'dss',
      dataAck: 0x100000002n,
      dataAck64: true,
      dsn64: false,
      dataFin: false,
    });
  });
  test('a 32-bit data ACK alone (flag A): Length 8', () => {
    expectOption('1e 08 20 01 deadbeef', {
      subtype: 'dss',
      dataAck: 0xdeadbeefn,
      dataAck64: false,
      dsn64: false,
      dataFin: false,
    });
  });
  test('ACK and 64-bit mapping with checksum (flags A a M m): Length 28, as Linux sends it', () => {
    expectOption('1e 1c 20 0f 1122334455667788 8000000000000001 00000001 0bb8 1234', {
      subtype: 'dss',
      dataAck: 0x1122334455667788n,
      dataAck64: true,
      mapping: { dsn: 0x8000000000000001n, ssn: 1, dataLevelLength: 3000, checksum: 0x1234 },
      dsn64: true,
      dataFin: false,
    });
  });
  test('32-bit mapping without checksum and without ACK (flag M): Length 14', () => {
    expectOption('1e 0e 20 04 ffffffff 00010000 0005', {
      subtype: 'dss',
      dataAck64: false,
      mapping: { dsn: 0xffffffffn, ssn: 0x10000, dataLevelLength: 5 },
      dsn64: false,
      dataFin: false,
    });
  });
  test('DATA_FIN with a mapping of length 1 and SSN 0 (§3.3.3)', () => {
    expectOption('1e 18 20 1d 00000009 0000000000000064 00000000 0001 0000', {
      subtype: 'dss',
      dataAck: 9n,
      dataAck64: false,
      mapping: { dsn: 100n, ssn: 0, dataLevelLength: 1, checksum: 0 },
      dsn64: true,
      dataFin: true,
    });
  });
  test('the infinite mapping of a fallback has data-level length 0 (§3.7)', () => {
    const dss = parseMptcpOption(hex('20 0c 0000000000000001 00000000 0000'));
    expect(dss.subtype === 'dss' && dss.mapping !== undefined && isInfiniteMapping(dss.mapping)).toBe(true);
  });
  test('flags a and m without A and M, and reserved bits, are kept', () => {
    expectOption('1e 04 2f ea', { subtype: 'dss', dataAck64: true, dsn64: true, dataFin: false, reserved: 0x7f });
  });
  test('a 64-bit DSN written as 32 bits keeps its low 32 bits', () => {
    const data = emitMptcpOption({
      subtype: 'dss',
      dataAck64: false,
      mapping: { dsn: 0x1234567890n, ssn: 0, dataLevelLength: 0 },
      dsn64: false,
      dataFin: false,
    });
    expect(data).toEqual(hex('20 04 34567890 00000000 0000'));
  });
  test('a Length that does not match the flags is bad-length', () => {
    expect(parseError(hex('20 01 000000')).reason).toBe('bad-length'); // A with 3 bytes
    expect(parseError(hex('20 01 0000000000')).reason).toBe('bad-length'); // A with 5 bytes
    expect(parseError(hex('20 00 00')).reason).toBe('bad-length'); // nothing, one byte too many
    expect(parseError(hex('20 04 00000000 00000000 0000 00')).reason).toBe('bad-length'); // M + 1 byte
    expect(parseError(hex('20 04 00000000 00000000 0000 000000')).reason).toBe('bad-length'); // M + 3 bytes
    expect(parseError(hex('20 04 00000000 00000000')).reason).toBe('bad-length'); // M, short
  });
});

describe('ADD_ADDR (RFC 8684 §3.4.1)', () => {
  const v4 = hex('0a c9 02 02');
  const v6 = hex('fd00 0201 0003 0000 0000 0000 0000 0002');
  test('IPv4: Lengths 8 (echo), 10 (echo, port), 16 (HMAC), 18 (port, HMAC)', () => {
    expectOption('1e 08 31 01 0ac90202', { subtype: 'add-addr', echo: true, addressId: 1, address: v4 });
    expectOption('1e 0a 31 02 0ac90202 283c', {
      subtype: 'add-addr',
      echo: true,
      addressId: 2,
      address: v4,
      port: 10300,
    });
    expectOption('1e 10 30 01 0ac90202 1131d2ba6d2ef690', {
      subtype: 'add-addr',
      echo: false,
      addressId: 1,
      address: v4,
      truncatedHmac: 0x1131d2ba6d2ef690n,
    });
    expectOption('1e 12 30 02 0ac90202 283c f508e3bd0c8f0e7f', {
      subtype: 'add-addr',
      echo: false,
      addressId: 2,
      address: v4,
      port: 10300,
      truncatedHmac: 0xf508e3bd0c8f0e7fn,
    });
  });
  test('IPv6: Lengths 20, 22, 28, 30', () => {
    const base = { subtype: 'add-addr', addressId: 3, address: v6 } as const;
    const addr = 'fd000201000300000000000000000002';
    expectOption(`1e 14 31 03 ${addr}`, { ...base, echo: true });
    expectOption(`1e 16 31 03 ${addr} 0050`, { ...base, echo: true, port: 80 });
    expectOption(`1e 1c 30 03 ${addr} 0000000000000001`, { ...base, echo: false, truncatedHmac: 1n });
    expectOption(`1e 1e 3e 03 ${addr} 0050 0000000000000001`, {
      ...base,
      echo: false,
      port: 80,
      truncatedHmac: 1n,
      reserved: 7,
    });
  });
  test('a Length that fits no family, or an echo Length without E, is bad-length', () => {
    for (let length = 3; length <= 40; length++) {
      const data = new Uint8Array(length - 2);
      data[0] = 0x30;
      if ([16, 18, 28, 30].includes(length)) expect(parseMptcpOption(data).subtype).toBe('add-addr');
      else expect(parseError(data).reason).toBe('bad-length');
      data[0] = 0x31;
      if ([8, 10, 20, 22].includes(length)) expect(parseMptcpOption(data).subtype).toBe('add-addr');
      else expect(parseError(data).reason).toBe('bad-length');
    }
  });
  test('an HMAC on an echo, or none without, or a 5-byte address, cannot be emitted', () => {
    expect(() =>
      mptcpOptionLength({ subtype: 'add-addr', echo: true, addressId: 0, address: v4, truncatedHmac: 1n }),
    ).toThrow();
    expect(() => mptcpOptionLength({ subtype: 'add-addr', echo: false, addressId: 0, address: v4 })).toThrow();
    expect(() =>
      mptcpOptionLength({ subtype: 'add-addr', echo: true, addressId: 0, address: new Uint8Array(5) }),
    ).toThrow('5 bytes');
  });
});

describe('REMOVE_ADDR, MP_PRIO, MP_FAIL, MP_FASTCLOSE, MP_TCPRST', () => {
  test('REMOVE_ADDR (§3.4.2): Length 3 + n', () => {
    expectOption('1e 04 40 07', { subtype: 'remove-addr', addressIds: [7] });
    expectOption('1e 06 40 01 02 ff', { subtype: 'remove-addr', addressIds: [1, 2, 255] });
    expect(parseError(hex('40')).reason).toBe('bad-length');
    expect(() => mptcpOptionLength({ subtype: 'remove-addr', addressIds: [] })).toThrow();
  });
  test('MP_PRIO (§3.3.8): Length 3, B flag; the v0 form with an address ID is bad-length', () => {
    expectOption('1e 03 51', { subtype: 'mp-prio', backup: true });
    expectOption('1e 03 50', { subtype: 'mp-prio', backup: false });
    expect(parseError(hex('51 02')).reason).toBe('bad-length');
  });
  test('MP_FAIL (§3.7): Length 12, a 64-bit DSN', () => {
    expectOption('1e 0c 60 00 fedcba9876543210', { subtype: 'mp-fail', dsn: 0xfedcba9876543210n });
    expect(parseError(hex('60 00 fedcba98765432')).reason).toBe('bad-length');
  });
  test("MP_FASTCLOSE (§3.5): Length 12, the receiver's key", () => {
    expectOption('1e 0c 70 00 0102030405060708', { subtype: 'mp-fastclose', receiverKey: KEY_A });
    expectOption('1e 0c 7f ff 0102030405060708', { subtype: 'mp-fastclose', receiverKey: KEY_A, reserved: 0xfff });
  });
  test('MP_TCPRST (§3.6): Length 4, U V W T flags, reason', () => {
    expectOption('1e 04 81 06', {
      subtype: 'mp-tcprst',
      flags: MpTcpRstFlag.TRANSIENT,
      reason: MpTcpRstReason.MIDDLEBOX_INTERFERENCE,
    });
    expectOption('1e 04 8e 00', { subtype: 'mp-tcprst', flags: 0xe, reason: MpTcpRstReason.UNSPECIFIED });
    expect(parseError(hex('81')).reason).toBe('bad-length');
  });
  test('unassigned subtypes and MP_EXPERIMENTAL are kept raw', () => {
    expectOption('1e 06 95 01 02 03', { subtype: 'unknown', type: 9, bits: 5, data: hex('010203') });
    expectOption('1e 03 f0', { subtype: 'unknown', type: 15, bits: 0, data: new Uint8Array(0) });
    expect(() => mptcpOptionLength({ subtype: 'unknown', type: 2, bits: 0, data: new Uint8Array(0) })).toThrow();
  });
  test('an option with no subtype byte is truncated', () => {
    expect(parseError(new Uint8Array(0))).toMatchObject({ layer: 'mptcp-option', reason: 'truncated' });
  });
});

describe('with the core TCP option codec', () => {
  test('kind 30 arrives raw; its data parses; toTcpOption encodes back the same bytes', () => {
    const area = hex('01 01 1e 14 01 01 f1f2f3f4f5f6f7f8 0102030405060708 01 01 1e 03 51 00');
    const options = parseOptions(area);
    const raw = findUnknownOption(options, 30)!;
    const repr = parseTcpOption(raw)!;
    expect(repr).toMatchObject({ subtype: 'mp-capable', senderKey: KEY_B, receiverKey: KEY_A });
    expect(parseTcpOption({ kind: 'nop' })).toBeUndefined();
    const again = options.map((o) => {
      const mptcp = parseTcpOption(o);
      return mptcp === undefined ? o : toTcpOption(mptcp);
    });
    const out = new Uint8Array(area.length);
    encodeOptions(again, out, 0);
    expect(out).toEqual(area);
  });
  test('mptcpOptionLength is what OptionSpace accounts for the option', () => {
    const dss: MptcpOption = {
      subtype: 'dss',
      dataAck: 1n,
      dataAck64: true,
      mapping: { dsn: 2n, ssn: 3, dataLevelLength: 4, checksum: 5 },
      dsn64: true,
      dataFin: false,
    };
    const space = new OptionSpace();
    expect(space.tryReserve(mptcpOptionLength(dss))).toBe(true);
    expect(space.used).toBe(optionSize(toTcpOption(dss)));
    expect(space.used).toBe(28);
  });
  test('writeMptcpOption writes at an offset and refuses a buffer too small', () => {
    const buf = new Uint8Array(8);
    expect(writeMptcpOption({ subtype: 'mp-tcprst', flags: 0, reason: 1 }, buf, 6)).toBe(2);
    expect(buf).toEqual(hex('0000000000008001'));
    expect(() => writeMptcpOption({ subtype: 'mp-tcprst', flags: 0, reason: 1 }, buf, 7)).toThrow('does not fit');
  });
});
