/**
 * The send buffer of one TCP connection: bytes the application wrote that the peer
 * has not acknowledged yet (RFC 9293 §3.3.1: [SND.UNA, ...) of the send sequence
 * space), with metadata attached to byte ranges.
 *
 * Storage: blocks of bytes (64 KiB by default) appended in order. `write` copies the
 * application's bytes once into the tail block, so the caller may reuse its buffer at
 * once; `read` returns a subarray of a block (no copy) unless the segment straddles two
 * blocks, which happens at most once per block. `ack` drops whole blocks. Blocks are
 * never reused after being dropped, so a view returned by `read` keeps its bytes for
 * as long as anyone holds it (a simulated link may hold a segment for a while).
 *
 * Metadata (DESIGN.md decision 4): every byte of the buffer belongs to exactly one
 * metadata range [start, end) in sequence space, whose `meta` is a value of type M or
 * undefined. Adjacent ranges with the identical (`===`) value are one range. `read`
 * never returns bytes from two ranges, so a segment never crosses a mapping boundary
 * (MPTCP's DSS mappings, RFC 8684 §3.3.1, rely on this). Plugins attach metadata when
 * writing (`write(data, meta)`) or afterwards (`setMeta`), and can cap any segment's
 * length just before it is cut (`segmentLimit`, or the `limit` argument of `read`).
 *
 * Sequence numbers are compared only through seq.ts (wrap-around at 2^32). Byte
 * positions inside the buffer are kept as absolute stream offsets (JS numbers, exact
 * up to 2^53 bytes), which never wrap.
 */

import { type Seq, seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from './seq';

// Module-level copies: under jest's vm sandbox each global lookup costs ~170 ns.
const { min, max } = Math;

const DEFAULT_BLOCK_SIZE = 64 * 1024;
const EMPTY = new Uint8Array(0);

export interface SendBufferOptions {
  /** Bytes the buffer holds (SO_SNDBUF). */
  capacity: number;
  /** Size of the storage blocks. Default 64 KiB. */
  blockSize?: number;
}

/** A metadata range: bytes [start, end) in sequence space carry `meta`. */
export interface MetaRange<M> {
  readonly start: Seq;
  readonly end: Seq;
  readonly meta: M | undefined;
}

/**
 * Asked before a segment is cut: `len` bytes from `seq` would be sent; returns how many
 * may be (values above `len` are ignored; 0 or less sends nothing now).
 */
export type SegmentLimit = (seq: Seq, len: number) => number;

interface Block {
  readonly bytes: Uint8Array;
  /** Absolute stream offset of bytes[0]. */
  readonly pos: number;
  /** Bytes written into this block. */
  fill: number;
}

interface Range<M> {
  start: Seq;
  end: Seq;
  meta: M | undefined;
}

export class SendBuffer<M = unknown> {
  private cap: number;
  private readonly blockSize: number;

  /** Live blocks are blocks[firstBlock...]. */
  private blocks: Block[] = [];
  private firstBlock = 0;
  private blockCursor = 0;
  /** Absolute stream offsets of the first unacknowledged byte and of the end. */
  private startPos = 0;
  private endPos = 0;
  /** Sequence number of the byte at startPos. */
  private seq0: Seq = 0;

  /** Metadata ranges metas[firstMeta...] partition [seq0, seq0 + length). */
  private metas: Range<M>[] = [];
  private firstMeta = 0;
  private metaCursor = 0;

  /**
   * Asked before every segment is cut, with the length the caller wants; its answer
   * caps the length (DESIGN.md decision 4: "be asked before a segment is cut"). A plugin
   * installs it; undefined means no cap.
   */
  segmentLimit: SegmentLimit | undefined;

  constructor(options: SendBufferOptions) {
    this.cap = checkCapacity(options.capacity);
    this.blockSize = max(1, options.blockSize ?? DEFAULT_BLOCK_SIZE);
  }

  /**
   * Sets the sequence number of the first data byte: ISS + 1 for a new connection
   * (RFC 9293 §3.4, the SYN takes ISS). Data already written (before the ISS was
   * known) moves with it, metadata ranges included.
   */
  start(firstSeq: Seq): void {
    firstSeq >>>= 0;
    const delta = seqDiff(firstSeq, this.seq0);
    this.seq0 = firstSeq;
    for (let k = this.firstMeta; k < this.metas.length; k++) {
      const r = this.metas[k]!;
      r.start = seqAdd(r.start, delta);
      r.end = seqAdd(r.end, delta);
    }
  }

  /** Sequence number of the first unacknowledged byte (SND.UNA for data). */
  get startSeq(): Seq {
    return this.seq0;
  }

  /** Sequence number one past the last byte written. */
  get endSeq(): Seq {
    return seqAdd(this.seq0, this.endPos - this.startPos);
  }

  /** Bytes held: written and not yet acknowledged (sent or not). */
  get length(): number {
    return this.endPos - this.startPos;
  }

  /** Bytes `write` would accept now. */
  get free(): number {
    return max(0, this.cap - (this.endPos - this.startPos));
  }

  get capacity(): number {
    return this.cap;
  }

  /** Changes the capacity (SO_SNDBUF). Shrinking below `length` keeps the data; `free` is 0 until acks catch up. */
  setCapacity(capacity: number): void {
    this.cap = checkCapacity(capacity);
  }

  /**
   * Appends up to `free` bytes of `data` (copied) with metadata `meta`; returns how
   * many were taken. Writes with the identical `meta` as the last range extend it.
   */
  write(data: Uint8Array, meta?: M): number {
    const n = min(data.length, this.free);
    if (n <= 0) return 0;
    const seqEnd = this.endSeq;
    let from = 0;
    const blocks = this.blocks;
    if (blocks.length > this.firstBlock) {
      const tail = blocks[blocks.length - 1]!;
      const room = tail.bytes.length - tail.fill;
      if (room > 0) {
        const c = min(room, n);
        tail.bytes.set(c === data.length ? data : data.subarray(0, c), tail.fill);
        tail.fill += c;
        from = c;
      }
    }
    while (from < n) {
      const rest = n - from;
      const size = max(rest, min(this.blockSize, this.cap));
      const bytes = new Uint8Array(size);
      bytes.set(from === 0 && rest === data.length ? data : data.subarray(from, n), 0);
      blocks.push({ bytes, pos: this.endPos + from, fill: rest });
      from = n;
    }
    this.endPos += n;
    // Metadata: extend the last range or open a new one.
    const metas = this.metas;
    const newEnd = seqAdd(seqEnd, n);
    if (metas.length > this.firstMeta && metas[metas.length - 1]!.meta === meta) {
      metas[metas.length - 1]!.end = newEnd;
    } else {
      metas.push({ start: seqEnd, end: newEnd, meta });
    }
    return n;
  }

  /**
   * Drops the bytes acknowledged by SEG.ACK = `upTo` (RFC 9293 §3.10.7.4: SND.UNA <
   * SEG.ACK): everything before it. Acks beyond the data (a FIN's sequence number)
   * are clamped. Returns the bytes freed.
   */
  ack(upTo: Seq): number {
    let n = seqDiff(upTo >>> 0, this.seq0);
    if (n <= 0) return 0;
    n = min(n, this.endPos - this.startPos);
    if (n === 0) return 0;
    this.startPos += n;
    this.seq0 = seqAdd(this.seq0, n);
    // Blocks wholly acknowledged go, except a tail block that still has room: later
    // writes fill it (views already handed out cover only its written part).
    const blocks = this.blocks;
    let b = this.firstBlock;
    while (b < blocks.length) {
      const blk = blocks[b]!;
      if (blk.pos + blk.fill > this.startPos) break;
      if (b === blocks.length - 1 && blk.fill < blk.bytes.length) break;
      b++;
    }
    if (b > this.firstBlock) {
      for (let k = this.firstBlock; k < b; k++) (blocks as (Block | undefined)[])[k] = undefined;
      this.firstBlock = b;
      if (b === blocks.length) {
        blocks.length = 0;
        this.firstBlock = 0;
      } else if (b >= 32 && b * 2 >= blocks.length) {
        blocks.splice(0, b);
        this.firstBlock = 0;
      }
      this.blockCursor = this.firstBlock;
    }
    // Metadata ranges wholly acknowledged go; the first one is trimmed.
    const metas = this.metas;
    let m = this.firstMeta;
    while (m < metas.length && seqLe(metas[m]!.end, this.seq0)) m++;
    if (m > this.firstMeta) {
      for (let k = this.firstMeta; k < m; k++) (metas as (Range<M> | undefined)[])[k] = undefined;
      this.firstMeta = m;
      if (m === metas.length) {
        metas.length = 0;
        this.firstMeta = 0;
      } else if (m >= 32 && m * 2 >= metas.length) {
        metas.splice(0, m);
        this.firstMeta = 0;
      }
      this.metaCursor = this.firstMeta;
    }
    if (metas.length > this.firstMeta) metas[this.firstMeta]!.start = this.seq0;
    return n;
  }

  /**
   * The bytes of a segment starting at `seq` (first transmission or retransmission):
   * at most `maxLen`, never past the end of the metadata range holding `seq`, and no
   * more than `segmentLimit` and `limit` allow. A subarray of the buffer when the
   * bytes lie in one block, else a copy. Do not modify the result; it stays valid
   * after `ack`. Empty when `seq` is outside the buffer.
   */
  read(seq: Seq, maxLen: number, limit?: SegmentLimit): Uint8Array {
    const off = seqDiff(seq >>> 0, this.seq0);
    const length = this.endPos - this.startPos;
    if (off < 0 || off >= length || !(maxLen > 0)) return EMPTY;
    let n = min(maxLen, length - off);
    // DESIGN.md decision 4: never across a metadata boundary.
    if (this.metas.length - this.firstMeta > 1) {
      const r = this.metas[this.metaIndex(off)]!;
      n = min(n, seqDiff(r.end, seq));
    }
    if (this.segmentLimit !== undefined) n = min(n, this.segmentLimit(seq, n));
    if (limit !== undefined) n = min(n, limit(seq, n));
    if (!(n > 0)) return EMPTY;
    n = n | 0;
    const pos = this.startPos + off;
    const b = this.blockIndex(pos);
    const blk = this.blocks[b]!;
    const at = pos - blk.pos;
    if (at + n <= blk.fill) return blk.bytes.subarray(at, at + n);
    // Straddles blocks: assemble a copy.
    const out = new Uint8Array(n);
    let done = blk.fill - at;
    out.set(blk.bytes.subarray(at, blk.fill), 0);
    for (let k = b + 1; done < n; k++) {
      const next = this.blocks[k]!;
      const c = min(next.fill, n - done);
      out.set(next.bytes.subarray(0, c), done);
      done += c;
    }
    return out;
  }

  /** The metadata range holding the byte at `seq`, or undefined outside the buffer. */
  metaAt(seq: Seq): MetaRange<M> | undefined {
    const off = seqDiff(seq >>> 0, this.seq0);
    if (off < 0 || off >= this.endPos - this.startPos) return undefined;
    const r = this.metas[this.metaIndex(off)]!;
    return { start: r.start, end: r.end, meta: r.meta };
  }

  /**
   * Attaches `meta` to [start, end) (clipped to the buffer), splitting the ranges it
   * cuts. Plugins map data when they schedule it (an MPTCP DSS mapping).
   */
  setMeta(start: Seq, end: Seq, meta: M | undefined): void {
    const length = this.endPos - this.startPos;
    const s = max(0, seqDiff(start >>> 0, this.seq0));
    const e = min(length, seqDiff(end >>> 0, this.seq0));
    if (e <= s) return;
    const metas = this.metas;
    const i = this.metaIndex(s);
    const j = this.metaIndex(e - 1);
    const ri = metas[i]!;
    const rj = metas[j]!;
    const startSeq = seqAdd(this.seq0, s);
    const endSeq = seqAdd(this.seq0, e);
    const pieces: Range<M>[] = [];
    if (seqLt(ri.start, startSeq)) pieces.push({ start: ri.start, end: startSeq, meta: ri.meta });
    pieces.push({ start: startSeq, end: endSeq, meta });
    if (seqGt(rj.end, endSeq)) pieces.push({ start: endSeq, end: rj.end, meta: rj.meta });
    metas.splice(i, j - i + 1, ...pieces);
    // Coalesce identical neighbours around the change: pairs from the left
    // neighbour (i - 1) up to the right neighbour (i + pieces.length).
    let k = max(this.firstMeta, i - 1);
    let stop = i + pieces.length;
    while (k < stop && k + 1 < metas.length) {
      const a = metas[k]!;
      const b = metas[k + 1]!;
      if (a.meta === b.meta) {
        a.end = b.end;
        metas.splice(k + 1, 1);
        stop--;
      } else {
        k++;
      }
    }
    this.metaCursor = this.firstMeta;
  }

  /** The metadata ranges, in sequence order (inspection and tests). */
  metaRanges(): MetaRange<M>[] {
    const out: MetaRange<M>[] = [];
    for (let k = this.firstMeta; k < this.metas.length; k++) {
      const r = this.metas[k]!;
      out.push({ start: r.start, end: r.end, meta: r.meta });
    }
    return out;
  }

  // ------------------------------------------------------------------ internals

  /** Index in `metas` of the range holding the byte `off` bytes past seq0 (in range). */
  private metaIndex(off: number): number {
    const metas = this.metas;
    const seq = seqAdd(this.seq0, off);
    const c = this.metaCursor;
    if (c >= this.firstMeta && c < metas.length) {
      const r = metas[c]!;
      if (seqGe(seq, r.start) && seqLt(seq, r.end)) return c;
      if (c + 1 < metas.length && seqLt(seq, metas[c + 1]!.end) && seqGe(seq, metas[c + 1]!.start)) {
        this.metaCursor = c + 1;
        return c + 1;
      }
    }
    let lo = this.firstMeta;
    let hi = metas.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqDiff(metas[mid]!.end, this.seq0) <= off) lo = mid + 1;
      else hi = mid;
    }
    this.metaCursor = lo;
    return lo;
  }

  /** Index in `blocks` of the block holding absolute offset `pos` (in range). */
  private blockIndex(pos: number): number {
    const blocks = this.blocks;
    const c = this.blockCursor;
    if (c >= this.firstBlock && c < blocks.length) {
      const blk = blocks[c]!;
      if (pos >= blk.pos && pos < blk.pos + blk.fill) return c;
      if (c + 1 < blocks.length && pos >= blocks[c + 1]!.pos && pos < blocks[c + 1]!.pos + blocks[c + 1]!.fill) {
        this.blockCursor = c + 1;
        return c + 1;
      }
    }
    let lo = this.firstBlock;
    let hi = blocks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const blk = blocks[mid]!;
      if (blk.pos + blk.fill <= pos) lo = mid + 1;
      else hi = mid;
    }
    this.blockCursor = lo;
    return lo;
  }
}

function checkCapacity(capacity: number): number {
  if (!Number.isInteger(capacity) || capacity < 0) {
    throw new RangeError(`send buffer capacity must be a non-negative integer, got ${capacity}`);
  }
  return capacity;
}
