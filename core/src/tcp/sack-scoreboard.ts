/**
 * The sender's SACK scoreboard (RFC 6675 §3, §4): which bytes in [SND.UNA, SND.NXT)
 * the peer has selectively acknowledged, which the sender has retransmitted during
 * this recovery, and the RFC 6675 routines built on them: IsLost, SetPipe, NextSeg.
 *
 * Everything is in sequence space, with wrap-around through seq.ts. Ranges are kept
 * as short sorted arrays of [start, end) pairs: SACKed ranges, and retransmitted
 * ranges. A peer's SACK blocks are never trusted: malformed, reversed, or out-of-window
 * blocks are dropped (RFC 2018 §8 leaves the sender to validate; RFC 5961's spirit).
 *
 * Deviations from the letter of RFC 6675, all in the direction Linux takes:
 *  - Retransmissions are recorded per byte range (`markRetransmitted`) instead of by
 *    the single HighRxt pointer. SetPipe's step (b) ("S1 <= HighRxt") counts only bytes
 *    actually retransmitted, and NextSeg rule (1) picks the lowest lost byte not yet
 *    retransmitted in this recovery, even below HighRxt (a hole that IsLost only later
 *    declared lost is still repaired before the RTO). `highRxt` is still tracked and
 *    used by rule (3), as the RFC says.
 *  - NextSeg rule (4), the rescue retransmission, is not implemented (it is a MAY).
 *  - After an RTO (RFC 6675 §5.1) `clear()` forgets the retransmission marks but keeps
 *    the SACK information, as Linux does and as RFC 6675 §5.1 permits with [Errata1610]
 *    (RFC 2018 §8 would expunge it: use `reset()` for that).
 */

import type { SackBlock } from '../wire/tcp-options';
import { type Seq, seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt, seqMax, seqMin } from './seq';

// Module-level copies: under jest's vm sandbox each global lookup costs ~170 ns.
const { min } = Math;

/** RFC 6675 §2: DupThresh, "the number of duplicate ACKs ... to trigger a retransmission". */
export const DEFAULT_DUP_THRESH = 3;

/** RFC 7323 §2.3: the largest window, 2^30 bytes. */
const MAX_WINDOW = 0x40000000;

/** Default cap on SACKed ranges; a block that would open one more is ignored. */
const DEFAULT_MAX_RANGES = 1024;

export interface SackScoreboardOptions {
  /** RFC 6675 §2 DupThresh. Default 3. */
  dupThresh?: number;
  /**
   * Most discontiguous SACKed ranges tracked. Ignoring a block only costs a needless
   * retransmission later; it bounds the work a hostile receiver can cause. Default 1024.
   */
  maxRanges?: number;
}

/** What `update` learnt from one ACK. Reused by the next call: read it at once. */
export interface SackUpdate {
  /** Bytes SACKed by this ACK that were not SACKed before. */
  readonly newlySacked: number;
  /** RFC 2883 §4: the first block reported a duplicate segment (a D-SACK). */
  readonly dsack: boolean;
}

/** A segment to send, from NextSeg. Reused by the next call: read it at once. */
export interface NextSegment {
  /** First sequence number to send. */
  readonly seq: Seq;
  /** Bytes: at most SMSS, never into SACKed data. For rule 2, SMSS (the caller trims). */
  readonly len: number;
  /** Which RFC 6675 §4 NextSeg rule chose it: 1 lost, 2 new data, 3 unSACKed above HighRxt. */
  readonly rule: 1 | 2 | 3;
}

interface Range {
  start: Seq;
  end: Seq;
}

export class SackScoreboard {
  readonly dupThresh: number;
  private readonly maxRanges: number;
  /** SACKed ranges: sorted, disjoint, non-adjacent, all above `una`. */
  private sacked: Range[] = [];
  /** Retransmitted ranges (this recovery): sorted, disjoint, non-adjacent, above `una`. */
  private rexmit: Range[] = [];
  private sackedTotal = 0;
  /** The highest SND.UNA seen: state below it has been dropped. */
  private una: Seq = 0;
  private started = false;
  /** Right edge of the highest byte ever SACKed; meaningless until `anySacked`. */
  private highSacked: Seq = 0;
  private anySacked = false;
  /** One past the highest retransmitted byte; meaningless until `anyRexmit`. */
  private highRexmit: Seq = 0;
  private anyRexmit = false;

  private readonly updateResult = { newlySacked: 0, dsack: false };
  private readonly segResult: { seq: Seq; len: number; rule: 1 | 2 | 3 } = { seq: 0, len: 0, rule: 1 };

  constructor(options: SackScoreboardOptions = {}) {
    this.dupThresh = options.dupThresh ?? DEFAULT_DUP_THRESH;
    this.maxRanges = options.maxRanges ?? DEFAULT_MAX_RANGES;
    if (!(this.dupThresh >= 1)) throw new RangeError(`dupThresh must be >= 1, got ${this.dupThresh}`);
  }

  /** Bytes currently SACKed above SND.UNA. */
  get sackedBytes(): number {
    return this.sackedTotal;
  }

  /** True when some byte above SND.UNA is SACKed. */
  get hasSacked(): boolean {
    return this.sacked.length > 0;
  }

  /**
   * One past the highest byte ever SACKed (RFC 6675 NextSeg (1.b) "the highest octet
   * covered by any received SACK"), never below SND.UNA.
   */
  get highestSacked(): Seq {
    return this.anySacked ? seqMax(this.highSacked, this.una) : this.una;
  }

  /**
   * RFC 6675 §2 HighRxt: the highest sequence number retransmitted in this recovery,
   * as one past it, never below SND.UNA (it starts at HighACK, RFC 6675 §5 step 3).
   */
  get highRxt(): Seq {
    return this.anyRexmit ? seqMax(this.highRexmit, this.una) : this.una;
  }

  /** Bytes marked retransmitted above SND.UNA (SACKed or not). */
  get retransmittedBytes(): number {
    return total(this.rexmit);
  }

  /**
   * Processes the SACK blocks of one ACK (RFC 6675 §5 step "update the scoreboard").
   *
   * `sndUna` should be the ACK's cumulative acknowledgment when it is acceptable,
   * i.e. `seqMax(SND.UNA, SEG.ACK)`: RFC 2883 §4 tests a D-SACK against the ACK
   * field, and state below it is dropped here. `sndNxt` is the highest sequence
   * number sent (SND.MAX after go-back-N).
   *
   * Accepted blocks satisfy SND.UNA <= left < right <= SND.NXT; everything else is
   * ignored. D-SACK (RFC 2883 §4): the first block is a duplicate report when it lies
   * below the cumulative ACK, or inside the second block; it marks nothing.
   */
  update(sndUna: Seq, blocks: readonly SackBlock[], sndNxt: Seq): SackUpdate {
    const res = this.updateResult;
    res.newlySacked = 0;
    res.dsack = false;
    this.advance(sndUna);
    const una = this.una;
    // Offsets from SND.UNA: a block is [lo, hi) and must satisfy 0 <= lo < hi <= window.
    const window = seqDiff(sndNxt >>> 0, una);
    const n = blocks.length;
    for (let k = 0; k < n; k++) {
      const b = blocks[k]!;
      const lo = seqDiff(b.left >>> 0, una);
      const hi = seqDiff(b.right >>> 0, una);
      // Malformed (empty, reversed) or reaching past SND.NXT: nothing the peer can have received.
      if (!(lo < hi) || hi > window) continue;
      if (k === 0) {
        // RFC 2883 §4: "If the first SACK block is below the cumulative ACK, or if it
        // is contained in the second SACK block" it reports a duplicate. Below
        // SND.UNA, no further than the largest window reaches (RFC 7323 §2.3: 2^30).
        if (lo < 0) {
          if (lo >= -MAX_WINDOW) res.dsack = true;
          continue;
        }
        if (n > 1) {
          const lo2 = seqDiff(blocks[1]!.left >>> 0, una);
          const hi2 = seqDiff(blocks[1]!.right >>> 0, una);
          if (lo2 < hi2 && hi2 <= window && lo2 <= lo && hi <= hi2) {
            res.dsack = true;
            continue;
          }
        }
      }
      if (lo < 0) continue; // below SND.UNA: already acknowledged
      res.newlySacked += this.markSacked(seqAdd(una, lo), seqAdd(una, hi));
    }
    return res;
  }

  /**
   * SND.UNA moved to `sndUna` (an ACK without SACK blocks): drops the state below it.
   * The other methods taking SND.UNA do this too; this keeps `sackedBytes`,
   * `isSacked` and `highRxt` current in between. Older values are ignored.
   */
  ack(sndUna: Seq): void {
    this.advance(sndUna);
  }

  /** Is the byte at `seq` SACKed? */
  isSacked(seq: Seq): boolean {
    return find(this.sacked, seq) >= 0;
  }

  /** Was the byte at `seq` retransmitted in this recovery? */
  isRetransmitted(seq: Seq): boolean {
    return find(this.rexmit, seq) >= 0;
  }

  /**
   * RFC 6675 §4 IsLost(SeqNum): true when DupThresh discontiguous SACKed ranges lie
   * above `seq`, or more than (DupThresh - 1) * SMSS bytes above it are SACKed. A
   * SACKed byte is never lost. "Discontiguous SACKed sequences" is read as
   * discontiguous SACKed ranges (as gVisor does); small segments arriving
   * contiguously are covered by the duplicate-ACK count instead (RFC 6675 §5 (a)).
   */
  isLost(seq: Seq, smss: number): boolean {
    const sacked = this.sacked;
    const k0 = find(sacked, seq);
    if (k0 >= 0) return false; // SACKed
    const limit = (this.dupThresh - 1) * smss;
    let count = 0;
    let bytes = 0;
    for (let k = sacked.length - 1; k >= 0; k--) {
      const r = sacked[k]!;
      if (seqLe(r.end, seq)) break;
      count++;
      bytes += seqDiff(r.end, r.start);
      if (count >= this.dupThresh || bytes > limit) return true;
    }
    return false;
  }

  /**
   * RFC 6675 §4 SetPipe(): the bytes estimated in flight. For each byte in
   * [SND.UNA, SND.NXT) not SACKed: (a) +1 unless IsLost, (b) +1 if retransmitted
   * (per-range marks rather than `<= HighRxt`, see the file comment).
   *
   * IsLost is the same for every byte of a hole (it depends only on what is SACKed
   * above), so the walk is per hole: O(ranges).
   */
  setPipe(sndUna: Seq, sndNxt: Seq, smss: number): number {
    this.advance(sndUna);
    const una = this.una;
    if (!seqLt(una, sndNxt)) return 0;
    const sacked = this.sacked;
    const rexmit = this.rexmit;
    const limit = (this.dupThresh - 1) * smss;
    const n = sacked.length;
    let pipe = 0;
    let above = this.sackedTotal;
    let holeStart = una;
    let x = 0;
    for (let k = 0; k <= n; k++) {
      const holeEnd = k < n ? seqMin(sacked[k]!.start, sndNxt) : sndNxt;
      if (seqLt(holeStart, holeEnd)) {
        const lost = n - k >= this.dupThresh || above > limit;
        if (!lost) pipe += seqDiff(holeEnd, holeStart);
        // (b): retransmitted bytes in the hole.
        while (x < rexmit.length && seqLe(rexmit[x]!.end, holeStart)) x++;
        for (let y = x; y < rexmit.length; y++) {
          const r = rexmit[y]!;
          if (seqGe(r.start, holeEnd)) break;
          pipe += seqDiff(seqMin(r.end, holeEnd), seqMax(r.start, holeStart));
        }
      }
      if (k === n) break;
      const r = sacked[k]!;
      above -= seqDiff(r.end, r.start);
      holeStart = r.end;
      if (!seqLt(holeStart, sndNxt)) break;
    }
    return pipe;
  }

  /**
   * RFC 6675 §4 NextSeg() rule (1) only: the lowest byte S2 that is not SACKed, not
   * yet retransmitted in this recovery, below the highest SACKed byte (1.b), and
   * IsLost (1.c); with the length to send from there: up to SMSS, stopping before
   * SACKed or already retransmitted data. Undefined when there is none.
   */
  nextLostHole(sndUna: Seq, sndNxt: Seq, smss: number): NextSegment | undefined {
    this.advance(sndUna);
    const sacked = this.sacked;
    const n = sacked.length;
    if (n === 0) return undefined;
    const rexmit = this.rexmit;
    const limit = (this.dupThresh - 1) * smss;
    let above = this.sackedTotal;
    let holeStart = this.una;
    let x = 0;
    // Holes lie below a SACKed range, so (1.b) holds for all of them.
    for (let k = 0; k < n; k++) {
      const holeEnd = seqMin(sacked[k]!.start, sndNxt);
      const lost = n - k >= this.dupThresh || above > limit;
      if (!lost) return undefined; // IsLost only weakens going up: no hole above is lost either
      // The first byte of [holeStart, holeEnd) not yet retransmitted. Retransmitted
      // ranges may run on under SACKed data into later holes: `x` only skips those
      // wholly below this hole.
      while (x < rexmit.length && seqLe(rexmit[x]!.end, holeStart)) x++;
      let s = holeStart;
      let y = x;
      if (y < rexmit.length && seqLe(rexmit[y]!.start, s)) {
        s = rexmit[y]!.end;
        y++; // ranges never touch, so the next one starts above s
      }
      if (seqLt(s, holeEnd)) {
        let end = seqMin(seqAdd(s, smss), holeEnd);
        if (y < rexmit.length) end = seqMin(end, rexmit[y]!.start);
        return this.seg(s, seqDiff(end, s), 1);
      }
      const r = sacked[k]!;
      above -= seqDiff(r.end, r.start);
      holeStart = r.end;
      if (!seqLt(holeStart, sndNxt)) break;
    }
    return undefined;
  }

  /**
   * RFC 6675 §4 NextSeg(): (1) the lowest lost, unSACKed byte not yet retransmitted
   * (`nextLostHole`); else (2) new data at SND.NXT when `canSendNew` (the caller knows
   * whether unsent data exists and the receive window allows it; the returned length
   * is SMSS, for the caller to trim); else (3) the lowest unSACKed byte above HighRxt
   * and below the highest SACKed byte, lost or not. Rule (4), the rescue
   * retransmission, is not implemented. Undefined: send nothing.
   */
  nextSeg(sndUna: Seq, sndNxt: Seq, smss: number, canSendNew: boolean): NextSegment | undefined {
    const lost = this.nextLostHole(sndUna, sndNxt, smss);
    if (lost !== undefined) return lost;
    if (canSendNew) return this.seg(sndNxt, smss, 2);
    // Rule (3): S3 > HighRxt (1.a) and S3 < highest SACKed (1.b), not SACKed.
    if (this.sacked.length === 0) return undefined;
    const top = seqMin(this.highestSacked, sndNxt);
    let s = this.highRxt;
    const sacked = this.sacked;
    for (let k = 0; k < sacked.length && seqLt(s, top); k++) {
      const r = sacked[k]!;
      if (seqLe(r.end, s)) continue;
      if (seqLe(r.start, s)) {
        s = r.end;
        continue;
      }
      // s is in the hole below r.
      const end = seqMin(seqAdd(s, smss), r.start);
      return this.seg(s, seqDiff(end, s), 3);
    }
    return undefined;
  }

  /**
   * Records a retransmission of [seq, seq + len) (RFC 6675 §5 step (C.2): "HighRxt
   * MUST be set"). Any sequence space: a retransmitted FIN counts too.
   */
  markRetransmitted(seq: Seq, len: number): void {
    if (len <= 0) return;
    let start = seq >>> 0;
    const end = seqAdd(start, len);
    if (this.started) {
      // Before the first SND.UNA is known nothing is clipped; `advance` trims later.
      if (!seqGt(end, this.una)) return;
      if (seqLt(start, this.una)) start = this.una;
    }
    insertRange(this.rexmit, start, end, Number.POSITIVE_INFINITY);
    if (!this.anyRexmit || seqGt(end, this.highRexmit)) this.highRexmit = end;
    this.anyRexmit = true;
  }

  /**
   * Forgets which bytes were retransmitted and resets HighRxt, keeping the SACK
   * information: what to do on an RTO (see the file comment) or when a new recovery
   * episode begins.
   */
  clearRetransmitted(): void {
    this.rexmit = [];
    this.anyRexmit = false;
  }

  /** After an RTO: same as `clearRetransmitted` (the Linux way; RFC 6675 §5.1). */
  clear(): void {
    this.clearRetransmitted();
  }

  /** Forgets everything, SACK information included (RFC 2018 §8 on a timeout; a new connection). */
  reset(): void {
    this.sacked = [];
    this.rexmit = [];
    this.sackedTotal = 0;
    this.anySacked = false;
    this.anyRexmit = false;
    this.started = false;
  }

  /** The first sequence number at or after `seq` that is not SACKed. */
  nextUnsacked(seq: Seq): Seq {
    const k = find(this.sacked, seq);
    return k >= 0 ? this.sacked[k]!.end : seq;
  }

  /**
   * How many bytes from `seq` (not SACKed itself) can be sent before reaching SACKed
   * data, at most `maxLen`: for cutting go-back-N retransmissions around SACKed data.
   */
  unsackedRun(seq: Seq, maxLen: number): number {
    for (const r of this.sacked) {
      if (seqGt(r.start, seq)) return min(maxLen, seqDiff(r.start, seq));
      if (seqGt(r.end, seq)) return 0;
    }
    return maxLen;
  }

  /** SACKed ranges in sequence order (inspection and tests). */
  sackedRanges(): SackBlock[] {
    return this.sacked.map((r) => ({ left: r.start, right: r.end }));
  }

  /** Retransmitted ranges in sequence order (inspection and tests). */
  retransmittedRanges(): SackBlock[] {
    return this.rexmit.map((r) => ({ left: r.start, right: r.end }));
  }

  // ------------------------------------------------------------------ internals

  /** SND.UNA moved to `sndUna`: drop state below it (RFC 6675 §5 "remove from the scoreboard"). */
  private advance(sndUna: Seq): void {
    sndUna >>>= 0;
    if (this.started && !seqGt(sndUna, this.una)) return;
    this.started = true;
    this.una = sndUna;
    this.sackedTotal -= trimBelow(this.sacked, sndUna);
    trimBelow(this.rexmit, sndUna);
  }

  private markSacked(left: Seq, right: Seq): number {
    const added = insertRange(this.sacked, left, right, this.maxRanges);
    this.sackedTotal += added;
    if (!this.anySacked || seqGt(right, this.highSacked)) this.highSacked = right;
    this.anySacked = true;
    return added;
  }

  private seg(seq: Seq, len: number, rule: 1 | 2 | 3): NextSegment {
    const s = this.segResult;
    s.seq = seq;
    s.len = len;
    s.rule = rule;
    return s;
  }
}

/** Index of the range containing `seq`, or -1. Binary search. */
function find(ranges: Range[], seq: Seq): number {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (seqLe(ranges[mid]!.end, seq)) lo = mid + 1;
    else hi = mid;
  }
  return lo < ranges.length && seqLe(ranges[lo]!.start, seq) ? lo : -1;
}

/**
 * Adds [start, end) to a sorted range list, merging overlapping and adjacent ranges.
 * Returns the bytes newly covered. A range touching nothing is not added when the
 * list already holds `maxRanges`.
 */
function insertRange(ranges: Range[], start: Seq, end: Seq, maxRanges: number): number {
  // First range ending at or after `start` (touching merges).
  let i = 0;
  let hi = ranges.length;
  while (i < hi) {
    const mid = (i + hi) >>> 1;
    if (seqLt(ranges[mid]!.end, start)) i = mid + 1;
    else hi = mid;
  }
  let j = i;
  let covered = 0;
  let mergedStart = start;
  let mergedEnd = end;
  for (; j < ranges.length; j++) {
    const r = ranges[j]!;
    if (seqGt(r.start, end)) break;
    // Overlap of r with [start, end).
    const lo = seqMax(r.start, start);
    const hi2 = seqMin(r.end, end);
    if (seqLt(lo, hi2)) covered += seqDiff(hi2, lo);
    if (seqLt(r.start, mergedStart)) mergedStart = r.start;
    if (seqGt(r.end, mergedEnd)) mergedEnd = r.end;
  }
  if (j === i) {
    if (ranges.length >= maxRanges) return 0;
    ranges.splice(i, 0, { start, end });
  } else if (j - i === 1) {
    const r = ranges[i]!;
    r.start = mergedStart;
    r.end = mergedEnd;
  } else {
    ranges.splice(i, j - i, { start: mergedStart, end: mergedEnd });
  }
  return seqDiff(end, start) - covered;
}

/** Drops everything below `seq` from a sorted range list; returns the bytes dropped. */
function trimBelow(ranges: Range[], seq: Seq): number {
  let dropped = 0;
  let k = 0;
  while (k < ranges.length && seqLe(ranges[k]!.end, seq)) {
    dropped += seqDiff(ranges[k]!.end, ranges[k]!.start);
    k++;
  }
  if (k > 0) ranges.splice(0, k);
  if (ranges.length > 0 && seqLt(ranges[0]!.start, seq)) {
    dropped += seqDiff(seq, ranges[0]!.start);
    ranges[0]!.start = seq;
  }
  return dropped;
}

function total(ranges: Range[]): number {
  let n = 0;
  for (const r of ranges) n += seqDiff(r.end, r.start);
  return n;
}
