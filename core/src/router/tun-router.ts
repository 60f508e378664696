/**
 * A running `nuse router`: one tun interface per `--tun` (the host's side of each, in
 * its namespace, holds ADDR/PREFIX), each wrapped in the shaper when shaping keys were
 * given and in a capture tap with `--pcap`, all joined by the forwarding engine.
 *
 *   host in netns A ── tun a ── [Shaper] ── [PcapTap] ──┐
 *                                                      Router (engine.ts)
 *   host in netns B ── tun b ── [Shaper] ── [PcapTap] ──┘
 *
 * The capture sits next to the engine: it shows what the router received (after the
 * rx impairments) and what it sent (before the tx impairments), stripped options
 * included. Stopping removes the interfaces (closing a tun device deletes it).
 */

import type { Logger } from 'pino';
import type { Link } from '../link/link';
import { PcapTap } from '../link/pcap-tap';
import { type CaptureWriter, openPcapngFile } from '../link/pcap-writer';
import { Shaper } from '../link/shaper';
import { runIp, type TunDeviceStats, TunLink, type TunOpenOptions } from '../link/tun';
import type { Clock } from '../time/clock';
import { RealClock } from '../time/real-clock';
import { Prefix } from '../wire/address';
import type { RouterConfig, RouterTunConfig } from './config';
import { Router, type RouterStats } from './engine';

const DEFAULT_MTU = 1500;

export interface TunRouterOptions {
  logger: Logger;
  clock?: Clock;
  /** Opens a device (default: a real tun). Tests without root may pass in-memory links. */
  openDevice?: (opts: TunOpenOptions & { name: string; address: string; mtu: number }) => Link;
  /** Adds an `addr=` address on the host's side (default: `ip [-n NS] addr add ADDR/PREFIX dev NAME`). */
  addHostAddress?: (tun: RouterTunConfig, cidr: string) => void;
  /** Adds a route in the host's namespace (default: `ip [-n NS] route add PREFIX dev NAME`). */
  addHostRoute?: (tun: RouterTunConfig, prefix: string) => void;
}

interface OpenTun {
  readonly config: RouterTunConfig;
  readonly device: Link;
  readonly shaper: Shaper | undefined;
  /** The outermost link, which the engine uses. */
  readonly link: Link;
}

/** Drops counted below the engine, per port: the shaper's impairments and the device's refusals. */
export interface LinkDrops {
  readonly shaper: Record<string, number>;
  readonly device: Record<string, number>;
  /** The addon's own counters, for a tun. */
  readonly deviceStats?: TunDeviceStats;
}

export interface TunRouterStats extends RouterStats {
  readonly seconds: number;
  readonly links: Record<string, LinkDrops>;
}

export class TunRouter {
  readonly router: Router;
  readonly capture: CaptureWriter | undefined;
  private readonly tuns: OpenTun[] = [];
  private readonly clock: Clock;
  private readonly started: number;
  private statsTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  private constructor(
    readonly config: RouterConfig,
    private readonly log: Logger,
    clock: Clock,
  ) {
    this.clock = clock;
    this.started = clock.now();
    this.router = new Router({
      clock,
      strip: config.strip,
      icmpRateLimit:
        config.icmpRate === 0 ? false : { perSecond: config.icmpRate, burst: Math.min(100, config.icmpRate) },
    });
    if (config.pcap !== undefined) this.capture = openPcapngFile(config.pcap, 'nuse router');
  }

  /**
   * Opens every tun, adds the routes, and starts forwarding. On a failure whatever was
   * opened is closed again before the error propagates (no interface is left behind).
   */
  static start(config: RouterConfig, opts: TunRouterOptions): TunRouter {
    const clock = opts.clock ?? new RealClock();
    const r = new TunRouter(config, opts.logger, clock);
    try {
      for (const tun of config.tuns) r.openTun(tun, opts.openDevice ?? ((o) => TunLink.open(o)));
      r.installRoutes();
      for (const t of r.tuns) {
        for (const e of t.config.extraAddresses) {
          (opts.addHostAddress ?? addHostAddress)(t.config, `${e.address}/${e.prefixLength}`);
        }
        for (const prefix of t.config.hostRoutes) (opts.addHostRoute ?? addHostRoute)(t.config, prefix);
      }
    } catch (e) {
      r.stop('startup failed', { quiet: true });
      throw e;
    }
    if (config.statsInterval > 0) {
      r.statsTimer = setInterval(() => r.logStats(), config.statsInterval * 1000);
      r.statsTimer.unref();
    }
    opts.logger.info(
      {
        links: r.tuns.length,
        routes: r.router.stats().routes,
        ...(config.strip !== undefined ? { strip: config.strip } : {}),
      },
      'ready',
    );
    return r;
  }

  private openTun(tun: RouterTunConfig, openDevice: NonNullable<TunRouterOptions['openDevice']>): void {
    const { spec } = tun;
    const mtu = spec.mtu ?? DEFAULT_MTU;
    const device = openDevice({
      name: spec.name,
      address: `${spec.address}/${spec.prefixLength}`,
      mtu,
      netns: spec.netns,
    });
    let link: Link = device;
    let shaper: Shaper | undefined;
    try {
      if (spec.shape !== undefined) {
        const seed = `${this.config.seed ?? 'nuse-router'}/${spec.name}`;
        link = shaper = new Shaper(device, { clock: this.clock, tx: spec.shape.tx, rx: spec.shape.rx, seed });
      }
      if (this.capture !== undefined) {
        link = new PcapTap(link, this.capture, { clock: this.clock, interfaceName: spec.name });
      }
      this.router.addPort({
        link,
        name: spec.name,
        prefixes: [
          `${spec.address}/${spec.prefixLength}`,
          ...tun.extraAddresses.map((e) => `${e.address}/${e.prefixLength}`),
        ],
        addresses: [tun.routerAddress, ...tun.extraAddresses.map((e) => e.routerAddress)],
      });
      this.tuns.push({ config: tun, device, shaper, link });
    } catch (e) {
      link.close();
      device.close();
      throw e;
    }
    this.log.info(
      {
        name: spec.name,
        host: [
          `${spec.address}/${spec.prefixLength}`,
          ...tun.extraAddresses.map((e) => `${e.address}/${e.prefixLength}`),
        ],
        router: [tun.routerAddress, ...tun.extraAddresses.map((e) => e.routerAddress)],
        mtu,
        ...(spec.netns !== undefined ? { netns: spec.netns } : {}),
        ...(spec.shape !== undefined ? { shaping: spec.shape } : {}),
      },
      'link up',
    );
  }

  private installRoutes(): void {
    for (const r of this.config.routes) {
      const target = r.dev !== undefined ? { dev: r.dev } : { via: r.via! };
      let prefixes: string[];
      if (r.prefix !== 'default') prefixes = [r.prefix];
      else if (r.via !== undefined) prefixes = [r.via.includes(':') ? '::/0' : '0.0.0.0/0'];
      else prefixes = ['0.0.0.0/0', '::/0']; // default,dev=NAME: both families
      for (const prefix of prefixes) {
        const port = this.router.addRoute(Prefix.parse(prefix), target);
        this.log.info({ prefix, dev: port.name, ...(r.via !== undefined ? { via: r.via } : {}) }, 'route');
      }
    }
  }

  /** Counters of the engine and, per link, of the shaper and the device. */
  stats(): TunRouterStats {
    const links: Record<string, LinkDrops> = {};
    for (const t of this.tuns) {
      links[t.config.spec.name] = {
        shaper: { ...(t.shaper?.counters.drops ?? {}) },
        device: { ...t.device.counters.drops },
        ...(t.device instanceof TunLink ? { deviceStats: t.device.deviceStats } : {}),
      };
    }
    return { ...this.router.stats(), seconds: (this.clock.now() - this.started) / 1000, links };
  }

  private logStats(): void {
    for (const p of this.router.stats().ports) {
      const c = p.counters;
      this.log.info(
        { name: p.name, rxPackets: c.rxPackets, txPackets: c.txPackets, forwarded: c.forwarded, drops: c.drops },
        'stats',
      );
    }
  }

  /**
   * Stops forwarding and closes every link (the kernel removes the interfaces and their
   * routes). Returns the final counters. Idempotent: a second call returns them again.
   */
  stop(reason: string, opts: { quiet?: boolean } = {}): TunRouterStats {
    if (this.stopped) return this.stats();
    this.stopped = true;
    if (this.statsTimer !== undefined) clearInterval(this.statsTimer);
    const stats = this.stats();
    this.router.close();
    for (const t of this.tuns) {
      // Closing the outermost decorator closes the ones inside it and the device.
      t.link.close();
      t.device.close();
    }
    if (this.capture !== undefined) {
      this.capture.close();
      if (!opts.quiet) this.log.info({ file: this.config.pcap, ...this.capture.stats }, 'capture written');
    }
    if (!opts.quiet) this.log.info({ reason, forwarded: stats.totals.forwarded }, 'stopped');
    return stats;
  }
}

/** `ip [-n NS] [-6] route add PREFIX dev NAME`, in the namespace of the tun's host side. */
export function addHostRoute(tun: RouterTunConfig, prefix: string): void {
  const ns = tun.spec.netns === undefined ? [] : ['-n', tun.spec.netns];
  const family = prefix.includes(':') ? ['-6'] : ['-4'];
  runIp([...ns, ...family, 'route', 'add', prefix, 'dev', tun.spec.name]);
}

/** `ip [-n NS] addr add ADDR/PREFIX dev NAME` on the host's side of the tun. */
export function addHostAddress(tun: RouterTunConfig, cidr: string): void {
  const ns = tun.spec.netns === undefined ? [] : ['-n', tun.spec.netns];
  runIp([...ns, 'addr', 'add', cidr, 'dev', tun.spec.name]);
}
