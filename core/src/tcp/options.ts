import { TcpFlags } from '../wire/tcp';
import { OptionSpace, type SackBlock, type TcpOption, TcpOptionKind } from '../wire/tcp-options';
import type { TcpConfig } from './config';
import type { IncomingSegment, TcpState } from './segment';

/**
 * The TCP option registry (DESIGN.md decision 4): every option the stack sends or
 * understands goes through a handler registered by option kind, the core's own MSS,
 * window scale, SACK and timestamps included. Plugins (MPTCP: kind 30) register
 * handlers the same way, so no change to TCP is needed for them.
 *
 * Handlers:
 * - `read` runs for each incoming option of its kinds before the state machine sees the
 *   segment; it records what it decoded on the segment (or, for plugins, in `seg.ext`).
 * - `write` runs for each outgoing segment in `order`; it may add options if
 *   `ctx.space` still has room (the 40-byte limit, RFC 9293 §3.1). Handlers must not
 *   change the segment's sequence numbers or flags.
 */
export interface TcpOptionHandler {
  readonly name: string;
  /** Option kinds this handler decodes on input. */
  readonly kinds: readonly number[];
  /** Writing order among handlers (lower first). Core: MSS 10, SACK-permitted 20, timestamps 30, window scale 40, SACK 60. */
  readonly order: number;
  read?(ctx: OptionReadContext, option: TcpOption): void;
  write?(ctx: OptionWriteContext): void;
  /**
   * Bytes (NOP padding included) this handler will write on the next data segment of
   * this connection. The connection asks before it cuts a segment, so the payload
   * shrinks and the packet still fits the MTU (RFC 6691). A handler that writes options
   * on data segments must declare them here.
   */
  reserve?(conn: TcpOptionHost): number;
}

/** What an option handler may see of a connection. */
export interface TcpOptionHost {
  readonly state: TcpState;
  readonly config: Readonly<TcpConfig>;
  /** The MSS this side announces (clamped to the route MTU). */
  readonly announcedMss: number;
  /** Negotiated on the handshake. */
  readonly timestampsEnabled: boolean;
  readonly sackEnabled: boolean;
  readonly windowScalingEnabled: boolean;
  /** The shift this side applies to the windows it advertises (RFC 7323 §2.2). */
  readonly rcvWscale: number;
  /** Did the peer's SYN carry these options (for the SYN-ACK: RFC 7323 §2.2, RFC 2018 §2)? */
  readonly peerOffered: { readonly timestamps: boolean; readonly sack: boolean; readonly wscale: boolean };
  /** RFC 7323 §4: the timestamp clock value to send now, and TS.Recent to echo. */
  tsNow(): number;
  readonly tsRecent: number;
  /** RFC 2018 §4: blocks to report (most recent first), possibly led by a D-SACK block (RFC 2883). */
  sackBlocksToSend(): SackBlock[];
  /** Per-connection state of option handlers and plugins, by handler name. */
  readonly ext: Map<string, unknown>;
}

export interface OptionReadContext {
  readonly conn: TcpOptionHost;
  readonly seg: IncomingSegment;
}

export interface OptionWriteContext {
  readonly conn: TcpOptionHost;
  readonly flags: number;
  readonly seq: number;
  readonly payloadLen: number;
  readonly space: OptionSpace;
  readonly options: TcpOption[];
}

const isSyn = (flags: number): boolean => (flags & TcpFlags.SYN) !== 0;
const isSynAck = (flags: number): boolean => (flags & (TcpFlags.SYN | TcpFlags.ACK)) === (TcpFlags.SYN | TcpFlags.ACK);

/** RFC 9293 §3.7.1: MSS only on SYNs. */
const mssHandler: TcpOptionHandler = {
  name: 'mss',
  kinds: [TcpOptionKind.MSS],
  order: 10,
  read({ seg }, o) {
    if (o.kind === 'mss' && isSyn(seg.flags)) seg.mss = o.mss;
  },
  write(ctx) {
    if (!isSyn(ctx.flags)) return;
    const o: TcpOption = { kind: 'mss', mss: ctx.conn.announcedMss };
    if (ctx.space.tryReserveOption(o)) ctx.options.push(o);
  },
};

/** RFC 2018 §2: SACK-permitted on SYNs; on a SYN-ACK only if the peer offered it. */
const sackPermittedHandler: TcpOptionHandler = {
  name: 'sack-permitted',
  kinds: [TcpOptionKind.SACK_PERMITTED],
  order: 20,
  read({ seg }, o) {
    if (o.kind === 'sack-permitted' && isSyn(seg.flags)) seg.sackPermitted = true;
  },
  write(ctx) {
    const { conn } = ctx;
    if (!isSyn(ctx.flags) || !conn.config.sack) return;
    if (isSynAck(ctx.flags) && !conn.peerOffered.sack) return;
    const o: TcpOption = { kind: 'sack-permitted' };
    if (ctx.space.tryReserveOption(o)) ctx.options.push(o);
  },
};

/** RFC 7323 §3: timestamps on the SYN if configured; on every later segment once negotiated. */
const timestampsHandler: TcpOptionHandler = {
  name: 'timestamps',
  kinds: [TcpOptionKind.TIMESTAMPS],
  order: 30,
  read({ seg }, o) {
    if (o.kind !== 'timestamps') return;
    seg.tsVal = o.tsVal;
    seg.tsEcr = o.tsEcr;
  },
  reserve: (conn) => (conn.timestampsEnabled ? 12 : 0),
  write(ctx) {
    const { conn, flags } = ctx;
    let send: boolean;
    if (isSynAck(flags)) send = conn.config.timestamps && conn.peerOffered.timestamps;
    else if (isSyn(flags)) send = conn.config.timestamps;
    else send = conn.timestampsEnabled;
    if (!send) return;
    // RFC 7323 §3.2: TSecr is zero on a SYN (no ACK bit).
    const o: TcpOption = { kind: 'timestamps', tsVal: conn.tsNow(), tsEcr: flags & TcpFlags.ACK ? conn.tsRecent : 0 };
    // Two NOPs keep the 10-byte option 32-bit aligned (RFC 7323 Appendix A layout).
    if (!isSyn(flags) ? ctx.space.tryReserve(12) : ctx.space.tryReserveOption(o)) {
      if (!isSyn(flags)) ctx.options.push({ kind: 'nop' }, { kind: 'nop' });
      ctx.options.push(o);
    }
  },
};

/** RFC 7323 §2: window scale on SYNs; on a SYN-ACK only if the peer offered it. */
const windowScaleHandler: TcpOptionHandler = {
  name: 'wscale',
  kinds: [TcpOptionKind.WINDOW_SCALE],
  order: 40,
  read({ seg }, o) {
    if (o.kind === 'wscale' && isSyn(seg.flags)) seg.wscale = o.shift;
  },
  write(ctx) {
    const { conn, flags } = ctx;
    if (!isSyn(flags) || !conn.config.windowScaling) return;
    if (isSynAck(flags) && !conn.peerOffered.wscale) return;
    const o: TcpOption = { kind: 'wscale', shift: conn.rcvWscale };
    // A leading NOP aligns the 3-byte option.
    if (ctx.space.tryReserve(4)) ctx.options.push({ kind: 'nop' }, o);
  },
};

/** RFC 2018 §3–4: SACK blocks on ACKs while out-of-order data is held. */
const sackHandler: TcpOptionHandler = {
  name: 'sack',
  kinds: [TcpOptionKind.SACK],
  order: 60,
  read({ seg }, o) {
    if (o.kind === 'sack') seg.sackBlocks = o.blocks;
  },
  reserve(conn) {
    if (!conn.sackEnabled) return 0;
    const blocks = conn.sackBlocksToSend().length;
    return blocks === 0 ? 0 : 4 + 8 * blocks;
  },
  write(ctx) {
    const { conn, flags } = ctx;
    if (isSyn(flags) || !conn.sackEnabled || flags & TcpFlags.RST) return;
    const blocks = conn.sackBlocksToSend();
    if (blocks.length === 0) return;
    // Two NOPs + kind + length + 8 bytes per block (RFC 2018 §3).
    const fit = Math.min(blocks.length, Math.floor((ctx.space.remaining - 4) / 8));
    if (fit <= 0) return;
    ctx.space.tryReserve(4 + 8 * fit);
    ctx.options.push({ kind: 'nop' }, { kind: 'nop' }, { kind: 'sack', blocks: blocks.slice(0, fit) });
  },
};

/** The core's own options, in registration order. */
export const CORE_OPTION_HANDLERS: readonly TcpOptionHandler[] = [
  mssHandler,
  sackPermittedHandler,
  timestampsHandler,
  windowScaleHandler,
  sackHandler,
];

export class TcpOptionRegistry {
  private readonly byName = new Map<string, TcpOptionHandler>();
  private readonly byKind = new Map<number, TcpOptionHandler>();
  private writers: TcpOptionHandler[] = [];
  private reservers: TcpOptionHandler[] = [];

  constructor(handlers: readonly TcpOptionHandler[] = CORE_OPTION_HANDLERS) {
    for (const h of handlers) this.register(h);
  }

  register(handler: TcpOptionHandler): void {
    if (!/^[a-z0-9_-]{1,32}$/.test(handler.name)) throw new Error(`TCP option handler: bad name "${handler.name}"`);
    if (this.byName.has(handler.name)) throw new Error(`TCP option handler "${handler.name}" is already registered`);
    for (const kind of handler.kinds) {
      if (!Number.isInteger(kind) || kind < 2 || kind > 255)
        throw new Error(`TCP option handler "${handler.name}": bad kind ${kind}`);
      const owner = this.byKind.get(kind);
      if (owner) throw new Error(`TCP option kind ${kind} is already handled by "${owner.name}"`);
    }
    this.byName.set(handler.name, handler);
    for (const kind of handler.kinds) this.byKind.set(kind, handler);
    this.writers = [...this.byName.values()].filter((h) => h.write).sort((a, b) => a.order - b.order);
    this.reservers = this.writers.filter((h) => h.reserve);
  }

  unregister(name: string): boolean {
    const h = this.byName.get(name);
    if (!h) return false;
    this.byName.delete(name);
    for (const kind of h.kinds) this.byKind.delete(kind);
    this.writers = this.writers.filter((w) => w !== h);
    this.reservers = this.reservers.filter((w) => w !== h);
    return true;
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** Decodes the options of an incoming segment through their handlers. Unclaimed kinds are ignored (RFC 9293 §3.1). */
  read(conn: TcpOptionHost, seg: IncomingSegment): void {
    for (const o of seg.options) {
      const kind = optionKind(o);
      if (kind < 2) continue;
      this.byKind.get(kind)?.read?.({ conn, seg }, o);
    }
  }

  /** Option bytes the handlers will write on the next data segment, at most 40. */
  reservedBytes(conn: TcpOptionHost): number {
    let n = 0;
    for (const h of this.reservers) n += h.reserve!(conn);
    return Math.min(n, 40);
  }

  /** Builds the options of an outgoing segment within the 40-byte limit. */
  write(conn: TcpOptionHost, flags: number, seq: number, payloadLen: number, space = new OptionSpace()): TcpOption[] {
    const options: TcpOption[] = [];
    const ctx: OptionWriteContext = { conn, flags, seq, payloadLen, space, options };
    for (const w of this.writers) w.write!(ctx);
    return options;
  }
}

function optionKind(o: TcpOption): number {
  switch (o.kind) {
    case 'eol':
      return TcpOptionKind.EOL;
    case 'nop':
      return TcpOptionKind.NOP;
    case 'mss':
      return TcpOptionKind.MSS;
    case 'wscale':
      return TcpOptionKind.WINDOW_SCALE;
    case 'sack-permitted':
      return TcpOptionKind.SACK_PERMITTED;
    case 'sack':
      return TcpOptionKind.SACK;
    case 'timestamps':
      return TcpOptionKind.TIMESTAMPS;
    case 'unknown':
      return o.type;
  }
}
