import type { Clock, TimerHandle } from './clock';

interface Entry {
  at: number;
  /** Insertion order: timers due at the same instant run in the order they were set. */
  seq: number;
  id: number;
  fn: () => void;
}

/**
 * A clock that only moves when told to, jumping straight to the next due timer.
 * Timers due at the same time run in the order they were set, so a run is a pure
 * function of its inputs and seeds: same seed, same run, every time.
 */
export class VirtualClock implements Clock {
  private time: number;
  private seq = 0;
  private nextId = 1;
  private readonly heap: Entry[] = [];
  /** Ids of live timers; a cancelled timer stays in the heap and is skipped when popped. */
  private readonly live = new Set<number>();

  constructor(startMs = 0) {
    this.time = startMs;
  }

  now(): number {
    return this.time;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const delay = Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0;
    const id = this.nextId++;
    this.push({ at: this.time + delay, seq: this.seq++, id, fn });
    this.live.add(id);
    return { id };
  }

  cancelTimer(handle: TimerHandle): void {
    this.live.delete(handle.id);
  }

  /** Timers still pending. */
  get pendingTimers(): number {
    return this.live.size;
  }

  /** When the next live timer is due, or undefined when none is pending. */
  nextDue(): number | undefined {
    this.dropCancelledTop();
    return this.heap.length > 0 ? this.heap[0]!.at : undefined;
  }

  /** Runs the next due timer, advancing time to it. Returns false when none is pending. */
  step(): boolean {
    this.dropCancelledTop();
    const e = this.pop();
    if (e === undefined) return false;
    this.live.delete(e.id);
    if (e.at > this.time) this.time = e.at;
    e.fn();
    return true;
  }

  /** Runs every timer due at or before `t`, then sets the time to `t`. */
  runUntil(t: number): void {
    for (;;) {
      const due = this.nextDue();
      if (due === undefined || due > t) break;
      this.step();
    }
    if (t > this.time) this.time = t;
  }

  /** Advances virtual time by `ms`, running every timer due on the way. */
  advance(ms: number): void {
    this.runUntil(this.time + ms);
  }

  /**
   * Runs timers until none is left or `done()` says stop. Throws if more than
   * `maxEvents` timers run: a livelock in a test should fail, not hang.
   */
  runUntilIdle(opts: { maxEvents?: number; done?: () => boolean; until?: number } = {}): number {
    const max = opts.maxEvents ?? 10_000_000;
    let n = 0;
    while (!(opts.done?.() ?? false)) {
      const due = this.nextDue();
      if (due === undefined) break;
      if (opts.until !== undefined && due > opts.until) {
        this.time = Math.max(this.time, opts.until);
        break;
      }
      if (n++ >= max) throw new Error(`VirtualClock: more than ${max} events without going idle`);
      this.step();
    }
    return n;
  }

  private dropCancelledTop(): void {
    while (this.heap.length > 0 && !this.live.has(this.heap[0]!.id)) this.pop();
  }

  private less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): Entry | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
