/**
 * `nuse router`: a userspace IP router between tun interfaces, with the shaper on each
 * (delay, jitter, loss, reordering, rate: what netem would do, on kernels without it)
 * and an optional TCP-option-stripping middlebox. See docs/router.md.
 */

import type { Command } from 'commander';
import { UsageError } from '../cli/usage-error';
import { StartupError } from '../daemon/command';
import { createLogger } from '../daemon/logger';
import { TunError } from '../link/tun';
import { type RouterFlags, resolveRouterConfig } from './config';
import { formatRouterStats } from './stats';
import { TunRouter } from './tun-router';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerRouterCommand(program: Command): void {
  program
    .command('router')
    .description(
      'forward IP packets between tun interfaces (one per host, e.g. per network namespace) through the shaper; needs root',
    )
    .option(
      '--tun <spec>',
      "a link: NAME,ADDR/PREFIX[,netns=NS][,addr=ADDR/PREFIX][,peer=ROUTER_ADDR][,mtu=N][,route=PREFIX|default][,delay=20ms][,jitter=2ms][,loss=1%][,rate=20mbit][,tx-KEY=..][,rx-KEY=..]; ADDR is the host side's address (repeatable; see docs/router.md)",
      collect,
      [],
    )
    .option('--route <spec>', 'an extra route: PREFIX|default,dev=NAME or PREFIX,via=ADDR (repeatable)', collect, [])
    .option(
      '--strip-option <kinds>',
      'overwrite these TCP options with NOPs in forwarded segments: numbers or names (mptcp, ts, sack-permitted, tfo, ...), comma-separated (repeatable)',
      collect,
      [],
    )
    .option(
      '--strip-option-on <place>',
      'strip only on NAME (both directions), NAME:rx or NAME:tx (repeatable)',
      collect,
      [],
    )
    .option('--strip-syn-only', 'strip only from SYN and SYN-ACK segments')
    .option('--icmp-rate <n>', 'ICMP errors per second the router may send (default 1000; 0: no limit)')
    .option('--pcap <file>', 'write a pcapng capture (one interface per tun, next to the router) to FILE')
    .option('--stats-interval <seconds>', 'log the counters every so many seconds')
    .option('--stats-json', 'print the exit counters as one JSON object instead of text lines')
    .option('--seed <seed>', "seed of the shapers' randomness (default fixed: runs repeat)")
    .option('--log-level <level>', 'trace, debug, info, warn, error, fatal or silent (default info)')
    .option('--log-format <format>', 'text or json (default: text on a terminal, json otherwise)')
    .action(async (flags: RouterFlags) => {
      const config = resolveRouterConfig(flags);
      const logger = createLogger({ level: config.logLevel, format: config.logFormat });
      let router: TunRouter;
      try {
        router = TunRouter.start(config, { logger });
      } catch (e) {
        if (e instanceof UsageError) throw e;
        // The device layer's errors (TunError, or errno errors) say what to fix.
        if (e instanceof TunError) throw new StartupError(`cannot open the links: ${e.message}`);
        if (typeof (e as NodeJS.ErrnoException).code === 'string') throw new StartupError((e as Error).message);
        if (e instanceof Error && e.message.startsWith('router: ')) throw new UsageError(e.message.slice(8));
        throw e;
      }
      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        const onSignal = (s: NodeJS.Signals): void => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          // A second signal while stopping ends the process at once.
          process.once('SIGINT', () => process.exit(130));
          process.once('SIGTERM', () => process.exit(143));
          resolve(s);
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
      const stats = router.stop(signal);
      process.stdout.write(config.statsJson ? `${JSON.stringify(stats)}\n` : formatRouterStats(stats));
    });
}
