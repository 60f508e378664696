/**
 * The daemon's configuration: from flags, from a JSON file (`--config FILE`), or both.
 *
 * ```json
 * {
 *   "tun": ["wifi,10.1.0.2/24,delay=10ms", { "name": "lte", "address": "10.2.0.2/24", "delay": "40ms", "loss": "1%" }],
 *   "route": ["default,via=10.1.0.1"],
 *   "log": { "level": "info", "format": "text" },
 *   "tcp": { "congestionControl": "newreno", "minRtoMs": 200 },
 *   "policy": { "kernel": ["10.0.0.0/8"], "only": ["192.0.2.0/24"], "mptcp": false }
 * }
 * ```
 *
 * A `tun` entry is either the `--tun` text or an object whose keys are the same as the
 * text's (`name`, `address` as ADDR/PREFIX, then `peer`, `netns`, `mtu`, shaping keys).
 * Flags add their links and routes after the file's; a flag's log setting wins. `policy`
 * (and the flags --kernel, --only, --mptcp, which add to it) is the system-wide policy of
 * the programs run through the shim (core/src/ipc/policy.ts).
 */

import * as fs from 'node:fs';
import { parseRouteSpec, parseTunSpec, type RouteSpec, type TunSpec } from '../cli/link-spec';
import { UsageError } from '../cli/usage-error';
import { type Policy, parsePrefix } from '../ipc/policy';
import { DEFAULT_TCP_CONFIG, resolveTcpConfig, type TcpConfig } from '../tcp/config';
import { defaultCongestionControls } from '../tcp/congestion';
import { Prefix, parseIp } from '../wire/address';
import { checkLogFormat, checkLogLevel, type LogFormat, type LogLevel } from './logger';

export interface DaemonConfig {
  tuns: TunSpec[];
  routes: RouteSpec[];
  logLevel?: LogLevel;
  logFormat?: LogFormat;
  /** Write a pcapng capture of every link to this file. */
  pcap?: string;
  tcp: Partial<TcpConfig>;
  /** The system-wide policy for programs run through the shim. */
  policy: Policy;
}

export interface DaemonFlags {
  tun?: string[];
  route?: string[];
  config?: string;
  logLevel?: string;
  logFormat?: string;
  pcap?: string;
  kernel?: string[];
  only?: string[];
  mptcp?: boolean;
}

const MAX_TIMER_MS = 2_000_000_000;
const TOP_KEYS = ['tun', 'route', 'log', 'tcp', 'pcap', 'policy'];
const POLICY_KEYS = ['kernel', 'only', 'mptcp'];
const LOG_KEYS = ['level', 'format'];

/** Builds the configuration from the flags (reading `--config` if given) and checks it. */
export function resolveDaemonConfig(flags: DaemonFlags): DaemonConfig {
  const config: DaemonConfig =
    flags.config !== undefined
      ? readConfigFile(flags.config)
      : { tuns: [], routes: [], tcp: {}, policy: emptyPolicy() };
  for (const k of flags.kernel ?? []) config.policy.kernel.push(prefixArg(k, '--kernel'));
  for (const k of flags.only ?? []) (config.policy.only ??= []).push(prefixArg(k, '--only'));
  if (flags.mptcp === true) config.policy.mptcp = true;
  for (const t of flags.tun ?? []) config.tuns.push(parseTunSpec(t));
  for (const r of flags.route ?? []) config.routes.push(parseRouteSpec(r));
  if (flags.logLevel !== undefined) config.logLevel = checkLogLevel(flags.logLevel);
  if (flags.logFormat !== undefined) config.logFormat = checkLogFormat(flags.logFormat);
  if (flags.pcap !== undefined) config.pcap = flags.pcap;
  checkConfig(config);
  return config;
}

function emptyPolicy(): Policy {
  return { kernel: [], only: undefined, mptcp: false };
}

function prefixArg(text: string, what: string): ReturnType<typeof parsePrefix> {
  try {
    return parsePrefix(text);
  } catch (e) {
    throw new UsageError(`${what}: ${(e as Error).message}`);
  }
}

function policyEntry(raw: unknown): Policy {
  if (!isPlainObject(raw)) throw new UsageError('"policy" must be an object');
  checkKeys(raw, POLICY_KEYS, '"policy"');
  const policy = emptyPolicy();
  const list = (key: 'kernel' | 'only') => {
    const v = raw[key];
    if (!Array.isArray(v) || v.some((p) => typeof p !== 'string')) {
      throw new UsageError(`"policy.${key}" must be an array of prefixes like "10.0.0.0/8"`);
    }
    return (v as string[]).map((p, i) => prefixArg(p, `policy.${key}[${i}]`));
  };
  if (raw.kernel !== undefined) policy.kernel = list('kernel');
  if (raw.only !== undefined) policy.only = list('only');
  if (raw.mptcp !== undefined) {
    if (typeof raw.mptcp !== 'boolean') throw new UsageError('"policy.mptcp" must be true or false');
    policy.mptcp = raw.mptcp;
  }
  return policy;
}

function checkConfig(config: DaemonConfig): void {
  if (config.tuns.length === 0) {
    throw new UsageError('no links: give at least one --tun NAME,ADDR/PREFIX (or "tun" in the config file)');
  }
  const names = new Set<string>();
  const addresses = new Set<string>();
  for (const t of config.tuns) {
    if (names.has(t.name)) throw new UsageError(`--tun ${t.name} is given twice`);
    if (addresses.has(t.address)) throw new UsageError(`address ${t.address} is on two links`);
    names.add(t.name);
    addresses.add(t.address);
  }
  for (const r of config.routes) {
    if (r.dev !== undefined && !names.has(r.dev)) {
      throw new UsageError(`--route ${r.prefix}: no link named "${r.dev}" (links: ${[...names].join(', ')})`);
    }
    if (r.via !== undefined) {
      const via = parseIp(r.via);
      const onLink = config.tuns.some(
        (t) =>
          (r.dev === undefined || t.name === r.dev) && Prefix.parse(`${t.address}/${t.prefixLength}`).contains(via),
      );
      if (!onLink) throw new UsageError(`--route ${r.prefix},via=${r.via}: ${r.via} is not on any link's prefix`);
    }
  }
}

/** Reads and checks a JSON config file; every problem is a UsageError naming the file. */
export function readConfigFile(file: string): DaemonConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UsageError(`cannot read config ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`config ${file} is not valid JSON: ${(e as Error).message}`);
  }
  try {
    return parseConfigObject(raw);
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`config ${file}: ${e.message}`);
    throw e;
  }
}

export function parseConfigObject(raw: unknown): DaemonConfig {
  if (!isPlainObject(raw)) throw new UsageError('the top level must be an object');
  checkKeys(raw, TOP_KEYS, 'the top level');
  const config: DaemonConfig = { tuns: [], routes: [], tcp: {}, policy: emptyPolicy() };
  if (raw.policy !== undefined) config.policy = policyEntry(raw.policy);
  for (const [i, t] of arrayOf(raw.tun, 'tun').entries()) config.tuns.push(tunEntry(t, `tun[${i}]`));
  for (const [i, r] of arrayOf(raw.route, 'route').entries()) {
    if (typeof r !== 'string') throw new UsageError(`route[${i}] must be a string like "default,via=10.0.0.1"`);
    config.routes.push(parseRouteSpec(r));
  }
  if (raw.log !== undefined) {
    if (!isPlainObject(raw.log)) throw new UsageError('"log" must be an object');
    checkKeys(raw.log, LOG_KEYS, '"log"');
    const { level, format } = raw.log;
    if (level !== undefined) {
      if (typeof level !== 'string') throw new UsageError('"log.level" must be a string');
      config.logLevel = checkLogLevel(level);
    }
    if (format !== undefined) {
      if (typeof format !== 'string') throw new UsageError('"log.format" must be a string');
      config.logFormat = checkLogFormat(format);
    }
  }
  if (raw.pcap !== undefined) {
    if (typeof raw.pcap !== 'string' || raw.pcap === '') throw new UsageError('"pcap" must be a file name');
    config.pcap = raw.pcap;
  }
  if (raw.tcp !== undefined) {
    if (!isPlainObject(raw.tcp)) throw new UsageError('"tcp" must be an object');
    try {
      resolveTcpConfig(DEFAULT_TCP_CONFIG, raw.tcp as Partial<TcpConfig>);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const cc = raw.tcp.congestionControl;
    if (typeof cc === 'string' && !defaultCongestionControls.has(cc)) {
      throw new UsageError(
        `TCP config: no congestion control named "${cc}" (known: ${defaultCongestionControls.names().join(', ')})`,
      );
    }
    for (const [key, value] of Object.entries(raw.tcp)) {
      // Timers past Node's limit (2^31-1 ms, about 24.8 days) and longer are no setting anyone means.
      if (key.endsWith('Ms') && typeof value === 'number' && value > MAX_TIMER_MS) {
        throw new UsageError(`TCP config: ${key} ${value} is more than ${MAX_TIMER_MS} ms (24 days)`);
      }
    }
    config.tcp = raw.tcp as Partial<TcpConfig>;
  }
  return config;
}

function tunEntry(entry: unknown, what: string): TunSpec {
  if (typeof entry === 'string') return parseTunSpec(entry);
  if (!isPlainObject(entry)) throw new UsageError(`${what} must be a string or an object`);
  const { name, address, ...rest } = entry;
  if (typeof name !== 'string' || typeof address !== 'string') {
    throw new UsageError(`${what} needs "name" and "address" (ADDR/PREFIX) strings`);
  }
  const parts = [name, address];
  for (const [k, v] of Object.entries(rest)) {
    if (typeof v !== 'string' && typeof v !== 'number') throw new UsageError(`${what}.${k} must be a string or number`);
    if (String(v).includes(',')) throw new UsageError(`${what}.${k} must not contain a comma`);
    parts.push(`${k}=${v}`);
  }
  if ([name, address].some((s) => s.includes(',')))
    throw new UsageError(`${what}: name and address must not contain a comma`);
  return parseTunSpec(parts.join(','));
}

function arrayOf(v: unknown, what: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new UsageError(`"${what}" must be an array`);
  return v;
}

function checkKeys(obj: Record<string, unknown>, known: string[], what: string): void {
  for (const k of Object.keys(obj)) {
    if (!known.includes(k)) throw new UsageError(`unknown key "${k}" in ${what} (known: ${known.join(', ')})`);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
