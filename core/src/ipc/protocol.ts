/**
 * The control protocol between the shim (shim/src/nuse.c) and the daemon's IPC server:
 * frames of a 4-byte big-endian length and a msgpack map. Every request carries `op`
 * and `id`; the reply echoes `id` and carries `err` (a Linux errno number, 0 for
 * success) and the op's results. The first request is `hello` with the protocol
 * version. docs/shim.md describes each op.
 *
 * Everything that arrives is checked here: the frame size, the msgpack, the op, and
 * each field's presence and type. A request that fails is a ProtocolError, and the
 * server closes that client's connection with the reason in the log.
 */

import { Packr, Unpackr } from 'msgpackr';
import { parsePrefixList } from './policy';

export const PROTOCOL_VERSION = 1;
/** Larger frames are refused: no request needs more than a few hundred bytes. */
export const MAX_FRAME = 4096;

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

/** A socket's name: its abstract unix address, which the shim chose ("nuse/4/6/1234.1") or the daemon did ("nuse/a/..."). */
const SOCK_NAME = /^nuse\/(?:[46]\/(?:6|262)|a)\/\d{1,10}\.\d{1,10}$/;

type FieldType = 'uint' | 'int' | 'bool' | 'sock' | 'addr' | 'port' | 'optval' | 'prefixes';

/** The longest list of prefixes a hello carries (NUSE_KERNEL, NUSE_ONLY). */
export const MAX_PREFIXES_TEXT = 1536;

/** The longest option value sent as bytes (TCP_CONGESTION's name is 16). */
export const MAX_OPTVAL_BYTES = 64;

const FIELDS = {
  hello: { v: 'uint', pid: 'uint' },
  connect: { sock: 'sock', addr: 'addr', port: 'port', fill: 'uint', sndbuf: 'uint' },
  bind: { sock: 'sock', addr: 'addr', port: 'port' },
  listen: { sock: 'sock', backlog: 'int' },
  status: { sock: 'sock', clear: 'bool' },
  name: { sock: 'sock', peer: 'bool' },
  // `val` is an int, or the option's bytes (TCP_CONGESTION's name).
  setopt: { sock: 'sock', level: 'int', opt: 'int', val: 'optval' },
  getopt: { sock: 'sock', level: 'int', opt: 'int' },
  closed: { sock: 'sock' },
  // The program calls shutdown(2): `how` is SHUT_RD (0), SHUT_WR (1) or SHUT_RDWR (2); see docs/shim.md.
  shutdown: { sock: 'sock', how: 'int' },
  // close() of a socket with SO_LINGER {1, N > 0}: whether the daemon still drains it.
  linger: { sock: 'sock' },
} as const satisfies Record<string, Record<string, FieldType>>;

/**
 * Fields a request may carry or leave out. hello: the program's policy (docs/shim.md,
 * "Policy"); status: `connect` when the caller is a connect(2) that reports the outcome
 * (Linux then disconnects the socket: a read gives ENOTCONN).
 */
const OPTIONAL = {
  hello: { kernel: 'prefixes', only: 'prefixes', mptcp: 'bool' },
  status: { connect: 'bool' },
} as const satisfies Partial<Record<Op, Record<string, FieldType>>>;

export type Op = keyof typeof FIELDS;
type Optional<K extends Op> = K extends keyof typeof OPTIONAL ? (typeof OPTIONAL)[K] : Record<never, FieldType>;

type FieldValue<T> = T extends 'bool'
  ? boolean
  : T extends 'sock'
    ? string
    : T extends 'addr'
      ? Uint8Array
      : T extends 'optval'
        ? number | Uint8Array
        : T extends 'prefixes'
          ? string
          : number;

export type Request = {
  [K in Op]: { op: K; id: number } & {
    -readonly [F in keyof (typeof FIELDS)[K]]: FieldValue<(typeof FIELDS)[K][F]>;
  } & {
    -readonly [F in keyof Optional<K>]?: FieldValue<Optional<K>[F]>;
  };
}[Op];

export type RequestOf<K extends Op> = Extract<Request, { op: K }>;

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
const packr = new Packr({ useRecords: false, variableMapSize: true });

function checkField(type: FieldType, v: unknown): boolean {
  switch (type) {
    case 'uint':
      return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    case 'int':
      return typeof v === 'number' && Number.isSafeInteger(v) && v >= -(2 ** 31) && v < 2 ** 31;
    case 'port':
      return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535;
    case 'bool':
      return typeof v === 'boolean';
    case 'sock':
      return typeof v === 'string' && SOCK_NAME.test(v);
    case 'addr':
      return v instanceof Uint8Array && (v.length === 4 || v.length === 16);
    case 'optval':
      return v instanceof Uint8Array ? v.length <= MAX_OPTVAL_BYTES : checkField('int', v);
    case 'prefixes':
      if (typeof v !== 'string' || v.length > MAX_PREFIXES_TEXT) return false;
      try {
        parsePrefixList(v);
        return true;
      } catch {
        return false;
      }
  }
}

/** Decodes and validates one frame's body; throws ProtocolError with a reason fit for the log. */
export function decodeRequest(body: Uint8Array): Request {
  let raw: unknown;
  try {
    raw = unpackr.unpack(body);
  } catch (e) {
    throw new ProtocolError(`not msgpack: ${(e as Error).message}`);
  }
  // A plain map only: msgpackr turns extensions into Dates, Sets, its own marker objects...
  if (raw === null || typeof raw !== 'object' || Object.getPrototypeOf(raw) !== Object.prototype) {
    throw new ProtocolError('a request must be a map');
  }
  const obj = raw as Record<string, unknown>;
  const op = obj.op;
  if (typeof op !== 'string' || !Object.hasOwn(FIELDS, op)) {
    throw new ProtocolError(`unknown op ${JSON.stringify(op)?.slice(0, 40)}`);
  }
  const fields = FIELDS[op as Op] as Record<string, FieldType>;
  if (!checkField('uint', obj.id) || (obj.id as number) > 0xffffffff)
    throw new ProtocolError(`${op}: bad or missing "id"`);
  for (const [key, type] of Object.entries(fields)) {
    if (!checkField(type, obj[key])) throw new ProtocolError(`${op}: bad or missing "${key}" (expected ${type})`);
  }
  const optional = (Object.hasOwn(OPTIONAL, op) ? OPTIONAL[op as keyof typeof OPTIONAL] : {}) as Record<
    string,
    FieldType
  >;
  for (const [key, type] of Object.entries(optional)) {
    if (obj[key] !== undefined && !checkField(type, obj[key]))
      throw new ProtocolError(`${op}: bad "${key}" (expected ${type})`);
  }
  for (const key of Object.keys(obj)) {
    if (key !== 'op' && key !== 'id' && !Object.hasOwn(fields, key) && !Object.hasOwn(optional, key)) {
      throw new ProtocolError(`${op}: unknown field ${JSON.stringify(key).slice(0, 40)}`);
    }
  }
  return obj as Request;
}

export type Reply = { id: number; err: number } & Record<string, number | boolean | string | Uint8Array>;

/** A reply's body as an object (for clients written in TypeScript: `nuse run`, tests). */
export function decodeReply(body: Uint8Array): Record<string, unknown> {
  const v = unpackr.unpack(body) as unknown;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ProtocolError('a reply must be a map');
  return v as Record<string, unknown>;
}

/** One frame: the length prefix and the msgpack body. */
export function encodeFrame(message: object): Buffer {
  const body = packr.pack(message);
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

/** Splits a byte stream into frame bodies; throws ProtocolError for a frame over MAX_FRAME. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const frames: Buffer[] = [];
    for (;;) {
      if (this.buf.length < 4) break;
      const n = this.buf.readUInt32BE(0);
      if (n > MAX_FRAME) throw new ProtocolError(`frame of ${n} bytes (the limit is ${MAX_FRAME})`);
      if (n === 0) throw new ProtocolError('empty frame');
      if (this.buf.length < 4 + n) break;
      frames.push(this.buf.subarray(4, 4 + n));
      this.buf = this.buf.subarray(4 + n);
    }
    if (this.buf.length > 4 + MAX_FRAME) throw new ProtocolError('frame overflow');
    return frames;
  }
}
