/**
 * The nuse daemon: one userspace stack on real links. It opens a tun interface per
 * `--tun` (the stack owns ADDR, the kernel's side of the interface gets the peer
 * address), wraps it in the shaper when shaping keys were given, installs the routes and
 * runs until stopped; stopping resets every connection and removes the interfaces.
 */

import type { Logger } from 'pino';
import { defaultPeer, type RouteSpec, type TunSpec } from '../cli/link-spec';
import { UsageError } from '../cli/usage-error';
import type { IpInterface } from '../ip/ip-layer';
import type { Link } from '../link/link';
import { PcapTap } from '../link/pcap-tap';
import { type CaptureWriter, openPcapngFile } from '../link/pcap-writer';
import { Shaper } from '../link/shaper';
import { TunLink, type TunOpenOptions } from '../link/tun';
import { Stack } from '../socket/stack';
import type { Clock } from '../time/clock';
import { RealClock } from '../time/real-clock';
import { Prefix, parseIp } from '../wire/address';
import type { DaemonConfig } from './config';

/** One of the daemon's links: the device, the link the stack uses (shaped or not), the interface. */
export interface DaemonLink {
  readonly spec: TunSpec;
  /** The kernel side's address (the stack's peer on this link). */
  readonly peer: string;
  /** The device link (closing it removes the interface). */
  readonly device: Link;
  /** What the stack sends into: the device, or a Shaper over it. */
  readonly link: Link;
  readonly iface: IpInterface;
}

export interface DaemonOptions {
  logger: Logger;
  clock?: Clock;
  /** Opens a device for a link (default: a real tun). Tests without root may pass simulated links. */
  openDevice?: (opts: TunOpenOptions & { name: string; address: string; mtu: number }) => Link;
  /** Seed for ISNs and port choices (default: random per run). */
  seed?: number | string;
}

const DEFAULT_MTU = 1500;

export class Daemon {
  readonly stack: Stack;
  readonly links: DaemonLink[] = [];
  /** The capture of every link (`--pcap`), one pcapng interface per link. */
  readonly capture: CaptureWriter | undefined;
  private stopped = false;

  private constructor(
    readonly config: DaemonConfig,
    private readonly log: Logger,
    clock: Clock,
    seed: number | string,
  ) {
    this.stack = new Stack({ clock, seed, tcp: config.tcp });
    if (config.pcap !== undefined) this.capture = openPcapngFile(config.pcap, 'nuse daemon');
  }

  /**
   * Opens every link and installs the routes. On a failure, whatever was opened is
   * closed again before the error propagates (no interface is left behind).
   */
  static start(config: DaemonConfig, opts: DaemonOptions): Daemon {
    const clock = opts.clock ?? new RealClock();
    const seed = opts.seed ?? `${Date.now()}/${process.pid}/${Math.random()}`;
    const daemon = new Daemon(config, opts.logger, clock, seed);
    try {
      for (const spec of config.tuns) daemon.openLink(spec, opts.openDevice ?? ((o) => TunLink.open(o)));
      daemon.installRoutes(config.routes);
    } catch (e) {
      daemon.stop('startup failed', { quiet: true });
      throw e;
    }
    return daemon;
  }

  private openLink(spec: TunSpec, openDevice: NonNullable<DaemonOptions['openDevice']>): void {
    const peer = spec.peer ?? defaultPeer(spec);
    const mtu = spec.mtu ?? DEFAULT_MTU;
    const device = openDevice({
      name: spec.name,
      // The kernel's side holds the peer address; its on-link route sends the whole prefix,
      // the stack's address included, into the tun.
      address: `${peer}/${spec.prefixLength}`,
      mtu,
      netns: spec.netns,
    });
    let link: Link = device;
    try {
      if (spec.shape !== undefined) {
        link = new Shaper(device, { clock: this.stack.clock, tx: spec.shape.tx, rx: spec.shape.rx, seed: spec.name });
      }
      // The capture sits next to the stack: it shows what the stack sent and received,
      // before the shaper's losses and after its delays.
      if (this.capture !== undefined) {
        link = new PcapTap(link, this.capture, { clock: this.stack.clock, interfaceName: spec.name });
      }
      const iface = this.stack.addInterface(link, `${spec.address}/${spec.prefixLength}`, spec.name);
      this.links.push({ spec, peer, device, link, iface });
    } catch (e) {
      link.close();
      device.close();
      throw e;
    }
    this.log.info(
      {
        name: spec.name,
        address: `${spec.address}/${spec.prefixLength}`,
        peer,
        mtu,
        ...(spec.netns !== undefined ? { netns: spec.netns } : {}),
        ...(spec.shape !== undefined ? { shaping: describeShape(spec.shape) } : {}),
      },
      'link up',
    );
  }

  private installRoutes(routes: RouteSpec[]): void {
    const families = new Set<4 | 6>();
    for (const r of routes) {
      for (const { prefix, link } of this.resolveRoute(r)) {
        this.stack.addRoute(prefix, link.spec.name);
        if (Prefix.parse(prefix).length === 0) families.add(Prefix.parse(prefix).family);
        this.log.info({ prefix, dev: link.spec.name, ...(r.via ? { via: r.via } : {}) }, 'route');
      }
    }
    // Without a default route of its own, a family's default goes through its first link's peer.
    for (const family of [4, 6] as const) {
      if (families.has(family)) continue;
      const first = this.links.find((l) => familyOf(l.spec.address) === family);
      if (first === undefined) continue;
      const prefix = family === 4 ? '0.0.0.0/0' : '::/0';
      this.stack.addRoute(prefix, first.spec.name);
      this.log.info({ prefix, dev: first.spec.name, via: first.peer }, 'route (default)');
    }
  }

  private resolveRoute(r: RouteSpec): { prefix: string; link: DaemonLink }[] {
    let link: DaemonLink | undefined;
    if (r.via !== undefined) {
      const via = parseIp(r.via);
      link = this.links.find(
        (l) =>
          (r.dev === undefined || l.spec.name === r.dev) &&
          Prefix.parse(`${l.spec.address}/${l.spec.prefixLength}`).contains(via),
      );
      if (link === undefined) {
        throw new UsageError(`--route ${r.prefix},via=${r.via}: ${r.via} is not on any link's prefix`);
      }
    } else {
      link = this.links.find((l) => l.spec.name === r.dev);
      if (link === undefined) throw new UsageError(`--route ${r.prefix}: no link named "${r.dev}"`);
    }
    const family = familyOf(link.spec.address);
    if (r.prefix === 'default') return [{ prefix: family === 4 ? '0.0.0.0/0' : '::/0', link }];
    if (Prefix.parse(r.prefix).family !== family) {
      throw new UsageError(
        `--route ${r.prefix}: link ${link.spec.name} has no IPv${Prefix.parse(r.prefix).family} address`,
      );
    }
    return [{ prefix: r.prefix, link }];
  }

  /**
   * Resets every connection, closes the links (the kernel removes the interfaces) and
   * logs what the links and the IP layer counted. Idempotent.
   */
  stop(reason: string, opts: { quiet?: boolean } = {}): void {
    if (this.stopped) return;
    this.stopped = true;
    const open = this.stack.sockets.size;
    this.stack.close();
    for (const l of this.links) {
      if (!opts.quiet) {
        const c = l.link.counters;
        this.log.info(
          { name: l.spec.name, txPackets: c.txPackets, rxPackets: c.rxPackets, drops: { ...c.drops } },
          'link down',
        );
      }
      l.link.close();
      l.device.close();
    }
    if (this.capture !== undefined) {
      this.capture.close();
      if (!opts.quiet) this.log.info({ file: this.config.pcap, ...this.capture.stats }, 'capture written');
    }
    if (!opts.quiet) {
      this.log.info({ reason, connectionsReset: open, ipDrops: { ...this.stack.ip.drops } }, 'stopped');
    }
  }
}

function familyOf(address: string): 4 | 6 {
  return address.includes(':') ? 6 : 4;
}

function describeShape(shape: NonNullable<TunSpec['shape']>): string {
  const one = (c: object): string =>
    Object.entries(c)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ') || 'none';
  const tx = one(shape.tx);
  const rx = one(shape.rx);
  return tx === rx ? tx : `tx(${tx}) rx(${rx})`;
}
