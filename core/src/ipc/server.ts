/**
 * The daemon's side of the shim (DESIGN.md decision 1, docs/shim.md).
 *
 * One unix socket (`--socket PATH`, mode 0600 in a 0700 directory we create) takes two
 * kinds of connections, told apart by the peer's name:
 *
 * - control connections (an unbound peer): one per shim process, length-prefixed msgpack
 *   requests (protocol.ts). SO_PEERCRED gives the uid, recorded for every socket the
 *   process creates; a process acts only on sockets of its own uid.
 * - data streams (a peer bound to "nuse/4|6/..."): the program's socket itself. Its
 *   bytes are pumped to and from a TCP connection of the stack (or, for loopback
 *   destinations, a kernel socket), with backpressure both ways.
 *
 * For a listening socket the daemon connects to the program's unix listener, once per
 * accepted TCP connection, from a socket bound to "nuse/a/<pid>.<n>".
 */

import * as fs from 'node:fs';
import * as net from 'node:net';
import { networkInterfaces, constants as osConstants } from 'node:os';
import * as path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { TcpServer, TcpSocket } from '../socket/net';
import { IPPROTO_TCP } from '../socket/protocols';
import type { Stack } from '../socket/stack';
import type { TcpConfig } from '../tcp/config';
import type { TcpConnection } from '../tcp/connection';
import { formatIp, parseIp } from '../wire/address';
import { type IpcNative, loadIpcNative, type PeerCred } from './native';
import { defaultSocketPath } from './paths';
import { describePolicy, EMPTY_POLICY, keptOnKernel, type Policy, parsePrefixList } from './policy';
import {
  decodeRequest,
  encodeFrame,
  FrameReader,
  PROTOCOL_VERSION,
  ProtocolError,
  type Request,
  type RequestOf,
} from './protocol';
import { tcpInfo, tcpInfoForState } from './tcp-info';

const ERRNO = osConstants.errno as unknown as Record<string, number>;
const errnoOf = (code: string | undefined): number => (code !== undefined ? ERRNO[code] : undefined) ?? ERRNO.EIO!;

// Linux option numbers (asm-generic/socket.h, netinet/tcp.h, netinet/in.h).
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_KEEPALIVE = 9;
const SO_LINGER = 13;
const SO_REUSEPORT = 15;
const SO_PROTOCOL = 38;
const IPPROTO_MPTCP = 262;
const IPPROTO_IP = 0;
const IPPROTO_IPV6 = 41;
const TCP_NODELAY = 1;
const TCP_MAXSEG = 2;
const TCP_KEEPIDLE = 4;
const TCP_KEEPINTVL = 5;
const TCP_KEEPCNT = 6;
const TCP_INFO = 11;
const TCP_CONGESTION = 13;
/** Options accepted and remembered (getsockopt returns them) without changing the connection yet. */
const REMEMBERED = new Set([
  `${IPPROTO_TCP}/9`, // TCP_DEFER_ACCEPT
  `${IPPROTO_TCP}/12`, // TCP_QUICKACK
  `${IPPROTO_TCP}/18`, // TCP_USER_TIMEOUT
  `${IPPROTO_TCP}/23`, // TCP_FASTOPEN
  `${IPPROTO_TCP}/30`, // TCP_FASTOPEN_CONNECT
  `${IPPROTO_IP}/1`, // IP_TOS
  `${IPPROTO_IP}/2`, // IP_TTL
  `${IPPROTO_IP}/24`, // IP_BIND_ADDRESS_NO_PORT
  `${IPPROTO_IPV6}/26`, // IPV6_V6ONLY
  `${IPPROTO_IPV6}/67`, // IPV6_TCLASS
  `${SOL_SOCKET}/${SO_REUSEADDR}`,
  `${SOL_SOCKET}/${SO_REUSEPORT}`,
  `${SOL_SOCKET}/${SO_LINGER}`,
]);
/** Linux's default ephemeral port range (net.ipv4.ip_local_port_range), for bind to port 0. */
const EPHEMERAL_LOW = 32768;
const EPHEMERAL_HIGH = 60999;
/** Linux's TCP_CA_NAME_MAX: getsockopt(TCP_CONGESTION) gives at most this many bytes. */
const TCP_CA_NAME_MAX = 16;
/** Linux caps TCP_KEEPIDLE and TCP_KEEPINTVL (MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL) and TCP_KEEPCNT. */
const MAX_KEEP_SECONDS = 32767;
const MAX_KEEPCNT = 127;
/** Largest SO_RCVBUF/SO_SNDBUF taken (before doubling): the stack's buffers are ours, but not unbounded. */
const MAX_BUFFER = 16 * 1024 * 1024;
/** How many reset connections are remembered for the program's next read (ECONNRESET), and how long. */
const MAX_RESETS = 4096;
const RESET_MEMORY_MS = 120_000;

/** How long a data stream may wait for its socket's connect request. */
const PARK_MS = 10_000;

type State = 'idle' | 'connecting' | 'connected' | 'failed' | 'listening' | 'closed';

/** A program's socket, keyed by its name. */
interface SockRecord {
  name: string;
  uid: number;
  family: 4 | 6;
  protocol: number;
  session: Session | undefined;
  state: State;
  bound: { address: Uint8Array | undefined; port: number } | undefined;
  opts: Map<string, number>;
  /** SO_ERROR: read and cleared by getsockopt. */
  pendingError: string | undefined;
  /** What a repeated connect reports after a failure. */
  lastError: string | undefined;
  conn: (TcpSocket | net.Socket) | undefined;
  stream: net.Socket | undefined;
  /** Filler bytes at the head of the stream (a connect), discarded before pumping. */
  fill: number;
  /** SO_SNDBUF the shim restores once the filler is gone. */
  sndbuf: number;
  /** The listener this socket shares (SO_REUSEPORT sockets share one), while listening. */
  group: ListenGroup | undefined;
  /** TCP_CONGESTION asked for (a name the stack's registry knows). */
  cc: string | undefined;
  pumping: boolean;
  /** Bound to a local address the policy keeps on the kernel: it listens on a kernel socket. */
  kernelBind: boolean;
  /** The program shut down its reading side: 1 SHUT_RD, 2 its writing side too (see maybePump). */
  rdShut: 0 | 1 | 2;
  /** The program shut down its writing side (shutdown, not close): the stream's EOF is a FIN. */
  wrShut: boolean;
  /** A connect(2) reported the failure: Linux disconnects the socket, a read then gives ENOTCONN. */
  disconnected: boolean;
  /** The connection's local address, kept for getsockname after it closed (as Linux). */
  local: { addr: Uint8Array; port: number } | undefined;
}

/**
 * One TCP listener of the stack (or a kernel one, for loopback) and the program sockets
 * it hands connections to: one, or several bound with SO_REUSEPORT (taken in turn).
 */
interface ListenGroup {
  server: TcpServer | net.Server;
  members: SockRecord[];
  next: number;
}

function newRecord(name: string, uid: number, family: 4 | 6, protocol: number): SockRecord {
  return {
    name,
    uid,
    family,
    protocol,
    session: undefined,
    state: 'idle',
    bound: undefined,
    opts: new Map(),
    pendingError: undefined,
    lastError: undefined,
    conn: undefined,
    stream: undefined,
    fill: 0,
    sndbuf: 0,
    group: undefined,
    cc: undefined,
    pumping: false,
    kernelBind: false,
    rdShut: 0,
    wrShut: false,
    disconnected: false,
    local: undefined,
  };
}

interface Session {
  socket: net.Socket;
  cred: PeerCred;
  hello: boolean;
  records: Set<SockRecord>;
  /** The program's own policy (nuse run --kernel/--only/--mptcp), from its hello. */
  policy: Policy;
}

export interface IpcServerOptions {
  stack: Stack;
  path: string;
  logger: Logger;
  native?: IpcNative;
  /** The system-wide policy (the daemon's config); each program adds its own. */
  policy?: Policy;
}

export class IpcServer {
  readonly path: string;
  private readonly server: net.Server;
  private readonly records = new Map<string, SockRecord>();
  private readonly parked = new Map<string, { stream: net.Socket; cred: PeerCred; timer: NodeJS.Timeout }>();
  private readonly sessions = new Set<Session>();
  private acceptCounter = 0;
  /** Connections that ended with an error after their stream closed: the program's next read gets it (ECONNRESET). */
  private readonly resets = new Map<string, { uid: number; code: string; at: number }>();
  /** The local address of connections that ended (getsockname after the end). */
  private readonly closedNames = new Map<
    string,
    { uid: number; local: { addr: Uint8Array; port: number }; at: number }
  >();
  private closed = false;
  private warnedMptcp = false;

  private constructor(
    private readonly stack: Stack,
    socketPath: string,
    private readonly log: Logger,
    private readonly native: IpcNative,
    private readonly policy: Policy,
  ) {
    this.path = socketPath;
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => this.onConnection(s));
  }

  /**
   * Listens on `path` (creating its directory 0700 if needed; the socket is 0600). A
   * socket file nobody answers on is removed; one a daemon answers on is an error (EADDRINUSE).
   */
  static async start(opts: IpcServerOptions): Promise<IpcServer> {
    const native = opts.native ?? loadIpcNative();
    const socketPath = path.resolve(opts.path);
    const dir = path.dirname(socketPath);
    if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (fs.existsSync(socketPath)) {
      if (await answers(socketPath)) {
        throw Object.assign(new Error(`another nuse daemon is listening on ${socketPath} (give --socket PATH)`), {
          code: 'EADDRINUSE',
        });
      }
      fs.unlinkSync(socketPath);
    }
    const ipc = new IpcServer(
      opts.stack,
      socketPath,
      opts.logger.child({ component: 'ipc' }),
      native,
      opts.policy ?? EMPTY_POLICY,
    );
    await new Promise<void>((resolve, reject) => {
      ipc.server.once('error', reject);
      // Created 0600 (the umask applies to the bind, which happens inside listen()).
      const old = process.umask(0o177);
      try {
        ipc.server.listen(socketPath, () => {
          ipc.server.off('error', reject);
          resolve();
        });
      } finally {
        process.umask(old);
      }
    });
    fs.chmodSync(socketPath, 0o600);
    ipc.server.on('error', (e) => ipc.log.error({ err: e.message }, 'control socket error'));
    ipc.log.info(
      { socket: socketPath, version: PROTOCOL_VERSION, ...describePolicy(ipc.policy) },
      'control socket ready',
    );
    return ipc;
  }

  /** Stops listening, drops every client and stream (programs see EOF/EPIPE), removes the socket file. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
    for (const s of this.sessions) s.socket.destroy();
    for (const p of this.parked.values()) {
      clearTimeout(p.timer);
      p.stream.destroy();
    }
    this.parked.clear();
    for (const r of [...this.records.values()]) this.dispose(r);
    try {
      fs.unlinkSync(this.path);
    } catch {
      // already gone
    }
  }

  /** Sockets known to the daemon (for tests and `nuse ls` later). */
  get size(): number {
    return this.records.size;
  }

  // ---------------------------------------------------------------- connections

  private onConnection(socket: net.Socket): void {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    let cred: PeerCred;
    let name: string | null;
    try {
      if (typeof fd !== 'number' || fd < 0) throw new Error('no file descriptor');
      cred = this.native.peerCred(fd);
      name = this.native.peerName(fd);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'refusing a connection whose credentials cannot be read');
      socket.destroy();
      return;
    }
    socket.on('error', () => undefined); // reported where it matters ('close' follows)
    if (name !== null && /^nuse\/[46]\//.test(name)) this.onDataStream(socket, name, cred);
    else this.onControl(socket, cred);
  }

  private onControl(socket: net.Socket, cred: PeerCred): void {
    const session: Session = { socket, cred, hello: false, records: new Set(), policy: EMPTY_POLICY };
    this.sessions.add(session);
    const reader = new FrameReader();
    socket.on('data', (chunk: Buffer) => {
      if (socket.destroyed) return;
      try {
        for (const body of reader.push(chunk)) {
          const req = decodeRequest(body);
          try {
            this.onRequest(session, req);
          } catch (e) {
            if (e instanceof ProtocolError) throw e;
            // A bug of ours must not take the daemon down: this request fails, the rest carries on.
            this.log.error({ op: req.op, err: (e as Error).stack ?? String(e) }, 'request failed');
            this.fail(session, req.id, 'EIO');
          }
          if (socket.destroyed) return;
        }
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
        this.log.warn({ peerPid: cred.pid, uid: cred.uid, reason: e.message }, 'closing a malformed control client');
        socket.destroy();
      }
    });
    socket.on('end', () => socket.destroy());
    socket.on('close', () => {
      this.sessions.delete(session);
      this.endSession(session);
    });
    socket.resume();
  }

  private reply(session: Session, id: number, fields: Record<string, unknown> = {}, err = 0): undefined {
    if (session.socket.destroyed) return;
    session.socket.write(encodeFrame({ id, err, ...fields }));
  }

  private fail(session: Session, id: number, code: string): undefined {
    this.reply(session, id, {}, errnoOf(code));
  }

  private onRequest(session: Session, req: Request): undefined {
    if (!session.hello) {
      if (req.op !== 'hello') throw new ProtocolError(`"${req.op}" before "hello"`);
      if (req.v !== PROTOCOL_VERSION) {
        this.log.warn({ peerPid: session.cred.pid, version: req.v }, 'shim speaks another protocol version');
        this.fail(session, req.id, 'EPROTONOSUPPORT');
        session.socket.end();
        return;
      }
      session.hello = true;
      // The program's policy (validated by decodeRequest); the daemon's applies as well.
      session.policy = {
        kernel: req.kernel !== undefined ? parsePrefixList(req.kernel) : [],
        only: req.only !== undefined ? parsePrefixList(req.only) : undefined,
        mptcp: req.mptcp === true,
      };
      if (req.kernel !== undefined || req.only !== undefined || req.mptcp === true) {
        this.log.debug({ peerPid: session.cred.pid, ...describePolicy(session.policy) }, "a program's policy");
      }
      // What the daemon's own policy adds, for the shim (SO_PROTOCOL of an upgraded socket).
      this.reply(session, req.id, { v: PROTOCOL_VERSION, mptcp: this.policy.mptcp || session.policy.mptcp });
      return;
    }
    switch (req.op) {
      case 'hello':
        throw new ProtocolError('a second "hello"');
      case 'connect':
        return this.onConnect(session, req);
      case 'bind':
        return this.onBind(session, req);
      case 'listen':
        return this.onListen(session, req);
      case 'status':
        return this.onStatus(session, req);
      case 'name':
        return this.onName(session, req);
      case 'setopt':
        return this.onSetopt(session, req);
      case 'getopt':
        return this.onGetopt(session, req);
      case 'closed':
        return this.onClosed(session, req);
      case 'shutdown':
        return this.onShutdown(session, req);
      case 'linger':
        return this.onLinger(session, req);
    }
  }

  /** The record of `name` for this session's uid, created idle when absent; undefined (EPERM sent) for another uid's. */
  private record(session: Session, id: number, name: string, create = true): SockRecord | undefined {
    let r = this.records.get(name);
    if (r !== undefined) {
      if (r.uid !== session.cred.uid) {
        this.log.warn({ peerPid: session.cred.pid, uid: session.cred.uid, sock: name }, 'a socket of another uid');
        this.fail(session, id, 'EPERM');
        return undefined;
      }
      return r;
    }
    if (!create) return undefined;
    if (name.startsWith('nuse/a/')) {
      this.fail(session, id, 'EBADF');
      return undefined;
    }
    const [, fam, proto] = name.split('/');
    r = newRecord(name, session.cred.uid, fam === '4' ? 4 : 6, Number(proto));
    r.session = session;
    this.records.set(name, r);
    session.records.add(r);
    return r;
  }

  // ---------------------------------------------------------------- requests

  private onBind(session: Session, req: RequestOf<'bind'>): undefined {
    const r = this.record(session, req.id, req.sock);
    if (r === undefined) return;
    if (r.state !== 'idle' || r.bound !== undefined) return this.fail(session, req.id, 'EINVAL');
    const address = normalize(r.family, req.addr);
    if (address === undefined) return this.fail(session, req.id, 'EAFNOSUPPORT');
    // The stack's own addresses; loopback and the kernel's addresses the policy keeps on
    // the kernel are served by a kernel socket (listen/connect).
    const stackLocal = this.stack.ip.isLocalAddress(address);
    const kernelBind = !isUnspecified(address) && !stackLocal && keptOnKernel(address, this.policy, session.policy);
    if (!isUnspecified(address) && !stackLocal && !isLoopback(address) && !(kernelBind && isKernelLocal(address))) {
      return this.fail(session, req.id, 'EADDRNOTAVAIL');
    }
    if (req.port !== 0 && req.port < 1024 && session.cred.uid !== 0) return this.fail(session, req.id, 'EACCES');
    const bound = { address: isUnspecified(address) ? undefined : address, port: req.port };
    if (req.port !== 0 && this.bindConflict(r, bound)) return this.fail(session, req.id, 'EADDRINUSE');
    // Port 0: as Linux, the port is chosen now (getsockname says it before listen or
    // connect). Loopback binds leave it to the kernel's socket, at listen or connect.
    if (req.port === 0 && !kernelBind) {
      const port = this.ephemeralPort(r, bound.address);
      if (port === undefined) return this.fail(session, req.id, 'EADDRINUSE');
      bound.port = port;
    }
    r.bound = bound;
    r.kernelBind = kernelBind;
    this.reply(session, req.id);
  }

  /** A free port of the ephemeral range (Linux's 32768–60999) for a bind to port 0. */
  private ephemeralPort(r: SockRecord, address: Uint8Array | undefined): number | undefined {
    const span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1;
    const start = Math.floor(Math.random() * span);
    const inUse = new Set(this.stack.tcp.connections.map((c) => c.local.port));
    for (let i = 0; i < span; i++) {
      const port = EPHEMERAL_LOW + ((start + i) % span);
      if (inUse.has(port) || this.bindConflict(r, { address, port })) continue;
      try {
        // Not a listener of the stack's own (probe: listen, then at once unlisten).
        this.stack.tcp.unlisten(this.stack.tcp.listen(port, { address }));
      } catch {
        continue;
      }
      return port;
    }
    return undefined;
  }

  /**
   * Whether another socket holds the port, as Linux's bind decides: the addresses
   * overlap (equal, or either is the wildcard) and not both have SO_REUSEPORT (same
   * uid), nor both SO_REUSEADDR with neither listening. A socket the program closed
   * without telling us (never listened, never connected) is forgotten here: its name
   * is gone from /proc/net/unix.
   */
  private bindConflict(r: SockRecord, b: { address: Uint8Array | undefined; port: number }): boolean {
    const flag = (x: SockRecord, opt: number): boolean => (x.opts.get(`${SOL_SOCKET}/${opt}`) ?? 0) !== 0;
    let live: string | undefined;
    for (const o of [...this.records.values()]) {
      if (o === r || o.bound?.port !== b.port || o.state === 'closed' || o.state === 'failed') continue;
      const oa = o.bound.address;
      if (oa !== undefined && b.address !== undefined && !sameBytes(oa, b.address)) continue;
      if (flag(r, SO_REUSEPORT) && flag(o, SO_REUSEPORT) && o.uid === r.uid) continue;
      if (flag(r, SO_REUSEADDR) && flag(o, SO_REUSEADDR) && o.state !== 'listening') continue;
      if (o.state === 'idle' || o.state === 'listening') {
        live ??= readUnixNames();
        if (!live.includes(` @${o.name}\n`)) {
          if (o.state === 'listening') this.stopListening(o, 'the program closed it');
          else this.forget(o);
          continue;
        }
      }
      return true;
    }
    return false;
  }

  private onConnect(session: Session, req: RequestOf<'connect'>): undefined {
    const r = this.record(session, req.id, req.sock);
    if (r === undefined) return;
    if (r.state === 'connecting') return this.fail(session, req.id, 'EALREADY');
    if (r.state !== 'idle') return this.fail(session, req.id, r.state === 'connected' ? 'EISCONN' : 'EINVAL');
    const address = normalize(r.family, req.addr);
    if (address === undefined) return this.fail(session, req.id, 'EAFNOSUPPORT');
    if (req.port === 0) return this.fail(session, req.id, 'ECONNREFUSED');
    // Policy: loopback, and destinations the daemon's or the program's policy keeps on the
    // kernel, go through an ordinary kernel socket; the program's fd is the same either way.
    const onKernel = keptOnKernel(address, this.policy, session.policy);
    if (!onKernel && !isUnspecified(address) && this.stack.ip.route(address) === undefined) {
      return this.fail(session, req.id, 'ENETUNREACH');
    }
    r.fill = req.fill;
    r.sndbuf = req.sndbuf;
    r.state = 'connecting';
    const host = formatIp(address);
    const o = r.opts;
    let conn: TcpSocket | net.Socket;
    if (onKernel) {
      // Policy keeps it on the kernel: the daemon is the kernel socket's owner.
      this.log.debug({ sock: r.name, remote: `${host}:${req.port}` }, 'connect through the kernel (policy)');
      conn = net.connect({
        host,
        port: req.port,
        allowHalfOpen: true,
        localAddress: r.bound?.address !== undefined ? formatIp(r.bound.address) : undefined,
        noDelay: o.get(`${IPPROTO_TCP}/${TCP_NODELAY}`) ? true : undefined,
      });
    } else {
      conn = this.stack.connect({
        host,
        port: req.port,
        localAddress: r.bound?.address !== undefined ? formatIp(r.bound.address) : undefined,
        localPort: r.bound?.port || undefined,
        protocol: this.protocolFor(this.upgrade(r, session)),
        allowHalfOpen: true,
        noDelay: o.get(`${IPPROTO_TCP}/${TCP_NODELAY}`) ? true : undefined,
        keepAlive: o.get(`${SOL_SOCKET}/${SO_KEEPALIVE}`) ? true : undefined,
        keepAliveInitialDelay: (o.get(`${IPPROTO_TCP}/${TCP_KEEPIDLE}`) ?? 0) * 1000,
        tcp: this.tcpSettings(r),
      });
    }
    r.conn = conn;
    conn.once('connect', () => {
      if (r.state !== 'connecting') return;
      r.state = 'connected';
      if (conn.localAddress !== undefined) r.local = endpoint(conn.localAddress, conn.localPort ?? 0);
      this.log.debug({ sock: r.name, remote: `${host}:${req.port}` }, 'connected');
      this.maybePump(r);
    });
    conn.on('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? 'EIO';
      if (r.state === 'connecting') {
        r.state = 'failed';
        r.lastError = code;
        this.log.debug({ sock: r.name, remote: `${host}:${req.port}`, code }, 'connect failed');
        // The stream ends: its filler goes with it, so the program sees POLLOUT (and HUP), then SO_ERROR.
        r.stream?.destroy();
      }
      r.pendingError = code;
    });
    const parked = this.parked.get(r.name);
    if (parked !== undefined) {
      this.parked.delete(r.name);
      clearTimeout(parked.timer);
      this.attachStream(r, parked.stream, parked.cred);
    }
    this.reply(session, req.id);
  }

  /** The protocol a socket runs: IPPROTO_MPTCP when it asked for it or a policy upgrades plain TCP. */
  private upgrade(r: SockRecord, session: Session | undefined): number {
    if (r.protocol === IPPROTO_TCP && (this.policy.mptcp || session?.policy.mptcp === true)) r.protocol = IPPROTO_MPTCP;
    return r.protocol;
  }

  private protocolFor(protocol: number): number {
    if (this.stack.protocols.has(protocol)) return protocol;
    if (!this.warnedMptcp) {
      this.warnedMptcp = true;
      this.log.warn({ protocol }, 'protocol not loaded (no plugin): falling back to TCP');
    }
    return IPPROTO_TCP;
  }

  private buffers(r: SockRecord): { receiveBuffer?: number; sendBuffer?: number } {
    const out: { receiveBuffer?: number; sendBuffer?: number } = {};
    const rcv = r.opts.get(`${SOL_SOCKET}/${SO_RCVBUF}`);
    const snd = r.opts.get(`${SOL_SOCKET}/${SO_SNDBUF}`);
    // As Linux, the value asked for is doubled (bookkeeping overhead), with the same floors.
    if (rcv !== undefined) out.receiveBuffer = Math.max(2304, rcv * 2);
    if (snd !== undefined) out.sendBuffer = Math.max(4608, snd * 2);
    return out;
  }

  /** The per-connection TCP settings a socket's options ask for (buffers, keepalive timing, congestion control). */
  private tcpSettings(r: SockRecord): Partial<TcpConfig> {
    const out: Partial<TcpConfig> = this.buffers(r);
    const intvl = r.opts.get(`${IPPROTO_TCP}/${TCP_KEEPINTVL}`);
    const cnt = r.opts.get(`${IPPROTO_TCP}/${TCP_KEEPCNT}`);
    const idle = r.opts.get(`${IPPROTO_TCP}/${TCP_KEEPIDLE}`);
    if (intvl !== undefined) out.keepAliveIntervalMs = intvl * 1000;
    if (cnt !== undefined) out.keepAliveProbes = cnt;
    if (idle !== undefined) out.keepAliveIdleMs = idle * 1000;
    if (r.cc !== undefined) out.congestionControl = r.cc;
    return out;
  }

  /** Applies a socket's options to a stack connection made without them (an accepted one). */
  private applyOptions(r: SockRecord, conn: TcpSocket | net.Socket): void {
    const o = r.opts;
    if (o.get(`${IPPROTO_TCP}/${TCP_NODELAY}`)) conn.setNoDelay(true);
    const tcp = tcpOf(conn);
    if (tcp !== undefined) {
      const t = this.tcpSettings(r);
      if (t.keepAliveIntervalMs !== undefined) tcp.config.keepAliveIntervalMs = t.keepAliveIntervalMs;
      if (t.keepAliveProbes !== undefined) tcp.config.keepAliveProbes = t.keepAliveProbes;
      if (t.keepAliveIdleMs !== undefined) tcp.config.keepAliveIdleMs = t.keepAliveIdleMs;
      if (t.receiveBuffer !== undefined || t.sendBuffer !== undefined)
        tcp.setBufferSizes(t.receiveBuffer, t.sendBuffer);
    }
    if (o.get(`${SOL_SOCKET}/${SO_KEEPALIVE}`))
      conn.setKeepAlive(true, (o.get(`${IPPROTO_TCP}/${TCP_KEEPIDLE}`) ?? 0) * 1000);
  }

  private onListen(session: Session, req: RequestOf<'listen'>): undefined {
    const r = this.record(session, req.id, req.sock);
    if (r === undefined) return;
    if (r.state === 'listening') return this.reply(session, req.id);
    if (r.state !== 'idle') return this.fail(session, req.id, 'EINVAL');
    const port = r.bound?.port ?? 0;
    const address = r.bound?.address;
    // SO_REUSEPORT: a socket bound to the port of a listening one (bind allowed it) shares its listener.
    if (port !== 0) {
      for (const o of this.records.values()) {
        const g = o.group;
        if (o === r || g === undefined || o.state !== 'listening' || o.bound?.port !== port) continue;
        if (!sameAddress(o.bound.address, address)) continue;
        g.members.push(r);
        r.group = g;
        r.state = 'listening';
        this.log.debug({ sock: r.name, with: o.name, port }, 'listening (SO_REUSEPORT)');
        return this.reply(session, req.id);
      }
    }
    const backlog = Math.max(1, Math.min(req.backlog, 4096));
    let server: TcpServer | net.Server;
    const group: ListenGroup = { server: undefined as unknown as TcpServer, members: [r], next: 0 };
    const onConnection = (conn: TcpSocket | net.Socket): void => this.deliver(group, conn);
    if (address !== undefined && (isLoopback(address) || r.kernelBind)) {
      // Loopback and addresses the policy keeps on the kernel: a kernel listener.
      server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, onConnection);
      server.listen({ port, host: formatIp(address), backlog });
    } else {
      server = this.stack.createServer(
        { allowHalfOpen: true, pauseOnConnect: true, protocol: this.protocolFor(this.upgrade(r, session)) },
        onConnection,
      );
      server.listen({ port, host: address !== undefined ? formatIp(address) : undefined, backlog });
    }
    group.server = server;
    r.group = group;
    r.state = 'listening';
    const onError = (e: NodeJS.ErrnoException): void => {
      r.state = 'idle';
      r.group = undefined;
      this.fail(session, req.id, e.code ?? 'EIO');
    };
    server.once('error', onError);
    server.once('listening', () => {
      server.off('error', onError);
      server.on('error', (e) => this.log.warn({ sock: r.name, err: e.message }, 'listener error'));
      this.log.debug({ sock: r.name, address: server.address() }, 'listening');
      this.reply(session, req.id);
    });
  }

  /**
   * Hands an accepted TCP connection to the program: connect to its unix listener (the
   * group's members in turn), then pump.
   */
  private deliver(group: ListenGroup, conn: TcpSocket | net.Socket, attempt = 0): void {
    const members = group.members.filter((m) => m.state === 'listening');
    if (members.length === 0 || this.closed) {
      conn.destroy();
      return;
    }
    const listener = members[group.next++ % members.length]!;
    const name = `nuse/a/${process.pid}.${++this.acceptCounter}`;
    let fd: number;
    try {
      fd = this.native.connectAbstract(name, listener.name);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' && attempt < 100) {
        // The program's backlog is full: it is not accepting fast enough. Try again shortly.
        setTimeout(() => this.deliver(group, conn, attempt + 1), 10);
        return;
      }
      this.log.debug({ sock: listener.name, code }, 'cannot hand over a connection');
      if (code === 'ECONNREFUSED' || code === 'ENOENT') {
        this.stopListening(listener, 'the program closed it');
        // Another socket of the group may still take it.
        if (group.members.length > 0) {
          this.deliver(group, conn, attempt);
          return;
        }
      }
      conn.resetAndDestroy();
      return;
    }
    let stream: net.Socket;
    try {
      stream = new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
    } catch (e) {
      fs.closeSync(fd);
      this.log.error({ sock: listener.name, err: (e as Error).message }, 'cannot wrap a connection to the program');
      conn.resetAndDestroy();
      return;
    }
    stream.on('error', () => undefined);
    const r = newRecord(name, listener.uid, listener.family, listener.protocol);
    r.state = 'connected';
    r.opts = new Map(listener.opts);
    r.cc = listener.cc;
    r.conn = conn;
    r.stream = stream;
    if (conn.localAddress !== undefined) r.local = endpoint(conn.localAddress, conn.localPort ?? 0);
    this.applyOptions(r, conn);
    conn.on('error', (e: NodeJS.ErrnoException) => {
      r.pendingError = e.code ?? 'EIO';
    });
    this.records.set(name, r);
    this.maybePump(r);
  }

  private stopListening(r: SockRecord, why: string): void {
    if (r.state !== 'listening') return;
    this.log.debug({ sock: r.name, why }, 'stopped listening');
    r.state = 'closed';
    const g = r.group;
    r.group = undefined;
    if (g !== undefined) {
      g.members = g.members.filter((m) => m !== r);
      if (g.members.length === 0) g.server.close();
    }
    this.forget(r);
  }

  private onStatus(session: Session, req: RequestOf<'status'>): undefined {
    const r = this.record(session, req.id, req.sock, false);
    if (r === undefined) {
      if (session.socket.destroyed || this.records.has(req.sock)) return;
      // A connection reset after its stream closed: its error, once.
      const gone = this.resets.get(req.sock);
      if (gone !== undefined && gone.uid === session.cred.uid && Date.now() - gone.at < RESET_MEMORY_MS) {
        if (req.clear) this.resets.delete(req.sock);
        return this.reply(session, req.id, { state: 'closed', err: errnoOf(gone.code), eof: errnoOf(gone.code) });
      }
      this.reply(session, req.id, { state: 'idle' });
      return;
    }
    const err = r.pendingError;
    if (req.clear) {
      r.pendingError = undefined;
      if (err !== undefined) this.resets.delete(r.name);
    }
    if (req.connect === true && r.state === 'failed') r.disconnected = true;
    this.reply(session, req.id, {
      state: r.state,
      sndbuf: r.sndbuf,
      // A read at EOF: the pending error, else ENOTCONN once a connect(2) reported the failure, else EOF.
      eof: err !== undefined ? errnoOf(err) : r.state === 'failed' && r.disconnected ? errnoOf('ENOTCONN') : 0,
      // A repeated connect after a failure reports the failure again.
      ...(err !== undefined ? { err: errnoOf(err) } : r.state === 'failed' ? { err: errnoOf(r.lastError) } : {}),
    });
  }

  private onName(session: Session, req: RequestOf<'name'>): undefined {
    const gone = this.records.has(req.sock) ? undefined : this.closedNames.get(req.sock);
    if (gone !== undefined && gone.uid === session.cred.uid && Date.now() - gone.at < RESET_MEMORY_MS) {
      return req.peer ? this.fail(session, req.id, 'ENOTCONN') : this.reply(session, req.id, gone.local);
    }
    const r = this.record(session, req.id, req.sock, !req.sock.startsWith('nuse/a/'));
    if (r === undefined) {
      if (!this.records.has(req.sock)) this.fail(session, req.id, 'EBADF');
      return;
    }
    const conn = r.conn;
    if (req.peer) {
      if (r.state !== 'connected' || conn?.remoteAddress === undefined) return this.fail(session, req.id, 'ENOTCONN');
      return this.reply(session, req.id, endpoint(conn.remoteAddress, conn.remotePort ?? 0));
    }
    if (conn?.localAddress !== undefined && (r.state === 'connected' || r.state === 'connecting')) {
      return this.reply(session, req.id, endpoint(conn.localAddress, conn.localPort ?? 0));
    }
    // After the connection closed, the address it had (Linux keeps it too).
    if (r.local !== undefined) return this.reply(session, req.id, r.local);
    const a = r.group?.server.address();
    if (a !== undefined && a !== null && typeof a === 'object') {
      return this.reply(session, req.id, endpoint(a.address, a.port));
    }
    const any = new Uint8Array(r.family === 4 ? 4 : 16);
    this.reply(session, req.id, { addr: r.bound?.address ?? any, port: r.bound?.port ?? 0 });
  }

  private onSetopt(session: Session, req: RequestOf<'setopt'>): undefined {
    const r = this.record(session, req.id, req.sock, !req.sock.startsWith('nuse/a/'));
    if (r === undefined) {
      if (!this.records.has(req.sock)) this.fail(session, req.id, 'EBADF');
      return;
    }
    const key = `${req.level}/${req.opt}`;
    const conn = r.conn;
    const live = conn !== undefined && (r.state === 'connected' || r.state === 'connecting');
    const tcp = live ? tcpOf(conn) : undefined;
    if (key === `${IPPROTO_TCP}/${TCP_CONGESTION}`) {
      // A name (not NUL-terminated when it fills the buffer), as Linux's tcp_set_congestion_control.
      if (!(req.val instanceof Uint8Array)) return this.fail(session, req.id, 'EINVAL');
      const bytes = req.val.subarray(0, Math.min(req.val.length, TCP_CA_NAME_MAX - 1));
      const nul = bytes.indexOf(0);
      const name = Buffer.from(nul >= 0 ? bytes.subarray(0, nul) : bytes).toString('latin1');
      if (!this.stack.tcp.congestionControls.has(name)) return this.fail(session, req.id, 'ENOENT');
      // A connection made afterwards (or accepted by this listener) runs it; a live one switches now.
      r.cc = name;
      if (tcp !== undefined && tcp.congestion.name !== name) {
        tcp.setCongestionControl(this.stack.tcp.congestionControls.create(name));
      }
      return this.reply(session, req.id);
    }
    if (typeof req.val !== 'number') return this.fail(session, req.id, 'EINVAL');
    const val = req.val;
    switch (key) {
      case `${IPPROTO_TCP}/${TCP_NODELAY}`:
        if (live) conn.setNoDelay(val !== 0);
        break;
      case `${SOL_SOCKET}/${SO_KEEPALIVE}`:
        if (live) conn.setKeepAlive(val !== 0, (r.opts.get(`${IPPROTO_TCP}/${TCP_KEEPIDLE}`) ?? 0) * 1000);
        break;
      case `${IPPROTO_TCP}/${TCP_KEEPIDLE}`:
        if (val < 1 || val > MAX_KEEP_SECONDS) return this.fail(session, req.id, 'EINVAL');
        if (tcp !== undefined) tcp.config.keepAliveIdleMs = val * 1000;
        if (live && r.opts.get(`${SOL_SOCKET}/${SO_KEEPALIVE}`)) conn.setKeepAlive(true, val * 1000);
        break;
      case `${IPPROTO_TCP}/${TCP_KEEPINTVL}`:
        if (val < 1 || val > MAX_KEEP_SECONDS) return this.fail(session, req.id, 'EINVAL');
        if (tcp !== undefined) tcp.config.keepAliveIntervalMs = val * 1000;
        break;
      case `${IPPROTO_TCP}/${TCP_KEEPCNT}`:
        if (val < 1 || val > MAX_KEEPCNT) return this.fail(session, req.id, 'EINVAL');
        if (tcp !== undefined) tcp.config.keepAliveProbes = val;
        break;
      case `${SOL_SOCKET}/${SO_RCVBUF}`:
      case `${SOL_SOCKET}/${SO_SNDBUF}`: {
        // Sizes the TCP buffers: of a connection made afterwards, of each one a listener
        // accepts, and of a live one (its window follows). Negative is taken as 0, as Linux.
        const v = Math.min(Math.max(0, val), MAX_BUFFER);
        r.opts.set(key, v);
        if (tcp !== undefined) {
          const b = this.buffers(r);
          tcp.setBufferSizes(
            req.opt === SO_RCVBUF ? b.receiveBuffer : undefined,
            req.opt === SO_SNDBUF ? b.sendBuffer : undefined,
          );
        }
        return this.reply(session, req.id);
      }
      case `${SOL_SOCKET}/${SO_LINGER}`:
        // -1: off; otherwise the linger time. {1, 0} resets on close (see maybePump).
        if (val < -1) return this.fail(session, req.id, 'EINVAL');
        break;
      default:
        if (!REMEMBERED.has(key)) return this.fail(session, req.id, 'ENOPROTOOPT');
    }
    r.opts.set(key, val);
    this.reply(session, req.id);
  }

  private onGetopt(session: Session, req: RequestOf<'getopt'>): undefined {
    const r = this.record(session, req.id, req.sock, !req.sock.startsWith('nuse/a/'));
    if (r === undefined) {
      if (!this.records.has(req.sock)) this.fail(session, req.id, 'EBADF');
      return;
    }
    const key = `${req.level}/${req.opt}`;
    const stored = r.opts.get(key);
    const cfg = this.stack.tcp.config;
    const tcp = tcpOf(r.conn);
    switch (key) {
      case `${IPPROTO_TCP}/${TCP_NODELAY}`:
      case `${SOL_SOCKET}/${SO_KEEPALIVE}`:
        return this.reply(session, req.id, { val: stored ? 1 : 0 });
      case `${SOL_SOCKET}/${SO_RCVBUF}`:
        return this.reply(session, req.id, { val: this.buffers(r).receiveBuffer ?? cfg.receiveBuffer });
      case `${SOL_SOCKET}/${SO_SNDBUF}`:
        return this.reply(session, req.id, { val: this.buffers(r).sendBuffer ?? cfg.sendBuffer });
      case `${IPPROTO_TCP}/${TCP_KEEPIDLE}`:
        return this.reply(session, req.id, { val: stored ?? Math.round(cfg.keepAliveIdleMs / 1000) });
      case `${IPPROTO_TCP}/${TCP_KEEPINTVL}`:
        return this.reply(session, req.id, { val: stored ?? Math.round(cfg.keepAliveIntervalMs / 1000) });
      case `${IPPROTO_TCP}/${TCP_KEEPCNT}`:
        return this.reply(session, req.id, { val: stored ?? cfg.keepAliveProbes });
      case `${IPPROTO_TCP}/${TCP_MAXSEG}`:
        return this.reply(session, req.id, { val: tcp?.sendMss() ?? (r.family === 4 ? 1460 : 1440) });
      case `${SOL_SOCKET}/${SO_LINGER}`:
        return this.reply(session, req.id, { val: stored ?? -1 });
      case `${SOL_SOCKET}/${SO_PROTOCOL}`:
        // What the socket runs once a policy upgraded it (the plugin may still fall back to TCP inside).
        return this.reply(session, req.id, {
          val: r.protocol === IPPROTO_TCP && (this.policy.mptcp || session.policy.mptcp) ? IPPROTO_MPTCP : r.protocol,
        });
      case `${IPPROTO_TCP}/${TCP_INFO}`: {
        const data =
          tcp !== undefined
            ? tcpInfo(tcp)
            : tcpInfoForState(r.state === 'listening' ? 'LISTEN' : r.state === 'connected' ? 'ESTABLISHED' : 'CLOSED');
        return this.reply(session, req.id, { data });
      }
      case `${IPPROTO_TCP}/${TCP_CONGESTION}`: {
        const name = tcp?.congestion.name ?? r.cc ?? cfg.congestionControl;
        const data = Buffer.alloc(TCP_CA_NAME_MAX);
        data.write(name.slice(0, TCP_CA_NAME_MAX - 1), 'latin1');
        return this.reply(session, req.id, { data });
      }
      default:
        if (!REMEMBERED.has(key)) return this.fail(session, req.id, 'ENOPROTOOPT');
        return this.reply(session, req.id, { val: stored ?? 0 });
    }
  }

  /**
   * shutdown(2), told before the shim shuts its stream natively. SHUT_WR: the stream's
   * coming EOF is a FIN, not a close (after SHUT_RD the stream's hang-up cannot tell).
   * SHUT_RD: from now on nothing is written to the stream (the kernel would refuse it,
   * EPIPE). As Linux: after SHUT_RD, TCP data that arrives is kept unread (the window
   * closes as it fills; a close then sends RST); once both directions are shut (FIN
   * sent), data that arrives is answered with RST and the program's next read fails with
   * ECONNRESET.
   */
  private onShutdown(session: Session, req: RequestOf<'shutdown'>): undefined {
    if (req.how < 0 || req.how > 2) return this.fail(session, req.id, 'EINVAL');
    const r = this.record(session, req.id, req.sock, false);
    if (r === undefined) {
      if (!this.records.has(req.sock)) this.fail(session, req.id, 'ENOTCONN');
      return;
    }
    if (r.state === 'connected') {
      if (req.how !== 0) r.wrShut = true;
      if (req.how !== 1 || r.rdShut !== 0) r.rdShut = r.wrShut ? 2 : 1;
    }
    this.reply(session, req.id);
  }

  /**
   * close() of a socket with SO_LINGER {1, N > 0} (the shim closed its fd, then asks, up to
   * N seconds): `val` 1 while the daemon still drains it (bytes of the stream not yet read,
   * or sent and not acknowledged, or our FIN not acknowledged), 0 once done, as Linux's
   * close returns once the state leaves FIN-WAIT-1. Also 0 when the program still holds
   * another copy of the fd (close was not the last one).
   */
  private onLinger(session: Session, req: RequestOf<'linger'>): undefined {
    const r = this.records.get(req.sock);
    if (r === undefined || r.uid !== session.cred.uid || r.state !== 'connected') {
      return this.reply(session, req.id, { val: 0 });
    }
    const s = r.stream;
    if (s !== undefined && !s.destroyed && !this.closedForGood(r, s)) return this.reply(session, req.id, { val: 0 });
    const c = r.conn;
    const tcp = tcpOf(c);
    let draining: boolean;
    if (c === undefined || c.destroyed) draining = false;
    // The stream not read to its end yet; then our FIN not yet acknowledged.
    else if (!c.writableEnded) draining = true;
    else if (tcp !== undefined) draining = !['FIN-WAIT-2', 'TIME-WAIT', 'CLOSED'].includes(tcp.state);
    else draining = !c.writableFinished;
    this.reply(session, req.id, { val: draining ? 1 : 0 });
  }

  private onClosed(session: Session, req: RequestOf<'closed'>): undefined {
    const r = this.record(session, req.id, req.sock, false);
    if (r !== undefined && r.state === 'listening') this.checkListener(r);
    this.reply(session, req.id);
  }

  /** Stops a listener once no process holds its unix listener (its name left /proc/net/unix). */
  private checkListener(r: SockRecord): void {
    fs.readFile('/proc/net/unix', 'latin1', (err, text) => {
      if (err !== null || r.state !== 'listening') return;
      if (!text.includes(` @${r.name}\n`)) this.stopListening(r, 'the program closed it');
    });
  }

  /** A process's control connection closed: what it set up but never connected goes; listeners are checked. */
  private endSession(session: Session): void {
    for (const r of session.records) {
      r.session = undefined;
      if (r.state === 'idle' || r.state === 'failed') this.forget(r);
      else if (r.state === 'listening') this.checkListener(r);
      else if (r.stream === undefined && r.state !== 'closed') this.dispose(r);
    }
    session.records.clear();
  }

  // ---------------------------------------------------------------- data streams

  private onDataStream(stream: net.Socket, name: string, cred: PeerCred): void {
    const r = this.records.get(name);
    if (r === undefined) {
      // The stream may come before its connect request: wait for it a little.
      const old = this.parked.get(name);
      if (old !== undefined) {
        clearTimeout(old.timer);
        old.stream.destroy();
      }
      const timer = setTimeout(() => {
        this.parked.delete(name);
        stream.destroy();
      }, PARK_MS);
      this.parked.set(name, { stream, cred, timer });
      stream.once('close', () => {
        if (this.parked.get(name)?.stream === stream) {
          clearTimeout(timer);
          this.parked.delete(name);
        }
      });
      return;
    }
    this.attachStream(r, stream, cred);
  }

  private attachStream(r: SockRecord, stream: net.Socket, cred: PeerCred): void {
    if (cred.uid !== r.uid || r.stream !== undefined) {
      this.log.warn(
        { sock: r.name, peerPid: cred.pid, uid: cred.uid },
        'refusing a data stream (another uid, or a second one)',
      );
      stream.destroy();
      return;
    }
    r.stream = stream;
    if (r.state === 'failed') stream.destroy();
    else this.maybePump(r);
  }

  /**
   * Once the connection is established and the stream is here: discard the filler, then
   * pump both ways. Backpressure: a full TCP send buffer pauses reading the stream (the
   * program's writes block); a stream that does not drain pauses reading TCP (the window closes).
   *
   * How the program's socket ends decides how TCP ends, as on Linux:
   * - shutdown(SHUT_WR): the stream's EOF alone; FIN after the data.
   * - close(2), the last copy of the fd: EOF and hang-up together (see IpcNative.hungUp).
   *   With SO_LINGER {1, 0}, or with bytes the program never read (RFC 2525 §2.17:
   *   bytes we still hold for it, or bytes left in its socket, which the kernel reports
   *   to us as ECONNRESET), RST at once; otherwise FIN after the data.
   * - A TCP reset (or timeout) ends the stream at once; the error is kept for the
   *   program's next read (the shim asks at EOF) and for SO_ERROR.
   */
  private maybePump(r: SockRecord): void {
    const s = r.stream;
    const c = r.conn as (Duplex & { resetAndDestroy(): unknown }) | undefined;
    if (r.pumping || s === undefined || c === undefined || r.state !== 'connected') return;
    r.pumping = true;
    let skip = r.fill;
    let streamClosed = false;
    let connClosed = false;
    let streamError: string | undefined;
    const done = (): void => {
      if (streamClosed && connClosed) this.forget(r);
    };
    const reset = (why: string): void => {
      if (connClosed) return;
      this.log.debug({ sock: r.name, why }, 'reset');
      c.resetAndDestroy();
    };
    const unread = (): boolean => s.writableLength > 0 || c.readableLength > 0 || (tcpOf(r.conn)?.readable ?? 0) > 0;
    s.on('data', (chunk: Buffer) => {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length);
        skip -= n;
        if (n === chunk.length) return;
        chunk = chunk.subarray(n);
      }
      if (!c.write(chunk)) s.pause();
    });
    c.on('drain', () => s.resume());
    const lingerZero = (): boolean => r.opts.get(`${SOL_SOCKET}/${SO_LINGER}`) === 0;
    let watch: NodeJS.Timeout | undefined;
    // The program closed or shut down its writing side (the shim tells a shutdown first:
    // once the program also shut down its reading side, the stream's hang-up shows either way).
    s.on('end', () => {
      const closed = this.closedForGood(r, s);
      if (closed && lingerZero()) return reset('SO_LINGER {1, 0}');
      if (closed && unread()) return reset('closed with unread data');
      c.end(); // FIN after what it wrote
      if (!closed && (lingerZero() || this.native.peerClosed !== undefined)) {
        // A shutdown, then, later, a close with SO_LINGER {1, 0} or with data unread (kept
        // after SHUT_RD, or not yet taken by the stream): RST then, as Linux. Nothing else
        // reports the close of a stream whose EOF was already read: look for it.
        watch = setInterval(() => {
          if (connClosed || streamClosed) clearInterval(watch);
          else if (this.closedForGood(r, s)) {
            clearInterval(watch);
            if (lingerZero()) reset('SO_LINGER {1, 0} after shutdown');
            else if (unread()) reset('closed after shutdown with unread data');
          }
        }, 100);
        watch.unref();
      }
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      streamError = e.code;
    });
    c.on('data', (chunk: Buffer) => {
      if (r.rdShut === 2) {
        // Data after shutdown(SHUT_RDWR): RST, and the program's next read fails (Linux's
        // tcp_rcv_state_process in FIN-WAIT with RCV_SHUTDOWN).
        r.pendingError = 'ECONNRESET';
        return reset('data after shutdown(SHUT_RDWR)');
      }
      if (r.rdShut === 1) {
        // After shutdown(SHUT_RD) the stream takes nothing more: keep it unread, as Linux
        // keeps it queued (the window closes as it fills; a close then sends RST).
        c.pause();
        c.unshift(chunk);
        return;
      }
      if (!s.write(chunk)) c.pause();
    });
    s.on('drain', () => {
      if (r.rdShut === 0) c.resume();
    });
    // The peer's FIN: the program reads EOF.
    c.on('end', () => {
      if (r.rdShut === 0) s.end();
    });
    s.on('close', () => {
      streamClosed = true;
      // ECONNRESET: the program closed its socket with bytes unread in it; EPIPE: it
      // closed while we had more for it. Either way data was lost: RST, as the kernel.
      if (streamError === 'ECONNRESET' || streamError === 'EPIPE') reset(`closed with unread data (${streamError})`);
      // The program is gone while TCP still has work: as the kernel for a closed socket, reset.
      else if (!connClosed && !(c.writableEnded && c.readableEnded)) c.destroy();
      done();
    });
    c.on('close', () => {
      connClosed = true;
      if (watch !== undefined) clearInterval(watch);
      r.state = r.state === 'connected' ? 'closed' : r.state;
      if (!streamClosed) {
        if (r.pendingError !== undefined) {
          this.rememberReset(r, r.pendingError);
          s.destroy();
        } else s.end();
      }
      done();
    });
    s.resume();
    c.resume();
  }

  /**
   * Whether the program closed its socket for good (its last fd), not a shutdown: the
   * kernel's socket diagnostics say it exactly; without them, the hang-up, which a program
   * that shut down both directions shows as well (then we go by the shutdown it told us).
   */
  private closedForGood(r: SockRecord, s: net.Socket): boolean {
    const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (this.native.peerClosed !== undefined && typeof fd === 'number' && fd >= 0) {
      try {
        return this.native.peerClosed(fd);
      } catch {
        // no sock_diag (a kernel without CONFIG_UNIX_DIAG): as below
      }
    }
    return !r.wrShut && this.hungUp(s);
  }

  /** Whether the program closed its end of a stream for good (not a shutdown). */
  private hungUp(s: net.Socket): boolean {
    const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return false;
    try {
      return this.native.hungUp(fd);
    } catch {
      return false;
    }
  }

  /** Keeps a connection's error for the program's next read on its socket (the shim asks at EOF). */
  private rememberReset(r: SockRecord, code: string): void {
    const now = Date.now();
    if (this.resets.size >= MAX_RESETS) {
      for (const [k, v] of this.resets) {
        if (this.resets.size < MAX_RESETS && now - v.at < RESET_MEMORY_MS) break;
        this.resets.delete(k);
      }
    }
    this.resets.set(r.name, { uid: r.uid, code, at: now });
  }

  private forget(r: SockRecord): void {
    if (this.records.get(r.name) === r) {
      this.records.delete(r.name);
      // A connection that ended while the program may still hold its fd: getsockname keeps
      // giving its address (as Linux), for as long as reset errors are remembered.
      if (r.local !== undefined && r.state === 'closed') {
        const now = Date.now();
        if (this.closedNames.size >= MAX_RESETS) {
          for (const [k, v] of this.closedNames) {
            if (this.closedNames.size < MAX_RESETS && now - v.at < RESET_MEMORY_MS) break;
            this.closedNames.delete(k);
          }
        }
        this.closedNames.set(r.name, { uid: r.uid, local: r.local, at: now });
      }
    }
    r.session?.records.delete(r);
  }

  private dispose(r: SockRecord): void {
    if (r.state === 'listening') this.stopListening(r, 'the daemon stops');
    r.state = 'closed';
    r.stream?.destroy();
    r.conn?.destroy();
    this.forget(r);
  }
}

export interface ControlSocket {
  /** Where it listens. */
  readonly path: string;
  /** Resolves once listening; rejects when it cannot listen (the path is taken by another daemon, no permission). */
  readonly ready: Promise<void>;
  /** Closes it (also when still opening). */
  close(): void;
}

/**
 * The daemon's control socket on `path`, or on the default path when none is given. A
 * path that cannot be used is an error, the default one included: a daemon that runs
 * without its control socket would leave `nuse run` talking to another daemon.
 */
export function startControlSocket(opts: {
  stack: Stack;
  path?: string;
  logger: Logger;
  policy?: Policy;
}): ControlSocket {
  let server: IpcServer | undefined;
  let closed = false;
  const path = opts.path ?? defaultSocketPath();
  const ready = IpcServer.start({
    stack: opts.stack,
    path,
    logger: opts.logger,
    policy: opts.policy,
  }).then((s) => {
    if (closed) s.close();
    else server = s;
  });
  return {
    path,
    ready,
    close() {
      closed = true;
      server?.close();
    },
  };
}

/** Whether a daemon answers on a unix socket path. */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** The address as the stack sees it: v4-mapped addresses of an AF_INET6 socket are IPv4. */
function normalize(family: 4 | 6, a: Uint8Array): Uint8Array | undefined {
  if (family === 4) return a.length === 4 ? a : undefined;
  return a;
}

/** Whether two bound addresses are the same (undefined: the wildcard). */
function sameAddress(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a === undefined || b === undefined ? a === b : sameBytes(a, b);
}

/** The stack's TCP connection under a socket (none for the kernel sockets of loopback destinations). */
function tcpOf(conn: TcpSocket | net.Socket | undefined): TcpConnection | undefined {
  const c = conn !== undefined && 'connection' in conn ? conn.connection : undefined;
  return c !== undefined && 'stats' in c && 'config' in c ? (c as TcpConnection) : undefined;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** /proc/net/unix: every unix socket's name (abstract ones as "@name"), to tell which program sockets still exist. */
function readUnixNames(): string {
  try {
    return fs.readFileSync('/proc/net/unix', 'latin1');
  } catch {
    return '';
  }
}

function isUnspecified(a: Uint8Array): boolean {
  return a.every((b) => b === 0);
}

/** Whether the kernel has `a` on one of its interfaces (a bind the policy keeps on the kernel needs it). */
function isKernelLocal(a: Uint8Array): boolean {
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) {
      const text = i.address.replace(/%.*$/, '');
      try {
        if (sameBytes(parseIp(text), a)) return true;
      } catch {
        // not an address we parse
      }
    }
  }
  return false;
}

function isLoopback(a: Uint8Array): boolean {
  if (a.length === 4) return a[0] === 127;
  return a.every((b, i) => (i === 15 ? b === 1 : b === 0));
}

/** An address text from Node or the stack ("10.0.0.1", "::ffff:127.0.0.1", "fd00::1") as reply fields. */
function endpoint(text: string, port: number): { addr: Uint8Array; port: number } {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  return { addr: parseIp(m !== null ? m[1]! : text), port };
}
