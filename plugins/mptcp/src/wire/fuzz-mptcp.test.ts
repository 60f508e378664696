/**
 * Seeded fuzzing of the MPTCP option codec, as core/src/wire/fuzz-*.test.ts do for the
 * packet codecs. Each test names its seed. The properties:
 * - for random valid reprs of every subtype and form, parse(emit(repr)) deep-equals
 *   repr and emit → parse → emit is byte-identical;
 * - any bytes (random, every truncation of a valid option, bit and byte mutations)
 *   either parse or throw ParseError, nothing else, and whatever parses re-emits the
 *   same bytes; the same holds through core's TCP option parser (kind 30 kept raw).
 */

import { isDeepStrictEqual } from 'node:util';
import {
  encodeOptions,
  OptionSpace,
  optionsLength,
  ParseError,
  parseOptions,
  Random,
  type TcpOption,
} from '@nuse/core';
import {
  type DssMapping,
  emitMptcpOption,
  type MptcpOption,
  mptcpOptionLength,
  parseMptcpOption,
  parseTcpOption,
  toTcpOption,
} from './mptcp-option';

const SEED = 0x3b1d8e4f;

function u64(rng: Random): bigint {
  return (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
}

/** Absent (zero) half the time, otherwise a non-zero value of `bits` bits. */
function reserved(rng: Random, bits: number): { reserved?: number } {
  if (rng.chance(0.5)) return {};
  return { reserved: 1 + rng.int(2 ** bits - 1) };
}

function randomMapping(rng: Random, dsn64: boolean): DssMapping {
  const dsn = dsn64 ? u64(rng) : BigInt(rng.u32());
  const base = { dsn, ssn: rng.u32(), dataLevelLength: rng.chance(0.1) ? 0 : rng.int(0x10000) };
  return rng.chance(0.5) ? { ...base, checksum: rng.int(0x10000) } : base;
}

/** A random valid repr; `kind` picks the subtype (and form), 0 to 13. */
function randomOption(rng: Random, kind = rng.int(14)): MptcpOption {
  switch (kind) {
    case 0: {
      // MP_CAPABLE: one of its five forms.
      const form = rng.int(5);
      const fields: Record<string, unknown> = { subtype: 'mp-capable', version: rng.int(16), flags: rng.int(256) };
      if (form >= 1) fields.senderKey = u64(rng);
      if (form >= 2) fields.receiverKey = u64(rng);
      if (form >= 3) fields.dataLevelLength = rng.int(0x10000);
      if (form >= 4) fields.checksum = rng.int(0x10000);
      return fields as unknown as MptcpOption;
    }
    case 1:
      return {
        subtype: 'mp-join',
        form: 'syn',
        backup: rng.chance(0.5),
        addressId: rng.int(256),
        receiverToken: rng.u32(),
        senderRandom: rng.u32(),
        ...reserved(rng, 3),
      };
    case 2:
      return {
        subtype: 'mp-join',
        form: 'syn-ack',
        backup: rng.chance(0.5),
        addressId: rng.int(256),
        senderTruncatedHmac: u64(rng),
        senderRandom: rng.u32(),
        ...reserved(rng, 3),
      };
    case 3:
      return { subtype: 'mp-join', form: 'ack', senderHmac: rng.fill(new Uint8Array(20)), ...reserved(rng, 12) };
    case 4:
    case 5: {
      const dataAck64 = rng.chance(0.5);
      const dsn64 = rng.chance(0.5);
      const hasAck = rng.chance(0.7);
      const hasMapping = rng.chance(0.7);
      return {
        subtype: 'dss',
        ...(hasAck ? { dataAck: dataAck64 ? u64(rng) : BigInt(rng.u32()) } : {}),
        dataAck64,
        ...(hasMapping ? { mapping: randomMapping(rng, dsn64) } : {}),
        dsn64,
        dataFin: rng.chance(0.2),
        ...reserved(rng, 7),
      };
    }
    case 6:
    case 7: {
      const echo = rng.chance(0.5);
      return {
        subtype: 'add-addr',
        echo,
        addressId: rng.int(256),
        address: rng.fill(new Uint8Array(rng.chance(0.5) ? 4 : 16)),
        ...(rng.chance(0.5) ? { port: rng.int(0x10000) } : {}),
        ...(echo ? {} : { truncatedHmac: u64(rng) }),
        ...reserved(rng, 3),
      };
    }
    case 8:
      return {
        subtype: 'remove-addr',
        addressIds: Array.from({ length: 1 + rng.int(rng.chance(0.9) ? 8 : 37) }, () => rng.int(256)),
        ...reserved(rng, 4),
      };
    case 9:
      return { subtype: 'mp-prio', backup: rng.chance(0.5), ...reserved(rng, 3) };
    case 10:
      return { subtype: 'mp-fail', dsn: u64(rng), ...reserved(rng, 12) };
    case 11:
      return { subtype: 'mp-fastclose', receiverKey: u64(rng), ...reserved(rng, 12) };
    case 12:
      return { subtype: 'mp-tcprst', flags: rng.int(16), reason: rng.chance(0.8) ? rng.int(7) : rng.int(256) };
    default:
      return {
        subtype: 'unknown',
        type: 9 + rng.int(7),
        bits: rng.int(16),
        data: rng.fill(new Uint8Array(rng.int(rng.chance(0.9) ? 20 : 252))),
      };
  }
}

type Tally = Map<string, number>;

function count(tally: Tally, outcome: string): void {
  tally.set(outcome, (tally.get(outcome) ?? 0) + 1);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Parses arbitrary option data: ParseError or a repr that re-emits the same bytes; anything else escapes. */
function parseAndCheck(data: Uint8Array, tally: Tally): void {
  let option: MptcpOption;
  try {
    option = parseMptcpOption(data);
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    count(tally, `${e.layer}:${e.reason}`);
    return;
  }
  count(tally, `ok:${option.subtype}`);
  if (mptcpOptionLength(option) !== data.length + 2) throw new Error('length disagrees');
  const again = emitMptcpOption(option);
  if (!sameBytes(again, data)) expect({ again }).toEqual({ again: data });
}

describe(`MPTCP option fuzz (seed 0x${SEED.toString(16)})`, () => {
  test(`random valid reprs of every subtype round-trip (seed 0x${SEED.toString(16)}/reprs)`, () => {
    const rng = new Random(SEED).fork('reprs');
    const seen = new Set<string>();
    for (let i = 0; i < 40_000; i++) {
      const repr = randomOption(rng, i % 14);
      const data = emitMptcpOption(repr);
      if (data.length !== mptcpOptionLength(repr) - 2) throw new Error(`case ${i}: emitted length`);
      const parsed = parseMptcpOption(data);
      if (!isDeepStrictEqual(parsed, repr)) expect({ case: i, parsed }).toEqual({ case: i, parsed: repr });
      const again = emitMptcpOption(parsed);
      if (!sameBytes(again, data)) expect({ case: i, again }).toEqual({ case: i, again: data });
      seen.add(`${repr.subtype}:${mptcpOptionLength(repr)}`);
    }
    // Every fixed Length of RFC 8684 occurred (variable ones, REMOVE_ADDR and raw, aside).
    for (const form of [
      'mp-capable:4',
      'mp-capable:12',
      'mp-capable:20',
      'mp-capable:22',
      'mp-capable:24',
      'mp-join:12',
      'mp-join:16',
      'mp-join:24',
      ...[4, 8, 12, 14, 16, 18, 20, 22, 24, 26, 28].map((n) => `dss:${n}`),
      ...[8, 10, 16, 18, 20, 22, 28, 30].map((n) => `add-addr:${n}`),
      'mp-prio:3',
      'mp-fail:12',
      'mp-fastclose:12',
      'mp-tcprst:4',
    ]) {
      expect([form, seen.has(form)]).toEqual([form, true]);
    }
  });

  test(`truncations and extensions of valid options (seed 0x${SEED.toString(16)}/truncate)`, () => {
    const rng = new Random(SEED).fork('truncate');
    const tally: Tally = new Map();
    for (let i = 0; i < 5_000; i++) {
      const data = emitMptcpOption(randomOption(rng, i % 14));
      for (let length = 0; length <= data.length; length++) parseAndCheck(data.subarray(0, length), tally);
      // One to four bytes too many, zeros or random.
      const longer = new Uint8Array(data.length + 1 + rng.int(4));
      if (rng.chance(0.5)) rng.fill(longer);
      longer.set(data);
      parseAndCheck(longer, tally);
    }
    expect(tally.get('mptcp-option:truncated')).toBeGreaterThan(0);
    expect(tally.get('mptcp-option:bad-length')).toBeGreaterThan(10_000);
  });

  test(`byte and bit mutations of valid options (seed 0x${SEED.toString(16)}/mutate)`, () => {
    const rng = new Random(SEED).fork('mutate');
    const tally: Tally = new Map();
    for (let i = 0; i < 40_000; i++) {
      const data = emitMptcpOption(randomOption(rng));
      const mutations = 1 + rng.int(3);
      for (let m = 0; m < mutations; m++) {
        // Most mutations hit the subtype and flag bytes, where the parser decides.
        const at = rng.chance(0.7) ? rng.int(Math.min(2, data.length)) : rng.int(data.length);
        if (rng.chance(0.5)) data[at]! ^= 1 << rng.int(8);
        else data[at] = rng.int(256);
      }
      parseAndCheck(data, tally);
    }
    expect([...tally.keys()].filter((k) => !k.startsWith('ok:')).sort()).toEqual(['mptcp-option:bad-length']);
    expect([...tally.keys()].filter((k) => k.startsWith('ok:')).length).toBe(10);
  });

  test(`random bytes of random length (seed 0x${SEED.toString(16)}/random)`, () => {
    const rng = new Random(SEED).fork('random');
    const tally: Tally = new Map();
    for (let i = 0; i < 40_000; i++) parseAndCheck(rng.fill(new Uint8Array(rng.int(40))), tally);
    expect([...tally.keys()].filter((k) => k.startsWith('ok:')).length).toBe(10);
  });

  test(`through core's TCP option codec: option areas with MPTCP options (seed 0x${SEED.toString(16)}/tcp)`, () => {
    const rng = new Random(SEED).fork('tcp');
    for (let i = 0; i < 10_000; i++) {
      const space = new OptionSpace();
      const list: TcpOption[] = [];
      for (let n = 0; n < 4; n++) {
        const option = randomOption(rng);
        const length = mptcpOptionLength(option);
        if (rng.chance(0.3) && space.tryReserve(1)) list.push({ kind: 'nop' });
        if (space.tryReserve(length)) list.push(toTcpOption(option));
      }
      const area = new Uint8Array(optionsLength(list));
      encodeOptions(list, area, 0);
      const parsed = parseOptions(area).map((o) => {
        const mptcp = parseTcpOption(o);
        return mptcp === undefined ? o : toTcpOption(mptcp);
      });
      const again = new Uint8Array(optionsLength(parsed));
      encodeOptions(parsed, again, 0);
      if (!sameBytes(again, area)) expect({ case: i, again }).toEqual({ case: i, again: area });
    }
  });
});
