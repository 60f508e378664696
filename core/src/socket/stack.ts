import { type IpInterface, IpLayer } from '../ip/ip-layer';
import type { Link } from '../link/link';
import type { SimHost } from '../link/sim-network';
import type { TcpConfig } from '../tcp/config';
import type { TcpConnection } from '../tcp/connection';
import { TcpLayer, type TcpListener } from '../tcp/tcp-layer';
import type { Clock } from '../time/clock';
import { VirtualClock } from '../time/virtual-clock';
import { Random } from '../util/random';
import { type TcpConnectOptions, TcpServer, type TcpServerOptions, TcpSocket, type TcpSocketOptions } from './net';
import { IPPROTO_TCP, ProtocolRegistry, type SocketProtocol } from './protocols';

export interface StackOptions {
  clock: Clock;
  /** Seeds ISNs, timestamp offsets and port choices: the same seed gives the same run in virtual time. */
  seed?: number | string;
  /** Stack-wide TCP settings over the defaults (DEFAULT_TCP_CONFIG). */
  tcp?: Partial<TcpConfig>;
}

/** Plain TCP as a socket protocol: the TCP layer's connections and listeners, as they are. */
export const TCP_SOCKET_PROTOCOL: SocketProtocol<TcpConnection, TcpListener> = {
  number: IPPROTO_TCP,
  name: 'tcp',
  connect(stack, remote, opts) {
    return stack.tcp.connect(remote, {
      localAddress: opts.localAddress,
      localPort: opts.localPort,
      config: opts.config,
      events: opts.events,
    });
  },
  listen(stack, port, opts) {
    return stack.tcp.listen(port, { address: opts.address, backlog: opts.backlog });
  },
  unlisten(stack, listener) {
    stack.tcp.unlisten(listener);
  },
  poke(stack, conn) {
    stack.tcp.poke(conn);
  },
};

/**
 * One userspace TCP/IP stack: an IP layer with its interfaces and routes, TCP over it,
 * and the socket layer (a protocol registry and the Node-`net`-shaped API). Several
 * stacks on one SimNetwork, sharing its clock, are several hosts.
 *
 * ```ts
 * const stack = new Stack({ clock: net.clock, seed: 1 });
 * stack.addSimHost(host);
 * stack.createServer((s) => s.pipe(s)).listen(7);
 * ```
 */
export class Stack {
  readonly clock: Clock;
  readonly ip: IpLayer;
  readonly tcp: TcpLayer;
  readonly protocols = new ProtocolRegistry();
  /** Socket-layer random choices (a listen on port 0). */
  readonly rng: Random;
  /** Open sockets (connected, connecting or accepted), for `close()` and inspection. */
  readonly sockets = new Set<TcpSocket>();
  /** Listening servers (and closed ones still waiting for their sockets). */
  readonly servers = new Set<TcpServer>();

  constructor(opts: StackOptions) {
    if (opts === undefined || opts.clock === undefined) throw new TypeError('Stack: a clock is required ({ clock })');
    this.clock = opts.clock;
    const seed = opts.seed ?? 1;
    this.ip = new IpLayer(this.clock);
    this.tcp = new TcpLayer(this.ip, this.clock, { config: opts.tcp, seed: `${seed}/tcp` });
    this.rng = new Random(`${seed}/socket`);
    this.protocols.register(TCP_SOCKET_PROTOCOL);
  }

  /** Adds an interface owning `addressWithPrefix` ("10.0.0.1/24") on `link`, with its on-link route. */
  addInterface(link: Link, addressWithPrefix: string, name?: string): IpInterface {
    return this.ip.addInterface(link, addressWithPrefix, name);
  }

  /** Adds a route ("0.0.0.0/0" for a default route) through the interface named `iface`. */
  addRoute(prefix: string, iface: string): void {
    this.ip.addRoute(prefix, iface);
  }

  /** Adds every interface of a simulated host (its links and addresses). */
  addSimHost(host: SimHost): void {
    for (const i of host.interfaces) this.addInterface(i.link, `${i.address}/${i.prefixLength}`, i.name);
  }

  /** As `net.createServer([options][, connectionListener])`. */
  createServer(
    opts?: TcpServerOptions | ((socket: TcpSocket) => void),
    onConnection?: (socket: TcpSocket) => void,
  ): TcpServer {
    if (typeof opts === 'function') return new TcpServer(this, {}, opts);
    return new TcpServer(this, opts ?? {}, onConnection);
  }

  /** As `net.connect(options[, connectListener])` or `net.connect(port[, host][, connectListener])`: an active open; outcome by 'connect' or 'error'. */
  connect(opts: TcpConnectOptions & TcpSocketOptions, onConnect?: () => void): TcpSocket;
  connect(port: number | string, host?: string, onConnect?: () => void): TcpSocket;
  connect(port: number | string, onConnect?: () => void): TcpSocket;
  connect(
    first: (TcpConnectOptions & TcpSocketOptions) | number | string,
    second?: string | (() => void),
    third?: () => void,
  ): TcpSocket {
    const onConnect = typeof second === 'function' ? second : third;
    const opts: TcpConnectOptions & TcpSocketOptions =
      typeof first === 'object' && first !== null
        ? first
        : { port: first, host: typeof second === 'string' ? second : undefined };
    const socket = new TcpSocket(this, {
      allowHalfOpen: opts.allowHalfOpen,
      readableHighWaterMark: opts.readableHighWaterMark,
      writableHighWaterMark: opts.writableHighWaterMark,
    });
    return socket.connect(opts, onConnect);
  }

  /** A socket not yet connected (as `new net.Socket()`); call `connect` on it. */
  socket(opts: TcpSocketOptions = {}): TcpSocket {
    return new TcpSocket(this, opts);
  }

  /**
   * Stops every server and destroys every socket (RST for the unfinished ones), then
   * resets whatever TCP still holds (TIME-WAIT, orphaned closes) and drops fragments in
   * progress: afterwards no timer of the stack is pending, so a real-time process can exit.
   */
  close(): void {
    for (const s of [...this.servers]) if (s.listening) s.close();
    for (const s of [...this.sockets]) s.destroy();
    this.tcp.closeAll();
    this.ip.close();
  }
}

export interface RunUntilOptions {
  /** Give up (reject) after this much clock time: virtual ms for a VirtualClock, wall ms otherwise. Default 120 000 virtual, 10 000 real. */
  timeoutMs?: number;
  /** Real clock only: how often to test the predicate (ms). Default 2. */
  pollMs?: number;
  /** Virtual clock only: fail after this many timer events (a livelock guard). Default 50 000 000. */
  maxSteps?: number;
}

/** Steps between forced yields, so streams keep up even inside one busy virtual instant. */
const STEPS_PER_YIELD = 256;
/** Yields in a row with no timer pending before giving up: nothing can make the predicate true. */
const IDLE_YIELDS = 8;

const yieldToNode = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Runs the stack (or a clock) until `predicate()` holds. Resolves then; rejects after
 * `timeoutMs` of clock time, or (virtual time) when nothing is left to run and the
 * predicate is still false.
 *
 * Virtual time: steps the clock, and before moving time forward lets Node run its
 * queued work (process.nextTick, promises, setImmediate), because the socket layer and
 * streams act on ticks: every event due at the current instant runs, then Node gets a
 * turn, then time jumps to the next event. It also yields every 256 steps. Real time: polls.
 */
export async function runUntil(
  target: Stack | Clock,
  predicate: () => boolean,
  opts: RunUntilOptions = {},
): Promise<void> {
  const clock = target instanceof Stack ? target.clock : target;
  if (!(clock instanceof VirtualClock)) return pollUntil(clock, predicate, opts);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const deadline = clock.now() + timeoutMs;
  const maxSteps = opts.maxSteps ?? 50_000_000;
  // Whether timers ran since Node last had a turn (their ticks may not have run yet).
  let ranSinceYield = true;
  let steps = 0;
  let idle = 0;
  for (;;) {
    if (predicate()) return;
    const due = clock.nextDue();
    if (due === undefined) {
      if (!ranSinceYield && ++idle > IDLE_YIELDS) {
        throw new Error(
          `runUntil: went idle at ${clock.now()} ms (virtual) with the condition still false: nothing left to run`,
        );
      }
      await yieldToNode();
      ranSinceYield = false;
      continue;
    }
    idle = 0;
    if (due > clock.now() && ranSinceYield) {
      // About to move time: let ticks and streams act at this instant first.
      await yieldToNode();
      ranSinceYield = false;
      continue;
    }
    if (due > deadline) {
      throw new Error(
        `runUntil: condition still false after ${timeoutMs} ms of virtual time (now ${clock.now()} ms, next event at ${due} ms)`,
      );
    }
    if (steps >= maxSteps)
      throw new Error(`runUntil: more than ${maxSteps} timer events with the condition still false`);
    clock.step();
    ranSinceYield = true;
    if (++steps % STEPS_PER_YIELD === 0) {
      await yieldToNode();
      ranSinceYield = false;
    }
  }
}

async function pollUntil(clock: Clock, predicate: () => boolean, opts: RunUntilOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const pollMs = opts.pollMs ?? 2;
  const deadline = clock.now() + timeoutMs;
  for (;;) {
    if (predicate()) return;
    if (clock.now() >= deadline) throw new Error(`runUntil: condition still false after ${timeoutMs} ms`);
    await new Promise<void>((resolve) => setTimeout(resolve, pollMs));
  }
}
