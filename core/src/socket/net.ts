import { EventEmitter } from 'node:events';
import { constants as osConstants } from 'node:os';
import { Duplex } from 'node:stream';
import type { TcpConfig } from '../tcp/config';
import type { Endpoint } from '../tcp/connection';
import type { TimerHandle } from '../time/clock';
import { formatIp, parseIp } from '../wire/address';
import {
  type CodedError,
  IPPROTO_TCP,
  type SocketProtocol,
  type StreamConnection,
  type StreamConnectionEvents,
  type StreamError,
  type StreamListener,
} from './protocols';
import type { Stack } from './stack';

/**
 * An embedding API shaped like Node's `net`: `TcpSocket` is a `stream.Duplex` over one
 * stack connection, `TcpServer` an EventEmitter over one listener. Code written for
 * `net.Socket` / `net.Server` runs on the userspace stack with the stack object in place
 * of the `net` module.
 *
 * Events from the connection (which fire synchronously, in the middle of segment
 * processing) are never acted on in place: they schedule one `pump` on
 * `process.nextTick`, which reads, writes and emits. So user code never re-enters
 * the TCP state machine, and stream events are asynchronous as in Node. In virtual
 * time, drive the clock with `runUntil` (stack.ts), which lets ticks run between
 * clock steps.
 */

// Module-level copies: under jest's vm sandbox each global lookup costs ~170 ns.
const { nextTick } = process;
const bufferFrom = Buffer.from;
const ERRNO: Readonly<Record<string, number>> = osConstants.errno as unknown as Record<string, number>;

/** Node's errno for a code: negative, as libuv reports it (ENOTFOUND is getaddrinfo's EAI_NONAME). */
function errnoOf(code: string): number | undefined {
  if (code === 'ENOTFOUND') return -3008;
  const n = ERRNO[code];
  return n === undefined ? undefined : -n;
}

interface ErrorDetail {
  address?: string;
  port?: number;
  hostname?: string;
  cause?: unknown;
  /** Replaces the default "syscall CODE [address:port]" message. */
  message?: string;
}

/** A Node-style system error: `.code`, `.errno`, `.syscall`, and `.address`/`.port` when they apply. */
export function systemError(code: string, syscall: string, detail: ErrorDetail = {}): CodedError {
  let message = detail.message;
  if (message === undefined) {
    message = `${syscall} ${code}`;
    if (detail.hostname !== undefined) message += ` ${detail.hostname}`;
    else if (detail.address !== undefined)
      message += ` ${detail.address}${detail.port !== undefined ? `:${detail.port}` : ''}`;
  }
  const err = new Error(message, detail.cause === undefined ? undefined : { cause: detail.cause }) as CodedError & {
    address?: string;
    port?: number;
    hostname?: string;
  };
  err.code = code;
  const errno = errnoOf(code);
  if (errno !== undefined) err.errno = errno;
  err.syscall = syscall;
  if (detail.hostname !== undefined) err.hostname = detail.hostname;
  if (detail.address !== undefined) err.address = detail.address;
  if (detail.port !== undefined) err.port = detail.port;
  return err;
}

function codeOf(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

/** Node throws on a bad port (ERR_SOCKET_BAD_PORT): a programming error, not a network one. */
function checkPort(port: unknown, name: string, allowZero: boolean): number {
  const n = typeof port === 'string' && port.trim() !== '' ? Number(port) : port;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) {
    throw Object.assign(
      new RangeError(`${name} should be ${allowZero ? '>= 0' : '> 0'} and < 65536. Received ${String(port)}.`),
      {
        code: 'ERR_SOCKET_BAD_PORT',
      },
    );
  }
  return n;
}

/** An IP literal (no DNS): "localhost" is 127.0.0.1; anything else that does not parse is ENOTFOUND, as a failed lookup. */
function parseHost(host: string): Uint8Array | undefined {
  if (host === 'localhost') return Uint8Array.of(127, 0, 0, 1);
  const text = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  try {
    return parseIp(text);
  } catch {
    return undefined;
  }
}

function isUnspecified(a: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}

function familyOf(a: Uint8Array): 'IPv4' | 'IPv6' {
  return a.length === 4 ? 'IPv4' : 'IPv6';
}

export interface AddressInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

export interface TcpSocketOptions {
  /**
   * Node's default is false: when the peer ends (FIN) and 'end' is emitted, the socket
   * ends its own side too (our FIN), so a socket closes when either side ends. With
   * true, the writable side stays open until `end()` (half-open, shutdown(SHUT_WR) semantics).
   */
  allowHalfOpen?: boolean;
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
}

export interface TcpConnectOptions {
  /** An IP literal ("10.0.0.2", "fd00::2", "[fd00::2]"); "localhost" means 127.0.0.1. No DNS. Default "localhost". */
  host?: string;
  port: number | string;
  localAddress?: string;
  localPort?: number;
  /** Socket protocol number (IPPROTO_TCP = 6 by default; IPPROTO_MPTCP = 262 once a plugin registers it). */
  protocol?: number;
  /** TCP_NODELAY from the start. */
  noDelay?: boolean;
  /** SO_KEEPALIVE from the start, and the idle time before the first probe (ms; 0 keeps the stack's). */
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  /** As `socket.setTimeout(timeout)`. */
  timeout?: number;
  /** Per-connection TCP settings (buffers, congestion control, ...), over the stack's. */
  tcp?: Partial<TcpConfig>;
}

interface PendingWrite {
  chunk: Buffer;
  off: number;
  cb: (error?: Error | null) => void;
}

type ReadyState = 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed';

/**
 * A TCP (or any registered stream protocol) connection as a Node `stream.Duplex`, with
 * the events, methods and properties of `net.Socket`.
 *
 * Backpressure is end to end: `_write` hands the connection what its send buffer takes
 * and holds the write callback until the rest went in, so `write()` returns false while
 * the TCP send buffer is full; when the readable side is not consumed (`push()` returns
 * false) the socket stops reading the connection, its receive buffer fills and the
 * advertised window closes.
 */
export class TcpSocket extends Duplex {
  /** Bytes delivered to the readable side. */
  bytesRead = 0;
  /** True while the handshake is in progress. */
  connecting = false;
  /** The idle timeout set by `setTimeout` (ms), or undefined. */
  timeout: number | undefined;

  private conn: StreamConnection | undefined;
  private protocol: SocketProtocol | undefined;
  private established = false;
  private connClosed = false;
  private connError: StreamError | undefined;
  private reading = false;
  private eofPushed = false;
  private pumpScheduled = false;
  private pendingWrite: PendingWrite | undefined;
  private finalCallback: ((error?: Error | null) => void) | undefined;
  private written = 0;
  private target: { address: string; port: number } | undefined;
  private wantNoDelay: boolean | undefined;
  private wantKeepAlive: { on: boolean; delay: number } | undefined;
  private idleTimer: TimerHandle | undefined;
  private lastActivity = 0;
  private readonly events: StreamConnectionEvents;
  private readonly pumpFn = (): void => this.pump();

  constructor(
    readonly stack: Stack,
    opts: TcpSocketOptions = {},
  ) {
    super({
      allowHalfOpen: opts.allowHalfOpen === true,
      // 'close' carries hadError, as net.Socket's; we emit it ourselves.
      emitClose: false,
      autoDestroy: true,
      decodeStrings: true,
      readableHighWaterMark: opts.readableHighWaterMark,
      writableHighWaterMark: opts.writableHighWaterMark,
    });
    const schedule = (): void => this.schedule();
    this.events = {
      onEstablished: () => {
        this.established = true;
        this.schedule();
      },
      onReadable: schedule,
      onWritable: schedule,
      onRemoteEnd: schedule,
      onClosed: (error) => {
        this.connClosed = true;
        this.connError = error;
        this.schedule();
      },
    };
    stack.sockets.add(this);
  }

  // ---------------------------------------------------------------- opening

  /**
   * Starts an active open (as `net.Socket#connect`). Failures arrive as an 'error' event
   * (ENOTFOUND for a host that is not an IP literal, EHOSTUNREACH without a route,
   * ECONNREFUSED, ETIMEDOUT, EPROTONOSUPPORT; and what an ICMP error about the SYN maps
   * to, as Linux: EHOSTUNREACH, ENETUNREACH, ECONNREFUSED, ENOPROTOOPT, EACCES, EPROTO...,
   * with Node's message "connect EHOSTUNREACH 10.1.2.3:80"); a bad port throws, as in Node.
   */
  connect(opts: TcpConnectOptions, onConnect?: () => void): this;
  connect(port: number | string, host?: string, onConnect?: () => void): this;
  connect(port: number | string, onConnect?: () => void): this;
  connect(first: TcpConnectOptions | number | string, second?: string | (() => void), third?: () => void): this {
    let opts: TcpConnectOptions;
    let onConnect: (() => void) | undefined;
    if (typeof first === 'object' && first !== null) {
      opts = first;
      onConnect = typeof second === 'function' ? second : undefined;
    } else {
      opts = { port: first, host: typeof second === 'string' ? second : undefined };
      onConnect = typeof second === 'function' ? second : third;
    }
    if (this.conn !== undefined || this.connecting) {
      throw systemError(this.connecting ? 'EALREADY' : 'EISCONN', 'connect', {
        message: this.connecting
          ? 'connect EALREADY: a connect is already in progress'
          : 'connect EISCONN: already connected',
      });
    }
    if (this.destroyed) throw Object.assign(new Error('connect on a destroyed socket'), { code: 'ERR_SOCKET_CLOSED' });
    const port = checkPort(opts.port, 'Port', false);
    if (opts.localPort !== undefined) checkPort(opts.localPort, 'localPort', true);
    if (onConnect !== undefined) this.once('connect', onConnect);
    this.connecting = true;
    const host = opts.host ?? 'localhost';
    this.target = { address: host, port };
    if (opts.timeout !== undefined) this.setTimeout(opts.timeout);

    const fail = (err: Error): this => {
      nextTick(() => this.destroy(err));
      return this;
    };
    const address = parseHost(host);
    if (address === undefined) return fail(systemError('ENOTFOUND', 'getaddrinfo', { hostname: host }));
    this.target.address = formatIp(address);
    let localAddress: Uint8Array | undefined;
    if (opts.localAddress !== undefined) {
      localAddress = parseHost(opts.localAddress);
      if (localAddress === undefined || localAddress.length !== address.length) {
        return fail(
          systemError('EINVAL', 'bind', { address: opts.localAddress, message: `bind EINVAL ${opts.localAddress}` }),
        );
      }
      if (!isUnspecified(localAddress) && !this.stack.ip.isLocalAddress(localAddress)) {
        return fail(systemError('EADDRNOTAVAIL', 'bind', { address: opts.localAddress, port: opts.localPort }));
      }
    }
    let protocol: SocketProtocol;
    try {
      protocol = this.stack.protocols.get(opts.protocol ?? IPPROTO_TCP);
    } catch (e) {
      return fail(systemError('EPROTONOSUPPORT', 'socket', { message: (e as Error).message, cause: e }));
    }

    const config: Partial<TcpConfig> = { ...opts.tcp };
    const noDelay = opts.noDelay ?? this.wantNoDelay;
    if (noDelay !== undefined) config.noDelay = noDelay;
    const keepAlive = opts.keepAlive ?? this.wantKeepAlive?.on;
    const keepAliveDelay = opts.keepAliveInitialDelay ?? this.wantKeepAlive?.delay;
    if (keepAlive !== undefined) config.keepAlive = keepAlive;
    if (keepAlive === true && keepAliveDelay !== undefined && keepAliveDelay > 0)
      config.keepAliveIdleMs = keepAliveDelay;

    const remote: Endpoint = { address, port };
    let conn: StreamConnection;
    try {
      conn = protocol.connect(this.stack, remote, {
        localAddress,
        localPort: opts.localPort,
        config,
        events: this.events,
      });
    } catch (e) {
      return fail(this.translate(e, 'connect'));
    }
    conn.events = this.events;
    this.conn = conn;
    this.protocol = protocol;
    // A closed connection (refused at once) reports through onClosed; pump looks anyway.
    if (conn.state === 'CLOSED') {
      this.connClosed = true;
      this.connError = conn.error;
    }
    this.schedule();
    return this;
  }

  /** @internal Wraps an accepted, established connection (TcpServer does this). */
  attachAccepted(conn: StreamConnection, protocol: SocketProtocol): void {
    this.conn = conn;
    this.protocol = protocol;
    this.established = true;
    conn.events = this.events;
    if (conn.state === 'CLOSED') {
      this.connClosed = true;
      this.connError = conn.error;
    }
    if (this.wantNoDelay !== undefined) this.setNoDelay(this.wantNoDelay);
    if (this.wantKeepAlive !== undefined) this.setKeepAlive(this.wantKeepAlive.on, this.wantKeepAlive.delay);
    this.schedule();
    // As net.Server's sockets: start reading at once unless paused (pauseOnConnect).
    if (!this.isPaused()) this.read(0);
  }

  // ---------------------------------------------------------------- the pump

  private schedule(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    nextTick(this.pumpFn);
  }

  /** Acts on whatever the connection reported: connect, write, read, EOF, close. */
  private pump(): void {
    this.pumpScheduled = false;
    const conn = this.conn;
    if (conn === undefined || this.destroyed) return;
    if (this.connecting) {
      if (this.established) {
        this.onConnected(conn);
        if (this.destroyed) return;
      } else {
        if (this.connClosed) this.destroy(this.translate(this.connError ?? closedError(), 'connect'));
        return;
      }
    }
    if (this.pendingWrite !== undefined) this.continueWrite(conn);
    if (this.reading) this.pullData(conn);
    else this.maybePushEof(conn);
    if (this.connClosed && !this.destroyed) {
      if (this.connError !== undefined) {
        this.destroy(this.translate(this.connError, 'read'));
        return;
      }
      const p = this.pendingWrite;
      if (p !== undefined) {
        this.pendingWrite = undefined;
        p.cb(systemError('EPIPE', 'write'));
      }
    }
  }

  private onConnected(conn: StreamConnection): void {
    this.connecting = false;
    this.touch();
    this.emit('connect');
    if (this.destroyed) return;
    this.emit('ready');
    if (this.destroyed) return;
    const fc = this.finalCallback;
    if (fc !== undefined && this.pendingWrite === undefined) {
      this.finalCallback = undefined;
      this.shutdown(conn, fc);
    }
    // As net.Socket: start reading at once (fills the readable buffer up to the mark).
    if (!this.isPaused()) this.read(0);
  }

  // ---------------------------------------------------------------- writing

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.pendingWrite = { chunk, off: 0, cb };
    const conn = this.conn;
    if (conn !== undefined && !this.connecting) this.continueWrite(conn);
  }

  /** Moves as much of the held chunk as the send buffer takes; completes the write when all went in. */
  private continueWrite(conn: StreamConnection): void {
    const p = this.pendingWrite!;
    let n: number;
    try {
      n = conn.send(p.off === 0 ? p.chunk : p.chunk.subarray(p.off));
    } catch (e) {
      this.pendingWrite = undefined;
      p.cb(this.translate(e, 'write'));
      return;
    }
    if (n > 0) {
      p.off += n;
      this.written += n;
      if (this.timeout !== undefined) this.touch();
      this.protocol!.poke(this.stack, conn);
    }
    if (p.off >= p.chunk.length) {
      this.pendingWrite = undefined;
      p.cb();
      const fc = this.finalCallback;
      if (fc !== undefined && this.pendingWrite === undefined) {
        this.finalCallback = undefined;
        this.shutdown(conn, fc);
      }
    }
  }

  override _final(cb: (error?: Error | null) => void): void {
    const conn = this.conn;
    if (conn === undefined || this.connecting || this.pendingWrite !== undefined) {
      this.finalCallback = cb;
      return;
    }
    this.shutdown(conn, cb);
  }

  /** shutdown(SHUT_WR): FIN once the queued bytes are sent. 'finish' follows at once, as in Node. */
  private shutdown(conn: StreamConnection, cb: (error?: Error | null) => void): void {
    if (!this.connClosed) {
      conn.shutdownWrite();
      this.protocol!.poke(this.stack, conn);
    }
    cb();
  }

  // ---------------------------------------------------------------- reading

  override _read(): void {
    this.reading = true;
    const conn = this.conn;
    if (conn !== undefined && !this.connecting) this.pullData(conn);
  }

  /** Pushes what the connection holds until the readable side is full; then stops, which closes the TCP window. */
  private pullData(conn: StreamConnection): void {
    const max = this.readableHighWaterMark;
    let got = false;
    while (conn.readable > 0) {
      const data = conn.read(max);
      const n = data.length;
      if (n === 0) break;
      got = true;
      this.bytesRead += n;
      if (!this.push(bufferFrom(data.buffer, data.byteOffset, n))) {
        this.reading = false;
        break;
      }
    }
    if (got) {
      if (this.timeout !== undefined) this.touch();
      // Reading may open the receive window: the connection decides whether to send an update.
      if (!this.connClosed) this.protocol!.poke(this.stack, conn);
    }
    this.maybePushEof(conn);
  }

  private maybePushEof(conn: StreamConnection): void {
    if (this.eofPushed || conn.readable > 0) return;
    if (conn.atEof || (this.connClosed && this.connError === undefined)) {
      this.eofPushed = true;
      this.push(null);
    }
  }

  // ---------------------------------------------------------------- closing

  /**
   * Ends the connection now. Graceful (FIN after the queued data, as close(2)) when the
   * writable side was ended and everything written went into the connection, with no
   * unread data left; otherwise, or with an error, an abort (RST). An unfinished socket
   * destroyed without error therefore resets its peer, who sees ECONNRESET.
   */
  override _destroy(error: Error | null, cb: (error?: Error | null) => void): void {
    this.cancelIdleTimer();
    const conn = this.conn;
    if (conn !== undefined && !this.connClosed) {
      conn.events = {};
      this.connClosed = true;
      const graceful =
        error === null &&
        !this.connecting &&
        this.writableEnded &&
        this.pendingWrite === undefined &&
        this.writableLength === 0 &&
        this.readableLength === 0;
      if (graceful) conn.close();
      else conn.abort();
      this.protocol!.poke(this.stack, conn);
    }
    this.connecting = false;
    this.finalCallback = undefined;
    const p = this.pendingWrite;
    if (p !== undefined) {
      // The held write never completes: its callback hears so, as Node's do.
      this.pendingWrite = undefined;
      p.cb(
        Object.assign(new Error('Cannot call write after a stream was destroyed'), { code: 'ERR_STREAM_DESTROYED' }),
      );
    }
    this.stack.sockets.delete(this);
    const hadError = error !== null && error !== undefined;
    cb(error);
    nextTick(() => this.emit('close', hadError));
  }

  /** Aborts with RST whatever the state (Node's `resetAndDestroy`, SO_LINGER {1, 0}). */
  resetAndDestroy(): this {
    const conn = this.conn;
    if (conn !== undefined && !this.connClosed) {
      conn.events = {};
      this.connClosed = true;
      conn.abort();
      this.protocol!.poke(this.stack, conn);
    }
    return this.destroy();
  }

  /** Ends the writable side and destroys the socket once it finished (Node's `destroySoon`). */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  // ---------------------------------------------------------------- options

  /** TCP_NODELAY (Nagle off). As in Node the argument defaults to true. */
  setNoDelay(noDelay = true): this {
    const conn = this.conn;
    if (conn === undefined) {
      this.wantNoDelay = noDelay;
      return this;
    }
    if (!this.connClosed) {
      conn.setNoDelay(noDelay);
      this.protocol!.poke(this.stack, conn);
    }
    return this;
  }

  /** SO_KEEPALIVE; `initialDelay` (ms) sets the idle time before the first probe, 0 keeps the current one. */
  setKeepAlive(enable = false, initialDelay = 0): this {
    const conn = this.conn;
    if (conn === undefined) {
      this.wantKeepAlive = { on: enable, delay: initialDelay };
      return this;
    }
    if (!this.connClosed) {
      conn.setKeepAlive(enable, initialDelay > 0 ? initialDelay : undefined);
      this.protocol!.poke(this.stack, conn);
    }
    return this;
  }

  /**
   * Emits 'timeout' after `ms` of inactivity (no data read or written), in the stack's
   * clock time; the socket is not closed (as Node). 0 disables it.
   */
  setTimeout(ms: number, callback?: () => void): this {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`timeout must be a finite number >= 0, got ${ms}`);
    if (callback !== undefined) {
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    this.cancelIdleTimer();
    if (ms === 0) {
      this.timeout = undefined;
      return this;
    }
    this.timeout = ms;
    this.touch();
    return this;
  }

  /** Records activity; (re)arms the idle timer when it is not armed. */
  private touch(): void {
    const ms = this.timeout;
    if (ms === undefined) return;
    const clock = this.stack.clock;
    this.lastActivity = clock.now();
    if (this.idleTimer === undefined && !this.destroyed) this.idleTimer = clock.setTimer(ms, () => this.onIdleTimer());
  }

  private onIdleTimer(): void {
    this.idleTimer = undefined;
    const ms = this.timeout;
    if (ms === undefined || this.destroyed) return;
    const clock = this.stack.clock;
    const idle = clock.now() - this.lastActivity;
    if (idle >= ms) {
      // Not re-armed until there is activity again (Node refreshes its timer on activity).
      this.emit('timeout');
      return;
    }
    this.idleTimer = clock.setTimer(ms - idle, () => this.onIdleTimer());
  }

  private cancelIdleTimer(): void {
    if (this.idleTimer !== undefined) {
      this.stack.clock.cancelTimer(this.idleTimer);
      this.idleTimer = undefined;
    }
  }

  /** Node compatibility: nothing to reference-count on the stack's clock. */
  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  // ---------------------------------------------------------------- properties

  /** Bytes accepted by the connection's send buffer. */
  get bytesWritten(): number {
    return this.written;
  }

  /** True before the connection is established (not yet connected, or connecting). */
  get pending(): boolean {
    return this.conn === undefined || this.connecting;
  }

  get readyState(): ReadyState {
    if (this.connecting) return 'opening';
    if (this.conn === undefined || this.destroyed) return 'closed';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  get remoteAddress(): string | undefined {
    return this.conn === undefined ? undefined : formatIp(this.conn.remote.address);
  }

  get remotePort(): number | undefined {
    return this.conn?.remote.port;
  }

  get remoteFamily(): 'IPv4' | 'IPv6' | undefined {
    return this.conn === undefined ? undefined : familyOf(this.conn.remote.address);
  }

  get localAddress(): string | undefined {
    return this.conn === undefined ? undefined : formatIp(this.conn.local.address);
  }

  get localPort(): number | undefined {
    return this.conn?.local.port;
  }

  get localFamily(): 'IPv4' | 'IPv6' | undefined {
    return this.conn === undefined ? undefined : familyOf(this.conn.local.address);
  }

  /** The local endpoint, as `net.Socket#address()`; {} before connect. */
  address(): AddressInfo | Record<string, never> {
    const c = this.conn;
    if (c === undefined) return {};
    return { address: formatIp(c.local.address), family: familyOf(c.local.address), port: c.local.port };
  }

  /** The connection underneath (for statistics and tests); undefined before connect. */
  get connection(): StreamConnection | undefined {
    return this.conn;
  }

  // ---------------------------------------------------------------- errors

  /** A connection or stack error as the Node error a `net` user expects. */
  private translate(e: unknown, syscall: string): CodedError {
    const code = codeOf(e);
    if (code === 'EPIPE') return systemError('EPIPE', 'write', { cause: e });
    if (code === undefined) {
      // The TCP layer throws a plain Error for a four-tuple in use.
      if (e instanceof Error && /in use/.test(e.message)) return systemError('EADDRINUSE', syscall, { cause: e });
      return systemError('EIO', syscall, {
        message: `${syscall}: ${e instanceof Error ? e.message : String(e)}`,
        cause: e,
      });
    }
    if (syscall === 'connect' && this.target !== undefined) {
      return systemError(code, 'connect', { address: this.target.address, port: this.target.port, cause: e });
    }
    return systemError(code, syscall, { cause: e });
  }
}

function closedError(): StreamError {
  return Object.assign(new Error('the connection closed'), { code: 'ECONNABORTED' });
}

// ---------------------------------------------------------------- server

export interface TcpServerOptions {
  /** For the accepted sockets; see TcpSocketOptions. Default false, as Node. */
  allowHalfOpen?: boolean;
  /** Accepted sockets start paused (no reading until `resume()`). */
  pauseOnConnect?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  /** Socket protocol (IPPROTO_TCP by default). */
  protocol?: number;
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
}

export interface TcpListenOptions {
  /** 0 picks a free port in the ephemeral range. */
  port?: number | string;
  /** An IP literal; omitted, "0.0.0.0" or "::": every local address. */
  host?: string;
  backlog?: number;
}

/** Node's linux default (SOMAXCONN) when listen() is given no backlog. */
const DEFAULT_BACKLOG = 511;
const EPHEMERAL_LOW = 32768;
const EPHEMERAL_HIGH = 60999;

/**
 * A listening socket as `net.Server`: 'listening', 'connection' (a connected TcpSocket),
 * 'close' (after `close()` and once every accepted socket closed), 'error'.
 */
export class TcpServer extends EventEmitter {
  private listener: StreamListener | undefined;
  private protocol: SocketProtocol | undefined;
  private boundHost: string | undefined;
  private acceptScheduled = false;
  private closing = false;
  private readonly sockets = new Set<TcpSocket>();
  private readonly opts: TcpServerOptions;

  constructor(
    readonly stack: Stack,
    opts: TcpServerOptions = {},
    onConnection?: (socket: TcpSocket) => void,
  ) {
    super();
    this.opts = { ...opts };
    if (onConnection !== undefined) this.on('connection', onConnection);
  }

  get listening(): boolean {
    return this.listener !== undefined;
  }

  /** Accepted sockets still open. */
  get connections(): number {
    return this.sockets.size;
  }

  getConnections(cb: (error: Error | null, count: number) => void): this {
    const n = this.sockets.size;
    nextTick(() => cb(null, n));
    return this;
  }

  /**
   * Starts listening: `listen(port?, host?, backlog?, cb?)` or `listen({port, host, backlog}, cb?)`.
   * A bad port throws (as Node); a taken port is an 'error' event with code EADDRINUSE;
   * a host that is not an IP literal ENOTFOUND, one that is not ours EADDRNOTAVAIL.
   */
  listen(...args: unknown[]): this {
    if (this.listener !== undefined) {
      throw Object.assign(new Error('Listen method has been called more than once without closing.'), {
        code: 'ERR_SERVER_ALREADY_LISTEN',
      });
    }
    let opts: TcpListenOptions = {};
    let cb: (() => void) | undefined;
    const rest = [...args];
    if (typeof rest[rest.length - 1] === 'function') cb = rest.pop() as () => void;
    const first = rest[0];
    if (first !== null && typeof first === 'object') {
      opts = { ...(first as TcpListenOptions) };
    } else {
      if (first !== undefined && first !== null) opts.port = first as number | string;
      for (const a of rest.slice(1)) {
        if (typeof a === 'string') opts.host = a;
        else if (typeof a === 'number') opts.backlog = a;
      }
    }
    const port = checkPort(opts.port ?? 0, 'options.port', true);
    const backlog = opts.backlog ?? DEFAULT_BACKLOG;
    if (!Number.isInteger(backlog) || backlog < 0)
      throw new RangeError(`backlog must be an integer >= 0, got ${backlog}`);
    if (cb !== undefined) this.once('listening', cb);
    this.closing = false;

    const fail = (err: Error): this => {
      nextTick(() => this.emit('error', err));
      return this;
    };
    let address: Uint8Array | undefined;
    if (opts.host !== undefined && opts.host !== '') {
      const parsed = parseHost(opts.host);
      if (parsed === undefined) return fail(systemError('ENOTFOUND', 'getaddrinfo', { hostname: opts.host }));
      if (!isUnspecified(parsed)) {
        if (!this.stack.ip.isLocalAddress(parsed)) {
          return fail(
            systemError('EADDRNOTAVAIL', 'listen', {
              address: formatIp(parsed),
              port,
              message: `listen EADDRNOTAVAIL: address not available ${formatIp(parsed)}:${port}`,
            }),
          );
        }
        address = parsed;
      }
      this.boundHost = formatIp(parsed);
    } else {
      this.boundHost = undefined;
    }
    let protocol: SocketProtocol;
    try {
      protocol = this.stack.protocols.get(this.opts.protocol ?? IPPROTO_TCP);
    } catch (e) {
      return fail(systemError('EPROTONOSUPPORT', 'socket', { message: (e as Error).message, cause: e }));
    }
    let listener: StreamListener;
    try {
      listener =
        port === 0
          ? this.listenEphemeral(protocol, address, backlog)
          : protocol.listen(this.stack, port, { address, backlog });
    } catch (e) {
      const where = `${this.boundHost ?? '0.0.0.0'}:${port}`;
      if (codeOf(e) === 'EADDRINUSE') {
        return fail(
          systemError('EADDRINUSE', 'listen', {
            address: this.boundHost ?? '0.0.0.0',
            port,
            message: `listen EADDRINUSE: address already in use ${where}`,
            cause: e,
          }),
        );
      }
      return fail(
        systemError(codeOf(e) ?? 'EIO', 'listen', { message: `listen ${where}: ${(e as Error).message}`, cause: e }),
      );
    }
    this.listener = listener;
    this.protocol = protocol;
    this.stack.servers.add(this);
    listener.onAcceptable = () => this.scheduleAccept();
    nextTick(() => {
      if (this.listener === listener) this.emit('listening');
    });
    // Connections may already be queued (never for a fresh listener, but cheap to check).
    this.scheduleAccept();
    return this;
  }

  private listenEphemeral(protocol: SocketProtocol, address: Uint8Array | undefined, backlog: number): StreamListener {
    const span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1;
    const start = this.stack.rng.int(span);
    for (let i = 0; i < span; i++) {
      const port = EPHEMERAL_LOW + ((start + i) % span);
      try {
        return protocol.listen(this.stack, port, { address, backlog });
      } catch (e) {
        if (codeOf(e) !== 'EADDRINUSE') throw e;
      }
    }
    throw Object.assign(new Error('no free port in the ephemeral range'), { code: 'EADDRINUSE' });
  }

  private scheduleAccept(): void {
    if (this.acceptScheduled) return;
    this.acceptScheduled = true;
    nextTick(() => this.acceptAll());
  }

  private acceptAll(): void {
    this.acceptScheduled = false;
    const listener = this.listener;
    const protocol = this.protocol;
    if (listener === undefined || protocol === undefined) return;
    const o = this.opts;
    for (;;) {
      const conn = listener.accept();
      if (conn === undefined) break;
      const socket = new TcpSocket(this.stack, {
        allowHalfOpen: o.allowHalfOpen === true,
        readableHighWaterMark: o.readableHighWaterMark,
        writableHighWaterMark: o.writableHighWaterMark,
      });
      if (o.noDelay !== undefined) socket.setNoDelay(o.noDelay);
      if (o.keepAlive !== undefined) socket.setKeepAlive(o.keepAlive, o.keepAliveInitialDelay ?? 0);
      if (o.pauseOnConnect === true) socket.pause();
      socket.attachAccepted(conn, protocol);
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.maybeEmitClose();
      });
      this.emit('connection', socket);
      if (this.listener !== listener) break;
    }
  }

  /** `{address, family, port}` of the listening socket, or null when not listening. */
  address(): AddressInfo | null {
    const l = this.listener;
    if (l === undefined) return null;
    const address = l.address !== undefined ? formatIp(l.address) : (this.boundHost ?? '0.0.0.0');
    return { address, family: address.includes(':') ? 'IPv6' : 'IPv4', port: l.port };
  }

  /**
   * Stops accepting; connections already accepted continue (as Node). Connections that
   * completed the handshake but were not yet accepted are reset. 'close' (and `cb`)
   * come once every accepted socket has closed. Not listening: `cb` gets ERR_SERVER_NOT_RUNNING.
   */
  close(cb?: (error?: Error) => void): this {
    const listener = this.listener;
    if (listener === undefined) {
      if (cb !== undefined) {
        const err = Object.assign(new Error('Server is not running.'), { code: 'ERR_SERVER_NOT_RUNNING' });
        nextTick(() => cb(err));
      }
      return this;
    }
    if (cb !== undefined) this.once('close', () => cb());
    listener.onAcceptable = undefined;
    this.listener = undefined;
    this.protocol!.unlisten(this.stack, listener);
    this.protocol = undefined;
    this.closing = true;
    this.maybeEmitClose();
    return this;
  }

  private maybeEmitClose(): void {
    if (!this.closing || this.sockets.size > 0) return;
    this.closing = false;
    this.stack.servers.delete(this);
    nextTick(() => this.emit('close'));
  }

  /** Node compatibility: nothing to reference-count on the stack's clock. */
  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }
}
