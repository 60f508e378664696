import type { IcmpErrorReport } from '../ip/icmp-error';
import type { IpLayer, IpPacketIn } from '../ip/ip-layer';
import { isUnicast } from '../ip/martian';
import type { Clock, TimerHandle } from '../time/clock';
import { Random } from '../util/random';
import { formatIp } from '../wire/address';
import { pseudoHeaderSumV4, pseudoHeaderSumV6 } from '../wire/checksum';
import { IpProtocol } from '../wire/ip-protocol';
import { ParseError } from '../wire/parse-error';
import { TcpFlags, TcpHeaderView, TcpRepr } from '../wire/tcp';
import { DEFAULT_TCP_CONFIG, resolveTcpConfig, type TcpConfig } from './config';
import { type CongestionControlRegistry, defaultCongestionControls } from './congestion';
import { ChallengeAckBudget, type Endpoint, TcpConnection, type TcpConnectionEvents } from './connection';
import { IsnGenerator } from './isn';
import { TcpOptionRegistry } from './options';
import { type IncomingSegment, TcpError } from './segment';
import { seqAdd } from './seq';

/** Linux's default ephemeral range (net.ipv4.ip_local_port_range). */
const EPHEMERAL_LOW = 32768;
const EPHEMERAL_HIGH = 60999;

export interface TcpLayerOptions {
  config?: Partial<TcpConfig>;
  congestionControls?: CongestionControlRegistry;
  options?: TcpOptionRegistry;
  /** Seeds ISNs, timestamp offsets and port choice; fixed in tests for reproducible runs. */
  seed?: number | string;
}

/** A passive open: a port (and optionally an address) accepting connections. */
export class TcpListener {
  /** Connections in SYN-RECEIVED (the SYN queue). */
  readonly synQueue = new Set<TcpConnection>();
  /** Established connections not yet taken by `accept()` (the accept queue). */
  readonly acceptQueue: TcpConnection[] = [];
  /** Called when a connection is established and queued; the owner may `accept()` it now. */
  onAcceptable: (() => void) | undefined;
  readonly drops = { synQueueFull: 0, acceptQueueFull: 0 };
  closed = false;

  constructor(
    readonly port: number,
    readonly address: Uint8Array | undefined,
    public backlog: number,
  ) {}

  accept(): TcpConnection | undefined {
    return this.acceptQueue.shift();
  }
}

interface Entry {
  conn: TcpConnection;
  key: string;
  timer: TimerHandle | undefined;
  timerAt: number;
  dirty: boolean;
  listener: TcpListener | undefined;
}

/**
 * TCP over the IP layer: demultiplexing to connections and listeners, RSTs for segments
 * nobody owns (RFC 9293 §3.10.7.1), ephemeral ports, and driving each sans-IO
 * connection with the clock (its `pollAt` deadline) and the IP layer (its output).
 */
export class TcpLayer {
  readonly config: TcpConfig;
  readonly congestionControls: CongestionControlRegistry;
  readonly options: TcpOptionRegistry;
  private readonly entries = new Map<string, Entry>();
  private readonly byConnection = new Map<TcpConnection, Entry>();
  private readonly listeners = new Map<number, TcpListener[]>();
  private readonly rng: Random;
  /** RFC 5961 §7: one challenge-ACK budget for the whole stack. */
  readonly challengeAcks = new ChallengeAckBudget();
  private readonly isn: IsnGenerator;
  private flushScheduled = false;
  private flushTimer: TimerHandle | undefined;
  private readonly dirty: Entry[] = [];
  /** Dropped segments by cause ("bad-checksum", "malformed", "no-socket", ...). */
  readonly drops: Record<string, number> = {};
  readonly counters = { resetsSent: 0, segmentsIn: 0, segmentsOut: 0 };

  constructor(
    readonly ip: IpLayer,
    readonly clock: Clock,
    opts: TcpLayerOptions = {},
  ) {
    this.config = resolveTcpConfig(DEFAULT_TCP_CONFIG, opts.config);
    this.congestionControls = opts.congestionControls ?? defaultCongestionControls;
    this.options = opts.options ?? new TcpOptionRegistry();
    this.rng = new Random(opts.seed ?? 'tcp');
    this.isn = new IsnGenerator(this.rng.fill(new Uint8Array(32)));
    this.congestionControls.create(this.config.congestionControl); // fail early on a bad name
    ip.registerProtocol(IpProtocol.TCP, (p) => this.input(p));
    ip.registerErrorHandler(IpProtocol.TCP, (report) => this.icmpError(report));
  }

  get connections(): TcpConnection[] {
    return [...this.byConnection.keys()];
  }

  /** An active open. Throws TcpError EHOSTUNREACH without a route, EADDRINUSE-like Error on a taken tuple. */
  connect(
    remote: Endpoint,
    opts: {
      localAddress?: Uint8Array;
      localPort?: number;
      config?: Partial<TcpConfig>;
      events?: TcpConnectionEvents;
    } = {},
  ): TcpConnection {
    const route = this.ip.route(remote.address, opts.localAddress);
    if (route === undefined) throw new TcpError('EHOSTUNREACH', `no route to ${formatIp(remote.address)}`);
    const localAddress = route.src;
    const localPort = opts.localPort ?? this.ephemeralPort(localAddress, remote);
    const local = { address: localAddress, port: localPort };
    const key = tupleKey(local, remote);
    if (this.entries.has(key)) {
      throw new Error(`${formatIp(localAddress)}:${localPort} → ${formatIp(remote.address)}:${remote.port} is in use`);
    }
    const config = resolveTcpConfig(this.config, opts.config);
    const conn = TcpConnection.connect(
      {
        local,
        remote,
        config,
        iss: this.isn.generate(this.clock.now(), localAddress, localPort, remote.address, remote.port),
        mtu: route.linkMtu,
        pathMtu: route.mtu,
        options: this.options,
        congestion: this.congestionControls.create(config.congestionControl),
        events: opts.events,
        tsOffset: this.rng.u32(),
        challengeAckBudget: this.challengeAcks,
      },
      this.clock.now(),
    );
    this.track(conn, key, undefined);
    this.poke(conn);
    return conn;
  }

  /** A passive open on `port` (and `address`, or every local address). */
  listen(port: number, opts: { address?: Uint8Array; backlog?: number } = {}): TcpListener {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`bad port ${port}`);
    const list = this.listeners.get(port) ?? [];
    const clash = list.find(
      (l) => l.address === undefined || opts.address === undefined || sameAddress(l.address, opts.address),
    );
    if (clash) throw Object.assign(new Error(`port ${port} is already listening`), { code: 'EADDRINUSE' });
    // As Linux, a backlog of 0 still admits one connection.
    const listener = new TcpListener(port, opts.address, Math.max(1, opts.backlog ?? 511));
    list.push(listener);
    this.listeners.set(port, list);
    return listener;
  }

  /** Stops a listener; connections still in its queues are reset. */
  unlisten(listener: TcpListener): void {
    listener.closed = true;
    const list = (this.listeners.get(listener.port) ?? []).filter((l) => l !== listener);
    if (list.length === 0) this.listeners.delete(listener.port);
    else this.listeners.set(listener.port, list);
    for (const c of [...listener.synQueue, ...listener.acceptQueue]) {
      c.abort();
      this.poke(c);
    }
    listener.synQueue.clear();
    listener.acceptQueue.length = 0;
  }

  /**
   * Shuts TCP down as a daemon does on SIGINT: every listener stops, every connection is
   * aborted (a RST to the peer where one is due, RFC 9293 §3.10.5; TIME-WAIT just ends)
   * and every timer this layer owns is cancelled, so nothing of TCP keeps running.
   */
  closeAll(): void {
    for (const list of [...this.listeners.values()]) for (const l of [...list]) this.unlisten(l);
    for (const e of [...this.byConnection.values()]) {
      e.conn.abort();
      this.service(e);
      // service() forgets a CLOSED connection; anything left (none expected) is forgotten here.
      if (this.byConnection.get(e.conn) === e) this.forget(e);
    }
    if (this.flushTimer !== undefined) this.clock.cancelTimer(this.flushTimer);
    this.flushTimer = undefined;
    this.flushScheduled = false;
    this.dirty.length = 0;
  }

  /** Tells the layer a connection has something to do (a user call): serviced on the next clock turn. */
  poke(conn: TcpConnection): void {
    const e = this.byConnection.get(conn);
    if (e === undefined || e.dirty) return;
    e.dirty = true;
    this.dirty.push(e);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.flushTimer = this.clock.setTimer(0, () => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    this.flushTimer = undefined;
    const list = this.dirty.splice(0);
    for (const e of list) {
      e.dirty = false;
      this.service(e);
    }
  }

  private input(p: IpPacketIn): void {
    this.counters.segmentsIn++;
    let repr: TcpRepr;
    try {
      const pseudo =
        p.version === 4
          ? pseudoHeaderSumV4(p.src, p.dst, IpProtocol.TCP, p.payload.length)
          : pseudoHeaderSumV6(p.src, p.dst, IpProtocol.TCP, p.payload.length);
      repr = TcpRepr.parse(TcpHeaderView.parse(p.payload), pseudo);
    } catch (e) {
      if (e instanceof ParseError) {
        this.count(e.reason === 'bad-checksum' ? 'bad-checksum' : 'malformed');
        return;
      }
      throw e;
    }
    if (!isUnicast(p.src)) {
      // RFC 1122 §4.2.3.10: segments from broadcast, multicast or unspecified sources are ignored.
      this.count('bad-source');
      return;
    }
    if (repr.srcPort === 0 || repr.dstPort === 0) {
      this.count('port-zero');
      return;
    }
    const local = { address: p.dst, port: repr.dstPort };
    const remote = { address: p.src, port: repr.srcPort };
    const seg: IncomingSegment = {
      seq: repr.seq,
      ack: repr.ack,
      flags: repr.flags,
      window: repr.window,
      payload: repr.payload,
      options: repr.options,
    };
    let entry = this.entries.get(tupleKey(local, remote));
    if (entry !== undefined && entry.conn.state === 'TIME-WAIT' && entry.conn.acceptsNewSyn(seg)) {
      // RFC 1122 §4.2.2.13 / RFC 6191: a new SYN beyond the old incarnation's sequence
      // space (or timestamps) reopens the four-tuple: the TIME-WAIT connection ends here.
      this.forget(entry);
      entry = undefined;
    }
    if (entry !== undefined) {
      entry.conn.process(seg, this.clock.now());
      this.service(entry);
      return;
    }
    const listener = this.findListener(local);
    if (listener !== undefined && (seg.flags & (TcpFlags.SYN | TcpFlags.ACK | TcpFlags.RST)) === TcpFlags.SYN) {
      this.acceptSyn(listener, local, remote, seg);
      return;
    }
    // RFC 9293 §3.10.7.1–2: anything else for a closed port or a listener (an ACK) gets a RST.
    this.count('no-socket');
    this.sendResetFor(local, remote, seg);
  }

  /**
   * An ICMP error about a segment we sent (the IP layer checked the quoted source is
   * ours). RFC 5927 §4.1: it must name a connection we have and quote a sequence number
   * in SND.UNA..SND.NXT, else it is ignored and counted. A path MTU report lowers the
   * path MTU and every connection to that destination cuts its segments to it (RFC 1191
   * §6.4, RFC 8201 §5.4); any other error goes to the connection (RFC 1122 §4.2.3.9).
   */
  private icmpError(report: IcmpErrorReport): boolean {
    const t = report.transport;
    const seq = ((t[4]! << 24) | (t[5]! << 16) | (t[6]! << 8) | t[7]!) >>> 0;
    const entry = this.entries.get(
      tupleKey({ address: report.src, port: report.srcPort }, { address: report.dst, port: report.dstPort }),
    );
    if (entry === undefined) {
      this.count('icmp-no-connection');
      return false;
    }
    if (!entry.conn.icmpSequenceAcceptable(seq)) {
      this.count('icmp-out-of-window');
      return false;
    }
    const now = this.clock.now();
    if (report.kind === 'packet-too-big') {
      if (this.ip.learnPathMtu(report) === undefined) return true; // nothing new (a report raises nothing)
      for (const e of [...this.byConnection.values()]) {
        if (!sameAddress(e.conn.remote.address, report.dst)) continue;
        const route = this.ip.route(e.conn.remote.address, e.conn.local.address);
        if (route !== undefined && e.conn.pathMtuChanged(route.mtu, now)) this.service(e);
      }
      return true;
    }
    entry.conn.icmpError(report.errno, report.hard, now);
    this.service(entry);
    return true;
  }

  private acceptSyn(listener: TcpListener, local: Endpoint, remote: Endpoint, syn: IncomingSegment): void {
    if (listener.synQueue.size >= this.config.synQueueLength) {
      listener.drops.synQueueFull++;
      this.count('syn-queue-full');
      return;
    }
    if (listener.acceptQueue.length >= listener.backlog) {
      // As Linux: a full accept queue drops the SYN; the client retries.
      listener.drops.acceptQueueFull++;
      this.count('accept-queue-full');
      return;
    }
    const route = this.ip.route(remote.address, local.address);
    if (route === undefined) {
      this.count('no-route');
      return;
    }
    const localCopy = { address: local.address.slice(), port: local.port };
    const remoteCopy = { address: remote.address.slice(), port: remote.port };
    const conn = TcpConnection.accept(
      {
        local: localCopy,
        remote: remoteCopy,
        config: resolveTcpConfig(this.config),
        iss: this.isn.generate(this.clock.now(), local.address, local.port, remote.address, remote.port),
        mtu: route.linkMtu,
        pathMtu: route.mtu,
        options: this.options,
        congestion: this.congestionControls.create(this.config.congestionControl),
        tsOffset: this.rng.u32(),
        challengeAckBudget: this.challengeAcks,
      },
      syn,
      this.clock.now(),
    );
    conn.isPassive = true;
    listener.synQueue.add(conn);
    conn.events = {
      onEstablished: () => {
        listener.synQueue.delete(conn);
        if (listener.closed) {
          conn.abort();
          return;
        }
        listener.acceptQueue.push(conn);
        listener.onAcceptable?.();
      },
      onClosed: () => {
        listener.synQueue.delete(conn);
        const i = listener.acceptQueue.indexOf(conn);
        if (i >= 0) listener.acceptQueue.splice(i, 1);
      },
    };
    const entry = this.track(conn, tupleKey(localCopy, remoteCopy), listener);
    this.service(entry);
  }

  private findListener(local: Endpoint): TcpListener | undefined {
    const list = this.listeners.get(local.port);
    if (list === undefined) return undefined;
    return (
      list.find((l) => l.address !== undefined && sameAddress(l.address, local.address)) ??
      list.find((l) => l.address === undefined)
    );
  }

  /** RFC 9293 §3.10.7.1: the reply to a segment for no connection. Never answer a RST. */
  private sendResetFor(local: Endpoint, remote: Endpoint, seg: IncomingSegment): void {
    if (seg.flags & TcpFlags.RST) return;
    const segLen = seg.payload.length + (seg.flags & TcpFlags.SYN ? 1 : 0) + (seg.flags & TcpFlags.FIN ? 1 : 0);
    const hasAck = (seg.flags & TcpFlags.ACK) !== 0;
    this.counters.resetsSent++;
    this.emit(local.address, remote.address, {
      srcPort: local.port,
      dstPort: remote.port,
      seq: hasAck ? seg.ack : 0,
      ack: hasAck ? 0 : seqAdd(seg.seq, segLen),
      flags: hasAck ? TcpFlags.RST : TcpFlags.RST | TcpFlags.ACK,
      window: 0,
      urgentPointer: 0,
      options: [],
      payload: new Uint8Array(0),
    });
  }

  private forget(e: Entry): void {
    if (e.timer !== undefined) this.clock.cancelTimer(e.timer);
    e.timer = undefined;
    this.entries.delete(e.key);
    this.byConnection.delete(e.conn);
    e.conn.releaseTimeWait();
  }

  private track(conn: TcpConnection, key: string, listener: TcpListener | undefined): Entry {
    const entry: Entry = { conn, key, timer: undefined, timerAt: Number.POSITIVE_INFINITY, dirty: false, listener };
    this.entries.set(key, entry);
    this.byConnection.set(conn, entry);
    return entry;
  }

  /** Runs a connection's output and re-arms its timer; forgets it once CLOSED. */
  private service(e: Entry): void {
    const conn = e.conn;
    conn.dispatch(this.clock.now(), (seg) => this.emit(conn.local.address, conn.remote.address, seg));
    if (conn.state === 'CLOSED') {
      if (e.timer !== undefined) this.clock.cancelTimer(e.timer);
      e.timer = undefined;
      // The key may already belong to a new incarnation (a SYN reopened TIME-WAIT).
      if (this.entries.get(e.key) === e) this.entries.delete(e.key);
      this.byConnection.delete(conn);
      return;
    }
    const due = conn.pollAt();
    if (due === undefined) return;
    // Only re-arm for an earlier deadline: a timer that fires early finds nothing due
    // and re-arms, which is cheaper than cancelling on every segment.
    if (e.timer !== undefined && e.timerAt <= due) return;
    if (e.timer !== undefined) this.clock.cancelTimer(e.timer);
    e.timerAt = due;
    e.timer = this.clock.setTimer(due - this.clock.now(), () => {
      e.timer = undefined;
      e.timerAt = Number.POSITIVE_INFINITY;
      if (!this.byConnection.has(conn)) return;
      conn.onTimer(this.clock.now());
      this.service(e);
    });
  }

  private emit(src: Uint8Array, dst: Uint8Array, seg: TcpRepr): void {
    this.counters.segmentsOut++;
    this.ip.send(src, dst, { protocol: 'tcp', repr: seg });
  }

  private ephemeralPort(local: Uint8Array, remote: Endpoint): number {
    const span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1;
    const start = this.rng.int(span);
    for (let i = 0; i < span; i++) {
      const port = EPHEMERAL_LOW + ((start + i) % span);
      if (!this.entries.has(tupleKey({ address: local, port }, remote)) && !this.listeners.has(port)) return port;
    }
    throw Object.assign(new Error('no ephemeral port left'), { code: 'EADDRNOTAVAIL' });
  }

  private count(cause: string): void {
    this.drops[cause] = (this.drops[cause] ?? 0) + 1;
  }
}

/**
 * The demultiplexing key of a four-tuple: one UTF-16 unit per 16 bits of address and
 * per port. Cheap to build per segment (no text formatting) and unique per tuple.
 */
function tupleKey(local: Endpoint, remote: Endpoint): string {
  return (
    addressKey(local.address) +
    String.fromCharCode(local.port) +
    addressKey(remote.address) +
    String.fromCharCode(remote.port)
  );
}

function addressKey(a: Uint8Array): string {
  if (a.length === 4) return String.fromCharCode((a[0]! << 8) | a[1]!, (a[2]! << 8) | a[3]!);
  let k = '';
  for (let i = 0; i < a.length; i += 2) k += String.fromCharCode((a[i]! << 8) | a[i + 1]!);
  return k;
}

function sameAddress(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
