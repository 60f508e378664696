/**
 * Seeded fuzzing of the TCP codec. Each test names its seed, so a failure reproduces
 * by running that test again. The properties:
 * - parsing any bytes either succeeds or throws ParseError, nothing else;
 * - after a successful parse every accessor works, and re-emitting the repr writes the
 *   same bytes (the checksum aside, unless it was verified);
 * - for random valid reprs, emit → parse → emit is byte-identical and parse(emit(repr))
 *   deep-equals repr after the normalisation documented in tcp-options.ts.
 */

import { isDeepStrictEqual } from 'node:util';
import { Random } from '../util/random';
import { pseudoHeaderSumV4, pseudoHeaderSumV6 } from './checksum';
import { ParseError } from './parse-error';
import { TcpFlags, TcpHeaderView, TcpRepr } from './tcp';
import { MAX_SACK_BLOCKS, OptionSpace, optionSize, type SackBlock, type TcpOption } from './tcp-options';

const SEED = 0x7c9f00d5;

// Wire kinds that parse into typed options; an 'unknown' option must use another one.
const TYPED_KINDS = new Set([0, 1, 2, 3, 4, 5, 8]);

function randomUnknownType(rng: Random): number {
  // Favour the kinds plugins will claim (MD5, TCP-AO, MPTCP, TFO, experimental 253/254).
  if (rng.chance(0.5)) return [19, 29, 30, 34, 253, 254][rng.int(6)]!;
  let type: number;
  do type = rng.int(256);
  while (TYPED_KINDS.has(type));
  return type;
}

/** A random option list that fits in 40 bytes, accounted through OptionSpace as the stack will. */
function randomOptions(rng: Random): TcpOption[] {
  const options: TcpOption[] = [];
  const space = new OptionSpace();
  const attempts = rng.int(10);
  for (let i = 0; i < attempts; i++) {
    let option: TcpOption;
    switch (rng.int(8)) {
      case 0:
        option = { kind: 'nop' };
        break;
      case 1:
        option = { kind: 'mss', mss: rng.int(0x10000) };
        break;
      case 2:
        option = { kind: 'wscale', shift: rng.chance(0.8) ? rng.int(15) : rng.int(256) };
        break;
      case 3:
        option = { kind: 'sack-permitted' };
        break;
      case 4: {
        const blocks: SackBlock[] = [];
        const count = 1 + rng.int(MAX_SACK_BLOCKS);
        for (let b = 0; b < count; b++) blocks.push({ left: rng.u32(), right: rng.u32() });
        option = { kind: 'sack', blocks };
        break;
      }
      case 5:
        option = { kind: 'timestamps', tsVal: rng.u32(), tsEcr: rng.u32() };
        break;
      default: {
        const dataLen = rng.int(Math.max(1, space.remaining - 1));
        option = { kind: 'unknown', type: randomUnknownType(rng), data: rng.fill(new Uint8Array(dataLen)) };
      }
    }
    if (space.tryReserveOption(option)) options.push(option);
  }
  // Sometimes an explicit EOL, with or without (possibly non-zero) padding after it.
  if (rng.chance(0.25) && space.tryReserve(1)) {
    if (rng.chance(0.5) && space.remaining > 0) {
      const padding = new Uint8Array(rng.int(space.remaining + 1));
      if (rng.chance(0.5)) rng.fill(padding);
      space.tryReserve(padding.length);
      options.push({ kind: 'eol', padding });
    } else {
      options.push({ kind: 'eol' });
    }
  }
  return options;
}

// Payload bytes matter only to the checksum: slicing a random pool is much cheaper
// than drawing every byte.
const PAYLOAD_POOL = new Random(SEED).fork('payload-pool').fill(new Uint8Array(4096));

function randomPayload(rng: Random, maxLength: number): Uint8Array {
  const length = rng.int(maxLength + 1);
  const from = rng.int(PAYLOAD_POOL.length - length + 1);
  return PAYLOAD_POOL.slice(from, from + length);
}

function randomRepr(rng: Random, maxPayload: number): TcpRepr {
  return {
    srcPort: rng.int(0x10000),
    dstPort: rng.int(0x10000),
    seq: rng.u32(),
    ack: rng.u32(),
    flags: rng.chance(0.5) ? rng.int(0x1000) : [TcpFlags.SYN, TcpFlags.SYN | TcpFlags.ACK, TcpFlags.ACK][rng.int(3)]!,
    window: rng.int(0x10000),
    urgentPointer: rng.int(0x10000),
    options: randomOptions(rng),
    payload: randomPayload(rng, maxPayload),
  };
}

/**
 * What parse(emit(options)) yields (tcp-options.ts): a list not ending on 4 bytes gets
 * an EOL; an EOL's padding grows by the encoder's zeros and is dropped when it is the
 * minimal zero padding.
 */
function normaliseOptions(options: TcpOption[]): TcpOption[] {
  let size = 0;
  for (const option of options) size += optionSize(option);
  const padded = (size + 3) & ~3;
  const last = options[options.length - 1];
  if (last?.kind !== 'eol') return size === padded ? options : [...options, { kind: 'eol' }];
  const afterEol = size - optionSize(last) + 1;
  const padding = new Uint8Array(padded - afterEol);
  if (last.padding !== undefined) padding.set(last.padding);
  const minimal = padding.length === (-afterEol & 3) && padding.every((b) => b === 0);
  return [...options.slice(0, -1), minimal ? { kind: 'eol' } : { kind: 'eol', padding }];
}

// A few fixed address pairs: the pseudo-header only has to vary, not be fresh each time.
const ADDRESS_RNG = new Random(SEED).fork('addresses');
const V4_PAIRS = Array.from({ length: 8 }, () => [
  ADDRESS_RNG.fill(new Uint8Array(4)),
  ADDRESS_RNG.fill(new Uint8Array(4)),
]);
const V6_PAIRS = Array.from({ length: 8 }, () => [
  ADDRESS_RNG.fill(new Uint8Array(16)),
  ADDRESS_RNG.fill(new Uint8Array(16)),
]);

function randomPseudoSum(rng: Random, tcpLength: number): number {
  const choice = rng.int(16);
  if (choice < 8) return pseudoHeaderSumV4(V4_PAIRS[choice]![0]!, V4_PAIRS[choice]![1]!, 6, tcpLength);
  return pseudoHeaderSumV6(V6_PAIRS[choice - 8]![0]!, V6_PAIRS[choice - 8]![1]!, 6, tcpLength);
}

function emit(repr: TcpRepr, pseudoSum: number): Uint8Array {
  const buf = new Uint8Array(TcpRepr.bufferLen(repr));
  const written = TcpRepr.emit(repr, buf, 0, pseudoSum);
  if (written !== buf.length) throw new Error(`emit wrote ${written} of ${buf.length} bytes`);
  return buf;
}

function sameBytes(a: Uint8Array, b: Uint8Array, skipFrom = -1, skipTo = -1): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && (i < skipFrom || i >= skipTo)) return false;
  return true;
}

/** Outcomes by ParseError reason ("ok" for a successful parse). */
type Tally = Map<string, number>;

function count(tally: Tally, outcome: string): void {
  tally.set(outcome, (tally.get(outcome) ?? 0) + 1);
}

/**
 * Parses arbitrary bytes. Anything thrown other than ParseError escapes and fails the
 * test. On success, checks every accessor and that re-emission reproduces the bytes.
 */
function parseAndCheck(bytes: Uint8Array, pseudoSum: number | undefined, tally: Tally): void {
  let view: TcpHeaderView;
  let repr: TcpRepr;
  try {
    view = TcpHeaderView.parse(bytes);
    repr = TcpRepr.parse(view, pseudoSum);
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    count(tally, `${e.layer}:${e.reason}`);
    return;
  }
  count(tally, 'ok');
  const flags = view.flags;
  const flagBits = [view.isFin, view.isSyn, view.isRst, view.isPsh, view.isAck, view.isUrg, view.isEce, view.isCwr];
  for (let bit = 0; bit < 8; bit++) {
    if (flagBits[bit] !== ((flags >>> bit) & 1) > 0) throw new Error(`flag bit ${bit} disagrees with flags`);
  }
  const fields = [view.srcPort, view.dstPort, view.window, view.checksum, view.urgentPointer];
  if (!fields.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffff)) throw new Error(`bad 16-bit field ${fields}`);
  for (const v of [view.seq, view.ack]) {
    if (!(Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) throw new Error(`bad 32-bit field ${v}`);
  }
  if (view.headerLen !== view.dataOffset * 4 || view.dataOffset < 5) throw new Error('data offset');
  if (view.optionBytes.length + 20 !== view.headerLen) throw new Error('option bytes');
  if (view.headerLen + view.payload.length !== bytes.length) throw new Error('payload');
  if (typeof view.verifyChecksum(pseudoSum ?? 0) !== 'boolean') throw new Error('verifyChecksum');
  if (repr.payload.buffer !== bytes.buffer) throw new Error('payload was copied');

  const again = new Uint8Array(bytes.length);
  if (TcpRepr.emit(repr, again, 0, pseudoSum ?? 0) !== bytes.length) throw new Error('re-emitted length');
  if (!sameBytes(again, bytes, 16, 18)) {
    expect({ reemitted: again }).toEqual({ reemitted: bytes });
  }
  if (pseudoSum !== undefined) {
    const original = view.checksum;
    const recomputed = (again[16]! << 8) | again[17]!;
    // 0x0000 and 0xffff are the two ones'-complement zeros: both verify (RFC 1624 §3).
    if (original !== recomputed && !(original === 0xffff && recomputed === 0)) {
      throw new Error(`checksum 0x${original.toString(16)} re-emitted as 0x${recomputed.toString(16)}`);
    }
  }
}

describe(`TCP codec fuzz (seed 0x${SEED.toString(16)})`, () => {
  test(`random valid reprs: emit → parse → emit is byte-identical, parse ∘ emit = normalise (seed 0x${SEED.toString(16)}/reprs)`, () => {
    const rng = new Random(SEED).fork('reprs');
    const cases = 30_000;
    for (let i = 0; i < cases; i++) {
      const repr = randomRepr(rng, rng.chance(0.9) ? 64 : 1500);
      const pseudoSum = randomPseudoSum(rng, TcpRepr.bufferLen(repr));
      const bytes = emit(repr, pseudoSum);
      const view = TcpHeaderView.parse(bytes);
      if (!view.verifyChecksum(pseudoSum)) throw new Error(`case ${i}: emitted checksum does not verify`);
      const parsed = TcpRepr.parse(view, pseudoSum);
      const expected = { ...repr, options: normaliseOptions(repr.options) };
      if (!isDeepStrictEqual(parsed, expected)) expect({ case: i, parsed }).toEqual({ case: i, parsed: expected });
      const again = emit(parsed, pseudoSum);
      if (!sameBytes(again, bytes)) expect({ case: i, again }).toEqual({ case: i, again: bytes });
    }
  });

  test(`truncations of valid segments at every length (seed 0x${SEED.toString(16)}/truncate)`, () => {
    const rng = new Random(SEED).fork('truncate');
    const tally: Tally = new Map();
    for (let i = 0; i < 1_500; i++) {
      const repr = randomRepr(rng, 24);
      const pseudoSum = randomPseudoSum(rng, TcpRepr.bufferLen(repr));
      const bytes = emit(repr, pseudoSum);
      for (let length = 0; length <= bytes.length; length++) {
        // Verify the checksum only on the whole segment: a prefix would (almost) always fail it.
        parseAndCheck(bytes.subarray(0, length), length === bytes.length ? pseudoSum : undefined, tally);
      }
    }
    expect(tally.get('tcp:truncated')).toBeGreaterThan(0);
    expect(tally.get('ok')).toBeGreaterThanOrEqual(1_500);
    expect([...tally.values()].reduce((a, b) => a + b)).toBeGreaterThan(50_000);
  });

  test(`byte and bit mutations of valid segments (seed 0x${SEED.toString(16)}/mutate)`, () => {
    const rng = new Random(SEED).fork('mutate');
    const tally: Tally = new Map();
    for (let i = 0; i < 40_000; i++) {
      const repr = randomRepr(rng, 32);
      const pseudoSum = randomPseudoSum(rng, TcpRepr.bufferLen(repr));
      const bytes = emit(repr, pseudoSum);
      const mutations = 1 + rng.int(4);
      for (let m = 0; m < mutations; m++) {
        // Aim most mutations at the header, where the parser has decisions to make.
        const limit = rng.chance(0.8) ? Math.min(bytes.length, 60) : bytes.length;
        const at = rng.int(limit);
        if (rng.chance(0.5)) bytes[at]! ^= 1 << rng.int(8);
        else bytes[at] = rng.int(256);
      }
      parseAndCheck(bytes, rng.chance(0.5) ? pseudoSum : undefined, tally);
    }
    for (const outcome of ['ok', 'tcp:bad-checksum', 'tcp:bad-data-offset', 'tcp:truncated']) {
      expect([outcome, tally.get(outcome) ?? 0]).not.toEqual([outcome, 0]);
    }
    expect([...tally.keys()].filter((k) => k.startsWith('tcp-option:')).sort()).toEqual([
      'tcp-option:bad-length',
      'tcp-option:truncated',
    ]);
  });

  test(`random bytes of random length (seed 0x${SEED.toString(16)}/random)`, () => {
    const rng = new Random(SEED).fork('random');
    const tally: Tally = new Map();
    for (let i = 0; i < 40_000; i++) {
      const bytes = rng.fill(new Uint8Array(rng.int(100)));
      // Half the time a plausible data offset, so the option parser sees random option areas.
      if (bytes.length >= 20 && rng.chance(0.5)) {
        bytes[12] = ((5 + rng.int(Math.min(11, ((bytes.length - 20) >>> 2) + 1))) << 4) | (bytes[12]! & 0x0f);
      }
      parseAndCheck(bytes, rng.chance(0.2) ? rng.u32() : undefined, tally);
    }
    expect(tally.get('ok')).toBeGreaterThan(1_000);
  });
});
