/**
 * RACK-TLP loss detection (RFC 8985) for the sender: the per-segment transmit record
 * RACK needs (§5.2, §6.1: when each segment was last sent, whether it was
 * retransmitted, SACKed or marked lost) and the RACK state with its three steps on an
 * ACK (§6.2: update RACK.xmit_ts / RACK.rtt, detect reordering, the reordering window)
 * and loss detection (§6.2 step 5). The Tail Loss Probe (§7) and the recovery itself
 * (RFC 6675's, with IsLost() answered by RACK's marks: RFC 8985 only detects) live in the
 * connection, which owns the timers and the sending.
 *
 * Everything is in sequence space (wrap-around through seq.ts); times are the
 * connection's clock in ms.
 */

import { type Seq, seqDiff, seqGt, seqLe, seqLt } from './seq';

// Module-level copies: under jest's vm sandbox each global lookup costs ~170 ns.
const { max, min } = Math;

/** RFC 8985 §6.2 step 4: a raised reordering window persists for 16 loss recoveries. */
const REO_WND_PERSIST_RECOVERIES = 16;

/** One transmitted segment (RFC 8985 §6.1 "per-segment variables"). */
export interface SentSegment {
  start: Seq;
  end: Seq;
  /** Segment.xmit_ts: when it was last (re)transmitted. */
  xmitAt: number;
  /**
   * The order of that transmission among all of the connection's transmissions. RFC
   * 8985's RACK_sent_after() breaks ties of equal xmit_ts by sequence number, which
   * presumes a clock fine enough that only one burst of new data shares a timestamp;
   * in virtual time a retransmission and the new data sent just before it share one
   * too, so "sent after" is decided by this counter instead.
   */
  xmitOrder: number;
  /** Segment.retransmitted: sent more than once. */
  retransmitted: boolean;
  /** A retransmission of it is presumed in the network (cleared when it is marked lost again). */
  retransInFlight: boolean;
  /** Delivered by a SACK block (RFC 2018). */
  sacked: boolean;
  /** Segment.lost: RACK (or an RTO) declared it lost. */
  lost: boolean;
}

/**
 * The segments in [SND.UNA, SND.MAX), in sequence order, with the RFC 6675 `pipe`
 * they add up to, kept incrementally: each byte counts once unless it is SACKed or
 * marked lost, and once more while a retransmission of it is in flight (RFC 6675 §4
 * SetPipe with IsLost() taken from the marks).
 */
export class TransmitLog {
  /** Live segments are segs[first...]. */
  private segs: SentSegment[] = [];
  private first = 0;
  private pipeBytes = 0;
  private sackedSegs = 0;
  private transmissions = 0;

  /** Bytes presumed in the network (RFC 6675 pipe). */
  get pipe(): number {
    return this.pipeBytes;
  }

  /** How many transmissions were logged so far (the next one gets this + 1 as its `xmitOrder`). */
  get transmissionCount(): number {
    return this.transmissions;
  }

  /** RACK.segs_sacked: segments delivered by SACK and not yet cumulatively acknowledged. */
  get sackedSegments(): number {
    return this.sackedSegs;
  }

  get isEmpty(): boolean {
    return this.first >= this.segs.length;
  }

  /** The highest-sequence segment (the TLP retransmission, RFC 8985 §7.3). */
  get last(): SentSegment | undefined {
    return this.isEmpty ? undefined : this.segs[this.segs.length - 1];
  }

  /** Live segments in sequence order (for the connection's walks; do not keep). */
  *live(): IterableIterator<SentSegment> {
    for (let k = this.first; k < this.segs.length; k++) yield this.segs[k]!;
  }

  /**
   * A transmission of [seq, seq + len) at `now`: new segments are appended; a
   * retransmission updates the segments it covers (split at its edges), which then
   * count as retransmitted (RFC 8985 §6.1) and in flight once more.
   */
  record(seq: Seq, len: number, now: number, retransmission: boolean): void {
    if (len <= 0) return;
    const end = (seq + len) >>> 0;
    const last = this.last;
    if (last === undefined || !seqLt(seq, last.end)) {
      this.append(seq, end, now, retransmission);
      return;
    }
    // `last` may be split below: keep its end.
    const lastEnd = last.end;
    let from = seq;
    if (seqLt(from, this.segs[this.first]!.start)) from = this.segs[this.first]!.start;
    const upTo = seqLt(end, lastEnd) ? end : lastEnd;
    if (seqLt(from, upTo)) {
      let k = this.splitAt(from);
      this.splitAt(upTo);
      const order = ++this.transmissions;
      for (; k < this.segs.length && seqLt(this.segs[k]!.start, upTo); k++) {
        const s = this.segs[k]!;
        const before = weight(s);
        s.xmitAt = now;
        s.xmitOrder = order;
        s.retransmitted = true;
        s.retransInFlight = true;
        this.pipeBytes += (weight(s) - before) * seqDiff(s.end, s.start);
      }
    }
    // Past the highest segment the bytes are new (a resend after an RTO may run on into unsent data).
    if (seqGt(end, lastEnd)) this.append(lastEnd, end, now, false);
  }

  /**
   * SND.UNA moved to `una`: segments below it leave the log. `onDelivered` sees each
   * one that was not SACKed before, in sequence order (RFC 8985 §6.2 step 2: newly
   * acknowledged segments).
   */
  ack(una: Seq, onDelivered?: (s: SentSegment) => void): void {
    const segs = this.segs;
    let k = this.first;
    while (k < segs.length && seqLe(segs[k]!.end, una)) {
      const s = segs[k]!;
      if (!s.sacked) onDelivered?.(s);
      else this.sackedSegs--;
      this.pipeBytes -= weight(s) * seqDiff(s.end, s.start);
      (segs as (SentSegment | undefined)[])[k] = undefined;
      k++;
    }
    if (k < segs.length && seqLt(segs[k]!.start, una)) {
      const s = segs[k]!;
      this.pipeBytes -= weight(s) * seqDiff(una, s.start);
      s.start = una;
    }
    this.first = k;
    if (k === segs.length) {
      segs.length = 0;
      this.first = 0;
    } else if (k >= 64 && k * 2 >= segs.length) {
      segs.splice(0, k);
      this.first = 0;
    }
  }

  /**
   * Marks segments wholly covered by SACKed data as delivered; `isSackedUpTo(seq)`
   * returns where the SACKed range holding `seq` ends (or `seq` when it is not
   * SACKed). `onDelivered` sees each newly SACKed segment in sequence order.
   */
  markSacked(isSackedUpTo: (seq: Seq) => Seq, onDelivered: (s: SentSegment) => void): void {
    for (let k = this.first; k < this.segs.length; k++) {
      const s = this.segs[k]!;
      if (s.sacked || seqLt(isSackedUpTo(s.start), s.end)) continue;
      this.pipeBytes -= weight(s) * seqDiff(s.end, s.start);
      s.sacked = true;
      s.retransInFlight = false;
      this.sackedSegs++;
      onDelivered(s);
    }
  }

  /** RACK (or the RTO) declared `s` lost: it leaves the pipe until retransmitted. */
  markLost(s: SentSegment): void {
    if (s.sacked) return;
    const before = weight(s);
    s.lost = true;
    s.retransInFlight = false;
    this.pipeBytes += (weight(s) - before) * seqDiff(s.end, s.start);
  }

  /** The lowest segment marked lost and not retransmitted since (NextSeg rule 1 with RACK's IsLost). */
  nextLost(): SentSegment | undefined {
    for (let k = this.first; k < this.segs.length; k++) {
      const s = this.segs[k]!;
      if (s.lost && !s.retransInFlight && !s.sacked) return s;
    }
    return undefined;
  }

  /** Marks every segment not SACKed lost (an RTO: everything is resent from SND.UNA). */
  markAllLost(): void {
    for (let k = this.first; k < this.segs.length; k++) this.markLost(this.segs[k]!);
  }

  /** Forgets the loss and in-flight-retransmission marks (after an undo). */
  clearLossMarks(): void {
    let pipe = 0;
    for (let k = this.first; k < this.segs.length; k++) {
      const s = this.segs[k]!;
      s.lost = false;
      s.retransInFlight = false;
      pipe += weight(s) * seqDiff(s.end, s.start);
    }
    this.pipeBytes = pipe;
  }

  /** Forgets everything (the data it described is gone). */
  reset(): void {
    this.segs = [];
    this.first = 0;
    this.pipeBytes = 0;
    this.sackedSegs = 0;
  }

  private append(start: Seq, end: Seq, now: number, retransmitted: boolean): void {
    const s: SentSegment = {
      start,
      end,
      xmitAt: now,
      xmitOrder: ++this.transmissions,
      retransmitted,
      // Nothing earlier of these bytes is on record: this copy is the one in flight.
      retransInFlight: false,
      sacked: false,
      lost: false,
    };
    this.segs.push(s);
    this.pipeBytes += weight(s) * seqDiff(end, start);
  }

  /** Splits the segment holding `seq` so that one starts there; returns its index. */
  private splitAt(seq: Seq): number {
    const segs = this.segs;
    let lo = this.first;
    let hi = segs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqLe(segs[mid]!.end, seq)) lo = mid + 1;
      else hi = mid;
    }
    if (lo < segs.length && seqLt(segs[lo]!.start, seq)) {
      const s = segs[lo]!;
      segs.splice(lo + 1, 0, { ...s, start: seq });
      s.end = seq;
      return lo + 1;
    }
    return lo;
  }
}

/** Bytes of pipe per byte of the segment (see TransmitLog). */
function weight(s: SentSegment): number {
  if (s.sacked) return 0;
  return (s.lost ? 0 : 1) + (s.retransInFlight ? 1 : 0);
}

/** The RACK state of one connection (RFC 8985 §6.1 "per-connection variables"). */
export class Rack {
  /**
   * RACK.xmit_ts and RACK.end_seq of the most recently sent segment delivered
   * (undefined before any), with its transmission order (see SentSegment.xmitOrder).
   */
  xmitAt: number | undefined;
  endSeq: Seq = 0;
  private xmitOrder = 0;
  /** RACK.rtt: the RTT of that segment. */
  rtt = 0;
  /** RACK.fack: the highest end sequence delivered. */
  private fack: Seq = 0;
  private fackSet = false;
  /** RACK.reordering_seen. */
  reorderingSeen = false;
  /** RACK.reo_wnd_mult and RACK.reo_wnd_persist (§6.2 step 4). */
  reoWndMult = 1;
  private reoWndPersist = 0;
  /** RACK.dsack_round: SND.NXT when the window was last raised for a D-SACK. */
  private dsackRound: Seq | undefined;

  /**
   * §6.2 steps 2 and 3 for one newly delivered segment: RACK_update() and
   * RACK_detect_reordering(). `echoedSentBefore` says the ACK's TSecr is older than
   * the segment's last transmission (§6.2 step 2: the ACK is for an earlier copy);
   * undefined when the echo cannot tell (no timestamps; see the connection).
   */
  onDelivered(s: SentSegment, now: number, minRtt: number | undefined, echoedSentBefore: boolean | undefined): void {
    // Step 3 first: it does not depend on the RTT checks below.
    if (!this.fackSet || seqGt(s.end, this.fack)) {
      this.fack = s.end;
      this.fackSet = true;
    } else if (seqLt(s.end, this.fack) && !s.retransmitted) {
      this.reorderingSeen = true;
    }
    // Step 2. A segment marked lost and not resent carries no timing worth having
    // (RFC 8985 sets its xmit_ts to infinity).
    if (s.lost && !s.retransInFlight) return;
    const rtt = now - s.xmitAt;
    if (s.retransmitted) {
      // Which copy was delivered is ambiguous (Karn): skip the sample when the echoed
      // timestamp predates the retransmission, or, without timestamps, when it is
      // shorter than the path's minimum RTT.
      if (echoedSentBefore === true) return;
      if (echoedSentBefore === undefined && minRtt !== undefined && rtt < minRtt) return;
    }
    this.rtt = rtt;
    // RACK_sent_after(Segment.xmit_ts, Segment.end_seq, RACK.xmit_ts, RACK.end_seq).
    if (this.xmitAt === undefined || s.xmitOrder > this.xmitOrder) {
      this.xmitAt = s.xmitAt;
      this.endSeq = s.end;
      this.xmitOrder = s.xmitOrder;
    }
  }

  /**
   * §6.2 step 4, the D-SACK half of RACK_update_reo_wnd(): a D-SACK raises the
   * multiplier once per round trip; `sndUna` ends the round.
   */
  onAckForReoWnd(dsack: boolean, sndUna: Seq, sndNxt: Seq): void {
    if (this.dsackRound !== undefined && !seqLt(sndUna, this.dsackRound)) this.dsackRound = undefined;
    if (this.dsackRound === undefined && dsack) {
      this.dsackRound = sndNxt;
      this.reoWndMult++;
      this.reoWndPersist = REO_WND_PERSIST_RECOVERIES;
    }
  }

  /** §6.2 step 4: on leaving fast or RTO recovery, one of the 16 recoveries is spent. */
  onRecoveryEnd(): void {
    if (this.reoWndPersist > 0 && --this.reoWndPersist <= 0) this.reoWndMult = 1;
  }

  /**
   * §6.2 step 4: RACK.reo_wnd. Zero before reordering was seen, in recovery or with
   * DupThresh segments SACKed (the DupThresh rule, RFC 8985 §6.2 and its note);
   * else min(reo_wnd_mult * min_RTT / 4, SRTT).
   */
  reoWnd(inRecovery: boolean, sackedSegments: number, dupThresh: number, minRtt: number, srtt: number): number {
    if (!this.reorderingSeen && (inRecovery || sackedSegments >= dupThresh)) return 0;
    return min((this.reoWndMult * minRtt) / 4, srtt);
  }

  /**
   * §6.2 step 5, RACK_detect_loss(): marks lost every segment not delivered that was
   * sent before the most recently delivered one by more than RACK.rtt + reo_wnd.
   * Returns the time until the next segment would be (0: none waits), for the RACK
   * reordering timer, the bytes newly marked lost, and the latest transmission order
   * among them (to tell a loss of something sent during a recovery).
   */
  detectLoss(
    log: TransmitLog,
    now: number,
    reoWnd: number,
  ): { timeoutMs: number; lostBytes: number; latestLostOrder: number } {
    let timeoutMs = 0;
    let lostBytes = 0;
    let latestLostOrder = 0;
    if (this.xmitAt === undefined) return { timeoutMs, lostBytes, latestLostOrder };
    for (const s of log.live()) {
      if (s.sacked || (s.lost && !s.retransInFlight)) continue;
      // RACK_sent_after(RACK.xmit_ts, RACK.end_seq, Segment.xmit_ts, Segment.end_seq).
      if (s.xmitOrder >= this.xmitOrder) continue;
      const remaining = s.xmitAt + this.rtt + reoWnd - now;
      if (remaining <= 0) {
        log.markLost(s);
        lostBytes += seqDiff(s.end, s.start);
        latestLostOrder = max(latestLostOrder, s.xmitOrder);
      } else {
        timeoutMs = max(timeoutMs, remaining);
      }
    }
    return { timeoutMs, lostBytes, latestLostOrder };
  }
}
