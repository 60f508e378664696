/**
 * The public congestion-control interface: a small table of named hooks, in the spirit
 * of Linux's `struct tcp_congestion_ops` and picoquic's per-path congestion algorithms.
 *
 * Division of labour (see docs/congestion-control.md):
 * - Congestion control decides only `cwnd` and `ssthresh` (RFC 5681 §3.1).
 * - Loss detection and recovery — which segments to retransmit, NewReno partial ACKs
 *   (RFC 6582), SACK-based recovery (RFC 6675), the fast-recovery window inflation —
 *   belong to the connection, which tells congestion control about phase changes.
 *
 * This file is a contract other packages implement (plugins/cubic, the MPTCP coupled
 * algorithms); change it only compatibly.
 */

import { RenoCongestionControl } from './reno';

// Module-level copies: under jest's vm sandbox each global lookup costs ~170 ns.
const { floor, max, min } = Math;

/**
 * The phase of the connection's loss recovery, as congestion control sees it
 * (Linux's TCP_CA_Open / TCP_CA_Recovery / TCP_CA_Loss):
 * - `open`: no loss being repaired; cwnd grows by `onAck`.
 * - `recovery`: fast retransmit / fast recovery after duplicate ACKs or SACK
 *   (RFC 5681 §3.2, RFC 6582, RFC 6675); the connection manages cwnd until it ends.
 * - `loss`: the retransmission timer fired (RFC 6298 §5, RFC 5681 §3.1); slow start
 *   from the loss window until everything sent before the timeout is acknowledged.
 */
export type CongestionPhase = 'open' | 'recovery' | 'loss';

/**
 * What the connection tells congestion control, and through which congestion control
 * sets the window. One object per connection (per MPTCP subflow); the connection keeps
 * it for its lifetime, so a coupled algorithm may hold on to it. Units: bytes and ms.
 */
export interface CongestionState {
  /** Congestion window, bytes. Congestion control writes it; the connection reads it before sending. */
  cwnd: number;
  /**
   * Slow-start threshold, bytes. Congestion control writes it. `Infinity` until the
   * first congestion signal (RFC 5681 §3.1: "arbitrarily high").
   */
  ssthresh: number;
  /** SMSS: the sender maximum segment size in bytes (RFC 5681 §2), after options. */
  readonly mss: number;
  /**
   * Bytes sent and not yet acknowledged: RFC 5681's FlightSize, or RFC 6675's `pipe`
   * when SACK is in use.
   */
  readonly bytesInFlight: number;
  /** The connection's clock in ms (virtual in tests; never read wall time, DESIGN.md §3). */
  readonly now: number;
  /** Smoothed RTT (RFC 6298), ms; undefined before the first sample. */
  readonly srttMs: number | undefined;
  /** The lowest RTT sample seen, ms; undefined before the first sample. */
  readonly minRttMs: number | undefined;
  /** The current recovery phase. Inside `onPhaseChange` it already reads the new phase. */
  readonly phase: CongestionPhase;
  /**
   * The sender had less data than cwnd allowed (RFC 7661 "rate-limited"): the window
   * was not tested by the network, so congestion control should not grow it.
   */
  readonly appLimited: boolean;
}

/**
 * One acknowledgment, as seen by congestion control (picoquic's per-ACK record,
 * Linux's `ack_sample` / `rate_sample`). Only `ackedBytes` is always present.
 */
export interface AckSample {
  /** Bytes newly acknowledged cumulatively by this ACK (SND.UNA advance; RFC 3465 byte counting). */
  ackedBytes: number;
  /** An RTT sample taken from this ACK, ms (absent when none was valid, e.g. Karn's rule). */
  rttMs?: number;
  /** Bytes newly delivered by this ACK, cumulatively or by SACK (for delivery-rate algorithms). */
  deliveredBytes?: number;
  /** Bytes this ACK caused to be marked lost (RFC 6675 §4 IsLost, RACK). */
  lostBytes?: number;
  /** A duplicate ACK in the sense of RFC 5681 §2. */
  isDuplicate?: boolean;
  /** The ACK carried ECN-Echo (RFC 3168 §6.1). */
  ecnEcho?: boolean;
}

/**
 * Events outside the ACK clock (Linux's `cwnd_event`):
 * - `established`: the handshake completed; sent right after `init`.
 * - `tx-start-after-idle`: the connection sends again after being idle for more than
 *   one RTO (RFC 5681 §4.1); the connection decides when (and whether, per its config).
 * - `ecn-echo`: a congestion signal by ECN, delivered at most once per window of data
 *   (RFC 3168 §6.1.2); no phase change goes with it.
 */
export type CongestionEvent = 'tx-start-after-idle' | 'ecn-echo' | 'established';

/**
 * A congestion-control algorithm instance: one per connection (or per MPTCP subflow).
 *
 * Hooks run synchronously inside the connection's processing and must not throw, do
 * I/O or read wall time. Only `cwnd` and `ssthresh` of the state may be written, and
 * only from the hooks documented to do so. Per-connection state lives in the instance
 * (the factory makes a fresh one for each connection), never in module variables.
 */
export interface CongestionControl {
  /** The name it is registered under (checked at registration). */
  readonly name: string;
  /**
   * Called once when the connection can send data (after the handshake), before any
   * other hook: set the initial `cwnd` (RFC 6928 via `initialWindow`) and `ssthresh`.
   */
  init(s: CongestionState): void;
  /**
   * New data was acknowledged (SND.UNA advanced) while the phase is `open` or `loss`:
   * grow `cwnd` (slow start, congestion avoidance). May write `cwnd` and `ssthresh`.
   * Not called during `recovery`, where the connection manages the window
   * (RFC 6582 §3.2, RFC 6675 §5). Should not grow `cwnd` when `s.appLimited`.
   */
  onAck(s: CongestionState, ack: AckSample): void;
  /**
   * The ssthresh to use after a congestion signal now (RFC 5681 §3.1 eq. 4:
   * max(FlightSize / 2, 2*SMSS) for Reno). Must be ≥ 2*mss. A query: it must not write
   * the state nor change the instance; `onPhaseChange` applies it.
   */
  ssthresh(s: CongestionState): number;
  /**
   * The connection entered a phase; `s.phase` already reads `phase`.
   * - `recovery` (fast retransmit): set `ssthresh` and the reduced `cwnd`. The
   *   connection may then inflate cwnd during recovery itself (RFC 5681 §3.2 step 4,
   *   RFC 6582 §3.2) and deflates it at the end through the `open` transition.
   * - `loss` (RTO fired): set `ssthresh` and `cwnd` to the loss window (RFC 5681 §3.1).
   *   It may be signalled again on a repeated timeout; ssthresh then stays.
   * - `open`: recovery or loss ended (the ACK covered the recovery point): set the
   *   window to continue with (RFC 6582 §3.2 step 3).
   * May write `cwnd` and `ssthresh`; must leave `cwnd` ≥ 1 mss.
   */
  onPhaseChange(s: CongestionState, phase: CongestionPhase): void;
  /** Optional: events outside the ACK clock. May write `cwnd` and `ssthresh`. */
  onEvent?(s: CongestionState, ev: CongestionEvent): void;
  /**
   * Optional: the last reduction was spurious (DSACK, RFC 3708 / Eifel, RFC 3522):
   * return the cwnd to restore; may write `ssthresh` back as well. The connection
   * assigns the returned value to `cwnd` and then returns to `open`, and the algorithm
   * must not reduce the window again on that `open` transition.
   */
  undoCwnd?(s: CongestionState): number;
  /**
   * Optional: internal values for `nuse ls`, TCP_INFO and the live feed, by name
   * (camelCase, units in the name: `wMaxBytes`, `alphaScaled`). Cheap; called on demand.
   */
  getInfo?(): Record<string, number>;
  /**
   * Optional: the connection is gone; free resources (a coupled group forgets this
   * subflow). Called once; no hook is called afterwards.
   */
  release?(): void;
}

/**
 * What a factory receives when the stack creates an instance for a connection
 * (dependencies injected late, js-libp2p style).
 */
export interface CongestionControlContext {
  /**
   * The coupled group the connection belongs to: the sibling subflows of one MPTCP
   * connection, so coupled algorithms (LIA RFC 6356, OLIA, BALIA) can see their
   * windows and RTTs. Undefined for plain TCP; a coupled algorithm must then behave as
   * an uncoupled one (RFC 6356 with one subflow is Reno).
   */
  group?: CongestionGroup;
}

/** A set of connections whose congestion controls are coupled (one MPTCP connection). */
export interface CongestionGroup {
  /** Stable identifier (e.g. the MPTCP connection token), for logs and per-group caches. */
  readonly id: string;
  /** The states of the member subflows that currently carry data, this one included. */
  members(): readonly CongestionState[];
}

/**
 * A plugin is a factory: configuration is bound first (`reno({ ... })` returns the
 * factory), the per-connection context comes last. Must return a fresh instance for
 * every call.
 */
export type CongestionControlFactory = (ctx: CongestionControlContext) => CongestionControl;

const NAME_RE = /^[a-z0-9_-]{1,32}$/;
const REQUIRED_HOOKS = ['init', 'onAck', 'ssthresh', 'onPhaseChange'] as const;
const OPTIONAL_HOOKS = ['onEvent', 'undoCwnd', 'getInfo', 'release'] as const;

/**
 * Congestion controls by name (Linux's `tcp_register_congestion_control`,
 * `net.ipv4.tcp_congestion_control`). Registration validates the name and probes the
 * factory once, so a broken plugin fails when it loads rather than on the first
 * connection.
 *
 * Unregistering does not affect connections already running: they keep their instance.
 */
export class CongestionControlRegistry {
  private readonly factories = new Map<string, CongestionControlFactory>();
  private builtins: (() => Iterable<readonly [string, CongestionControlFactory]>) | undefined;

  /**
   * @param builtins Entries registered (and validated) lazily on first use. Lazy so that
   *   the modules implementing built-in algorithms can import helpers from this one
   *   without an import-order trap.
   */
  constructor(builtins?: () => Iterable<readonly [string, CongestionControlFactory]>) {
    this.builtins = builtins;
  }

  /**
   * Registers a factory under `name` (/^[a-z0-9_-]{1,32}$/). Throws if the name is
   * malformed or taken, or if the factory's probe instance lacks a required hook, has a
   * non-function optional hook, or reports another name.
   */
  register(name: string, factory: CongestionControlFactory): void {
    this.loadBuiltins();
    if (typeof name !== 'string' || !NAME_RE.test(name)) {
      throw new Error(
        `congestion control name ${JSON.stringify(name)} is invalid: use 1–32 characters of a-z, 0-9, '_' or '-'`,
      );
    }
    if (this.factories.has(name)) {
      throw new Error(`congestion control '${name}' is already registered; unregister it first`);
    }
    if (typeof factory !== 'function') {
      throw new Error(`congestion control '${name}': the factory must be a function (ctx) => CongestionControl`);
    }
    let probe: CongestionControl;
    try {
      probe = factory({});
    } catch (e) {
      throw new Error(`congestion control '${name}': the factory threw when probed: ${(e as Error)?.message ?? e}`);
    }
    check(name, probe);
    probe.release?.();
    this.factories.set(name, factory);
  }

  /** Removes a registration; returns whether there was one. */
  unregister(name: string): boolean {
    this.loadBuiltins();
    return this.factories.delete(name);
  }

  has(name: string): boolean {
    this.loadBuiltins();
    return this.factories.has(name);
  }

  /** The registered names, sorted. */
  names(): string[] {
    this.loadBuiltins();
    return [...this.factories.keys()].sort();
  }

  /** A fresh instance for one connection. Throws, listing the available names, if `name` is unknown. */
  create(name: string, ctx: CongestionControlContext = {}): CongestionControl {
    this.loadBuiltins();
    const factory = this.factories.get(name);
    if (factory === undefined) {
      const known = this.names();
      throw new Error(
        `unknown congestion control '${name}' (available: ${known.length > 0 ? known.join(', ') : 'none'})`,
      );
    }
    const cc = factory(ctx);
    check(name, cc);
    return cc;
  }

  private loadBuiltins(): void {
    const builtins = this.builtins;
    if (builtins === undefined) return;
    this.builtins = undefined;
    for (const [name, factory] of builtins()) this.register(name, factory);
  }
}

function check(name: string, cc: CongestionControl): void {
  if (cc === null || typeof cc !== 'object') {
    throw new Error(
      `congestion control '${name}': the factory returned ${cc === null ? 'null' : typeof cc}, not an object`,
    );
  }
  const missing = REQUIRED_HOOKS.filter((h) => typeof cc[h] !== 'function');
  if (missing.length > 0) {
    throw new Error(`congestion control '${name}': missing required hook(s): ${missing.join(', ')}`);
  }
  const bad = OPTIONAL_HOOKS.filter((h) => cc[h] !== undefined && typeof cc[h] !== 'function');
  if (bad.length > 0) {
    throw new Error(`congestion control '${name}': optional hook(s) that are not functions: ${bad.join(', ')}`);
  }
  if (cc.name !== name) {
    throw new Error(`congestion control '${name}': the instance reports the name ${JSON.stringify(cc.name)}`);
  }
}

// ---------------------------------------------------------------------------
// Shared helpers, like Linux's tcp_slow_start / tcp_cong_avoid_ai / tcp_reno_ssthresh.
// ---------------------------------------------------------------------------

/** The part of the state the window helpers touch. Any `CongestionState` is one. */
export interface CongestionWindow {
  cwnd: number;
  ssthresh: number;
  readonly mss: number;
}

/**
 * RFC 6928 §2: the initial window, min(10*MSS, max(2*MSS, 14600)) bytes.
 * (RFC 5681 §3.1's IW of 2–4 segments is the conservative alternative.)
 */
export function initialWindow(mss: number): number {
  return min(10 * mss, max(2 * mss, 14600));
}

/** RFC 5681 §3.1: the loss window, cwnd after a retransmission timeout: 1 full-sized segment. */
export function lossWindow(mss: number): number {
  return mss;
}

/** RFC 5681 §3.1 eq. 4: max(FlightSize / 2, 2*SMSS). */
export function halvedSsthresh(flightSize: number, mss: number): number {
  return max(floor(flightSize / 2), 2 * mss);
}

/**
 * Slow start with appropriate byte counting (RFC 5681 §3.1 eq. 2, RFC 3465 §2.2):
 * cwnd grows by the bytes acknowledged, at most `limit` per ACK (ABC's L; default
 * 2*SMSS as RFC 3465 allows, `mss` for RFC 5681's strict min(N, SMSS)), and never past
 * ssthresh. Returns the acknowledged bytes left over once cwnd reached ssthresh, for
 * congestion avoidance (0 while still below); all of them if cwnd was not below
 * ssthresh to begin with.
 */
export function slowStart(s: CongestionWindow, ackedBytes: number, limit: number = 2 * s.mss): number {
  const cwnd = s.cwnd;
  const ssthresh = s.ssthresh;
  if (cwnd >= ssthresh) return ackedBytes;
  const grown = min(cwnd + min(ackedBytes, limit), ssthresh);
  s.cwnd = grown;
  return grown < ssthresh ? 0 : ackedBytes - (grown - cwnd);
}

/**
 * Additive increase with byte counting (RFC 5681 §3.1 eq. 3 in its RFC 3465 §2.1 form):
 * acknowledged bytes accumulate in `state.acc`; each time `w` bytes have accumulated,
 * cwnd grows by one SMSS, i.e. about one SMSS per RTT when `w` = cwnd (the default).
 *
 * `w` is Linux's `tcp_cong_avoid_ai` argument: a larger w means slower growth. Coupled
 * MPTCP algorithms pass their own (RFC 6356 §3 LIA: w = max(cwnd_total / alpha, cwnd_i)).
 * If w shrank below what has accumulated (cwnd was reduced meanwhile), the credit is
 * spent as one SMSS, not as a burst.
 */
export function congestionAvoidanceAdditive(
  s: CongestionWindow,
  ackedBytes: number,
  state: { acc: number },
  w: number = s.cwnd,
): void {
  if (w <= 0) return;
  if (state.acc >= w) {
    state.acc = 0;
    s.cwnd += s.mss;
  }
  const acc = state.acc + ackedBytes;
  if (acc >= w) {
    const steps = floor(acc / w);
    state.acc = acc - steps * w;
    s.cwnd += steps * s.mss;
  } else {
    state.acc = acc;
  }
}

/**
 * The registry the stack uses by default, with `reno` and `newreno` (the same
 * algorithm; see reno.ts for the naming). Plugins add to it at load time.
 */
export const defaultCongestionControls: CongestionControlRegistry = new CongestionControlRegistry(() => [
  ['reno', () => new RenoCongestionControl({ name: 'reno' })],
  ['newreno', () => new RenoCongestionControl({ name: 'newreno' })],
]);
