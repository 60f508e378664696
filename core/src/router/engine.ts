/**
 * The forwarding engine of `nuse router`: IPv4 and IPv6 packets read from one link are
 * checked, looked up in a longest-prefix-match table and written to another, as RFC 1812
 * ("Requirements for IP Version 4 Routers") and RFC 8200 §3 describe:
 *
 * 1. header validation (RFC 1812 §5.2.2: version, lengths, IPv4 header checksum); a
 *    packet that fails is dropped and counted by cause, never answered;
 * 2. martian filtering (RFC 1812 §5.3.7, RFC 4291 §2.5): bad sources and destinations,
 *    multicast and broadcast (no multicast routing), IPv6 link-local scope;
 * 3. packets to the router's own addresses: echo requests are answered (RFC 1812
 *    §4.3.3.6), UDP gets port unreachable, anything else is dropped;
 * 4. TTL / hop limit: a packet that would leave with 0 is dropped with ICMP time
 *    exceeded (RFC 1812 §5.3.1, RFC 4443 §3.3);
 * 5. route lookup: no route means ICMP destination unreachable, net unreachable /
 *    no route (RFC 1812 §5.2.7.1, RFC 4443 §3.1);
 * 6. MTU: a packet larger than the outgoing link's MTU is fragmented (IPv4 without DF)
 *    or dropped with ICMP fragmentation needed (IPv4 with DF, RFC 1191 §4) or packet
 *    too big (IPv6, RFC 4443 §3.2; RFC 8200 §5: routers never fragment);
 * 7. the TTL / hop limit is decremented in place (RFC 1624 for the IPv4 checksum), the
 *    TCP option stripper runs if configured, and the packet is written out.
 *
 * Every drop is counted on the port the packet came in by (`counters.drops`); what the
 * router did besides forwarding (ICMP sent, options stripped, fragments made) is
 * counted in `counters.events`. Nothing a packet contains can make the engine throw.
 * Packets are modified in place: the Link contract hands a received packet to its
 * handler, and `send` takes it.
 */

import { fragmentIpv4 } from '../ip/ipv4-fragments';
import { countDrop, type Link } from '../link/link';
import type { Clock } from '../time/clock';
import { formatIp, Prefix, parseIp } from '../wire/address';
import { Icmpv4Repr, Icmpv4View } from '../wire/icmpv4';
import { Icmpv6Repr, Icmpv6View } from '../wire/icmpv6';
import { IpProtocol } from '../wire/ip-protocol';
import { Ipv4View } from '../wire/ipv4';
import { Ipv6View } from '../wire/ipv6';
import { buildPacket } from '../wire/packet';
import { ParseError } from '../wire/parse-error';
import { isLinkLocalV6, unforwardableV4, unforwardableV6 } from './address-class';
import { isSyn, optionKindSet, STRIP_MALFORMED, stripTcpOptions } from './option-stripper';
import { ForwardingTable, ipv4ToInt } from './route-table';
import {
  buildIcmpv4Error,
  buildIcmpv6Error,
  decrementHopLimitV6,
  decrementTtlV4,
  IcmpRateLimiter,
  type Icmpv4ErrorKind,
  type Icmpv6ErrorKind,
  mayAnswerWithIcmpV4,
  mayAnswerWithIcmpV6,
  ROUTER_TTL,
} from './ttl-icmp';

/** A direction seen from the router: `rx` = read from a port's link, `tx` = written into it. */
export type Direction = 'rx' | 'tx';

export interface StripOptions {
  /** TCP option kinds to overwrite with NOPs (e.g. 30 for MPTCP, 8 for timestamps). */
  kinds: readonly number[];
  /** Only strip from segments with SYN set (SYN and SYN-ACK), as a box that filters handshakes. */
  synOnly?: boolean;
  /**
   * Only strip segments received from (`rx`) or forwarded into (`tx`) these ports; no
   * direction means both. Default: every forwarded TCP segment.
   */
  on?: readonly { port: string; direction?: Direction }[];
}

export interface RouterOptions {
  clock: Clock;
  strip?: StripOptions;
  /**
   * The ICMP error budget (RFC 1812 §4.3.2.8, RFC 4443 §2.4 (f)): a token bucket of
   * `burst` messages refilled at `perSecond`. Default 1000 per second, burst 100;
   * `false` sends every error.
   */
  icmpRateLimit?: { perSecond: number; burst: number } | false;
}

export interface PortOptions {
  /** The link: packets read from it are routed; packets routed to this port are written to it. */
  link: Link;
  /** Default: the link's name. Must be unique in the router. */
  name?: string;
  /** On-link prefixes ("10.1.0.1/24": host bits are ignored); destinations inside leave by this port. */
  prefixes?: readonly (string | Prefix)[];
  /** The router's own addresses on this link: echo replies come from them, ICMP errors leaving here too. */
  addresses?: readonly (string | Uint8Array)[];
}

/** What happened at one port. */
export interface RouterPortCounters {
  /** Packets and bytes read from the link. */
  rxPackets: number;
  rxBytes: number;
  /** Packets and bytes the link accepted from the router (forwarded or originated here). */
  txPackets: number;
  txBytes: number;
  /** Packets read here and sent on (fragmented ones count once). */
  forwarded: number;
  /** Packets read here and dropped, by cause; "tx-refused": the link refused a packet routed to it. */
  drops: Record<string, number>;
  /** Other things done, by name: "icmp-time-exceeded", "tcp-options-stripped", "fragments", ... */
  events: Record<string, number>;
}

function newPortCounters(): RouterPortCounters {
  return { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, forwarded: 0, drops: {}, events: {} };
}

function countEvent(c: RouterPortCounters, event: string, n = 1): void {
  c.events[event] = (c.events[event] ?? 0) + n;
}

export class RouterPort {
  readonly counters: RouterPortCounters = newPortCounters();
  /** Strip options from segments read here / written here. */
  stripRx = false;
  stripTx = false;
  readonly prefixes: Prefix[];
  readonly addresses: Uint8Array[];
  /** @internal */
  unsubscribe: () => void = () => undefined;

  constructor(
    readonly name: string,
    readonly link: Link,
    prefixes: Prefix[],
    addresses: Uint8Array[],
  ) {
    this.prefixes = prefixes;
    this.addresses = addresses;
  }

  /** The router's first address of a family on this port. */
  address(family: 4 | 6): Uint8Array | undefined {
    const len = family === 4 ? 4 : 16;
    return this.addresses.find((a) => a.length === len);
  }
}

/** A snapshot of a port's counters and of its link's own (shaper or device drops). */
export interface RouterPortStats {
  readonly name: string;
  readonly counters: RouterPortCounters;
  readonly link: {
    txPackets: number;
    txBytes: number;
    rxPackets: number;
    rxBytes: number;
    drops: Record<string, number>;
  };
}

export interface RouterStats {
  readonly ports: RouterPortStats[];
  /** Sums over the ports. */
  readonly totals: { forwarded: number; drops: Record<string, number>; events: Record<string, number> };
  /** The routes, most specific first: "10.1.0.0/24 dev a". */
  readonly routes: string[];
}

const DEFAULT_ICMP_RATE = { perSecond: 1000, burst: 100 };

export class Router {
  private readonly ports: RouterPort[] = [];
  private readonly table = new ForwardingTable<RouterPort>();
  private readonly local4 = new Map<number, RouterPort>();
  /** Directed-broadcast addresses of the ports' IPv4 prefixes (RFC 1812 §5.3.7, RFC 2644). */
  private readonly directedBroadcasts = new Set<number>();
  private readonly local6: { address: Uint8Array; port: RouterPort }[] = [];
  private readonly limiter: IcmpRateLimiter | undefined;
  private readonly stripKinds: Uint8Array | undefined;
  private readonly stripSynOnly: boolean;
  private readonly stripOn: StripOptions['on'];
  private identification = 0;
  /** The first unexpected error (a bug, not a bad packet), kept for diagnosis; counted as "internal-error". */
  lastError: unknown;

  constructor(private readonly options: RouterOptions) {
    const rate = options.icmpRateLimit ?? DEFAULT_ICMP_RATE;
    this.limiter = rate === false ? undefined : new IcmpRateLimiter(options.clock, rate.perSecond, rate.burst);
    const strip = options.strip;
    this.stripKinds = strip !== undefined && strip.kinds.length > 0 ? optionKindSet(strip.kinds) : undefined;
    this.stripSynOnly = strip?.synOnly ?? false;
    this.stripOn = strip?.on;
  }

  /** Adds a port: its prefixes become routes, its addresses the router's own. Throws on a duplicate name. */
  addPort(opts: PortOptions): RouterPort {
    const name = opts.name ?? opts.link.name;
    if (this.ports.some((p) => p.name === name)) throw new Error(`router: a port named "${name}" exists already`);
    const prefixes = (opts.prefixes ?? []).map((p) => (typeof p === 'string' ? Prefix.parse(p) : p));
    const addresses = (opts.addresses ?? []).map((a) => (typeof a === 'string' ? parseIp(a) : a.slice()));
    const port = new RouterPort(name, opts.link, prefixes, addresses);
    for (const prefix of prefixes) {
      this.table.add(prefix, port);
      // The all-ones host of an IPv4 prefix of /30 or shorter (a /31 has none, RFC 3021).
      if (prefix.family === 4 && prefix.length <= 30) {
        const hostMask = 2 ** (32 - prefix.length) - 1;
        this.directedBroadcasts.add((ipv4ToInt(prefix.address, 0) | hostMask) >>> 0);
      }
    }
    for (const address of addresses) {
      if (address.length === 4) this.local4.set(ipv4ToInt(address), port);
      else this.local6.push({ address, port });
    }
    if (this.stripKinds !== undefined) {
      const rules = this.stripOn;
      if (rules === undefined || rules.length === 0) {
        port.stripRx = true;
        port.stripTx = true;
      } else {
        for (const rule of rules) {
          if (rule.port !== name) continue;
          if (rule.direction !== 'tx') port.stripRx = true;
          if (rule.direction !== 'rx') port.stripTx = true;
        }
      }
    }
    port.unsubscribe = opts.link.onReceive((packet) => this.receive(port, packet));
    this.ports.push(port);
    return port;
  }

  /** The port named `name`, if any. */
  port(name: string): RouterPort | undefined {
    return this.ports.find((p) => p.name === name);
  }

  /**
   * Adds a route: `prefix` ("10.9.0.0/16", "::/0") leaves by port `dev`, or by the port
   * whose on-link prefix holds `via` (as the kernel resolves a gateway). Throws when
   * neither names a port.
   */
  addRoute(prefix: string | Prefix, target: { dev?: string; via?: string }): RouterPort {
    const p = typeof prefix === 'string' ? Prefix.parse(prefix) : prefix;
    let port: RouterPort | undefined;
    if (target.dev !== undefined) {
      port = this.port(target.dev);
      if (port === undefined) throw new Error(`router: route ${p}: no port named "${target.dev}"`);
    } else if (target.via !== undefined) {
      const via = parseIp(target.via);
      port = this.ports.find((q) => q.prefixes.some((onLink) => onLink.contains(via)));
      if (port === undefined) throw new Error(`router: route ${p}: gateway ${target.via} is on no port's prefix`);
    } else {
      throw new Error(`router: route ${p}: give dev or via`);
    }
    this.table.add(p, port);
    return port;
  }

  /** Counters of every port, and totals. */
  stats(): RouterStats {
    const totals = { forwarded: 0, drops: {} as Record<string, number>, events: {} as Record<string, number> };
    const ports = this.ports.map((port) => {
      const c = port.counters;
      totals.forwarded += c.forwarded;
      for (const [k, v] of Object.entries(c.drops)) totals.drops[k] = (totals.drops[k] ?? 0) + v;
      for (const [k, v] of Object.entries(c.events)) totals.events[k] = (totals.events[k] ?? 0) + v;
      const l = port.link.counters;
      return {
        name: port.name,
        counters: { ...c, drops: { ...c.drops }, events: { ...c.events } },
        link: {
          txPackets: l.txPackets,
          txBytes: l.txBytes,
          rxPackets: l.rxPackets,
          rxBytes: l.rxBytes,
          drops: { ...l.drops },
        },
      };
    });
    const routes = this.table.entries().map((e) => `${e.prefix} dev ${e.target.name}`);
    return { ports, totals, routes };
  }

  /** Stops listening to the ports' links. The links stay open: closing them is the owner's job. */
  close(): void {
    for (const port of this.ports) port.unsubscribe();
  }

  /**
   * Routes one packet as if read from `port`'s link (the links' receive handlers call
   * this; tests may too). Never throws.
   */
  receive(port: RouterPort, packet: Uint8Array): void {
    const c = port.counters;
    c.rxPackets++;
    c.rxBytes += packet.length;
    try {
      const version = packet.length > 0 ? packet[0]! >> 4 : 0;
      if (version === 4) this.forwardV4(port, packet);
      else if (version === 6) this.forwardV6(port, packet);
      else countDrop(c, 'not-ip');
    } catch (err) {
      if (err instanceof ParseError) {
        countDrop(c, `${err.layer}-${err.reason}`);
        return;
      }
      // A bug, not a bad packet: keep routing, but make it visible.
      countDrop(c, 'internal-error');
      this.lastError ??= err;
    }
  }

  // --- IPv4 ---------------------------------------------------------------

  private forwardV4(inPort: RouterPort, packet: Uint8Array): void {
    const c = inPort.counters;
    // RFC 1812 §5.2.2: version, header length, total length and header checksum; a
    // failure throws ParseError, counted as "ipv4-<reason>" by receive().
    const ip = Ipv4View.parse(packet);
    const b = ip.bytes;
    const src = ipv4ToInt(b, 12);
    const dst = ipv4ToInt(b, 16);
    // RFC 1812 §5.3.7 (martians), §5.3.5 (broadcast), no multicast routing.
    const unforwardable = unforwardableV4(src, dst);
    if (unforwardable !== undefined) {
      countDrop(c, unforwardable);
      return;
    }
    // RFC 1812 §5.3.7: a directed broadcast is no valid source; RFC 2644: routers do not
    // forward directed broadcasts by default. Neither is answered with ICMP (§4.3.2.7).
    if (this.directedBroadcasts.has(src)) {
      countDrop(c, 'martian-source');
      return;
    }
    if (this.directedBroadcasts.has(dst)) {
      countDrop(c, 'directed-broadcast');
      return;
    }
    // RFC 1812 §5.3.1: a packet for the router itself is processed whatever its TTL.
    if (this.local4.has(dst)) {
      this.localV4(inPort, ip);
      return;
    }
    if (ip.ttl <= 1) {
      countDrop(c, 'ttl-exceeded');
      this.icmpV4(inPort, ip, { kind: 'timeExceeded' }, 'icmp-time-exceeded');
      return;
    }
    const out = this.table.lookupV4(dst);
    if (out === undefined) {
      countDrop(c, 'no-route');
      this.icmpV4(inPort, ip, { kind: 'netUnreachable' }, 'icmp-net-unreachable');
      return;
    }
    const mtu = out.link.mtu;
    const tooBig = b.length > mtu;
    if (tooBig && ip.dontFragment) {
      countDrop(c, 'too-big');
      this.icmpV4(inPort, ip, { kind: 'fragmentationNeeded', nextHopMtu: mtu }, 'icmp-frag-needed');
      return;
    }
    decrementTtlV4(b);
    if (ip.protocol === IpProtocol.TCP && (inPort.stripRx || out.stripTx)) {
      if (ip.isFragment) countEvent(c, 'strip-skipped-fragment');
      else this.strip(c, ip.payload);
    }
    if (tooBig) {
      // RFC 791 §3.2 / RFC 1812 §5.2.6: the same cutting as the host's own (options copied, offsets added).
      const fragments = fragmentIpv4(ip, mtu) ?? [];
      if (fragments.length === 0) {
        countDrop(c, 'bad-fragment');
        return;
      }
      countEvent(c, 'fragmented');
      countEvent(c, 'fragments', fragments.length);
      c.forwarded++;
      for (const f of fragments) this.transmit(out, f);
      return;
    }
    c.forwarded++;
    this.transmit(out, b);
  }

  private localV4(inPort: RouterPort, ip: Ipv4View): void {
    const c = inPort.counters;
    // The router reassembles nothing: a fragment for it is dropped.
    if (ip.isFragment) {
      countDrop(c, 'local-fragment');
      return;
    }
    if (ip.protocol === IpProtocol.ICMP) {
      const icmp = Icmpv4Repr.parse(Icmpv4View.parse(ip.payload));
      if (icmp.kind !== 'echoRequest') {
        countDrop(c, 'local');
        return;
      }
      // RFC 1812 §4.3.3.6: a router MUST implement an ICMP echo server; RFC 792: the
      // reply swaps the addresses and returns identifier, sequence and data.
      const reply = buildPacket(
        { src: ip.dst, dst: ip.src, ttl: ROUTER_TTL, identification: this.nextIdentification() },
        {
          protocol: 'icmpv4',
          repr: { kind: 'echoReply', identifier: icmp.identifier, sequence: icmp.sequence, data: icmp.data },
        },
      );
      const back = this.table.lookupV4(ipv4ToInt(ip.bytes, 12));
      if (back === undefined) {
        countDrop(c, 'local-no-route');
        return;
      }
      countEvent(c, 'echo-replies');
      this.transmit(back, reply);
      return;
    }
    countDrop(c, 'local');
    // Traceroute's UDP probes end here: RFC 1812 §4.3.2.1 allows port unreachable.
    if (ip.protocol === IpProtocol.UDP) this.icmpV4(inPort, ip, { kind: 'portUnreachable' }, 'icmp-port-unreachable');
  }

  private icmpV4(inPort: RouterPort, ip: Ipv4View, error: Icmpv4ErrorKind, event: string): void {
    const c = inPort.counters;
    if (!mayAnswerWithIcmpV4(ip)) {
      countEvent(c, 'icmp-suppressed');
      return;
    }
    const back = this.table.lookupV4(ipv4ToInt(ip.bytes, 12));
    if (back === undefined) {
      countEvent(c, 'icmp-no-route');
      return;
    }
    // RFC 1812 §4.3.2.4: the source is an address of the interface the error leaves by.
    const from = back.address(4) ?? inPort.address(4) ?? this.anyAddress(4);
    if (from === undefined) {
      countEvent(c, 'icmp-no-source');
      return;
    }
    if (this.limiter !== undefined && !this.limiter.take()) {
      countEvent(c, 'icmp-rate-limited');
      return;
    }
    countEvent(c, event);
    this.transmit(back, buildIcmpv4Error(error, ip, from, this.nextIdentification()));
  }

  // --- IPv6 ---------------------------------------------------------------

  private forwardV6(inPort: RouterPort, packet: Uint8Array): void {
    const c = inPort.counters;
    // RFC 8200 §3: version and payload length; the extension header chain must be
    // well formed for the router to find TCP behind it.
    const ip = Ipv6View.parse(packet);
    const b = ip.bytes;
    const unforwardable = unforwardableV6(b);
    if (unforwardable !== undefined) {
      countDrop(c, unforwardable);
      return;
    }
    if (this.isLocalV6(b)) {
      this.localV6(inPort, ip);
      return;
    }
    // RFC 4291 §2.5.6: "Routers must not forward any packets with Link-Local source or
    // destination addresses to other links."
    if (isLinkLocalV6(b, 8) || isLinkLocalV6(b, 24)) {
      countDrop(c, 'link-local');
      return;
    }
    if (ip.hopLimit <= 1) {
      countDrop(c, 'ttl-exceeded');
      this.icmpV6(inPort, ip, { kind: 'timeExceeded' }, 'icmp-time-exceeded');
      return;
    }
    const out = this.table.lookupV6(b, 24);
    if (out === undefined) {
      countDrop(c, 'no-route');
      this.icmpV6(inPort, ip, { kind: 'noRoute' }, 'icmp-no-route-to-destination');
      return;
    }
    const mtu = out.link.mtu;
    if (b.length > mtu) {
      countDrop(c, 'too-big');
      this.icmpV6(inPort, ip, { kind: 'packetTooBig', mtu }, 'icmp-packet-too-big');
      return;
    }
    decrementHopLimitV6(b);
    if (ip.upperProtocol === IpProtocol.TCP && (inPort.stripRx || out.stripTx)) {
      if (ip.isFragment) countEvent(c, 'strip-skipped-fragment');
      else this.strip(c, ip.upperPayload);
    }
    c.forwarded++;
    this.transmit(out, b);
  }

  private isLocalV6(b: Uint8Array): boolean {
    const locals = this.local6;
    outer: for (let i = 0; i < locals.length; i++) {
      const a = locals[i]!.address;
      for (let j = 0; j < 16; j++) if (a[j] !== b[24 + j]) continue outer;
      return true;
    }
    return false;
  }

  private localV6(inPort: RouterPort, ip: Ipv6View): void {
    const c = inPort.counters;
    if (ip.isFragment) {
      countDrop(c, 'local-fragment');
      return;
    }
    if (ip.upperProtocol === IpProtocol.IPV6_ICMP) {
      const icmp = Icmpv6Repr.parse(Icmpv6View.parse(ip.upperPayload), ip.src, ip.dst);
      if (icmp.kind !== 'echoRequest') {
        countDrop(c, 'local');
        return;
      }
      // RFC 4443 §4.2: the reply returns identifier, sequence and data.
      const reply = buildPacket(
        { src: ip.dst, dst: ip.src, ttl: ROUTER_TTL },
        {
          protocol: 'icmpv6',
          repr: { kind: 'echoReply', identifier: icmp.identifier, sequence: icmp.sequence, data: icmp.data },
        },
      );
      const back = this.table.lookupV6(ip.bytes, 8);
      if (back === undefined) {
        countDrop(c, 'local-no-route');
        return;
      }
      countEvent(c, 'echo-replies');
      this.transmit(back, reply);
      return;
    }
    countDrop(c, 'local');
    if (ip.upperProtocol === IpProtocol.UDP) {
      this.icmpV6(inPort, ip, { kind: 'portUnreachable' }, 'icmp-port-unreachable');
    }
  }

  private icmpV6(inPort: RouterPort, ip: Ipv6View, error: Icmpv6ErrorKind, event: string): void {
    const c = inPort.counters;
    if (!mayAnswerWithIcmpV6(ip)) {
      countEvent(c, 'icmp-suppressed');
      return;
    }
    const back = this.table.lookupV6(ip.bytes, 8);
    if (back === undefined) {
      countEvent(c, 'icmp-no-route');
      return;
    }
    const from = back.address(6) ?? inPort.address(6) ?? this.anyAddress(6);
    if (from === undefined) {
      countEvent(c, 'icmp-no-source');
      return;
    }
    if (this.limiter !== undefined && !this.limiter.take()) {
      countEvent(c, 'icmp-rate-limited');
      return;
    }
    countEvent(c, event);
    this.transmit(back, buildIcmpv6Error(error, ip, from));
  }

  // --- shared -------------------------------------------------------------

  private strip(c: RouterPortCounters, segment: Uint8Array): void {
    if (this.stripSynOnly && !isSyn(segment)) return;
    const stripped = stripTcpOptions(segment, this.stripKinds!);
    if (stripped > 0) {
      countEvent(c, 'tcp-options-stripped', stripped);
      countEvent(c, 'tcp-segments-stripped');
    } else if (stripped === STRIP_MALFORMED) {
      // Left alone and forwarded: the receiver judges a malformed header, not the path.
      countEvent(c, 'tcp-options-malformed');
    }
  }

  private transmit(out: RouterPort, packet: Uint8Array): void {
    const c = out.counters;
    if (out.link.send(packet)) {
      c.txPackets++;
      c.txBytes += packet.length;
    } else {
      // The link counted why (down, mtu, queue, shaper loss) in its own counters.
      countDrop(c, 'tx-refused');
    }
  }

  private anyAddress(family: 4 | 6): Uint8Array | undefined {
    for (const port of this.ports) {
      const a = port.address(family);
      if (a !== undefined) return a;
    }
    return undefined;
  }

  private nextIdentification(): number {
    this.identification = (this.identification + 1) & 0xffff;
    return this.identification;
  }

  /** For logs: "a: 10.1.0.0/24 (router 10.1.0.2)". */
  describePorts(): string[] {
    return this.ports.map((p) => {
      const prefixes = p.prefixes.map((x) => Prefix.of(x.network, x.length).toString()).join(', ') || 'no prefix';
      const own = p.addresses.map(formatIp).join(', ');
      return `${p.name}: ${prefixes}${own ? ` (router ${own})` : ''}`;
    });
  }

  /** The clock the router runs on (for its rate limiter). */
  get clock(): Clock {
    return this.options.clock;
  }
}
