import type { Command } from 'commander';
import { UsageError } from '../cli/usage-error';
import { defaultSocketPath } from '../ipc/paths';
import { startControlSocket } from '../ipc/server';
import { TunError } from '../link/tun';
import { type DaemonFlags, resolveDaemonConfig } from './config';
import { Daemon } from './daemon';
import { createLogger } from './logger';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** `nuse daemon`: runs the stack in the foreground until SIGINT or SIGTERM. */
export function registerDaemonCommand(program: Command): void {
  program
    .command('daemon')
    .description('run the userspace stack in the foreground on tun links (needs root or CAP_NET_ADMIN)')
    .option(
      '--tun <spec>',
      'a link: NAME,ADDR/PREFIX[,peer=ADDR][,netns=NS][,mtu=N][,delay=20ms][,jitter=2ms][,loss=1%][,rate=20mbit]... (repeatable; see docs/daemon.md)',
      collect,
      [],
    )
    .option('--route <spec>', 'a route: PREFIX|default,via=ADDR|dev=NAME (repeatable)', collect, [])
    .option('--config <file>', 'a JSON config file (links, routes, log, tcp settings)')
    .option('--pcap <file>', 'write a pcapng capture of every link (one interface per link) to FILE')
    .option('--log-level <level>', 'trace, debug, info, warn, error, fatal or silent (default info)')
    .option('--log-format <format>', 'text or json (default: text on a terminal, json otherwise)')
    .option(
      '--kernel <prefix>',
      'policy: destinations in PREFIX stay on the kernel for every program run through the shim (repeatable; loopback always does)',
      collect,
      [],
    )
    .option(
      '--only <prefix>',
      'policy: only destinations in PREFIX go to the userspace stack (repeatable)',
      collect,
      [],
    )
    .option('--mptcp', "policy: upgrade every program's plain TCP sockets to MPTCP")
    .option('--socket <path>', `the control socket for "nuse run" (default ${defaultSocketPath()})`)
    .action(async (flags: DaemonFlags & { socket?: string }) => {
      const config = resolveDaemonConfig(flags);
      const logger = createLogger({ level: config.logLevel, format: config.logFormat });
      // Signal handlers go in before anything is announced: a SIGTERM sent the moment
      // "ready" is logged must stop the daemon cleanly, not kill it with the default action.
      let stopOn: ((signal: NodeJS.Signals) => void) | undefined;
      let early: NodeJS.Signals | undefined;
      const onSignal = (signal: NodeJS.Signals): void => {
        // A second signal while stopping ends the process at once.
        process.once('SIGINT', () => process.exit(130));
        process.once('SIGTERM', () => process.exit(143));
        if (stopOn !== undefined) stopOn(signal);
        else early = signal;
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const dropHandlers = (): void => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      };
      let daemon: Daemon;
      try {
        daemon = Daemon.start(config, { logger });
      } catch (e) {
        dropHandlers();
        if (e instanceof UsageError) throw e;
        // The device layer's errors (TunError, or the addon's errno errors) say what to fix.
        if (e instanceof TunError) throw new StartupError(`cannot open the links: ${e.message}`);
        if (typeof (e as NodeJS.ErrnoException).code === 'string') throw new StartupError((e as Error).message);
        throw e;
      }
      await new Promise<void>((resolve, reject) => {
        // The control socket for `nuse run` (core/src/ipc).
        const ipc = startControlSocket({ stack: daemon.stack, path: flags.socket, logger, policy: config.policy });
        stopOn = (signal) => {
          ipc.close();
          daemon.stop(signal);
          resolve();
        };
        ipc.ready.then(
          () => logger.info({ links: daemon.links.length, socket: ipc.path }, 'ready'),
          (e: Error) => {
            dropHandlers();
            stopOn = undefined;
            daemon.stop('startup failed', { quiet: true });
            reject(new StartupError(`cannot open the control socket: ${e.message}`));
          },
        );
        if (early !== undefined) stopOn(early);
      });
    });
}

/** The daemon could not start (no permission, the name is taken, ...): exit 1 with one line. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}
