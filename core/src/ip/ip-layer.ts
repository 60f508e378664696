import type { Link } from '../link/link';
import type { Clock } from '../time/clock';
import { addressEquals, formatIp, Prefix } from '../wire/address';
import { IpProtocol } from '../wire/ip-protocol';
import { Ipv4View } from '../wire/ipv4';
import { Ipv6View } from '../wire/ipv6';
import { buildPacket, type UpperRepr } from '../wire/packet';
import { ParseError } from '../wire/parse-error';
import { FragmentReassembler, type ReassemblyLimits } from './fragment-reassembler';
import { IcmpEndpoint } from './icmp';
import type { IcmpErrorReport } from './icmp-error';
import { IcmpRateLimiter } from './icmp-rate-limit';
import { fragmentIpv4, type Ipv4FirstFragment, ipv4Fragment, rebuildIpv4Datagram } from './ipv4-fragments';
import { fragmentIpv6, type Ipv6FirstFragment, ipv6Fragment, rebuildIpv6Packet } from './ipv6-fragments';
import { isMartianSource } from './martian';
import { PathMtuCache, type PathMtuOptions, plateauBelow } from './path-mtu';

export type { OverlapPolicy, ReassemblyDropCause, ReassemblyLimits } from './fragment-reassembler';
export { IcmpEndpoint } from './icmp';
export type { IcmpErrno, IcmpErrorKind, IcmpErrorReport } from './icmp-error';
export { PathMtuCache, type PathMtuOptions } from './path-mtu';

/** An interface of the stack: a link and the address the stack owns on it. */
export interface IpInterface {
  readonly name: string;
  readonly link: Link;
  readonly address: Uint8Array;
  readonly prefix: Prefix;
}

/** A packet delivered to a transport protocol. */
export interface IpPacketIn {
  readonly version: 4 | 6;
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly protocol: number;
  readonly payload: Uint8Array;
  readonly ttl: number;
  readonly iface: IpInterface;
}

export interface Route {
  readonly prefix: Prefix;
  readonly iface: IpInterface;
}

/** Where a packet to `dst` leaves, and from which of our addresses. */
export interface RouteResult {
  readonly iface: IpInterface;
  readonly src: Uint8Array;
  /** The largest packet to send: the link's MTU, or less once path MTU discovery learned less (RFC 1191, RFC 8201). */
  readonly mtu: number;
  /** The outgoing link's own MTU (what the MSS we announce is based on). */
  readonly linkMtu: number;
}

export type ProtocolHandler = (packet: IpPacketIn) => void;

/**
 * Receives the ICMP errors about packets of one transport protocol, already validated
 * as concerning one of our addresses (RFC 5927 §4.1 asks for more: the transport checks
 * its own state, e.g. TCP's sequence number). Returns whether it accepted the report.
 */
export type IcmpErrorHandler = (report: IcmpErrorReport) => boolean;

export interface IpLayerOptions {
  /** IPv4 reassembly bounds (default: 30 s as Linux, 64 datagrams, 4 MiB, 128 fragments each: 64 KiB over a 576-byte MTU). */
  ipv4Reassembly?: Partial<ReassemblyLimits>;
  /** IPv6 reassembly bounds (default: 60 s per RFC 8200 §4.5, otherwise as IPv4). */
  ipv6Reassembly?: Partial<ReassemblyLimits>;
  pathMtu?: PathMtuOptions;
  /** ICMP errors the stack may send per second, and in a burst (default 1000 and 50, as Linux). */
  icmpErrorsPerSecond?: number;
  icmpErrorBurst?: number;
}

/** Options of one `send`. */
export interface IpSendOptions {
  /** IPv4 DF (default true: RFC 1191 path MTU discovery). Without it a packet over the MTU is fragmented. */
  dontFragment?: boolean;
}

const DEFAULT_REASSEMBLY: ReassemblyLimits = {
  timeoutMs: 30_000,
  maxDatagrams: 64,
  maxBytes: 4 << 20,
  maxFragmentsPerDatagram: 128,
};

/**
 * The stack's IP layer (a host, not a router: it never forwards): interfaces with
 * addresses, a routing table with longest-prefix match and source-address routing (a
 * packet from one of our addresses leaves by that address's interface: each MPTCP path
 * needs this), input validation with counted drops, fragment reassembly for both
 * families, an ICMP endpoint (echo, errors routed to the transport they concern), path
 * MTU discovery, fragmentation of our own IPv4 packets sent without DF, and protocol
 * demultiplexing. See docs/ip.md.
 */
/** RFC 8200 §5: every IPv6 link carries 1280-byte packets. */
const IPV6_MINIMUM_MTU = 1280;

export class IpLayer {
  readonly interfaces: IpInterface[] = [];
  private readonly routes: Route[] = [];
  private readonly handlers = new Map<number, ProtocolHandler>();
  private readonly errorHandlers = new Map<number, IcmpErrorHandler>();
  /** Dropped packets by cause ("malformed-ipv4", "not-for-us", "ipv4-fragment-overlap", "tx-too-big", ...). */
  readonly drops: Record<string, number> = {};
  readonly counters = {
    packetsIn: 0,
    packetsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    fragmentsIn: 0,
    datagramsReassembled: 0,
    fragmentsOut: 0,
    icmpErrorsDelivered: 0,
  };
  readonly pathMtu: PathMtuCache;
  readonly icmp: IcmpEndpoint;
  readonly ipv4Reassembly: FragmentReassembler<Ipv4FirstFragment>;
  readonly ipv6Reassembly: FragmentReassembler<Ipv6FirstFragment>;
  /** RFC 791 §3.2 / RFC 6864 §4.1: identifications for the packets we send without DF (the ones that may be fragmented). */
  private nextIdentification = 1;
  private nextIpv6Identification = 1;

  constructor(
    readonly clock: Clock,
    opts: IpLayerOptions = {},
  ) {
    this.pathMtu = new PathMtuCache(clock, opts.pathMtu);
    this.icmp = new IcmpEndpoint(
      {
        now: () => clock.now(),
        send: (src, dst, upper, o) => this.send(src, dst, upper, o),
        deliverError: (report) => this.deliverError(report),
        count: (cause) => this.count(cause),
      },
      new IcmpRateLimiter(opts.icmpErrorsPerSecond, opts.icmpErrorBurst),
    );
    // RFC 792 / RFC 8200 §4.5: a timed-out datagram whose first fragment arrived earns a time exceeded.
    this.ipv4Reassembly = new FragmentReassembler<Ipv4FirstFragment>(
      clock,
      { ...DEFAULT_REASSEMBLY, ...opts.ipv4Reassembly },
      'identical-bytes-allowed',
      (first) => {
        this.count('ipv4-reassembly-timeout');
        if (first !== undefined) this.timeExceeded(first.headerAndPrefix);
      },
    );
    this.ipv6Reassembly = new FragmentReassembler<Ipv6FirstFragment>(
      clock,
      { ...DEFAULT_REASSEMBLY, timeoutMs: 60_000, ...opts.ipv6Reassembly },
      'discard-datagram',
      (first) => {
        this.count('ipv6-reassembly-timeout');
        if (first !== undefined) this.timeExceeded(first.quote);
      },
    );
  }

  /** Adds an interface owning `addressWithPrefix` ("10.0.1.1/24") and its on-link route. */
  addInterface(link: Link, addressWithPrefix: string, name = link.name): IpInterface {
    const prefix = Prefix.parse(addressWithPrefix);
    if (this.interfaces.some((i) => addressEquals(i.address, prefix.address))) {
      throw new Error(`address ${formatIp(prefix.address)} is already on an interface`);
    }
    const iface: IpInterface = { name, link, address: prefix.address, prefix };
    this.interfaces.push(iface);
    this.routes.push({ prefix: Prefix.of(prefix.network, prefix.length), iface });
    link.onReceive((packet) => this.input(packet, iface));
    return iface;
  }

  /** Adds a route ("0.0.0.0/0" for a default route) through an interface. */
  addRoute(prefixText: string, ifaceName: string): void {
    const iface = this.interfaces.find((i) => i.name === ifaceName);
    if (iface === undefined) throw new Error(`no interface named "${ifaceName}"`);
    this.routes.push({ prefix: Prefix.parse(prefixText), iface });
  }

  registerProtocol(protocol: number, handler: ProtocolHandler): void {
    if (protocol === IpProtocol.ICMP || protocol === IpProtocol.IPV6_ICMP) {
      throw new Error(`IP protocol ${protocol} is the IP layer's own ICMP`);
    }
    if (this.handlers.has(protocol)) throw new Error(`IP protocol ${protocol} already has a handler`);
    this.handlers.set(protocol, handler);
  }

  /** Registers who hears ICMP errors about the packets of `protocol` we sent (see IcmpErrorHandler). */
  registerErrorHandler(protocol: number, handler: IcmpErrorHandler): void {
    if (this.errorHandlers.has(protocol)) throw new Error(`IP protocol ${protocol} already has an error handler`);
    this.errorHandlers.set(protocol, handler);
  }

  isLocalAddress(address: Uint8Array): boolean {
    return this.interfaces.some((i) => addressEquals(i.address, address));
  }

  /**
   * Chooses the interface for `dst`. With `src` (one of our addresses) the packet leaves
   * by that address's interface (source-address routing); otherwise the longest
   * matching prefix wins. Returns undefined when no route exists (EHOSTUNREACH).
   */
  route(dst: Uint8Array, src?: Uint8Array): RouteResult | undefined {
    let iface: IpInterface | undefined;
    if (src !== undefined && !isUnspecified(src)) {
      iface = this.interfaces.find((i) => addressEquals(i.address, src));
      if (iface === undefined || iface.address.length !== dst.length) return undefined;
    } else {
      let best: Route | undefined;
      for (const r of this.routes) {
        if (r.prefix.contains(dst) && (best === undefined || r.prefix.length > best.prefix.length)) best = r;
      }
      if (best === undefined) return undefined;
      iface = best.iface;
    }
    const linkMtu = iface.link.mtu;
    const pathMtu = this.pathMtu.get(dst);
    return { iface, src: iface.address, mtu: pathMtu === undefined ? linkMtu : Math.min(linkMtu, pathMtu), linkMtu };
  }

  /**
   * Learns from a validated "fragmentation needed" (RFC 1191 §4) or "packet too big"
   * (RFC 8201 §4) report: lowers the path MTU towards the quoted destination. A zero
   * next-hop MTU (a pre-RFC 1191 router) means the plateau below the refused datagram's
   * length (RFC 1191 §5). Never raises the estimate, never goes below 68 (IPv4) or
   * 1280 (IPv6). Returns the new path MTU, or undefined when nothing changed.
   */
  learnPathMtu(report: IcmpErrorReport): number | undefined {
    if (report.kind !== 'packet-too-big') return undefined;
    const current = this.route(report.dst, report.src)?.mtu;
    if (current === undefined) return undefined;
    let mtu = report.mtu;
    if (report.version === 4 && (mtu === 0 || mtu >= report.quotedLength)) {
      // RFC 1191 §5: an MTU of zero, or one the refused datagram would have fitted (a bogus
      // report), gives no usable figure: the plateau below the refused datagram's length.
      // (From its length, not from the current estimate: several reports about packets
      // already in flight must not walk the table down.)
      mtu = plateauBelow(report.quotedLength);
    }
    if (report.version === 6 && mtu < IPV6_MINIMUM_MTU) {
      this.count('icmpv6-ptb-below-minimum'); // RFC 8201 §4: discarded
      return undefined;
    }
    return this.pathMtu.lower(report.dst, mtu, current);
  }

  /**
   * Sends a transport message from `src` to `dst`; returns false if there is no route, it
   * is too big to send, or the link refused it. IPv4 packets carry DF unless told not
   * to (RFC 1191); one without DF that exceeds the MTU goes out in fragments (RFC 791
   * §3.2), and so does an IPv6 packet sent with `dontFragment: false` (RFC 8200 §4.5).
   */
  send(src: Uint8Array, dst: Uint8Array, upper: UpperRepr, opts: IpSendOptions = {}): boolean {
    const r = this.route(dst, src);
    if (r === undefined) {
      this.count('tx-no-route');
      return false;
    }
    const dontFragment = opts.dontFragment ?? true;
    const identification = dontFragment ? 0 : this.takeIdentification();
    const packet = buildPacket({ src: r.src, dst, dontFragment, identification }, upper);
    if (packet.length > r.mtu) {
      if (!dontFragment) return this.sendFragments(packet, r);
      // TCP cuts its segments to the path MTU, so this happens only in the race with a PMTU drop.
      this.count('tx-too-big');
      return false;
    }
    this.counters.packetsOut++;
    this.counters.bytesOut += packet.length;
    return r.iface.link.send(packet);
  }

  /** Forgets fragments in progress and cancels their timers: nothing of the IP layer keeps running. */
  close(): void {
    this.ipv4Reassembly.clear();
    this.ipv6Reassembly.clear();
  }

  private sendFragments(packet: Uint8Array, r: RouteResult): boolean {
    // IPv4: routers may fragment further; IPv6: only the source fragments, to the path MTU.
    const fragments =
      packet.length > 0 && packet[0]! >> 4 === 6
        ? fragmentIpv6(packet, r.mtu, this.takeIpv6Identification())
        : fragmentIpv4(Ipv4View.parse(packet), r.mtu);
    if (fragments === undefined) {
      this.count('tx-too-big');
      return false;
    }
    let ok = true;
    for (const f of fragments) {
      this.counters.packetsOut++;
      this.counters.fragmentsOut++;
      this.counters.bytesOut += f.length;
      ok = r.iface.link.send(f) && ok;
    }
    return ok;
  }

  /** RFC 8200 §4.5: an Identification different from any other recent fragmented packet's. */
  private takeIpv6Identification(): number {
    const id = this.nextIpv6Identification;
    this.nextIpv6Identification = (id + 1) >>> 0;
    return id;
  }

  private takeIdentification(): number {
    const id = this.nextIdentification;
    this.nextIdentification = (id + 1) & 0xffff;
    return id;
  }

  private input(packet: Uint8Array, iface: IpInterface): void {
    this.counters.packetsIn++;
    this.counters.bytesIn += packet.length;
    const version = packet.length > 0 ? packet[0]! >> 4 : 0;
    let pkt: IpPacketIn | undefined;
    try {
      if (version === 4) pkt = this.parseIpv4(packet, iface);
      else if (version === 6) pkt = this.parseIpv6(packet, iface);
      else this.count('bad-version');
    } catch (e) {
      if (e instanceof ParseError) {
        this.count(`malformed-${e.layer}`);
        return;
      }
      throw e;
    }
    if (pkt !== undefined) this.deliver(pkt);
  }

  /** Whether a packet is ours to take: to one of our addresses, from a valid source (else a counted drop). */
  private addressedToUs(src: Uint8Array, dst: Uint8Array, iface: IpInterface): boolean {
    if (!this.isLocalAddress(dst)) {
      this.count('not-for-us');
      return false;
    }
    if (isMartianSource(src, iface.prefix)) {
      this.count('martian-source');
      return false;
    }
    return true;
  }

  /** A whole IPv4 datagram for us, reassembled if it came in fragments; undefined when dropped or pending. */
  private parseIpv4(packet: Uint8Array, iface: IpInterface): IpPacketIn | undefined {
    let ip = Ipv4View.parse(packet);
    if (!this.addressedToUs(ip.src, ip.dst, iface)) return undefined;
    if (ip.isFragment) {
      this.counters.fragmentsIn++;
      const result = this.ipv4Reassembly.insert(ipv4Fragment(ip));
      if (result.kind === 'dropped') this.count(`ipv4-${result.cause}`);
      if (result.kind !== 'complete') return undefined;
      const whole = rebuildIpv4Datagram(result.first, result.data);
      if (whole === undefined) {
        this.count('ipv4-reassembled-too-big');
        return undefined;
      }
      this.counters.datagramsReassembled++;
      ip = Ipv4View.parse(whole);
    }
    return { version: 4, src: ip.src, dst: ip.dst, protocol: ip.protocol, payload: ip.payload, ttl: ip.ttl, iface };
  }

  /** As parseIpv4 for IPv6 (RFC 8200 §4.5); an atomic fragment (RFC 6946) is delivered as it is. */
  private parseIpv6(packet: Uint8Array, iface: IpInterface): IpPacketIn | undefined {
    let ip = Ipv6View.parse(packet);
    if (!this.addressedToUs(ip.src, ip.dst, iface)) return undefined;
    if (ip.isFragment) {
      this.counters.fragmentsIn++;
      const result = this.ipv6Reassembly.insert(ipv6Fragment(ip));
      if (result.kind === 'dropped') this.count(`ipv6-${result.cause}`);
      if (result.kind !== 'complete') return undefined;
      const whole = rebuildIpv6Packet(result.first, result.data);
      if (whole === undefined) {
        this.count('ipv6-reassembled-too-big');
        return undefined;
      }
      ip = Ipv6View.parse(whole);
      if (ip.isFragment) {
        // Fragments inside fragments: nothing sends these.
        this.count('ipv6-nested-fragment');
        return undefined;
      }
      this.counters.datagramsReassembled++;
    }
    return {
      version: 6,
      src: ip.src,
      dst: ip.dst,
      protocol: ip.upperProtocol,
      payload: ip.upperPayload,
      ttl: ip.hopLimit,
      iface,
    };
  }

  private deliver(pkt: IpPacketIn): void {
    // RFC 1122 §3.2.1.7: a host does not forward, so a TTL of 0 or 1 on a packet for us does not matter.
    if (pkt.version === 4 && pkt.protocol === IpProtocol.ICMP) {
      this.icmp.inputV4(pkt);
      return;
    }
    if (pkt.version === 6 && pkt.protocol === IpProtocol.IPV6_ICMP) {
      this.icmp.inputV6(pkt);
      return;
    }
    const handler = this.handlers.get(pkt.protocol);
    if (handler === undefined) {
      this.count('no-protocol');
      return;
    }
    handler(pkt);
  }

  /**
   * An ICMP error about one of our packets: RFC 5927 §4.1 first check that the quoted
   * packet left from one of our addresses, then the transport it concerns decides.
   */
  private deliverError(report: IcmpErrorReport): void {
    if (!this.isLocalAddress(report.src)) {
      this.count('icmp-error-not-from-us');
      return;
    }
    const handler = this.errorHandlers.get(report.protocol);
    if (handler === undefined) {
      this.count('icmp-error-no-handler');
      return;
    }
    if (handler(report)) this.counters.icmpErrorsDelivered++;
    else this.count('icmp-error-rejected');
  }

  /** Reassembly time exceeded, quoting the first fragment, from the address it was sent to. */
  private timeExceeded(quoted: Uint8Array): void {
    const v4 = quoted[0]! >> 4 === 4;
    const src = v4 ? quoted.subarray(12, 16) : quoted.subarray(8, 24);
    const dst = v4 ? quoted.subarray(16, 20) : quoted.subarray(24, 40);
    this.icmp.sendReassemblyTimeExceeded(dst.slice(), src.slice(), quoted);
  }

  count(cause: string): void {
    this.drops[cause] = (this.drops[cause] ?? 0) + 1;
  }
}

function isUnspecified(address: Uint8Array): boolean {
  for (let i = 0; i < address.length; i++) if (address[i] !== 0) return false;
  return true;
}
