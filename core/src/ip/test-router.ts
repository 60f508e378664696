import type { Link } from '../link/link';
import { SimNetwork } from '../link/sim-network';
import { Stack } from '../socket/stack';
import type { TcpConfig } from '../tcp/config';
import type { VirtualClock } from '../time/virtual-clock';
import { Prefix, parseIp } from '../wire/address';
import { Ipv4View } from '../wire/ipv4';
import { Ipv6View } from '../wire/ipv6';
import { buildPacket, type UpperRepr } from '../wire/packet';

/** A destination prefix the stub router answers with destination unreachable (ICMPv4 or ICMPv6 code). */
export interface UnreachableRule {
  prefix: Prefix;
  code: number;
}

/**
 * A two-port router stub for tests, built without the IP layer: it forwards raw packets
 * between two links and, as a real router would, answers with ICMP errors: destination
 * unreachable for the prefixes in `unreachable`, and "fragmentation needed" (IPv4, DF
 * set) or "packet too big" (IPv6) for packets over `forwardMtu`. Not part of the API.
 */
export class StubRouter {
  /** Packets over this size are refused with an ICMP error (default: no limit). */
  forwardMtu = Number.POSITIVE_INFINITY;
  unreachable: UnreachableRule[] = [];
  /** Drops everything silently (a black hole), after answering `unreachable`. */
  blackHole = false;
  readonly counters = { forwarded: 0, icmpSent: 0, dropped: 0, largestForwarded: 0 };
  /** The lengths of the packets forwarded towards the right-hand side, for assertions. */
  readonly forwardedToRight: number[] = [];

  constructor(
    readonly left: { link: Link; address: Uint8Array; address6: Uint8Array },
    readonly right: { link: Link; address: Uint8Array; address6: Uint8Array },
  ) {
    left.link.onReceive((p) => this.forward(p, left, right));
    right.link.onReceive((p) => this.forward(p, right, left));
  }

  /** Sends a packet out of the left port as if the router had produced it (a forged ICMP, say). */
  injectLeft(packet: Uint8Array): void {
    this.left.link.send(packet);
  }

  private forward(
    packet: Uint8Array,
    from: { link: Link; address: Uint8Array; address6: Uint8Array },
    to: { link: Link },
  ): void {
    const v4 = packet[0]! >> 4 === 4;
    const ip = v4 ? Ipv4View.parse(packet) : Ipv6View.parse(packet);
    const rule = this.unreachable.find((r) => r.prefix.contains(ip.dst));
    const ours = v4 ? from.address : from.address6;
    const quote = packet.subarray(0, v4 ? Math.min(packet.length, 576 - 28) : Math.min(packet.length, 1232));
    if (rule !== undefined) {
      this.reply(from.link, ours, ip.src, {
        ...(v4
          ? { protocol: 'icmpv4', repr: { kind: 'destUnreachable', code: rule.code, invoking: quote } }
          : { protocol: 'icmpv6', repr: { kind: 'destUnreachable', code: rule.code, invoking: quote } }),
      } as UpperRepr);
      return;
    }
    if (this.blackHole) {
      this.counters.dropped++;
      return;
    }
    if (packet.length > this.forwardMtu) {
      if (ip instanceof Ipv4View && !ip.dontFragment) {
        this.counters.dropped++; // this stub does not fragment
        return;
      }
      const mtu = this.forwardMtu;
      this.reply(
        from.link,
        ours,
        ip.src,
        v4
          ? { protocol: 'icmpv4', repr: { kind: 'fragmentationNeeded', nextHopMtu: mtu, invoking: quote } }
          : { protocol: 'icmpv6', repr: { kind: 'packetTooBig', mtu, invoking: quote } },
      );
      return;
    }
    this.counters.forwarded++;
    this.counters.largestForwarded = Math.max(this.counters.largestForwarded, packet.length);
    if (to === this.right) this.forwardedToRight.push(packet.length);
    to.link.send(packet);
  }

  private reply(link: Link, src: Uint8Array, dst: Uint8Array, upper: UpperRepr): void {
    this.counters.icmpSent++;
    link.send(buildPacket({ src, dst: dst.slice() }, upper));
  }
}

/**
 * Two stacks with the stub router between them, in virtual time: a (10.0.1.1 or
 * fd00:1::1) — router — b (10.0.2.1 or fd00:2::1); both stacks route everything through
 * the router (a default route). One family per setup: an interface is one address.
 */
export function routedStacks(opts: { seed?: number; tcp?: Partial<TcpConfig>; delayMs?: number; v6?: boolean } = {}) {
  const net = new SimNetwork({ seed: opts.seed ?? 1 });
  const clock = net.clock as VirtualClock;
  const hostA = net.addHost('a');
  const hostR = net.addHost('r');
  const hostB = net.addHost('b');
  const shape = { delayMs: opts.delayMs ?? 5 };
  const [addrA, addrRa, addrRb, addrB, len, all] = opts.v6
    ? ['fd00:1::1', 'fd00:1::fe', 'fd00:2::fe', 'fd00:2::1', 64, '::/0']
    : ['10.0.1.1', '10.0.1.254', '10.0.2.254', '10.0.2.1', 24, '0.0.0.0/0'];
  const left = net.connect(hostA, hostR, { a: `${addrA}/${len}`, b: `${addrRa}/${len}`, aToB: shape, bToA: shape });
  const right = net.connect(hostR, hostB, { a: `${addrRb}/${len}`, b: `${addrB}/${len}`, aToB: shape, bToA: shape });
  const a = new Stack({ clock, seed: `a${opts.seed ?? 1}`, tcp: opts.tcp });
  a.addInterface(left.a, `${addrA}/${len}`, 'eth0');
  a.addRoute(all, 'eth0');
  const b = new Stack({ clock, seed: `b${opts.seed ?? 1}`, tcp: opts.tcp });
  b.addInterface(right.b, `${addrB}/${len}`, 'eth0');
  b.addRoute(all, 'eth0');
  const router = new StubRouter(
    { link: left.b, address: parseIp('10.0.1.254'), address6: parseIp('fd00:1::fe') },
    { link: right.a, address: parseIp('10.0.2.254'), address6: parseIp('fd00:2::fe') },
  );
  return { net, clock, a, b, router, left, right, addrA, addrB };
}

export { Prefix };
