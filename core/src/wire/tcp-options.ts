/**
 * TCP options: RFC 9293 §3.1 (layout), §3.2 (EOL, NOP, MSS), RFC 7323 (window scale,
 * timestamps), RFC 2018 (SACK-permitted, SACK). Every other kind is kept as raw bytes
 * (`{kind: 'unknown'}`) so that plugins (MPTCP = 30, TFO = 34, TCP-AO = 29, …) can
 * claim it later; RFC 9293 §3.1 MUST-6 says an option we do not implement is skipped
 * by its length field, without error.
 *
 * Round trip: for any option area `a` that parses, `encodeOptions(parseOptions(a))`
 * writes `a` again byte for byte (EOL keeps whatever followed it). The other way,
 * `parseOptions(encode(list))` equals `list` once normalised:
 * - a list whose size is not a multiple of 4 and that does not end in EOL is padded
 *   with an EOL and zeros (RFC 9293 §3.1: "the padding is composed of zeros"), so the
 *   parsed list ends with `{kind: 'eol'}`;
 * - an EOL's `padding` is present only when it is not the minimal zero padding to the
 *   next 4-byte boundary, and grows by the zeros the encoder appends to reach one.
 * Numeric fields are written modulo their width (a negative sequence number from
 * 32-bit arithmetic encodes as its two's complement) and parsed as unsigned.
 *
 * Parsed `data` and `padding` are subarrays of the packet (no copy): copy them if the
 * option outlives the packet buffer.
 */

import { ParseError } from './parse-error';

/** Option kind numbers (IANA "TCP Option Kind Numbers"). */
export const TcpOptionKind = {
  EOL: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMPS: 8,
  MD5_SIGNATURE: 19, // RFC 2385
  AUTHENTICATION: 29, // TCP-AO, RFC 5925
  MPTCP: 30, // RFC 8684
  FAST_OPEN: 34, // RFC 7413
} as const;

/** The most option bytes a TCP header can carry: data offset 15 words minus the 20-byte fixed header. */
export const MAX_OPTIONS_LEN = 40;

/** RFC 7323 §2.3: a shift above 14 must be treated as 14 by the receiver. */
export const MAX_WINDOW_SCALE = 14;

/** RFC 2018 §3: 40 option bytes hold at most 4 SACK blocks (2 + 8n bytes). */
export const MAX_SACK_BLOCKS = 4;

/**
 * End of option list. Bytes after it up to the end of the header are padding; a parser
 * keeps them in `padding` only when they differ from the minimal zero padding, so that
 * re-encoding is byte-identical.
 */
export interface EolOption {
  readonly kind: 'eol';
  readonly padding?: Uint8Array;
}
export interface NopOption {
  readonly kind: 'nop';
}
/** RFC 9293 §3.7.1: the largest segment the sender of this option can receive. */
export interface MssOption {
  readonly kind: 'mss';
  readonly mss: number;
}
/**
 * RFC 7323 §2.2. `shift` is exposed as received: values above 14 are legal on the wire
 * and callers must clamp them to MAX_WINDOW_SCALE (RFC 7323 §2.3).
 */
export interface WindowScaleOption {
  readonly kind: 'wscale';
  readonly shift: number;
}
/** RFC 2018 §2. */
export interface SackPermittedOption {
  readonly kind: 'sack-permitted';
}
/** One SACK block (RFC 2018 §3): `left` is the first sequence number of the block, `right` the one after its last. */
export interface SackBlock {
  readonly left: number;
  readonly right: number;
}
/** RFC 2018 §3: 1 to 4 blocks. */
export interface SackOption {
  readonly kind: 'sack';
  readonly blocks: readonly SackBlock[];
}
/** RFC 7323 §3.2. */
export interface TimestampsOption {
  readonly kind: 'timestamps';
  readonly tsVal: number;
  readonly tsEcr: number;
}
/** Any other kind, as raw bytes: `data` is what follows the kind and length bytes. */
export interface UnknownOption {
  readonly kind: 'unknown';
  readonly type: number;
  readonly data: Uint8Array;
}

export type TcpOption =
  | EolOption
  | NopOption
  | MssOption
  | WindowScaleOption
  | SackPermittedOption
  | SackOption
  | TimestampsOption
  | UnknownOption;

// Shared instances: options without fields need no allocation per packet.
const EOL_OPTION: EolOption = { kind: 'eol' };
const NOP_OPTION: NopOption = { kind: 'nop' };
const SACK_PERMITTED_OPTION: SackPermittedOption = { kind: 'sack-permitted' };

function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

function writeU32(buf: Uint8Array, at: number, value: number): void {
  buf[at] = value >>> 24;
  buf[at + 1] = value >>> 16;
  buf[at + 2] = value >>> 8;
  buf[at + 3] = value;
}

function badLength(name: string, length: number): ParseError {
  return new ParseError('tcp-option', 'bad-length', `${name} with length ${length}`);
}

/** True when `count` bytes from `from` are exactly the zeros that pad `from` to a multiple of 4. */
function isMinimalZeroPadding(bytes: Uint8Array, from: number, end: number): boolean {
  if (end - from !== (-from & 3)) return false;
  for (let i = from; i < end; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * Parses an option area (the bytes between the fixed TCP header and the payload).
 * Throws ParseError('tcp-option', 'truncated' | 'bad-length') for an option whose
 * length byte is missing, below 2, runs past the area, or does not match its kind:
 * RFC 9293 §3.1 MUST-7 asks a receiver to be prepared for illegal option lengths, and
 * the stack drops (and counts) such a segment.
 */
export function parseOptions(bytes: Uint8Array): TcpOption[] {
  const options: TcpOption[] = [];
  const end = bytes.length;
  let at = 0;
  while (at < end) {
    const type = bytes[at]!;
    // RFC 9293 §3.2: EOL and NOP are the only one-byte options.
    if (type === TcpOptionKind.EOL) {
      const from = at + 1;
      options.push(
        isMinimalZeroPadding(bytes, from, end) ? EOL_OPTION : { kind: 'eol', padding: bytes.subarray(from, end) },
      );
      return options;
    }
    if (type === TcpOptionKind.NOP) {
      options.push(NOP_OPTION);
      at++;
      continue;
    }
    // RFC 9293 §3.1 MUST-68: every other option has a length byte counting kind and length.
    if (at + 1 >= end) throw new ParseError('tcp-option', 'truncated', `kind ${type} without a length byte`);
    const length = bytes[at + 1]!;
    if (length < 2) throw badLength(`kind ${type}`, length);
    if (at + length > end) {
      throw new ParseError('tcp-option', 'truncated', `kind ${type} length ${length} exceeds ${end - at} bytes left`);
    }
    switch (type) {
      case TcpOptionKind.MSS: // RFC 9293 §3.2: kind 2, length 4
        if (length !== 4) throw badLength('MSS', length);
        options.push({ kind: 'mss', mss: (bytes[at + 2]! << 8) | bytes[at + 3]! });
        break;
      case TcpOptionKind.WINDOW_SCALE: // RFC 7323 §2.2: kind 3, length 3
        if (length !== 3) throw badLength('window scale', length);
        options.push({ kind: 'wscale', shift: bytes[at + 2]! });
        break;
      case TcpOptionKind.SACK_PERMITTED: // RFC 2018 §2: kind 4, length 2
        if (length !== 2) throw badLength('SACK-permitted', length);
        options.push(SACK_PERMITTED_OPTION);
        break;
      case TcpOptionKind.SACK: {
        // RFC 2018 §3: kind 5, length 2 + 8n, 1 ≤ n ≤ 4.
        const blockCount = (length - 2) >>> 3;
        if ((length - 2) & 7 || blockCount < 1 || blockCount > MAX_SACK_BLOCKS) throw badLength('SACK', length);
        const blocks: SackBlock[] = [];
        for (let b = at + 2; b < at + length; b += 8) {
          blocks.push({ left: readU32(bytes, b), right: readU32(bytes, b + 4) });
        }
        options.push({ kind: 'sack', blocks });
        break;
      }
      case TcpOptionKind.TIMESTAMPS: // RFC 7323 §3.2: kind 8, length 10
        if (length !== 10) throw badLength('timestamps', length);
        options.push({ kind: 'timestamps', tsVal: readU32(bytes, at + 2), tsEcr: readU32(bytes, at + 6) });
        break;
      default:
        options.push({ kind: 'unknown', type, data: bytes.subarray(at + 2, at + length) });
    }
    at += length;
  }
  return options;
}

/** The bytes one option occupies on the wire, before the padding of the whole list. */
export function optionSize(option: TcpOption): number {
  switch (option.kind) {
    case 'eol':
      return option.padding === undefined ? 1 : 1 + option.padding.length;
    case 'nop':
      return 1;
    case 'mss':
      return 4;
    case 'wscale':
      return 3;
    case 'sack-permitted':
      return 2;
    case 'sack':
      return 2 + 8 * option.blocks.length;
    case 'timestamps':
      return 10;
    case 'unknown':
      return 2 + option.data.length;
  }
}

/**
 * The bytes `options` occupy in a header, padded to a multiple of 4 (RFC 9293 §3.1:
 * the header ends on a 32-bit boundary). Does not check the 40-byte limit: encoding
 * does; use OptionSpace to stay within it.
 */
export function optionsLength(options: readonly TcpOption[]): number {
  let size = 0;
  for (let i = 0; i < options.length; i++) size += optionSize(options[i]!);
  return (size + 3) & ~3;
}

// Kinds this codec parses into typed options: writing one as 'unknown' would not
// parse back the same.
function isTypedKind(type: number): boolean {
  return type <= TcpOptionKind.SACK || type === TcpOptionKind.TIMESTAMPS;
}

/**
 * Writes `options` at `buf[offset]`, then zeros up to a multiple of 4 (an implicit EOL
 * when the list does not end in one). Returns the bytes written, i.e. optionsLength().
 * Throws a plain Error (a programming error, not bad input) for more than 40 bytes,
 * an option after EOL, a SACK with 0 or more than 4 blocks, an 'unknown' option whose
 * type is one this codec parses, or a buffer too small.
 */
export function encodeOptions(options: readonly TcpOption[], buf: Uint8Array, offset: number): number {
  const length = optionsLength(options);
  if (length > MAX_OPTIONS_LEN) throw new Error(`TCP options need ${length} bytes, more than ${MAX_OPTIONS_LEN}`);
  if (offset < 0 || offset + length > buf.length) throw new Error('TCP options do not fit in the buffer');
  let at = offset;
  for (let i = 0; i < options.length; i++) {
    const option = options[i]!;
    switch (option.kind) {
      case 'eol':
        // RFC 9293 §3.2: EOL marks the end of all options; nothing may follow it.
        if (i !== options.length - 1) throw new Error('TCP option after EOL');
        buf[at++] = TcpOptionKind.EOL;
        if (option.padding !== undefined) {
          buf.set(option.padding, at);
          at += option.padding.length;
        }
        break;
      case 'nop':
        buf[at++] = TcpOptionKind.NOP;
        break;
      case 'mss':
        buf[at] = TcpOptionKind.MSS;
        buf[at + 1] = 4;
        buf[at + 2] = option.mss >>> 8;
        buf[at + 3] = option.mss;
        at += 4;
        break;
      case 'wscale':
        buf[at] = TcpOptionKind.WINDOW_SCALE;
        buf[at + 1] = 3;
        buf[at + 2] = option.shift;
        at += 3;
        break;
      case 'sack-permitted':
        buf[at] = TcpOptionKind.SACK_PERMITTED;
        buf[at + 1] = 2;
        at += 2;
        break;
      case 'sack': {
        const blocks = option.blocks;
        if (blocks.length < 1 || blocks.length > MAX_SACK_BLOCKS) {
          throw new Error(`a SACK option carries 1 to ${MAX_SACK_BLOCKS} blocks, not ${blocks.length}`);
        }
        buf[at] = TcpOptionKind.SACK;
        buf[at + 1] = 2 + 8 * blocks.length;
        at += 2;
        for (let b = 0; b < blocks.length; b++) {
          writeU32(buf, at, blocks[b]!.left);
          writeU32(buf, at + 4, blocks[b]!.right);
          at += 8;
        }
        break;
      }
      case 'timestamps':
        buf[at] = TcpOptionKind.TIMESTAMPS;
        buf[at + 1] = 10;
        writeU32(buf, at + 2, option.tsVal);
        writeU32(buf, at + 6, option.tsEcr);
        at += 10;
        break;
      case 'unknown':
        if (isTypedKind(option.type)) throw new Error(`TCP option kind ${option.type} must use its typed form`);
        buf[at] = option.type;
        buf[at + 1] = 2 + option.data.length;
        buf.set(option.data, at + 2);
        at += 2 + option.data.length;
        break;
    }
  }
  // RFC 9293 §3.1: the padding is composed of zeros (which also reads as EOL).
  const end = offset + length;
  while (at < end) buf[at++] = 0;
  return length;
}

/**
 * The first option of a typed kind, e.g. `findOption(options, 'mss')?.mss`. For raw
 * options by wire kind number (MPTCP = 30), use findUnknownOption.
 */
export function findOption<K extends TcpOption['kind']>(
  options: readonly TcpOption[],
  kind: K,
): Extract<TcpOption, { kind: K }> | undefined {
  for (let i = 0; i < options.length; i++) {
    const option = options[i]!;
    if (option.kind === kind) return option as Extract<TcpOption, { kind: K }>;
  }
  return undefined;
}

/** The first raw option of wire kind `type` (e.g. TcpOptionKind.MPTCP). */
export function findUnknownOption(options: readonly TcpOption[], type: number): UnknownOption | undefined {
  for (let i = 0; i < options.length; i++) {
    const option = options[i]!;
    if (option.kind === 'unknown' && option.type === type) return option;
  }
  return undefined;
}

/**
 * Accounts option bytes against the 40-byte limit before anything is encoded, so the
 * stack and plugins (MPTCP's DSS, SACK blocks, timestamps) can each ask for room and
 * fall back when there is none. Reservations are unpadded sizes (optionSize); with a
 * limit of 40, a multiple of 4, the final padding to a 4-byte boundary never exceeds it.
 */
export class OptionSpace {
  private usedBytes = 0;

  constructor(readonly limit: number = MAX_OPTIONS_LEN) {}

  get used(): number {
    return this.usedBytes;
  }

  get remaining(): number {
    return this.limit - this.usedBytes;
  }

  /** Reserves `length` bytes if they fit; otherwise reserves nothing and returns false. */
  tryReserve(length: number): boolean {
    if (length < 0 || this.usedBytes + length > this.limit) return false;
    this.usedBytes += length;
    return true;
  }

  /** Reserves the bytes `option` needs (optionSize) if they fit. */
  tryReserveOption(option: TcpOption): boolean {
    return this.tryReserve(optionSize(option));
  }

  /** Empties the space for the next segment, so one instance can be reused without allocation. */
  reset(): void {
    this.usedBytes = 0;
  }
}
