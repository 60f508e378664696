/**
 * Reno congestion control (RFC 5681 §3.1), the stack's default.
 *
 * Naming: it is registered twice, as `reno` (Linux's name) and `newreno` (FreeBSD's
 * name, and the stack's default config value). They are the same window arithmetic.
 * "NewReno" (RFC 6582) is a loss *recovery* algorithm — how partial ACKs are answered
 * during fast recovery — and recovery is done by the connection for every congestion
 * control, exactly as Linux runs its NewReno/SACK recovery under `reno`, `cubic` or any
 * other `tcp_congestion_ops`.
 *
 * What the connection does, not this file: fast-recovery window inflation by one SMSS
 * per duplicate ACK (RFC 5681 §3.2 step 4) and ssthresh + 3*SMSS on entry (step 3)
 * when SACK is off, deflation on partial ACKs (RFC 6582 §3.2 step 4), the pipe-based
 * sending of RFC 6675 §5 when SACK is on.
 */

import {
  type AckSample,
  type CongestionControl,
  type CongestionControlFactory,
  type CongestionEvent,
  type CongestionPhase,
  type CongestionState,
  congestionAvoidanceAdditive,
  halvedSsthresh,
  initialWindow,
  lossWindow,
  slowStart,
} from './congestion';

// Module-level copies: under jest's vm sandbox each global lookup costs ~170 ns.
const { max, min } = Math;

export interface RenoOptions {
  /** The registered name the instance reports. Default `reno`. */
  name?: string;
  /**
   * RFC 3465 §2.2: L, the most slow start may grow cwnd per ACK, in SMSS. Default 2
   * (RFC 3465's recommended limit); 1 gives RFC 5681 §3.1 eq. 2, min(N, SMSS).
   */
  abcLimitSegments?: number;
}

/** One Reno instance per connection. */
export class RenoCongestionControl implements CongestionControl {
  readonly name: string;
  private readonly abcLimit: number;
  /** Bytes acknowledged in congestion avoidance toward the next +1 SMSS (RFC 3465 §2.1). */
  private readonly ca = { acc: 0 };
  /** The phase of the last `onPhaseChange`, to know where a transition comes from. */
  private lastPhase: CongestionPhase = 'open';
  /** cwnd and ssthresh before the current reduction, for `undoCwnd`. */
  private priorCwnd = 0;
  private priorSsthresh = 0;
  private hasPrior = false;

  constructor(opts: RenoOptions = {}) {
    const { name = 'reno', abcLimitSegments = 2 } = opts;
    if (!(abcLimitSegments >= 1) || !Number.isFinite(abcLimitSegments)) {
      throw new RangeError(`reno: abcLimitSegments must be a finite number ≥ 1, got ${abcLimitSegments}`);
    }
    this.name = name;
    this.abcLimit = abcLimitSegments;
  }

  init(s: CongestionState): void {
    // RFC 6928 §2 initial window; RFC 5681 §3.1: ssthresh "arbitrarily high".
    s.cwnd = initialWindow(s.mss);
    s.ssthresh = Number.POSITIVE_INFINITY;
    this.ca.acc = 0;
    this.lastPhase = 'open';
    this.hasPrior = false;
  }

  onAck(s: CongestionState, ack: AckSample): void {
    // The connection owns the window during fast recovery (RFC 6582 §3.2, RFC 6675 §5).
    if (s.phase === 'recovery') return;
    // RFC 7661 §4.3 (spirit): a window the sender did not fill was not validated by the
    // network; do not grow it. (Linux: tcp_is_cwnd_limited.)
    if (s.appLimited) return;
    let acked = ack.ackedBytes;
    if (!(acked > 0)) return;
    if (s.cwnd < s.ssthresh) {
      // RFC 5681 §3.1 slow start, with RFC 3465 §2.2 byte counting capped at L*SMSS.
      acked = slowStart(s, acked, this.abcLimit * s.mss);
      if (acked <= 0) return;
    }
    // RFC 5681 §3.1 eq. 3 congestion avoidance, byte-counted: +1 SMSS per cwnd acknowledged.
    congestionAvoidanceAdditive(s, acked, this.ca);
  }

  ssthresh(s: CongestionState): number {
    // RFC 5681 §3.1 eq. 4: half the FlightSize (not cwnd), at least 2*SMSS.
    return halvedSsthresh(s.bytesInFlight, s.mss);
  }

  onPhaseChange(s: CongestionState, phase: CongestionPhase): void {
    const from = this.lastPhase;
    this.lastPhase = phase;
    switch (phase) {
      case 'recovery':
        // RFC 5681 §3.2 step 2: ssthresh per eq. 4. The connection adds the 3*SMSS of
        // step 3 itself when it inflates (without SACK); with SACK, RFC 6675 §5 step 4.2
        // sets cwnd = ssthresh, which is what we leave.
        if (from === 'open') this.savePrior(s);
        s.ssthresh = this.ssthresh(s);
        s.cwnd = s.ssthresh;
        this.ca.acc = 0;
        break;
      case 'loss':
        if (from === 'open') this.savePrior(s);
        if (from === 'recovery') {
          // One reduction per loss event: keep the ssthresh set on entering recovery
          // unless eq. 4 now gives less (RFC 5681 §3.1 "no more than"; Linux keeps it).
          s.ssthresh = min(s.ssthresh, this.ssthresh(s));
        } else if (from === 'open') {
          // RFC 5681 §3.1 eq. 4 on the first timeout.
          s.ssthresh = this.ssthresh(s);
        }
        // (from 'loss': a repeated timeout; RFC 5681 §3.1 holds ssthresh constant.)
        // RFC 5681 §3.1: cwnd = LW, one full-sized segment.
        s.cwnd = lossWindow(s.mss);
        this.ca.acc = 0;
        break;
      case 'open':
        if (from === 'recovery') {
          // RFC 6582 §3.2 step 3, full ACK, option (1): deflate to
          // min(ssthresh, max(FlightSize, SMSS) + SMSS), avoiding a burst when little
          // data is outstanding.
          s.cwnd = min(s.ssthresh, max(s.bytesInFlight, s.mss) + s.mss);
          this.ca.acc = 0;
        }
        // From 'loss': keep the window slow start has regrown since the timeout (Linux
        // does the same on leaving TCP_CA_Loss).
        break;
    }
  }

  onEvent(s: CongestionState, ev: CongestionEvent): void {
    switch (ev) {
      case 'tx-start-after-idle':
        // RFC 5681 §4.1: after an idle period longer than the RTO, restart from
        // RW = min(IW, cwnd). ssthresh is left as it is.
        s.cwnd = min(s.cwnd, initialWindow(s.mss));
        this.ca.acc = 0;
        break;
      case 'ecn-echo':
        // RFC 3168 §6.1.2: react as to a loss, once per window; not again while a
        // reduction is already in progress.
        if (s.phase !== 'open') return;
        s.ssthresh = this.ssthresh(s);
        s.cwnd = max(min(s.cwnd, s.ssthresh), lossWindow(s.mss));
        this.ca.acc = 0;
        break;
      case 'established':
        break;
    }
  }

  undoCwnd(s: CongestionState): number {
    if (!this.hasPrior) return s.cwnd;
    // Linux tcp_undo_cwnd_reduction / tcp_reno_undo_cwnd: the windows before the
    // spurious reduction, never less than now.
    s.ssthresh = max(s.ssthresh, this.priorSsthresh);
    const cwnd = max(s.cwnd, this.priorCwnd);
    this.hasPrior = false;
    // The connection returns to 'open' next: that transition must not deflate again.
    this.lastPhase = 'open';
    return cwnd;
  }

  getInfo(): Record<string, number> {
    return {
      caAccBytes: this.ca.acc,
      priorCwndBytes: this.hasPrior ? this.priorCwnd : 0,
      abcLimitSegments: this.abcLimit,
    };
  }

  private savePrior(s: CongestionState): void {
    this.priorCwnd = s.cwnd;
    this.priorSsthresh = s.ssthresh;
    this.hasPrior = true;
  }
}

/** The Reno factory, config first: `registry.register('reno2', reno({ name: 'reno2', abcLimitSegments: 1 }))`. */
export function reno(opts: RenoOptions = {}): CongestionControlFactory {
  return () => new RenoCongestionControl(opts);
}
