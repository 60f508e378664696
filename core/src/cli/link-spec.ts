/**
 * The command line's link and route specifications, shared by `nuse daemon` and
 * `nuse router`:
 *
 *   --tun NAME,ADDR/PREFIX[,peer=ADDR][,netns=NS][,mtu=N][,delay=20ms][,jitter=2ms]
 *         [,loss=1%][,reorder=5%][,duplicate=0.1%][,corrupt=0.1%][,rate=20mbit]
 *         [,queue=64kb][,limit=100][,tx-KEY=..][,rx-KEY=..]
 *   --route PREFIX,via=ADDR|dev=NAME
 *
 * A shaping key without a direction applies to both; `tx-` keys shape what the owner of
 * the link sends into it, `rx-` keys what it receives from it. Units follow tc(8):
 * rates in bit (kbit, mbit, gbit) or bytes (bps, kbps, mbps, gbps) per second, with
 * k = 1000; times in us, ms (the default unit) or s; sizes in b, kb, mb (k = 1024, as tc).
 */

import type { ShapeConfig, ShaperOptions } from '../link/shaper';
import { checkTunName, TunError } from '../link/tun';
import { formatIp, Prefix, parseIp } from '../wire/address';
import { ParseError } from '../wire/parse-error';
import { UsageError } from './usage-error';

/** A parsed `--tun`. */
export interface TunSpec {
  readonly name: string;
  /** The address the owner of the link holds on it (the stack's for `nuse daemon`). */
  readonly address: string;
  readonly prefixLength: number;
  /** The other side's address (`peer=`), when given. */
  readonly peer?: string;
  readonly netns?: string;
  readonly mtu?: number;
  /** Impairments, when any shaping key was given. */
  readonly shape?: { tx: ShapeConfig; rx: ShapeConfig };
}

/** A parsed `--route`. */
export interface RouteSpec {
  /** The destination prefix, normalised ("0.0.0.0/0", "10.2.0.0/16"); "default" means both families' default. */
  readonly prefix: string;
  readonly via?: string;
  readonly dev?: string;
}

const SHAPE_KEYS = ['delay', 'jitter', 'loss', 'reorder', 'duplicate', 'corrupt', 'rate', 'queue', 'limit'] as const;
type ShapeKey = (typeof SHAPE_KEYS)[number];

const LINK_KEYS = ['peer', 'netns', 'mtu'] as const;

/** Parses one `--tun` value; throws a UsageError naming the bad part. */
export function parseTunSpec(text: string): TunSpec {
  const what = `--tun "${text}"`;
  const parts = text.split(',').map((p) => p.trim());
  const [name, cidr, ...rest] = parts;
  if (!name || !cidr) throw new UsageError(`${what}: expected NAME,ADDR/PREFIX[,key=value...]`);
  try {
    checkTunName(name);
  } catch (e) {
    throw new UsageError(`${what}: ${e instanceof TunError ? e.message : String(e)}`);
  }
  const prefix = parsePrefix(cidr, what);
  const spec: {
    name: string;
    address: string;
    prefixLength: number;
    peer?: string;
    netns?: string;
    mtu?: number;
    shape?: { tx: ShapeConfig; rx: ShapeConfig };
  } = { name, address: formatIp(prefix.address), prefixLength: prefix.length };
  const tx: ShapeConfig = {};
  const rx: ShapeConfig = {};
  let shaped = false;
  const seen = new Set<string>();
  for (const part of rest) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`${what}: "${part}" is not key=value`);
    const key = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (seen.has(key)) throw new UsageError(`${what}: ${key} is given twice`);
    seen.add(key);
    if (key === 'peer') {
      spec.peer = parseAddressOfFamily(value, prefix.family, `${what}: peer`);
      if (spec.peer === spec.address) throw new UsageError(`${what}: peer must differ from the link's own address`);
      // The peer holds the prefix on its side: outside it, the link's own address would not be routed into the link.
      if (!prefix.contains(parseIp(spec.peer))) throw new UsageError(`${what}: peer ${spec.peer} is not in ${cidr}`);
    } else if (key === 'netns') {
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(value) || value === '.' || value === '..') {
        throw new UsageError(`${what}: bad netns name "${value}"`);
      }
      spec.netns = value;
    } else if (key === 'mtu') {
      const min = prefix.family === 4 ? 68 : 1280;
      spec.mtu = parseInteger(value, min, 65535, `${what}: mtu`);
    } else {
      const m = /^(tx-|rx-)?(.+)$/.exec(key)!;
      const direction = m[1];
      const shapeKey = m[2] as ShapeKey;
      if (!(SHAPE_KEYS as readonly string[]).includes(shapeKey)) {
        throw new UsageError(
          `${what}: unknown key "${key}" (known: ${[...LINK_KEYS, ...SHAPE_KEYS].join(', ')}; shaping keys also as tx-KEY / rx-KEY)`,
        );
      }
      if (direction === undefined && (seen.has(`tx-${shapeKey}`) || seen.has(`rx-${shapeKey}`))) {
        throw new UsageError(`${what}: ${shapeKey} is given both with and without a direction`);
      }
      if (direction !== undefined && seen.has(shapeKey)) {
        throw new UsageError(`${what}: ${shapeKey} is given both with and without a direction`);
      }
      const targets = direction === 'tx-' ? [tx] : direction === 'rx-' ? [rx] : [tx, rx];
      for (const t of targets) applyShapeKey(t, shapeKey, value, `${what}: ${key}`);
      shaped = true;
    }
  }
  for (const [dir, cfg] of [
    ['tx', tx],
    ['rx', rx],
  ] as const) {
    if ((cfg.reorder ?? 0) > 0 && !((cfg.delayMs ?? 0) > 0)) {
      // As netem: a reordered packet skips the delay, so without a delay nothing is reordered.
      throw new UsageError(`${what}: ${dir} reorder needs a delay (reordered packets skip the delay)`);
    }
    if (cfg.queueBytes !== undefined && cfg.rateBytesPerSec === undefined) {
      throw new UsageError(`${what}: ${dir} queue needs a rate (the queue sits in front of the bottleneck)`);
    }
  }
  if (shaped) spec.shape = { tx, rx };
  return spec;
}

/** The shaper options of a spec, or undefined when it has no shaping keys. */
export function shaperOptionsOf(
  spec: TunSpec,
  clock: ShaperOptions['clock'],
  seed?: string,
): ShaperOptions | undefined {
  if (spec.shape === undefined) return undefined;
  return { clock, tx: spec.shape.tx, rx: spec.shape.rx, seed: seed ?? spec.name };
}

/** Parses one `--route` value. */
export function parseRouteSpec(text: string): RouteSpec {
  const what = `--route "${text}"`;
  const [first, ...rest] = text.split(',').map((p) => p.trim());
  if (!first) throw new UsageError(`${what}: expected PREFIX,via=ADDR or PREFIX,dev=NAME`);
  let prefix: string;
  let family: 4 | 6 | undefined;
  if (first === 'default') {
    prefix = 'default';
  } else {
    const p = parsePrefix(first, what);
    family = p.family;
    prefix = Prefix.of(p.network, p.length).toString();
  }
  let via: string | undefined;
  let dev: string | undefined;
  for (const part of rest) {
    const eq = part.indexOf('=');
    const key = eq > 0 ? part.slice(0, eq) : part;
    const value = eq > 0 ? part.slice(eq + 1) : '';
    if (key === 'via' && via === undefined) {
      via =
        family === undefined
          ? formatIp(parseAddress(value, `${what}: via`))
          : parseAddressOfFamily(value, family, `${what}: via`);
    } else if (key === 'dev' && dev === undefined) {
      if (!value) throw new UsageError(`${what}: dev needs an interface name`);
      dev = value;
    } else {
      throw new UsageError(`${what}: unexpected "${part}" (expected via=ADDR or dev=NAME, once each)`);
    }
  }
  if (via === undefined && dev === undefined) throw new UsageError(`${what}: give via=ADDR or dev=NAME`);
  return { prefix, via, dev };
}

/** A duration: "20ms", "500us", "1.5s", or a bare number of milliseconds. Returns ms. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(us|ms|s)?$/.exec(text);
  if (!m) throw new UsageError(`${what}: bad duration "${text}" (e.g. 20ms, 500us, 1s)`);
  const n = Number(m[1]);
  const ms = m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
  if (ms > 3_600_000) throw new UsageError(`${what}: ${text} is more than an hour`);
  return ms;
}

/** A probability: "1%", "0.5%", or a fraction "0.01". Returns 0..1. */
export function parseProbability(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(%)?$/.exec(text);
  if (!m) throw new UsageError(`${what}: bad probability "${text}" (e.g. 1% or 0.01)`);
  const p = m[2] ? Number(m[1]) / 100 : Number(m[1]);
  if (p > 1) throw new UsageError(`${what}: ${text} is more than 100%`);
  return p;
}

const RATE_UNITS: Record<string, number> = {
  bit: 1 / 8,
  kbit: 1000 / 8,
  mbit: 1e6 / 8,
  gbit: 1e9 / 8,
  bps: 1,
  kbps: 1000,
  mbps: 1e6,
  gbps: 1e9,
};

/** A rate in tc(8) units ("20mbit" megabits/s, "2mbps" megabytes/s). Returns bytes per second. */
export function parseRate(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)([a-z]+)$/i.exec(text);
  const unit = m?.[2]?.toLowerCase();
  const factor = unit === undefined ? undefined : RATE_UNITS[unit];
  if (!m || factor === undefined) {
    throw new UsageError(`${what}: bad rate "${text}" (e.g. 20mbit, 500kbit, 1gbit, or bytes/s as 2mbps)`);
  }
  const rate = Number(m[1]) * factor;
  if (rate < 1) throw new UsageError(`${what}: rate ${text} is below 1 byte per second`);
  return rate;
}

/** A size in bytes: "64kb", "1mb", "1500b" or a bare number of bytes (k = 1024, as tc). */
export function parseSize(text: string, what: string): number {
  const m = /^(\d+)(b|kb|k|mb|m)?$/i.exec(text);
  if (!m) throw new UsageError(`${what}: bad size "${text}" (e.g. 64kb, 1mb, 1500)`);
  const unit = (m[2] ?? 'b').toLowerCase();
  const factor = unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 * 1024 : 1;
  return Number(m[1]) * factor;
}

function applyShapeKey(cfg: ShapeConfig, key: ShapeKey, value: string, what: string): void {
  switch (key) {
    case 'delay':
      cfg.delayMs = parseDuration(value, what);
      break;
    case 'jitter':
      cfg.jitterMs = parseDuration(value, what);
      break;
    case 'loss':
      cfg.loss = parseProbability(value, what);
      break;
    case 'reorder':
      cfg.reorder = parseProbability(value, what);
      break;
    case 'duplicate':
      cfg.duplicate = parseProbability(value, what);
      break;
    case 'corrupt':
      cfg.corrupt = parseProbability(value, what);
      break;
    case 'rate':
      cfg.rateBytesPerSec = parseRate(value, what);
      break;
    case 'queue':
      cfg.queueBytes = parseSize(value, what);
      break;
    case 'limit':
      cfg.queuePackets = parseInteger(value, 1, 1_000_000, what);
      break;
  }
}

function parseInteger(text: string, min: number, max: number, what: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${what}: "${text}" is not a whole number`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`${what}: ${n} is out of range (${min} to ${max})`);
  return n;
}

function parsePrefix(text: string, what: string): Prefix {
  try {
    return Prefix.parse(text);
  } catch (e) {
    if (e instanceof ParseError) throw new UsageError(`${what}: "${text}" is not ADDR/PREFIX (e.g. 10.0.0.2/24)`);
    throw e;
  }
}

function parseAddress(text: string, what: string): Uint8Array {
  try {
    return parseIp(text);
  } catch (e) {
    if (e instanceof ParseError) throw new UsageError(`${what}: "${text}" is not an IP address`);
    throw e;
  }
}

function parseAddressOfFamily(text: string, family: 4 | 6, what: string): string {
  const address = parseAddress(text, what);
  if ((address.length === 4 ? 4 : 6) !== family) {
    throw new UsageError(`${what}: ${text} is not an IPv${family} address`);
  }
  return formatIp(address);
}

/**
 * The address the kernel side of a tun gets when `peer=` is not given: the first host
 * address of the prefix that is not the link's own (10.0.0.2/24 → 10.0.0.1;
 * 10.0.0.1/24 → 10.0.0.2). Throws when the prefix has no room for a second host.
 */
export function defaultPeer(spec: TunSpec): string {
  const prefix = Prefix.parse(`${spec.address}/${spec.prefixLength}`);
  const bits = prefix.address.length * 8;
  if (prefix.length >= bits) {
    throw new UsageError(`--tun ${spec.name}: a /${prefix.length} has no room for a peer address; give peer=ADDR`);
  }
  // /31 (RFC 3021) and /127 (RFC 6164) have two usable addresses, the network one included.
  const firstHost = prefix.length >= bits - 1 ? 0 : 1;
  for (const offset of [firstHost, firstHost + 1]) {
    const candidate = addOffset(prefix.network, offset);
    if (formatIp(candidate) !== spec.address) return formatIp(candidate);
  }
  throw new UsageError(`--tun ${spec.name}: no peer address found in the prefix; give peer=ADDR`);
}

function addOffset(network: Uint8Array, offset: number): Uint8Array {
  const out = network.slice();
  let carry = offset;
  for (let i = out.length - 1; i >= 0 && carry > 0; i--) {
    const v = out[i]! + carry;
    out[i] = v & 0xff;
    carry = v >> 8;
  }
  return out;
}
