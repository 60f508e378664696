/**
 * The MPTCP option (TCP option kind 30), RFC 8684 §3 and §8: one typed repr per
 * subtype, a parser and an emitter.
 *
 * Where the bytes come from: core's TCP option codec (core/src/wire/tcp-options.ts)
 * keeps kind 30 raw, as `{kind: 'unknown', type: 30, data}` where `data` is what
 * follows the kind and length bytes. `parseMptcpOption` parses exactly that `data` (the
 * option's Length is `data.length + 2`); `emitMptcpOption` returns such a `data`, and
 * `toTcpOption` wraps it into the core's option. `mptcpOptionLength` is the whole
 * option on the wire, kind and length bytes included (the RFC's "Length" field), which
 * is what an OptionSpace reservation needs.
 *
 * Round trip: any bytes that parse re-emit byte for byte. Reserved bits are kept in a
 * `reserved` field that is present only when they are not zero (RFC 8684 §3: senders
 * set them to zero, receivers ignore them), and an unassigned subtype (9 to 14) or
 * MP_EXPERIMENTAL (15) is kept raw. Numeric fields are written modulo their width (a
 * 32-bit DSN is the low 32 bits of the value given) and parsed as unsigned; 64-bit
 * values (keys, DSNs, data ACKs, truncated HMACs) are bigints.
 *
 * Errors: parsing throws nothing but ParseError('mptcp-option', 'truncated' |
 * 'bad-length'): 'truncated' when there is no subtype byte, 'bad-length' when the
 * Length matches no form of the subtype (RFC 8684 gives each form a fixed length). The
 * stack drops such an option, as Linux ignores it. Emitting an impossible repr (a key
 * after a missing one, an address of 5 bytes, ...) throws a plain Error: a programming
 * error, not bad input.
 */

import { ParseError, type TcpOption, TcpOptionKind, type UnknownOption } from '@nuse/core';

/** RFC 8684 §8, "MPTCP Option Subtypes". */
export const MptcpSubtype = {
  MP_CAPABLE: 0x0,
  MP_JOIN: 0x1,
  DSS: 0x2,
  ADD_ADDR: 0x3,
  REMOVE_ADDR: 0x4,
  MP_PRIO: 0x5,
  MP_FAIL: 0x6,
  MP_FASTCLOSE: 0x7,
  MP_TCPRST: 0x8,
  MP_EXPERIMENTAL: 0xf,
} as const;

/** RFC 8684 §3.1: this specification is version 1 (RFC 6824 was version 0). */
export const MPTCP_VERSION = 1;

/** RFC 8684 §3.1, MP_CAPABLE flags A to H (most significant bit first). */
export const MpCapableFlag = {
  /** A: the sender requires DSS checksums. */
  CHECKSUM_REQUIRED: 0x80,
  /** B: extensibility; must be 0 in this version. */
  EXTENSIBILITY: 0x40,
  /** C: do not open new subflows to this packet's source address. */
  NO_SUBFLOWS_TO_SOURCE: 0x20,
  /** H: HMAC-SHA256 (the only algorithm RFC 8684 defines; D to G are unassigned). */
  HMAC_SHA256: 0x01,
} as const;

/** RFC 8684 §3.6, MP_TCPRST flags (the low nibble of the subtype byte). */
export const MpTcpRstFlag = {
  U: 0x8,
  V: 0x4,
  W: 0x2,
  /** T: the error is transient; the subflow may be re-established. */
  TRANSIENT: 0x1,
} as const;

/** RFC 8684 §3.6, MP_TCPRST reason codes. */
export const MpTcpRstReason = {
  UNSPECIFIED: 0x00,
  MPTCP_SPECIFIC: 0x01,
  LACK_OF_RESOURCES: 0x02,
  ADMINISTRATIVELY_PROHIBITED: 0x03,
  TOO_MUCH_OUTSTANDING_DATA: 0x04,
  UNACCEPTABLE_PERFORMANCE: 0x05,
  MIDDLEBOX_INTERFERENCE: 0x06,
} as const;

/**
 * RFC 8684 §3.1, MP_CAPABLE. The fields present select the form, and each needs the
 * one before it:
 * - Length 4, no key: the SYN (version 1);
 * - 12, `senderKey`: the SYN-ACK (and a version 0 SYN);
 * - 20, both keys: the third ACK;
 * - 22, `dataLevelLength` too: the first data from the initiator (§3.1, the ACK may
 *   be lost, so data repeats the keys until the first DATA_ACK);
 * - 24, `checksum` too, when checksums were negotiated (§3.3.1).
 */
export interface MpCapableOption {
  readonly subtype: 'mp-capable';
  /** 4 bits. */
  readonly version: number;
  /** The 8 flags A..H (MpCapableFlag), as sent. */
  readonly flags: number;
  readonly senderKey?: bigint;
  readonly receiverKey?: bigint;
  readonly dataLevelLength?: number;
  readonly checksum?: number;
}

/** RFC 8684 §3.2, MP_JOIN on a SYN (Length 12). */
export interface MpJoinSynOption {
  readonly subtype: 'mp-join';
  readonly form: 'syn';
  /** B: the sender wants this subflow as a backup path. */
  readonly backup: boolean;
  readonly addressId: number;
  /** 32 bits: the token of the connection to join, from the receiver's key. */
  readonly receiverToken: number;
  /** 32 bits. */
  readonly senderRandom: number;
  /** The 3 bits before B, when not zero. */
  readonly reserved?: number;
}

/** RFC 8684 §3.2, MP_JOIN on a SYN-ACK (Length 16). */
export interface MpJoinSynAckOption {
  readonly subtype: 'mp-join';
  readonly form: 'syn-ack';
  readonly backup: boolean;
  readonly addressId: number;
  /** The leftmost 64 bits of the responder's HMAC (crypto.ts mpJoinSynAckHmac). */
  readonly senderTruncatedHmac: bigint;
  readonly senderRandom: number;
  readonly reserved?: number;
}

/** RFC 8684 §3.2, MP_JOIN on the third ACK (Length 24). */
export interface MpJoinAckOption {
  readonly subtype: 'mp-join';
  readonly form: 'ack';
  /** The leftmost 160 bits (20 bytes) of the initiator's HMAC (crypto.ts mpJoinAckHmac). */
  readonly senderHmac: Uint8Array;
  /** The 12 reserved bits, when not zero. */
  readonly reserved?: number;
}

export type MpJoinOption = MpJoinSynOption | MpJoinSynAckOption | MpJoinAckOption;

/**
 * RFC 8684 §3.3: a DSS mapping (flag M): `dataLevelLength` bytes from subflow sequence
 * number `ssn` (relative to the subflow's initial sequence number) carry the data
 * sequence numbers from `dsn`. A `dataLevelLength` of 0 is the infinite mapping of a
 * fallback (§3.7). `checksum` is present when checksums were negotiated (§3.3.1);
 * the option's Length is what says so.
 */
export interface DssMapping {
  /** 64 bits, or 32 when the DSS's `dsn64` is false. */
  readonly dsn: bigint;
  /** 32 bits. */
  readonly ssn: number;
  /** 16 bits. */
  readonly dataLevelLength: number;
  readonly checksum?: number;
}

/**
 * RFC 8684 §3.3, the Data Sequence Signal. Each flag has exactly one home: A is
 * `dataAck !== undefined`, M is `mapping !== undefined`, and a, m, F are the booleans
 * (kept as sent even when A or M is clear, so the bytes round-trip).
 */
export interface DssOption {
  readonly subtype: 'dss';
  /** Flag A: the data ACK, 64 bits or 32 (flag a). */
  readonly dataAck?: bigint;
  /** Flag a: the data ACK is 8 octets. */
  readonly dataAck64: boolean;
  /** Flag M: DSN, SSN, data-level length and (if negotiated) checksum. */
  readonly mapping?: DssMapping;
  /** Flag m: the DSN is 8 octets. */
  readonly dsn64: boolean;
  /** Flag F: DATA_FIN, which takes the last data sequence number of the mapping (§3.3.3). */
  readonly dataFin: boolean;
  /** The 7 reserved bits before F, when not zero. */
  readonly reserved?: number;
}

/**
 * RFC 8684 §3.4.1, ADD_ADDR. The Length gives the address family and whether a port is
 * there: IPv4 8/10 (echo) or 16/18 (with the truncated HMAC), IPv6 20/22 or 28/30.
 * `truncatedHmac` is present exactly when `echo` is false.
 */
export interface AddAddrOption {
  readonly subtype: 'add-addr';
  /** E: this is the echo that acknowledges an ADD_ADDR; no HMAC. */
  readonly echo: boolean;
  readonly addressId: number;
  /** 4 (IPv4) or 16 (IPv6) bytes. */
  readonly address: Uint8Array;
  readonly port?: number;
  /** The rightmost 64 bits of the sender's HMAC (crypto.ts addAddrHmac). */
  readonly truncatedHmac?: bigint;
  /** The 3 bits before E, when not zero. */
  readonly reserved?: number;
}

/** RFC 8684 §3.4.2, REMOVE_ADDR: Length 3 + n for n ≥ 1 address IDs. */
export interface RemoveAddrOption {
  readonly subtype: 'remove-addr';
  readonly addressIds: readonly number[];
  /** The 4 reserved bits, when not zero. */
  readonly reserved?: number;
}

/** RFC 8684 §3.3.8, MP_PRIO (Length 3; RFC 6824's optional address ID is gone in v1). */
export interface MpPrioOption {
  readonly subtype: 'mp-prio';
  readonly backup: boolean;
  /** The 3 bits before B, when not zero. */
  readonly reserved?: number;
}

/** RFC 8684 §3.7, MP_FAIL (Length 12): the DSN where the checksum failed. */
export interface MpFailOption {
  readonly subtype: 'mp-fail';
  readonly dsn: bigint;
  /** The 12 reserved bits, when not zero. */
  readonly reserved?: number;
}

/** RFC 8684 §3.5, MP_FASTCLOSE (Length 12): the key of the receiver of this option. */
export interface MpFastcloseOption {
  readonly subtype: 'mp-fastclose';
  readonly receiverKey: bigint;
  /** The 12 reserved bits, when not zero. */
  readonly reserved?: number;
}

/** RFC 8684 §3.6, MP_TCPRST (Length 4). */
export interface MpTcpRstOption {
  readonly subtype: 'mp-tcprst';
  /** U, V, W, T (MpTcpRstFlag), 4 bits. */
  readonly flags: number;
  /** MpTcpRstReason, 8 bits. */
  readonly reason: number;
}

/**
 * An unassigned subtype (9 to 14) or MP_EXPERIMENTAL (15), kept raw: `bits` is the low
 * nibble of the subtype byte and `data` what follows it.
 */
export interface UnknownMptcpOption {
  readonly subtype: 'unknown';
  readonly type: number;
  readonly bits: number;
  readonly data: Uint8Array;
}

export type MptcpOption =
  | MpCapableOption
  | MpJoinOption
  | DssOption
  | AddAddrOption
  | RemoveAddrOption
  | MpPrioOption
  | MpFailOption
  | MpFastcloseOption
  | MpTcpRstOption
  | UnknownMptcpOption;

const LAYER = 'mptcp-option';

function readU16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function readU64(b: Uint8Array, at: number): bigint {
  return (BigInt(readU32(b, at)) << 32n) | BigInt(readU32(b, at + 4));
}

function writeU16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 8;
  b[at + 1] = v;
}

function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

function writeU64(b: Uint8Array, at: number, v: bigint): void {
  const u = BigInt.asUintN(64, v);
  writeU32(b, at, Number(u >> 32n));
  writeU32(b, at + 4, Number(u & 0xffffffffn));
}

function badLength(name: string, length: number): ParseError {
  return new ParseError(LAYER, 'bad-length', `${name} with length ${length}`);
}

/** `value` when not zero, for the optional `reserved` fields. */
function nonZero(value: number): { reserved?: number } {
  return value === 0 ? {} : { reserved: value };
}

/**
 * Parses the data of a kind-30 TCP option (the bytes after kind and length, as core's
 * `UnknownOption.data`). The result's Uint8Array fields are subarrays of `data`.
 */
export function parseMptcpOption(data: Uint8Array): MptcpOption {
  if (data.length === 0) throw new ParseError(LAYER, 'truncated', 'no subtype byte');
  // A TCP option's length byte counts kind and length: at most 253 bytes of data.
  if (data.length > 253) throw badLength('MPTCP option', data.length + 2);
  const length = data.length + 2; // the RFC's Length: kind and length bytes included
  const type = data[0]! >>> 4;
  const nibble = data[0]! & 0x0f;
  switch (type) {
    case MptcpSubtype.MP_CAPABLE:
      return parseMpCapable(data, length, nibble);
    case MptcpSubtype.MP_JOIN:
      return parseMpJoin(data, length, nibble);
    case MptcpSubtype.DSS:
      return parseDss(data, length, nibble);
    case MptcpSubtype.ADD_ADDR:
      return parseAddAddr(data, length, nibble);
    case MptcpSubtype.REMOVE_ADDR:
      // §3.4.2: Length 3 + n, at least one address ID.
      if (length < 4) throw badLength('REMOVE_ADDR', length);
      return { subtype: 'remove-addr', addressIds: Array.from(data.subarray(1)), ...nonZero(nibble) };
    case MptcpSubtype.MP_PRIO:
      // §3.3.8: Length 3.
      if (length !== 3) throw badLength('MP_PRIO', length);
      return { subtype: 'mp-prio', backup: (nibble & 1) !== 0, ...nonZero(nibble >>> 1) };
    case MptcpSubtype.MP_FAIL:
      // §3.7: Length 12, 12 reserved bits, a 64-bit DSN.
      if (length !== 12) throw badLength('MP_FAIL', length);
      return { subtype: 'mp-fail', dsn: readU64(data, 2), ...nonZero((nibble << 8) | data[1]!) };
    case MptcpSubtype.MP_FASTCLOSE:
      // §3.5: Length 12, 12 reserved bits, the receiver's 64-bit key.
      if (length !== 12) throw badLength('MP_FASTCLOSE', length);
      return { subtype: 'mp-fastclose', receiverKey: readU64(data, 2), ...nonZero((nibble << 8) | data[1]!) };
    case MptcpSubtype.MP_TCPRST:
      // §3.6: Length 4, flags U V W T, an 8-bit reason.
      if (length !== 4) throw badLength('MP_TCPRST', length);
      return { subtype: 'mp-tcprst', flags: nibble, reason: data[1]! };
    default:
      return { subtype: 'unknown', type, bits: nibble, data: data.subarray(1) };
  }
}

/** RFC 8684 §3.1: Lengths 4, 12, 20, 22, 24. */
function parseMpCapable(data: Uint8Array, length: number, version: number): MpCapableOption {
  if (length !== 4 && length !== 12 && length !== 20 && length !== 22 && length !== 24) {
    throw badLength('MP_CAPABLE', length);
  }
  const base = { subtype: 'mp-capable', version, flags: data[1]! } as const;
  if (length === 4) return base;
  const senderKey = readU64(data, 2);
  if (length === 12) return { ...base, senderKey };
  const receiverKey = readU64(data, 10);
  if (length === 20) return { ...base, senderKey, receiverKey };
  const dataLevelLength = readU16(data, 18);
  if (length === 22) return { ...base, senderKey, receiverKey, dataLevelLength };
  return { ...base, senderKey, receiverKey, dataLevelLength, checksum: readU16(data, 20) };
}

/** RFC 8684 §3.2: the SYN (12), SYN-ACK (16) and third ACK (24) forms. */
function parseMpJoin(data: Uint8Array, length: number, nibble: number): MpJoinOption {
  switch (length) {
    case 12:
      return {
        subtype: 'mp-join',
        form: 'syn',
        backup: (nibble & 1) !== 0,
        addressId: data[1]!,
        receiverToken: readU32(data, 2),
        senderRandom: readU32(data, 6),
        ...nonZero(nibble >>> 1),
      };
    case 16:
      return {
        subtype: 'mp-join',
        form: 'syn-ack',
        backup: (nibble & 1) !== 0,
        addressId: data[1]!,
        senderTruncatedHmac: readU64(data, 2),
        senderRandom: readU32(data, 10),
        ...nonZero(nibble >>> 1),
      };
    case 24:
      return {
        subtype: 'mp-join',
        form: 'ack',
        senderHmac: data.subarray(2, 22),
        ...nonZero((nibble << 8) | data[1]!),
      };
    default:
      throw badLength('MP_JOIN', length);
  }
}

// RFC 8684 §3.3, the DSS flags in the second byte.
const DSS_A = 0x01; // data ACK present
const DSS_a = 0x02; // data ACK is 8 octets
const DSS_M = 0x04; // mapping present
const DSS_m = 0x08; // DSN is 8 octets
const DSS_F = 0x10; // DATA_FIN

/**
 * RFC 8684 §3.3: 4 bytes, then the data ACK (4 or 8) if A, then if M the DSN (4 or 8),
 * the SSN (4), the data-level length (2) and the checksum (2) when the Length leaves
 * room for it.
 */
function parseDss(data: Uint8Array, length: number, nibble: number): DssOption {
  const flags = data[1]!;
  const ackLen = flags & DSS_A ? (flags & DSS_a ? 8 : 4) : 0;
  const dsnLen = flags & DSS_m ? 8 : 4;
  const withoutChecksum = 4 + ackLen + (flags & DSS_M ? dsnLen + 6 : 0);
  const hasChecksum = (flags & DSS_M) !== 0 && length === withoutChecksum + 2;
  if (length !== withoutChecksum && !hasChecksum) throw badLength('DSS', length);
  let at = 2;
  let dataAck: bigint | undefined;
  if (ackLen === 8) dataAck = readU64(data, at);
  else if (ackLen === 4) dataAck = BigInt(readU32(data, at));
  at += ackLen;
  let mapping: DssMapping | undefined;
  if (flags & DSS_M) {
    const dsn = dsnLen === 8 ? readU64(data, at) : BigInt(readU32(data, at));
    at += dsnLen;
    const ssn = readU32(data, at);
    const dataLevelLength = readU16(data, at + 4);
    mapping = hasChecksum
      ? { dsn, ssn, dataLevelLength, checksum: readU16(data, at + 6) }
      : { dsn, ssn, dataLevelLength };
  }
  return {
    subtype: 'dss',
    ...(dataAck === undefined ? {} : { dataAck }),
    dataAck64: (flags & DSS_a) !== 0,
    ...(mapping === undefined ? {} : { mapping }),
    dsn64: (flags & DSS_m) !== 0,
    dataFin: (flags & DSS_F) !== 0,
    ...nonZero((nibble << 3) | (flags >>> 5)),
  };
}

/** RFC 8684 §3.4.1: 4 bytes, the address, an optional port, the truncated HMAC unless E. */
function parseAddAddr(data: Uint8Array, length: number, nibble: number): AddAddrOption {
  const echo = (nibble & 1) !== 0;
  const body = length - 4 - (echo ? 0 : 8); // address and port
  let addressLen: number;
  if (body === 4 || body === 6) addressLen = 4;
  else if (body === 16 || body === 18) addressLen = 16;
  else throw badLength(echo ? 'ADD_ADDR echo' : 'ADD_ADDR', length);
  const hasPort = body !== addressLen;
  let at = 2 + addressLen;
  const option: {
    subtype: 'add-addr';
    echo: boolean;
    addressId: number;
    address: Uint8Array;
    port?: number;
    truncatedHmac?: bigint;
    reserved?: number;
  } = { subtype: 'add-addr', echo, addressId: data[1]!, address: data.subarray(2, at) };
  if (hasPort) {
    option.port = readU16(data, at);
    at += 2;
  }
  if (!echo) option.truncatedHmac = readU64(data, at);
  if (nibble >>> 1 !== 0) option.reserved = nibble >>> 1;
  return option;
}

function fail(message: string): never {
  throw new Error(`MPTCP option: ${message}`);
}

/**
 * The whole option's length on the wire, kind and length bytes included: the RFC's
 * Length field, and what to reserve in an OptionSpace. Throws (a plain Error) for a
 * repr that cannot be emitted.
 */
export function mptcpOptionLength(option: MptcpOption): number {
  switch (option.subtype) {
    case 'mp-capable':
      if (option.senderKey === undefined) {
        if (option.receiverKey !== undefined || option.dataLevelLength !== undefined || option.checksum !== undefined) {
          fail('MP_CAPABLE fields need the sender key');
        }
        return 4;
      }
      if (option.receiverKey === undefined) {
        if (option.dataLevelLength !== undefined || option.checksum !== undefined) {
          fail('MP_CAPABLE data-level length needs the receiver key');
        }
        return 12;
      }
      if (option.dataLevelLength === undefined) {
        if (option.checksum !== undefined) fail('MP_CAPABLE checksum needs the data-level length');
        return 20;
      }
      return option.checksum === undefined ? 22 : 24;
    case 'mp-join':
      return option.form === 'syn' ? 12 : option.form === 'syn-ack' ? 16 : 24;
    case 'dss': {
      let length = 4;
      if (option.dataAck !== undefined) length += option.dataAck64 ? 8 : 4;
      if (option.mapping !== undefined) {
        length += (option.dsn64 ? 8 : 4) + 6 + (option.mapping.checksum === undefined ? 0 : 2);
      }
      return length;
    }
    case 'add-addr':
      if (option.address.length !== 4 && option.address.length !== 16) {
        fail(`ADD_ADDR address of ${option.address.length} bytes`);
      }
      if (option.echo !== (option.truncatedHmac === undefined)) {
        fail('ADD_ADDR carries a truncated HMAC exactly when it is not an echo');
      }
      return 4 + option.address.length + (option.port === undefined ? 0 : 2) + (option.echo ? 0 : 8);
    case 'remove-addr':
      if (option.addressIds.length === 0) fail('REMOVE_ADDR without an address ID');
      return checkLength(3 + option.addressIds.length);
    case 'mp-prio':
      return 3;
    case 'mp-fail':
    case 'mp-fastclose':
      return 12;
    case 'mp-tcprst':
      return 4;
    case 'unknown':
      if (option.type < 0 || option.type > 15 || option.type <= MptcpSubtype.MP_TCPRST) {
        fail(`subtype ${option.type} cannot be kept raw`);
      }
      return checkLength(3 + option.data.length);
  }
}

/** A TCP option's length byte holds at most 255. */
function checkLength(length: number): number {
  if (length > 255) fail(`${length} bytes do not fit a TCP option`);
  return length;
}

/** The option's data (Length − 2 bytes: what core's UnknownOption.data holds), newly allocated. */
export function emitMptcpOption(option: MptcpOption): Uint8Array {
  const data = new Uint8Array(mptcpOptionLength(option) - 2);
  writeMptcpOption(option, data, 0);
  return data;
}

/** The option as core's TCP option, ready for an option list (encodeOptions, OptionWriteContext.options). */
export function toTcpOption(option: MptcpOption): UnknownOption {
  return { kind: 'unknown', type: TcpOptionKind.MPTCP, data: emitMptcpOption(option) };
}

/**
 * Writes the option's data (without kind and length) at `buf[offset]` and returns the
 * bytes written, `mptcpOptionLength(option) - 2`.
 */
export function writeMptcpOption(option: MptcpOption, buf: Uint8Array, offset: number): number {
  const n = mptcpOptionLength(option) - 2;
  if (offset < 0 || offset + n > buf.length) fail('the option does not fit in the buffer');
  const b = buf.subarray(offset, offset + n);
  switch (option.subtype) {
    case 'mp-capable':
      b[0] = (MptcpSubtype.MP_CAPABLE << 4) | (option.version & 0x0f);
      b[1] = option.flags;
      if (option.senderKey !== undefined) writeU64(b, 2, option.senderKey);
      if (option.receiverKey !== undefined) writeU64(b, 10, option.receiverKey);
      if (option.dataLevelLength !== undefined) writeU16(b, 18, option.dataLevelLength);
      if (option.checksum !== undefined) writeU16(b, 20, option.checksum);
      break;
    case 'mp-join':
      writeMpJoin(option, b);
      break;
    case 'dss':
      writeDss(option, b);
      break;
    case 'add-addr': {
      b[0] = (MptcpSubtype.ADD_ADDR << 4) | (((option.reserved ?? 0) << 1) & 0x0e) | (option.echo ? 1 : 0);
      b[1] = option.addressId;
      b.set(option.address, 2);
      let at = 2 + option.address.length;
      if (option.port !== undefined) {
        writeU16(b, at, option.port);
        at += 2;
      }
      if (option.truncatedHmac !== undefined) writeU64(b, at, option.truncatedHmac);
      break;
    }
    case 'remove-addr':
      b[0] = (MptcpSubtype.REMOVE_ADDR << 4) | ((option.reserved ?? 0) & 0x0f);
      for (let i = 0; i < option.addressIds.length; i++) b[1 + i] = option.addressIds[i]!;
      break;
    case 'mp-prio':
      b[0] = (MptcpSubtype.MP_PRIO << 4) | (((option.reserved ?? 0) << 1) & 0x0e) | (option.backup ? 1 : 0);
      break;
    case 'mp-fail':
    case 'mp-fastclose': {
      const reserved = option.reserved ?? 0;
      b[0] =
        ((option.subtype === 'mp-fail' ? MptcpSubtype.MP_FAIL : MptcpSubtype.MP_FASTCLOSE) << 4) |
        ((reserved >>> 8) & 0x0f);
      b[1] = reserved;
      writeU64(b, 2, option.subtype === 'mp-fail' ? option.dsn : option.receiverKey);
      break;
    }
    case 'mp-tcprst':
      b[0] = (MptcpSubtype.MP_TCPRST << 4) | (option.flags & 0x0f);
      b[1] = option.reason;
      break;
    case 'unknown':
      b[0] = (option.type << 4) | (option.bits & 0x0f);
      b.set(option.data, 1);
      break;
  }
  return n;
}

function writeMpJoin(option: MpJoinOption, b: Uint8Array): void {
  const reserved = option.reserved ?? 0;
  if (option.form === 'ack') {
    if (option.senderHmac.length !== 20) fail(`MP_JOIN ACK HMAC of ${option.senderHmac.length} bytes, not 20`);
    b[0] = (MptcpSubtype.MP_JOIN << 4) | ((reserved >>> 8) & 0x0f);
    b[1] = reserved;
    b.set(option.senderHmac, 2);
    return;
  }
  b[0] = (MptcpSubtype.MP_JOIN << 4) | ((reserved << 1) & 0x0e) | (option.backup ? 1 : 0);
  b[1] = option.addressId;
  if (option.form === 'syn') {
    writeU32(b, 2, option.receiverToken);
    writeU32(b, 6, option.senderRandom);
  } else {
    writeU64(b, 2, option.senderTruncatedHmac);
    writeU32(b, 10, option.senderRandom);
  }
}

function writeDss(option: DssOption, b: Uint8Array): void {
  const reserved = option.reserved ?? 0;
  b[0] = (MptcpSubtype.DSS << 4) | ((reserved >>> 3) & 0x0f);
  b[1] =
    ((reserved & 0x07) << 5) |
    (option.dataFin ? DSS_F : 0) |
    (option.dsn64 ? DSS_m : 0) |
    (option.mapping !== undefined ? DSS_M : 0) |
    (option.dataAck64 ? DSS_a : 0) |
    (option.dataAck !== undefined ? DSS_A : 0);
  let at = 2;
  if (option.dataAck !== undefined) {
    if (option.dataAck64) {
      writeU64(b, at, option.dataAck);
      at += 8;
    } else {
      writeU32(b, at, Number(BigInt.asUintN(32, option.dataAck)));
      at += 4;
    }
  }
  const mapping = option.mapping;
  if (mapping === undefined) return;
  if (option.dsn64) {
    writeU64(b, at, mapping.dsn);
    at += 8;
  } else {
    writeU32(b, at, Number(BigInt.asUintN(32, mapping.dsn)));
    at += 4;
  }
  writeU32(b, at, mapping.ssn);
  writeU16(b, at + 4, mapping.dataLevelLength);
  if (mapping.checksum !== undefined) writeU16(b, at + 6, mapping.checksum);
}

/** True for the infinite mapping of a fallback (RFC 8684 §3.7): a data-level length of 0. */
export function isInfiniteMapping(mapping: DssMapping): boolean {
  return mapping.dataLevelLength === 0;
}

/**
 * The MPTCP option in a core TCP option, or undefined for another kind. Throws
 * ParseError as parseMptcpOption does.
 */
export function parseTcpOption(option: TcpOption): MptcpOption | undefined {
  if (option.kind !== 'unknown' || option.type !== TcpOptionKind.MPTCP) return undefined;
  return parseMptcpOption(option.data);
}
