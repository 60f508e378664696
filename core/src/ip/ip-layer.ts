import type { Link } from '../link/link';
import type { Clock } from '../time/clock';
import { addressEquals, formatIp, Prefix } from '../wire/address';
import { Ipv4View } from '../wire/ipv4';
import { Ipv6View } from '../wire/ipv6';
import { buildPacket, type UpperRepr } from '../wire/packet';
import { ParseError } from '../wire/parse-error';

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
  readonly mtu: number;
}

export type ProtocolHandler = (packet: IpPacketIn) => void;

/**
 * The stack's IP layer, as much of it as TCP needs on simulated paths: interfaces with
 * addresses, a routing table with longest-prefix match and source-address routing (a
 * packet from one of our addresses leaves by that address's interface: each MPTCP path
 * needs this), input validation with counted drops, and protocol demultiplexing.
 * Fragment reassembly, ICMP and path MTU discovery arrive with the real-network issue;
 * until then fragments are dropped and counted.
 */
export class IpLayer {
  readonly interfaces: IpInterface[] = [];
  private readonly routes: Route[] = [];
  private readonly handlers = new Map<number, ProtocolHandler>();
  /** Dropped incoming packets by cause ("malformed-ipv4", "not-for-us", "fragment", "no-protocol", ...). */
  readonly drops: Record<string, number> = {};
  readonly counters = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0 };

  constructor(readonly clock: Clock) {}

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
    if (this.handlers.has(protocol)) throw new Error(`IP protocol ${protocol} already has a handler`);
    this.handlers.set(protocol, handler);
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
    if (src !== undefined && !isUnspecified(src)) {
      const iface = this.interfaces.find((i) => addressEquals(i.address, src));
      if (iface === undefined || iface.address.length !== dst.length) return undefined;
      return { iface, src: iface.address, mtu: iface.link.mtu };
    }
    let best: Route | undefined;
    for (const r of this.routes) {
      if (r.prefix.contains(dst) && (best === undefined || r.prefix.length > best.prefix.length)) best = r;
    }
    if (best === undefined) return undefined;
    return { iface: best.iface, src: best.iface.address, mtu: best.iface.link.mtu };
  }

  /** Sends a transport segment from `src` to `dst`; returns false if no route or the link refused it. */
  send(src: Uint8Array, dst: Uint8Array, upper: UpperRepr): boolean {
    const r = this.route(dst, src);
    if (r === undefined) {
      this.count('tx-no-route');
      return false;
    }
    const packet = buildPacket({ src: r.src, dst }, upper);
    if (packet.length > r.mtu) {
      this.count('tx-too-big');
      return false;
    }
    this.counters.packetsOut++;
    this.counters.bytesOut += packet.length;
    return r.iface.link.send(packet);
  }

  private input(packet: Uint8Array, iface: IpInterface): void {
    this.counters.packetsIn++;
    this.counters.bytesIn += packet.length;
    let pkt: IpPacketIn;
    try {
      const version = packet.length > 0 ? packet[0]! >> 4 : 0;
      if (version === 4) {
        const ip = Ipv4View.parse(packet);
        if (ip.isFragment) {
          this.count('fragment');
          return;
        }
        pkt = { version: 4, src: ip.src, dst: ip.dst, protocol: ip.protocol, payload: ip.payload, ttl: ip.ttl, iface };
      } else if (version === 6) {
        const ip = Ipv6View.parse(packet);
        if (ip.isFragment) {
          this.count('fragment');
          return;
        }
        pkt = {
          version: 6,
          src: ip.src,
          dst: ip.dst,
          protocol: ip.upperProtocol,
          payload: ip.upperPayload,
          ttl: ip.hopLimit,
          iface,
        };
      } else {
        this.count('bad-version');
        return;
      }
    } catch (e) {
      if (e instanceof ParseError) {
        this.count(`malformed-${e.layer}`);
        return;
      }
      throw e;
    }
    if (!this.isLocalAddress(pkt.dst)) {
      this.count('not-for-us');
      return;
    }
    const handler = this.handlers.get(pkt.protocol);
    if (handler === undefined) {
      this.count('no-protocol');
      return;
    }
    handler(pkt);
  }

  count(cause: string): void {
    this.drops[cause] = (this.drops[cause] ?? 0) + 1;
  }
}

function isUnspecified(address: Uint8Array): boolean {
  for (let i = 0; i < address.length; i++) if (address[i] !== 0) return false;
  return true;
}
