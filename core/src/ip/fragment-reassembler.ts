import type { Clock, TimerHandle } from '../time/clock';

/**
 * What an overlap between two fragments of one datagram does.
 *
 * - `identical-bytes-allowed` (IPv4): RFC 791 §3.2 lets a receiver fill overlapping
 *   fragments in any order; overlapping bytes that agree are kept once, bytes that
 *   disagree (an evasion or corruption) discard the whole datagram.
 * - `discard-datagram` (IPv6): RFC 5722 §4 / RFC 8200 §4.5: any overlap discards the
 *   datagram and every later fragment of it; only an exact duplicate (same offset,
 *   same bytes) is dropped alone.
 */
export type OverlapPolicy = 'identical-bytes-allowed' | 'discard-datagram';

export interface ReassemblyLimits {
  /** Time from the first fragment to abandoning the datagram (RFC 791 §3.2 timer; RFC 8200 §4.5: 60 s). */
  timeoutMs: number;
  /** Datagrams in progress at once; a fragment starting one more is a counted drop. */
  maxDatagrams: number;
  /** Fragment payload bytes held across all datagrams in progress; excess is a counted drop. */
  maxBytes: number;
  /** Fragments one datagram may have (a CPU bound against 8-byte fragment floods). */
  maxFragmentsPerDatagram: number;
}

/** One fragment, as the family-specific code decoded it. */
export interface Fragment<First> {
  /** The identity of the datagram: (src, dst, protocol, id) for IPv4, (src, dst, id) for IPv6. */
  key: string;
  /** Where the data sits in the datagram's fragmentable part, in bytes. */
  offset: number;
  data: Uint8Array;
  /** The More Fragments flag. */
  more: boolean;
  /** The largest end (offset + length) the datagram may reach (the 65535-byte length fields). */
  maxEnd: number;
  /** What the family keeps from fragment 0 (headers to rebuild the datagram, a quote for ICMP). */
  first?: First;
}

export type ReassemblyResult<First> =
  | { kind: 'complete'; data: Uint8Array; first: First; fragments: number }
  | { kind: 'pending' }
  | { kind: 'dropped'; cause: ReassemblyDropCause };

/** Why a fragment went nowhere; counted by the IP layer as `ipv4-<cause>` / `ipv6-<cause>`. */
export type ReassemblyDropCause =
  | 'fragment-bad-length'
  | 'fragment-too-big'
  | 'fragment-duplicate'
  | 'fragment-overlap'
  | 'fragment-inconsistent-end'
  | 'fragment-of-discarded-datagram'
  | 'fragment-too-many'
  | 'reassembly-table-full'
  | 'reassembly-memory-full';

interface Piece {
  offset: number;
  data: Uint8Array;
}

interface Datagram<First> {
  key: string;
  /** Disjoint, sorted by offset. */
  pieces: Piece[];
  /** Bytes covered (the pieces are disjoint, so complete when this equals totalLength). */
  covered: number;
  fragments: number;
  /** Known once the last fragment (MF clear) arrived. */
  totalLength: number | undefined;
  first: First | undefined;
  /** An overlap or inconsistency condemned it: later fragments are dropped until the timer ends it. */
  discarded: boolean;
  timer: TimerHandle;
}

/**
 * Reassembles fragmented datagrams (RFC 791 §3.2, RFC 815, RFC 8200 §4.5) for either
 * family: a table keyed by datagram identity, disjoint pieces per datagram (RFC 815's
 * hole list, as sorted pieces), a timer per datagram from its first fragment, and
 * bounds on datagrams, bytes and fragments. Malformed or excess input is a drop with a
 * cause; nothing here throws on packet contents.
 */
export class FragmentReassembler<First> {
  private readonly datagrams = new Map<string, Datagram<First>>();
  private heldBytes = 0;
  readonly counters = { reassembled: 0, timedOut: 0 };

  constructor(
    private readonly clock: Clock,
    readonly limits: ReassemblyLimits,
    private readonly policy: OverlapPolicy,
    /** A datagram's timer ran out; `first` is set when fragment 0 had arrived (RFC 792 / RFC 8200 §4.5 ICMP). */
    private readonly onTimeout: (first: First | undefined) => void,
  ) {}

  /** Datagrams in progress (discarded ones waiting out their timer included). */
  get inProgress(): number {
    return this.datagrams.size;
  }

  /** Fragment bytes held. */
  get bytesHeld(): number {
    return this.heldBytes;
  }

  insert(f: Fragment<First>): ReassemblyResult<First> {
    const end = f.offset + f.data.length;
    // RFC 791 §3.2 / RFC 8200 §4.5: every fragment but the last carries a multiple of 8 bytes (and some).
    if (f.more && (f.data.length === 0 || f.data.length % 8 !== 0)) return dropped('fragment-bad-length');
    if (end > f.maxEnd) return dropped('fragment-too-big');
    let d = this.datagrams.get(f.key);
    if (d?.discarded) return dropped('fragment-of-discarded-datagram');
    // Checked before a new datagram takes a slot: a refused fragment must not hold one.
    if (this.heldBytes + f.data.length > this.limits.maxBytes) return dropped('reassembly-memory-full');
    if (d === undefined) {
      if (this.datagrams.size >= this.limits.maxDatagrams) return dropped('reassembly-table-full');
      d = this.start(f.key);
    }
    if (d.fragments >= this.limits.maxFragmentsPerDatagram) return this.discard(d, 'fragment-too-many');
    // The last fragment fixes the length; a fragment past it, or a second different end, is inconsistent.
    if (!f.more) {
      if (d.totalLength !== undefined && d.totalLength !== end) return this.discard(d, 'fragment-inconsistent-end');
      const last = d.pieces[d.pieces.length - 1];
      if (last !== undefined && last.offset + last.data.length > end) {
        return this.discard(d, 'fragment-inconsistent-end');
      }
    } else if (d.totalLength !== undefined && end > d.totalLength) {
      return this.discard(d, 'fragment-inconsistent-end');
    }
    const added = this.place(d, f.offset, f.data);
    if (added === 'conflict') return this.discard(d, 'fragment-overlap');
    if (added === 'duplicate') return dropped('fragment-duplicate');
    if (!f.more) d.totalLength = end;
    if (f.offset === 0 && f.first !== undefined) d.first = f.first;
    d.fragments++;
    if (d.totalLength === undefined || d.covered !== d.totalLength || d.first === undefined) return { kind: 'pending' };
    return this.complete(d);
  }

  /** Forgets every datagram in progress and cancels their timers (stack shutdown). */
  clear(): void {
    for (const d of this.datagrams.values()) this.clock.cancelTimer(d.timer);
    this.datagrams.clear();
    this.heldBytes = 0;
  }

  private start(key: string): Datagram<First> {
    const d: Datagram<First> = {
      key,
      pieces: [],
      covered: 0,
      fragments: 0,
      totalLength: undefined,
      first: undefined,
      discarded: false,
      timer: this.clock.setTimer(this.limits.timeoutMs, () => this.expire(key)),
    };
    this.datagrams.set(key, d);
    return d;
  }

  private expire(key: string): void {
    const d = this.datagrams.get(key);
    if (d === undefined) return;
    this.datagrams.delete(key);
    this.release(d);
    if (d.discarded) return;
    this.counters.timedOut++;
    this.onTimeout(d.first);
  }

  /**
   * Adds [offset, offset + data.length) to the datagram's pieces. Returns how many new
   * bytes it covered, 'duplicate' when it brought none, or 'conflict' for an overlap the
   * policy forbids.
   */
  private place(d: Datagram<First>, offset: number, data: Uint8Array): number | 'duplicate' | 'conflict' {
    const end = offset + data.length;
    const pieces = d.pieces;
    // The first piece that ends after `offset`: the only ones that can overlap follow it.
    let i = 0;
    while (i < pieces.length && pieces[i]!.offset + pieces[i]!.data.length <= offset) i++;
    const firstOverlapping = i;
    let overlaps = false;
    for (let j = i; j < pieces.length && pieces[j]!.offset < end; j++) {
      overlaps = true;
      const p = pieces[j]!;
      if (this.policy === 'discard-datagram') {
        // RFC 8200 §4.5: an exact duplicate may be dropped alone; anything else overlapping discards.
        return p.offset === offset && p.data.length === data.length && sameBytes(p.data, 0, data, 0, data.length)
          ? 'duplicate'
          : 'conflict';
      }
      const from = Math.max(offset, p.offset);
      const to = Math.min(end, p.offset + p.data.length);
      if (!sameBytes(p.data, from - p.offset, data, from - offset, to - from)) return 'conflict';
    }
    if (!overlaps) {
      pieces.splice(firstOverlapping, 0, { offset, data: data.slice() });
      this.account(d, data.length);
      return data.length;
    }
    // Identical overlap: keep only the gaps this fragment fills.
    const gaps: Piece[] = [];
    let at = offset;
    let j = firstOverlapping;
    for (; j < pieces.length && pieces[j]!.offset < end; j++) {
      const p = pieces[j]!;
      if (p.offset > at) gaps.push({ offset: at, data: data.slice(at - offset, p.offset - offset) });
      at = Math.max(at, p.offset + p.data.length);
    }
    if (at < end) gaps.push({ offset: at, data: data.slice(at - offset) });
    if (gaps.length === 0) return 'duplicate';
    let added = 0;
    for (const g of gaps) added += g.data.length;
    pieces.push(...gaps);
    pieces.sort((a, b) => a.offset - b.offset);
    this.account(d, added);
    return added;
  }

  private account(d: Datagram<First>, bytes: number): void {
    d.covered += bytes;
    this.heldBytes += bytes;
  }

  private release(d: Datagram<First>): void {
    this.heldBytes -= d.covered;
    d.covered = 0;
    d.pieces = [];
  }

  /** Condemns the datagram: its bytes are freed now, its key stays until the timer so later fragments die too. */
  private discard(d: Datagram<First>, cause: ReassemblyDropCause): ReassemblyResult<First> {
    this.release(d);
    d.discarded = true;
    d.first = undefined;
    return dropped(cause);
  }

  private complete(d: Datagram<First>): ReassemblyResult<First> {
    const data = new Uint8Array(d.totalLength!);
    for (const p of d.pieces) data.set(p.data, p.offset);
    this.clock.cancelTimer(d.timer);
    this.datagrams.delete(d.key);
    this.release(d);
    this.counters.reassembled++;
    return { kind: 'complete', data, first: d.first!, fragments: d.fragments };
  }
}

function dropped<First>(cause: ReassemblyDropCause): ReassemblyResult<First> {
  return { kind: 'dropped', cause };
}

function sameBytes(a: Uint8Array, aAt: number, b: Uint8Array, bAt: number, length: number): boolean {
  for (let k = 0; k < length; k++) if (a[aAt + k] !== b[bAt + k]) return false;
  return true;
}
