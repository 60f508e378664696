/**
 * `nuse router`'s flags, checked and turned into a configuration. Every mistake is a
 * UsageError naming the flag (the CLI prints it as one line and exits with status 2).
 *
 * A router `--tun` is the daemon's (`parseTunSpec`), read from the kernel's side:
 * ADDR/PREFIX is the address the host behind the tun gets, and destinations in PREFIX
 * leave by that tun. `peer=ADDR` is the router's own address on the link (default: the
 * first other host address of the prefix, see `defaultPeer`). One key is the router's
 * own, taken out before the shared parser sees the text:
 *
 *   addr=ADDR/PREFIX               (repeatable) one more address on the host's side,
 *                                  e.g. the other family's; its prefix is routed to this
 *                                  tun too, and the router takes its first other host
 *   route=PREFIX | route=default   (repeatable) a route in the host's namespace,
 *                                  `ip [-n NS] route add PREFIX dev NAME`, that sends
 *                                  PREFIX through the router; `default` is the default
 *                                  route of every family the tun has an address of
 */

import { defaultPeer, parseRouteSpec, parseTunSpec, type RouteSpec, type TunSpec } from '../cli/link-spec';
import { UsageError } from '../cli/usage-error';
import { checkLogFormat, checkLogLevel, type LogFormat, type LogLevel } from '../daemon/logger';
import { formatIp, Prefix, parseIp } from '../wire/address';
import { ParseError } from '../wire/parse-error';
import { TcpOptionKind } from '../wire/tcp-options';
import type { Direction, StripOptions } from './engine';

/** One router link. */
export interface RouterTunConfig {
  readonly spec: TunSpec;
  /** The router's own address on the link (`peer=`, or the prefix's first other host). */
  readonly routerAddress: string;
  /** More host-side addresses (`addr=`), each with the router's address in its prefix. */
  readonly extraAddresses: { address: string; prefixLength: number; routerAddress: string }[];
  /** Routes to add in the host's namespace through this tun ("10.2.0.0/24", "default" as "0.0.0.0/0" and/or "::/0"). */
  readonly hostRoutes: string[];
}

export interface RouterConfig {
  tuns: RouterTunConfig[];
  routes: RouteSpec[];
  strip?: StripOptions;
  /** ICMP errors per second (0: no limit). */
  icmpRate: number;
  pcap?: string;
  /** Seconds between stats lines in the log (0: none). */
  statsInterval: number;
  statsJson: boolean;
  seed?: string;
  logLevel?: LogLevel;
  logFormat?: LogFormat;
}

export interface RouterFlags {
  tun?: string[];
  route?: string[];
  stripOption?: string[];
  stripOptionOn?: string[];
  stripSynOnly?: boolean;
  icmpRate?: string;
  pcap?: string;
  statsInterval?: string;
  statsJson?: boolean;
  seed?: string;
  logLevel?: string;
  logFormat?: string;
}

/** Option names accepted by --strip-option besides numbers (IANA "TCP Option Kind Numbers"). */
export const OPTION_NAMES: Readonly<Record<string, number>> = {
  mss: TcpOptionKind.MSS,
  wscale: TcpOptionKind.WINDOW_SCALE,
  'sack-permitted': TcpOptionKind.SACK_PERMITTED,
  sack: TcpOptionKind.SACK,
  timestamps: TcpOptionKind.TIMESTAMPS,
  ts: TcpOptionKind.TIMESTAMPS,
  md5: TcpOptionKind.MD5_SIGNATURE,
  ao: TcpOptionKind.AUTHENTICATION,
  mptcp: TcpOptionKind.MPTCP,
  tfo: TcpOptionKind.FAST_OPEN,
  'fast-open': TcpOptionKind.FAST_OPEN,
};

const DEFAULT_ICMP_RATE = 1000;

export function resolveRouterConfig(flags: RouterFlags): RouterConfig {
  const tuns = (flags.tun ?? []).map(parseRouterTun);
  if (tuns.length === 0) throw new UsageError('no links: give at least one --tun NAME,ADDR/PREFIX[,netns=NS]');
  const names = new Set<string>();
  const owned = new Map<string, string>();
  for (const t of tuns) {
    const name = t.spec.name;
    if (names.has(name)) throw new UsageError(`--tun ${name} is given twice`);
    names.add(name);
    const all = [t.spec.address, t.routerAddress, ...t.extraAddresses.flatMap((e) => [e.address, e.routerAddress])];
    for (const address of all) {
      const other = owned.get(address);
      if (other !== undefined) throw new UsageError(`address ${address} is used on ${other} and ${name}`);
      owned.set(address, name);
    }
  }
  // Two tuns sharing addresses would leave one host unreachable: the later route wins.
  for (const [i, a] of tuns.entries()) {
    for (const b of tuns.slice(i + 1)) {
      for (const pa of tunPrefixes(a)) {
        for (const pb of tunPrefixes(b)) {
          if (pa.contains(pb.network) || pb.contains(pa.network)) {
            throw new UsageError(`--tun ${a.spec.name} and --tun ${b.spec.name}: prefixes ${pa} and ${pb} overlap`);
          }
        }
      }
    }
  }
  const routes = (flags.route ?? []).map(parseRouteSpec);
  for (const r of routes) checkRoute(r, tuns);

  const config: RouterConfig = {
    tuns,
    routes,
    icmpRate: flags.icmpRate === undefined ? DEFAULT_ICMP_RATE : parseCount(flags.icmpRate, '--icmp-rate'),
    statsInterval: flags.statsInterval === undefined ? 0 : parseSeconds(flags.statsInterval, '--stats-interval'),
    statsJson: flags.statsJson === true,
  };
  const kinds = (flags.stripOption ?? []).flatMap((text) => parseOptionKinds(text));
  if (kinds.length > 0) {
    const on = (flags.stripOptionOn ?? []).map((text) => parseStripPlace(text, names));
    config.strip = { kinds: [...new Set(kinds)], synOnly: flags.stripSynOnly === true, on };
  } else if ((flags.stripOptionOn ?? []).length > 0 || flags.stripSynOnly === true) {
    throw new UsageError('--strip-option-on and --strip-syn-only need --strip-option KIND');
  }
  if (flags.pcap !== undefined) config.pcap = flags.pcap;
  if (flags.seed !== undefined) config.seed = flags.seed;
  if (flags.logLevel !== undefined) config.logLevel = checkLogLevel(flags.logLevel);
  if (flags.logFormat !== undefined) config.logFormat = checkLogFormat(flags.logFormat);
  return config;
}

/** One `--tun`: the shared spec plus the router's own `addr=` and `route=` keys. */
export function parseRouterTun(text: string): RouterTunConfig {
  const what = `--tun "${text}"`;
  const parts = text.split(',').map((p) => p.trim());
  const own = (p: string): boolean => p.startsWith('route=') || p.startsWith('addr=');
  const spec = parseTunSpec(parts.filter((p) => !own(p)).join(','));
  const extraAddresses = parts
    .filter((p) => p.startsWith('addr='))
    .map((p) => {
      const prefix = parsePrefixOrThrow(
        p.slice('addr='.length),
        `${what}: ${p}`,
        'ADDR/PREFIX (e.g. addr=fd00:1::1/64)',
      );
      const address = formatIp(prefix.address);
      const pseudo = { name: spec.name, address, prefixLength: prefix.length };
      return { address, prefixLength: prefix.length, routerAddress: defaultPeer(pseudo) };
    });
  const families = new Set([spec.address, ...extraAddresses.map((e) => e.address)].map(familyOf));
  if (families.has(6) && spec.mtu !== undefined && spec.mtu < 1280) {
    throw new UsageError(`${what}: mtu ${spec.mtu} is below IPv6's minimum of 1280 (RFC 8200 §5)`);
  }
  const hostRoutes = parts
    .filter((p) => p.startsWith('route='))
    .flatMap((p) => {
      const value = p.slice('route='.length);
      if (value === 'default') return [...families].sort().map((f) => (f === 4 ? '0.0.0.0/0' : '::/0'));
      const prefix = parsePrefixOrThrow(value, `${what}: ${p}`, 'PREFIX or default (e.g. route=10.2.0.0/24)');
      return [Prefix.of(prefix.network, prefix.length).toString()];
    });
  return { spec, routerAddress: spec.peer ?? defaultPeer(spec), extraAddresses, hostRoutes };
}

function familyOf(address: string): 4 | 6 {
  return address.includes(':') ? 6 : 4;
}

function parsePrefixOrThrow(text: string, what: string, expected: string): Prefix {
  try {
    return Prefix.parse(text);
  } catch (e) {
    if (e instanceof ParseError) throw new UsageError(`${what} is not ${expected}`);
    throw e;
  }
}

function checkRoute(r: RouteSpec, tuns: RouterTunConfig[]): void {
  const names = tuns.map((t) => t.spec.name);
  if (r.dev !== undefined && !names.includes(r.dev)) {
    throw new UsageError(`--route ${r.prefix}: no link named "${r.dev}" (links: ${names.join(', ')})`);
  }
  if (r.via !== undefined) {
    const via = parseIp(r.via);
    const holder = tuns.find((t) => tunPrefixes(t).some((p) => p.contains(via)));
    if (holder === undefined) throw new UsageError(`--route ${r.prefix},via=${r.via}: ${r.via} is on no link's prefix`);
    if (r.dev !== undefined && holder.spec.name !== r.dev) {
      throw new UsageError(`--route ${r.prefix}: ${r.via} is on ${holder.spec.name}, not on ${r.dev}`);
    }
  }
}

/** Every prefix of a tun's host side: its address's and the `addr=` ones. */
export function tunPrefixes(t: RouterTunConfig): Prefix[] {
  return [
    Prefix.parse(`${t.spec.address}/${t.spec.prefixLength}`),
    ...t.extraAddresses.map((e) => Prefix.parse(`${e.address}/${e.prefixLength}`)),
  ];
}

/** "30", "8,30", "mptcp,ts": kinds 2..255 (EOL and NOP cannot be stripped). */
export function parseOptionKinds(text: string): number[] {
  const what = `--strip-option "${text}"`;
  return text.split(',').map((part) => {
    const name = part.trim().toLowerCase();
    // Own keys only: "constructor" or "__proto__" are not option names.
    const kind = /^\d+$/.test(name) ? Number(name) : Object.hasOwn(OPTION_NAMES, name) ? OPTION_NAMES[name] : undefined;
    if (kind === undefined) {
      throw new UsageError(
        `${what}: "${part}" is not an option kind (a number 2 to 255, or ${Object.keys(OPTION_NAMES).join(', ')})`,
      );
    }
    if (kind < 2 || kind > 255)
      throw new UsageError(`${what}: kind ${kind} is out of range (2 to 255; EOL and NOP cannot be stripped)`);
    return kind;
  });
}

/** "b" (both directions), "b:rx" (segments read from b), "b:tx" (segments written into b). */
function parseStripPlace(text: string, names: Set<string>): { port: string; direction?: Direction } {
  const m = /^([^:]+)(?::(rx|tx))?$/.exec(text.trim());
  if (!m) throw new UsageError(`--strip-option-on "${text}": expected NAME, NAME:rx or NAME:tx`);
  const port = m[1]!;
  if (!names.has(port)) {
    throw new UsageError(`--strip-option-on "${text}": no link named "${port}" (links: ${[...names].join(', ')})`);
  }
  return m[2] === undefined ? { port } : { port, direction: m[2] as Direction };
}

function parseCount(text: string, what: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${what}: "${text}" is not a whole number`);
  return Number(text);
}

function parseSeconds(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)s?$/.exec(text);
  if (!m) throw new UsageError(`${what}: "${text}" is not a number of seconds`);
  const seconds = Number(m[1]);
  if (seconds > 86_400) throw new UsageError(`${what}: ${text} is more than a day`);
  return seconds;
}
