/**
 * The receive buffer of one TCP connection: in-order data waiting for the application,
 * plus out-of-order data waiting for the holes before it to fill (RFC 9293 §3.10.7.4
 * "seventh, process the segment text"; RFC 9293 §3.9 "the TCP endpoint ... queues
 * out-of-order segments"), and the SACK blocks that describe it (RFC 2018 §4).
 *
 * Storage is one ring of bytes that grows on demand up to the capacity. The ring maps
 * sequence space directly: the byte at sequence number `s` lives at ring offset
 * `s - readSeq` from the read head, whether it arrived in order or not. So
 *  - a payload byte is copied once in (`insert`) and once out (`read`/`readInto`),
 *  - inserting allocates nothing in the steady state (no per-segment chunk objects),
 *  - reassembly never moves data: filling a hole only moves `rcvNxt`.
 * A ring copy per segment is one `TypedArray.set` (memcpy); per-segment chunks would
 * cost the same copy plus an allocation and a list node, and reading across chunks a
 * second copy, so the ring is the cheaper of the two.
 *
 * Window accounting: every sequence number in [readSeq, readSeq + capacity) has its
 * slot reserved in the ring, so out-of-order data does not consume window that the
 * in-order stream will need: `window = capacity - readable` (the BSD rule, which counts
 * only what the application has not read; Linux instead counts the memory the
 * out-of-order queue takes, because its skbs have overhead; a ring has none). The right
 * edge `readSeq + capacity` therefore only ever moves right, except when `setCapacity`
 * shrinks the buffer; even then, data up to the old right edge is still accepted
 * (it may have been advertised, RFC 9293 §3.8.6.2.1), and only the reported window
 * shrinks. Not shrinking the advertised edge is the connection's job.
 *
 * Sequence numbers are compared only through seq.ts (wrap-around at 2^32).
 */

import type { SackBlock } from '../wire/tcp-options';
import { type Seq, seqAdd, seqDiff, seqGt } from './seq';

// Module-level copies: under jest's vm sandbox each global lookup costs ~170 ns.
const { min, max } = Math;

/** The ring starts this small and doubles as data needs room (up to the capacity). */
const INITIAL_RING = 4096;

/** Default cap on the number of discontiguous out-of-order ranges kept. */
const DEFAULT_MAX_RANGES = 1024;

const EMPTY = new Uint8Array(0);

export interface ReceiveBufferOptions {
  /** Bytes the buffer holds (SO_RCVBUF): the most window it will ever offer. */
  capacity: number;
  /** The peer's initial sequence number (its SYN): starts the buffer at irs + 1. */
  irs?: Seq;
  /**
   * Most discontiguous out-of-order ranges kept. A segment that would open one more is
   * dropped (it will be retransmitted). Bounds the per-segment work a peer can cause
   * by sending many tiny scattered segments. Default 1024.
   */
  maxRanges?: number;
}

/** What `insert` did. The object is reused by the next call: read it at once. */
export interface InsertResult {
  /** New bytes stored by this segment (duplicates and bytes outside the window excluded). */
  readonly accepted: number;
  /** How far rcvNxt moved: bytes that became readable in order. */
  readonly advanced: number;
}

/** An out-of-order range [start, end) in sequence space, with its SACK recency. */
interface OooRange {
  start: Seq;
  end: Seq;
  /** The insert that last touched this range: RFC 2018 §4 reports newest first. */
  stamp: number;
}

export class ReceiveBuffer {
  private cap: number;
  private readonly maxRanges: number;

  private ring: Uint8Array = EMPTY;
  /** Ring index of the first unread byte (sequence number readSeq). */
  private head = 0;
  /** In-order bytes not yet read: [readSeq, rcvNxt). */
  private inOrder = 0;
  private next: Seq = 0;
  /** Out-of-order ranges, sorted, disjoint and never adjacent, all above rcvNxt. */
  private ranges: OooRange[] = [];
  private oooBytes = 0;
  private clock = 0;
  /**
   * After a shrinking setCapacity: data up to this edge is still accepted, because it
   * may already have been advertised. Cleared once the capacity edge passes it.
   */
  private keepEdge: Seq | undefined;

  private readonly result = { accepted: 0, advanced: 0 };

  constructor(options: ReceiveBufferOptions) {
    this.cap = checkCapacity(options.capacity);
    this.maxRanges = max(1, options.maxRanges ?? DEFAULT_MAX_RANGES);
    if (options.irs !== undefined) this.start(seqAdd(options.irs, 1));
  }

  /**
   * Starts (or restarts) the stream: `rcvNxt` is the sequence number of the first data
   * byte, IRS + 1 (RFC 9293 §3.10.7.3). Discards anything stored.
   */
  start(rcvNxt: Seq): void {
    this.next = rcvNxt >>> 0;
    this.head = 0;
    this.inOrder = 0;
    this.ranges = [];
    this.oooBytes = 0;
    this.keepEdge = undefined;
  }

  /** RCV.NXT: the next sequence number expected in order. */
  get rcvNxt(): Seq {
    return this.next;
  }

  /** The sequence number of the next byte the application reads. */
  get readSeq(): Seq {
    return seqAdd(this.next, -this.inOrder);
  }

  /** Bytes the application can read now, in order. */
  get readable(): number {
    return this.inOrder;
  }

  get capacity(): number {
    return this.cap;
  }

  /**
   * Free space for the receive window (RFC 9293 §3.8.6.2): capacity minus the bytes
   * waiting for the application. Out-of-order data does not count (see the file
   * comment). Never negative. The connection must not let its advertised right edge
   * (RCV.NXT + RCV.WND) move left (RFC 9293 §3.8.6.2.1) when this drops.
   */
  get window(): number {
    return max(0, this.cap - this.inOrder);
  }

  /** True while some data above a hole waits for the hole to fill. */
  get hasOutOfOrder(): boolean {
    return this.ranges.length > 0;
  }

  /** Bytes stored above rcvNxt. */
  get outOfOrderBytes(): number {
    return this.oooBytes;
  }

  /**
   * Changes the capacity (SO_RCVBUF) at run time. Growing takes effect at once.
   * Shrinking lowers `window` at once, but data up to the old right edge is still
   * stored, since the peer may already have been told it could send it.
   */
  setCapacity(capacity: number): void {
    capacity = checkCapacity(capacity);
    if (capacity < this.cap) {
      const oldEdge = seqAdd(this.readSeq, this.cap);
      if (this.keepEdge === undefined || seqGt(oldEdge, this.keepEdge)) this.keepEdge = oldEdge;
    }
    this.cap = capacity;
    if (this.inOrder === 0 && this.ranges.length === 0 && this.ring.length > capacity) {
      // Nothing stored: give the memory back; the ring regrows on demand.
      this.ring = EMPTY;
      this.head = 0;
    }
  }

  /**
   * RFC 9293 §3.10.7.4, seventh step: stores the part of the segment text that falls
   * in [rcvNxt, right edge), trimming duplicates on the left and what lies beyond the
   * buffer on the right, merges it with out-of-order ranges and advances rcvNxt over
   * what became contiguous.
   *
   * Overlaps: the first copy of a byte wins. Bytes already stored are never
   * overwritten (RFC 9293 §3.10.7.4 allows either; keeping the first copy means a
   * retransmission cannot change data already accepted). The SYN and FIN take no
   * place here: the caller passes data only.
   *
   * The returned object is reused by the next call.
   */
  insert(seq: Seq, data: Uint8Array): InsertResult {
    const r = this.result;
    r.accepted = 0;
    r.advanced = 0;
    const length = data.length;
    if (length === 0) return r;
    let from = 0;
    let off = seqDiff(seq, this.next);
    if (off < 0) {
      // RFC 9293 §3.10.7.4: "If a segment's contents straddle the boundary between old
      // and new, only the new parts are processed": trim the duplicate head.
      from = -off;
      if (from >= length) return r;
      off = 0;
    }
    const end = min(off + (length - from), this.acceptLimit());
    if (end <= off) return r;
    const need = this.inOrder + end;
    if (need > this.ring.length) this.grow(need);

    const ranges = this.ranges;
    if (ranges.length === 0) {
      // Fast path: nothing out of order, so every byte is new.
      const n = end - off;
      this.copyIn(off, data, from, n);
      r.accepted = n;
      if (off === 0) {
        this.next = seqAdd(this.next, n);
        this.inOrder += n;
        r.advanced = n;
      } else {
        ranges.push({ start: seqAdd(this.next, off), end: seqAdd(this.next, end), stamp: ++this.clock });
        this.oooBytes = n;
      }
      return r;
    }
    return this.insertSlow(off, end, data, from);
  }

  /** The general case of insert: out-of-order ranges exist. Offsets are from rcvNxt. */
  private insertSlow(off: number, end: number, data: Uint8Array, from: number): InsertResult {
    const r = this.result;
    const ranges = this.ranges;
    const base = this.next;
    // First range that ends at or after `off` (touching counts: it merges). Binary
    // search: a peer can make the list long.
    let i = 0;
    let hi = ranges.length;
    while (i < hi) {
      const mid = (i + hi) >>> 1;
      if (seqDiff(ranges[mid]!.end, base) < off) i = mid + 1;
      else hi = mid;
    }
    // Touching no stored range opens a new one, if the list has room (data at rcvNxt
    // always fits: it opens no range).
    if (off > 0 && ranges.length >= this.maxRanges && (i === ranges.length || seqDiff(ranges[i]!.start, base) > end)) {
      return r;
    }
    // Copy the gaps between stored ranges; first copy wins.
    let cursor = off;
    let j = i;
    let mergedStart = off;
    let mergedEnd = end;
    let accepted = 0;
    for (; j < ranges.length; j++) {
      const rs = seqDiff(ranges[j]!.start, base);
      if (rs > end) break;
      const re = seqDiff(ranges[j]!.end, base);
      if (rs > cursor) {
        this.copyIn(cursor, data, from + (cursor - off), rs - cursor);
        accepted += rs - cursor;
      }
      if (re > cursor) cursor = re;
      if (j === i && rs < mergedStart) mergedStart = rs;
      if (re > mergedEnd) mergedEnd = re;
    }
    if (cursor < end) {
      this.copyIn(cursor, data, from + (cursor - off), end - cursor);
      accepted += end - cursor;
    }
    r.accepted = accepted;
    this.oooBytes += accepted;
    if (mergedStart === 0) {
      // The hole at rcvNxt is filled: everything up to mergedEnd is now in order.
      this.oooBytes -= mergedEnd;
      ranges.splice(0, j);
      this.next = seqAdd(base, mergedEnd);
      this.inOrder += mergedEnd;
      r.advanced = mergedEnd;
      return r;
    }
    // RFC 2018 §4: the range holding the latest segment is reported first next time,
    // even when this segment brought no new byte (a duplicate above a hole).
    const merged: OooRange = { start: seqAdd(base, mergedStart), end: seqAdd(base, mergedEnd), stamp: ++this.clock };
    if (j - i === 1) ranges[i] = merged;
    else ranges.splice(i, j - i, merged);
    return r;
  }

  /** Bytes beyond rcvNxt that may be stored. */
  private acceptLimit(): number {
    let limit = this.cap - this.inOrder;
    if (this.keepEdge !== undefined) {
      const keep = seqDiff(this.keepEdge, this.next);
      // The capacity edge (readSeq + capacity) has caught up with the kept edge: forget it.
      if (keep <= limit) this.keepEdge = undefined;
      else limit = keep;
    }
    return limit;
  }

  /** Copies data[from, from + n) to offset `off` past rcvNxt. */
  private copyIn(off: number, data: Uint8Array, from: number, n: number): void {
    const ring = this.ring;
    const size = ring.length;
    let at = this.head + this.inOrder + off;
    if (at >= size) at -= size;
    const first = min(n, size - at);
    if (from === 0 && first === data.length) ring.set(data, at);
    else ring.set(data.subarray(from, from + first), at);
    if (n > first) ring.set(data.subarray(from + first, from + n), 0);
  }

  /** Grows the ring so it can hold `need` bytes from the read head; keeps every offset. */
  private grow(need: number): void {
    const old = this.ring;
    const oldSize = old.length;
    // Double (amortised O(1) per byte), but never past what may be stored.
    const size = max(need, min(max(oldSize * 2, INITIAL_RING), this.inOrder + this.acceptLimit()));
    const ring = new Uint8Array(size);
    if (oldSize > 0) {
      // Linearise from the head: every stored byte keeps its offset from readSeq.
      ring.set(old.subarray(this.head), 0);
      ring.set(old.subarray(0, this.head), oldSize - this.head);
    }
    this.ring = ring;
    this.head = 0;
  }

  /** Copies up to `n` in-order bytes, starting `skip` bytes past readSeq, into dst. */
  private copyOut(dst: Uint8Array, dstOffset: number, skip: number, n: number): void {
    const ring = this.ring;
    const size = ring.length;
    let at = this.head + skip;
    if (at >= size) at -= size;
    const first = min(n, size - at);
    dst.set(ring.subarray(at, at + first), dstOffset);
    if (n > first) dst.set(ring.subarray(0, n - first), dstOffset + first);
  }

  /** Consumes and returns up to `maxBytes` in-order bytes (all readable bytes by default). */
  read(maxBytes?: number): Uint8Array {
    const n = maxBytes === undefined ? this.inOrder : min(max(0, maxBytes), this.inOrder);
    if (n === 0) return EMPTY;
    const out = new Uint8Array(n);
    this.copyOut(out, 0, 0, n);
    this.consume(n);
    return out;
  }

  /** Consumes in-order bytes into `buf`; returns how many. */
  readInto(buf: Uint8Array): number {
    const n = min(buf.length, this.inOrder);
    if (n === 0) return 0;
    this.copyOut(buf, 0, 0, n);
    this.consume(n);
    return n;
  }

  /** Returns up to `maxBytes` in-order bytes without consuming them (MSG_PEEK). */
  peek(maxBytes?: number): Uint8Array {
    const n = maxBytes === undefined ? this.inOrder : min(max(0, maxBytes), this.inOrder);
    if (n === 0) return EMPTY;
    const out = new Uint8Array(n);
    this.copyOut(out, 0, 0, n);
    return out;
  }

  /** Drops up to `n` in-order bytes unread (after a peek); returns how many. */
  consume(n: number): number {
    n = min(max(0, n), this.inOrder);
    this.inOrder -= n;
    if (this.inOrder === 0 && this.ranges.length === 0) {
      // Empty: restart at the ring's start so the next reads need a single copy.
      this.head = 0;
    } else {
      this.head += n;
      if (this.head >= this.ring.length) this.head -= this.ring.length;
    }
    return n;
  }

  /**
   * RFC 2018 §4: up to `maxBlocks` SACK blocks, most recent first. The first block
   * holds the most recently received out-of-order segment; the others follow in
   * the order they were last first-reported, which, since every out-of-order
   * segment is acknowledged at once (RFC 5681 §4.2) with its range first, is the
   * order they were last touched. Blocks never include data at or below rcvNxt.
   * RFC 2018 §3: at most 4 fit, 3 with timestamps; the caller passes how many.
   * Fresh objects each call.
   */
  sackBlocks(maxBlocks = 4): SackBlock[] {
    const ranges = this.ranges;
    const n = min(maxBlocks, ranges.length);
    const out: SackBlock[] = [];
    if (n <= 0) return out;
    if (ranges.length === 1) {
      out.push({ left: ranges[0]!.start, right: ranges[0]!.end });
      return out;
    }
    // Selection by stamp, newest first: lists are short and n <= 4.
    let lastStamp = Number.POSITIVE_INFINITY;
    for (let k = 0; k < n; k++) {
      let best: OooRange | undefined;
      for (const range of ranges) {
        if (range.stamp < lastStamp && (best === undefined || range.stamp > best.stamp)) best = range;
      }
      if (best === undefined) break;
      lastStamp = best.stamp;
      out.push({ left: best.start, right: best.end });
    }
    return out;
  }

  /** The out-of-order ranges in sequence order (for inspection and tests). */
  outOfOrderRanges(): SackBlock[] {
    return this.ranges.map((r) => ({ left: r.start, right: r.end }));
  }
}

function checkCapacity(capacity: number): number {
  if (!Number.isInteger(capacity) || capacity < 0 || capacity > 0x40000000) {
    // RFC 7323 §2.3: with the largest scale (14) the window is at most 2^30.
    throw new RangeError(`receive buffer capacity must be an integer in [0, 2^30], got ${capacity}`);
  }
  return capacity;
}
