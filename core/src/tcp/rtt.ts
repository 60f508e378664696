/**
 * RFC 6298: computing TCP's retransmission timer.
 *
 * The estimator only does the arithmetic. Which ACKs may give a sample is the
 * connection's business: without timestamps, Karn's algorithm (RFC 6298 §3) forbids
 * timing a retransmitted segment; with timestamps (RFC 7323 §4.1), every ACK that
 * advances SND.UNA gives a valid sample, retransmitted or not.
 */

// Module-level copies: under jest's vm sandbox each global lookup costs ~170 ns.
const { abs, max, min } = Math;

/** RFC 6298 §2.3: alpha = 1/8, beta = 1/4, K = 4. */
const ALPHA = 1 / 8;
const BETA = 1 / 4;
const K = 4;

/** RFC 6298 §5.7: the RTO to fall back to when the SYN timed out before any sample. */
const SYN_TIMEOUT_FALLBACK_MS = 3000;

export interface RttEstimatorOptions {
  /** RFC 6298 §2.1: RTO before the first sample. Default 1000 ms (§2.1, was 3 s in RFC 2988). */
  initialRtoMs?: number;
  /**
   * Lower bound on the RTO. RFC 6298 §2.4 says 1 s ("SHOULD"); Linux uses 200 ms
   * (TCP_RTO_MIN), and so do we by default, because 1 s makes every tail loss on a
   * short path cost a whole second. Set 1000 for the RFC's conservative value.
   */
  minRtoMs?: number;
  /** RFC 6298 §2.5: an upper bound "MAY" be placed on the RTO, "at least 60 seconds". Default 120 s (Linux TCP_RTO_MAX). */
  maxRtoMs?: number;
  /** RFC 6298 §2: G, the clock granularity, in ms. Default 1 ms. */
  granularityMs?: number;
}

/**
 * Smoothed RTT, RTT variance and the retransmission timeout of one connection
 * (or one MPTCP subflow: each subflow has its own, RFC 8684 §3.3.6).
 *
 * All values are in milliseconds and kept as exact floating-point numbers (no
 * fixed-point rounding as in Linux): the RFC's arithmetic, checked by the tests.
 *
 * RFC 7323 §4.2: with timestamps, samples come once per ACK rather than once per RTT,
 * so SRTT reacts faster than RFC 6298's gains assume. RFC 7323 suggests scaling alpha
 * and beta by the number of samples per window; like Linux, we keep RFC 6298's 1/8 and
 * 1/4 for every sample.
 */
export class RttEstimator {
  readonly initialRtoMs: number;
  readonly minRtoMs: number;
  readonly maxRtoMs: number;
  readonly granularityMs: number;

  private srtt: number | undefined;
  private rttvar = 0;
  /** RTO from SRTT and RTTVAR, clamped, without backoff. */
  private baseRto: number;
  /** The current RTO including exponential backoff. */
  private rto: number;
  private backoffs = 0;
  private minRtt: number | undefined;
  private latestRtt: number | undefined;

  constructor(opts: RttEstimatorOptions = {}) {
    const { initialRtoMs = 1000, minRtoMs = 200, maxRtoMs = 120_000, granularityMs = 1 } = opts;
    for (const [name, v] of [
      ['initialRtoMs', initialRtoMs],
      ['minRtoMs', minRtoMs],
      ['maxRtoMs', maxRtoMs],
      ['granularityMs', granularityMs],
    ] as const) {
      if (!Number.isFinite(v) || v < 0)
        throw new RangeError(`RttEstimator: ${name} must be a finite number ≥ 0, got ${v}`);
    }
    if (minRtoMs > maxRtoMs)
      throw new RangeError(`RttEstimator: minRtoMs (${minRtoMs}) is above maxRtoMs (${maxRtoMs})`);
    this.initialRtoMs = initialRtoMs;
    this.minRtoMs = minRtoMs;
    this.maxRtoMs = maxRtoMs;
    this.granularityMs = granularityMs;
    this.baseRto = this.clamp(initialRtoMs);
    this.rto = this.baseRto;
  }

  /**
   * Takes one RTT measurement R, in ms. Negative or non-finite values are ignored (a
   * clock step or a bogus echoed timestamp; Linux ignores them too).
   *
   * A sample recomputes the RTO from SRTT and RTTVAR (RFC 6298 §2.2–2.3), which also
   * ends any exponential backoff (Karn's algorithm, RFC 6298 §5.7: the backed-off RTO
   * is kept only until a valid sample arrives).
   */
  sample(rttMs: number): void {
    if (!(rttMs >= 0) || rttMs === Number.POSITIVE_INFINITY) return;
    const old = this.srtt;
    let srtt: number;
    if (old === undefined) {
      // RFC 6298 §2.2: the first measurement.
      srtt = rttMs;
      this.rttvar = rttMs / 2;
    } else {
      // RFC 6298 §2.3: RTTVAR first, with the old SRTT.
      this.rttvar = (1 - BETA) * this.rttvar + BETA * abs(old - rttMs);
      srtt = (1 - ALPHA) * old + ALPHA * rttMs;
    }
    this.srtt = srtt;
    // RFC 6298 §2.2–2.3: RTO = SRTT + max(G, K*RTTVAR); §2.4–2.5: clamp.
    this.baseRto = this.clamp(srtt + max(this.granularityMs, K * this.rttvar));
    this.rto = this.baseRto;
    this.backoffs = 0;
    this.latestRtt = rttMs;
    if (this.minRtt === undefined || rttMs < this.minRtt) this.minRtt = rttMs;
  }

  /** RFC 6298 §5.5: the retransmission timer expired: double the RTO, up to the maximum. */
  backoff(): void {
    this.backoffs++;
    this.rto = min(this.rto * 2, this.maxRtoMs);
  }

  /**
   * Forgets the backoff: the RTO goes back to the value computed from SRTT and RTTVAR
   * (RFC 6298 §5.7, Karn's algorithm). `sample()` already does this; call it directly
   * when the connection has other proof that the path works again.
   */
  resetBackoff(): void {
    this.backoffs = 0;
    this.rto = this.baseRto;
  }

  /**
   * RFC 6298 §5.7: if the SYN (or SYN-ACK) timed out and no RTT sample was taken, the
   * RTO must be (re)initialised to 3 s when data transmission begins. Call this once,
   * on entering ESTABLISHED, when the handshake needed a retransmission. No-op when a
   * sample exists or the RTO is already 3 s or more.
   */
  handshakeTimedOut(): void {
    if (this.srtt !== undefined) return;
    this.baseRto = max(this.baseRto, this.clamp(SYN_TIMEOUT_FALLBACK_MS));
    this.resetBackoff();
  }

  /** The current retransmission timeout in ms, including backoff. */
  get rtoMs(): number {
    return this.rto;
  }

  /** SRTT in ms; undefined before the first sample. */
  get srttMs(): number | undefined {
    return this.srtt;
  }

  /** RTTVAR in ms; undefined before the first sample. */
  get rttvarMs(): number | undefined {
    return this.srtt === undefined ? undefined : this.rttvar;
  }

  /** The lowest sample seen over the connection's life (Linux keeps a windowed minimum instead). */
  get minRttMs(): number | undefined {
    return this.minRtt;
  }

  /** The most recent sample. */
  get latestRttMs(): number | undefined {
    return this.latestRtt;
  }

  /** How many times the RTO was doubled since the last sample or reset. */
  get backoffCount(): number {
    return this.backoffs;
  }

  get hasSample(): boolean {
    return this.srtt !== undefined;
  }

  private clamp(ms: number): number {
    return min(max(ms, this.minRtoMs), this.maxRtoMs);
  }
}
