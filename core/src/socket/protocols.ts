import type { TcpConfig } from '../tcp/config';
import type { Endpoint } from '../tcp/connection';
import type { TcpState } from '../tcp/segment';
import type { Stack } from './stack';

/**
 * The socket layer's protocol registry: what `socket(AF_INET, SOCK_STREAM, proto)`
 * resolves `proto` against. The stack registers IPPROTO_TCP; plugins register more
 * (IPPROTO_MPTCP's meta socket, DESIGN.md decision 4) and unregister on unload.
 *
 * A protocol hands the socket layer objects that satisfy `StreamConnection` and
 * `StreamListener`: exactly what net.ts uses, nothing more. TcpConnection and
 * TcpListener satisfy them structurally; an MPTCP meta socket implements the same
 * surface over its subflows.
 */

/** IANA protocol numbers (/etc/protocols; Linux include/uapi/linux/in.h). */
export const IPPROTO_TCP = 6;
/** Linux's number for MPTCP sockets (include/uapi/linux/in.h): not an IP protocol, a socket protocol. */
export const IPPROTO_MPTCP = 262;

/** An error a connection ends with; `code` is the errno name a socket user expects (ECONNRESET, ...). */
export interface StreamError extends Error {
  readonly code: string;
}

/** What a stream connection tells the socket layer. Called synchronously, possibly mid-processing. */
export interface StreamConnectionEvents {
  /** The handshake completed. */
  onEstablished?(): void;
  /** New in-order data can be read. */
  onReadable?(): void;
  /** Space was freed in the send buffer. */
  onWritable?(): void;
  /** The peer finished sending: once the readable bytes are read, reads are at EOF. */
  onRemoteEnd?(): void;
  /** The connection is gone, with the reason when it did not end normally. */
  onClosed?(error?: StreamError): void;
}

/** The surface of a connection that net.ts drives (TcpConnection has it). */
export interface StreamConnection {
  events: StreamConnectionEvents;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  /** 'CLOSED' once the connection is gone (RFC 9293 names; an MPTCP meta socket maps its own). */
  readonly state: TcpState;
  readonly error: StreamError | undefined;
  /** In-order bytes waiting to be read. */
  readonly readable: number;
  /** Free send-buffer bytes; 0 when closed for sending. */
  readonly writable: number;
  /** The peer's end was reached and every byte before it read. */
  readonly atEof: boolean;
  /** Copies as much of `data` as fits into the send buffer; returns that count. Throws (code EPIPE) when closed for sending. */
  send(data: Uint8Array): number;
  /** Up to `maxBytes` of in-order data, in a new array the caller owns. */
  read(maxBytes?: number): Uint8Array;
  /** Half-close: FIN after the queued data. */
  shutdownWrite(): void;
  /** Full close: FIN after the queued data, nothing more read (RST if unread data remains, as RFC 2525 §2.17). */
  close(): void;
  /** RST now. */
  abort(): void;
  setNoDelay(on: boolean): void;
  setKeepAlive(on: boolean, idleMs?: number): void;
}

/** The surface of a passive open that net.ts drives (TcpListener has it). */
export interface StreamListener {
  readonly port: number;
  /** The bound address, or undefined for every local address. */
  readonly address: Uint8Array | undefined;
  /** Called when `accept()` has a connection to give. */
  onAcceptable: (() => void) | undefined;
  accept(): StreamConnection | undefined;
}

export interface StreamConnectOptions {
  localAddress?: Uint8Array;
  localPort?: number;
  /** Per-connection overrides of the stack's TCP settings (noDelay, keepAlive, buffers...). */
  config?: Partial<TcpConfig>;
  /** Installed before the connection can fire anything. */
  events?: StreamConnectionEvents;
}

export interface StreamListenOptions {
  /** Undefined: every local address. */
  address?: Uint8Array;
  backlog?: number;
}

/**
 * A socket protocol. Methods (not function properties) on purpose: a protocol typed with
 * its own connection class (`SocketProtocol<TcpConnection, TcpListener>`) still registers
 * as a `SocketProtocol`.
 */
export interface SocketProtocol<
  C extends StreamConnection = StreamConnection,
  L extends StreamListener = StreamListener,
> {
  /** The number an application passes to socket(): 6, 262, ... (0..65535). */
  readonly number: number;
  /** A short unique name ("tcp", "mptcp"), shown by the CLI. */
  readonly name: string;
  /** An active open. Throws an Error with `code` (EHOSTUNREACH, EADDRINUSE, ...) when it cannot start. */
  connect(stack: Stack, remote: Endpoint, opts: StreamConnectOptions): C;
  /** A passive open. Throws an Error with code EADDRINUSE when the port is taken. */
  listen(stack: Stack, port: number, opts: StreamListenOptions): L;
  /** Stops a listener; connections not yet accepted are reset. */
  unlisten(stack: Stack, listener: L): void;
  /** Tells the protocol a connection has work after a user call (send, read, shutdown, close...). */
  poke(stack: Stack, conn: C): void;
}

/** An Error with a Node-style errno `code`. */
export type CodedError = Error & { code: string; errno?: number; syscall?: string };

/** The protocol registry of one stack. */
export class ProtocolRegistry {
  private readonly byNumber = new Map<number, SocketProtocol>();

  /** Adds a protocol. Throws on a bad or taken number, or a bad or taken name. */
  register(protocol: SocketProtocol): void {
    if (protocol === null || typeof protocol !== 'object') throw new TypeError('socket protocol: expected an object');
    const { number, name } = protocol;
    if (!Number.isInteger(number) || number < 0 || number > 0xffff) {
      throw new RangeError(
        `socket protocol "${String(name)}": number must be an integer in 0..65535, got ${String(number)}`,
      );
    }
    if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9._-]*$/i.test(name)) {
      throw new TypeError(
        `socket protocol ${number}: name must be a non-empty word (letters, digits, . _ -), got ${JSON.stringify(name)}`,
      );
    }
    for (const method of ['connect', 'listen', 'unlisten', 'poke'] as const) {
      if (typeof protocol[method] !== 'function')
        throw new TypeError(`socket protocol "${name}": ${method} must be a function`);
    }
    const taken = this.byNumber.get(number);
    if (taken !== undefined) {
      throw Object.assign(new Error(`socket protocol number ${number} is already registered (by "${taken.name}")`), {
        code: 'EEXIST',
      });
    }
    for (const p of this.byNumber.values()) {
      if (p.name.toLowerCase() === name.toLowerCase()) {
        throw Object.assign(new Error(`socket protocol name "${name}" is already registered (number ${p.number})`), {
          code: 'EEXIST',
        });
      }
    }
    this.byNumber.set(number, protocol);
  }

  /** Removes a protocol (a plugin unloading). Returns whether it was registered. */
  unregister(number: number): boolean {
    return this.byNumber.delete(number);
  }

  has(number: number): boolean {
    return this.byNumber.has(number);
  }

  /** The protocol for `number`; an unknown number throws an Error with code EPROTONOSUPPORT, as socket(2) fails. */
  get(number: number): SocketProtocol {
    const p = this.byNumber.get(number);
    if (p === undefined) {
      const known = [...this.byNumber.values()].map((q) => `${q.name} (${q.number})`).join(', ') || 'none';
      throw Object.assign(new Error(`protocol ${number} is not supported; registered: ${known}`), {
        code: 'EPROTONOSUPPORT',
        errno: -93,
      }) as CodedError;
    }
    return p;
  }

  /** The protocol registered under `name` (case-insensitive), or undefined. */
  byName(name: string): SocketProtocol | undefined {
    const lower = name.toLowerCase();
    for (const p of this.byNumber.values()) if (p.name.toLowerCase() === lower) return p;
    return undefined;
  }

  /** Registered protocol names, in number order. */
  names(): string[] {
    return [...this.byNumber.values()].sort((a, b) => a.number - b.number).map((p) => p.name);
  }

  /** Registered protocols, in number order. */
  list(): SocketProtocol[] {
    return [...this.byNumber.values()].sort((a, b) => a.number - b.number);
  }
}
