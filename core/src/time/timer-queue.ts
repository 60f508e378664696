/** A timer waiting in a TimerQueue. */
export interface QueuedTimer {
  readonly at: number;
  /** Insertion order: timers due at the same instant run in the order they were set. */
  readonly seq: number;
  readonly id: number;
  readonly fn: () => void;
}

/**
 * Pending timers in due order (a binary min-heap on (at, seq)), shared by both clocks:
 * the virtual clock pops them as it jumps through time; the real clock arms one Node
 * timer for the earliest and runs them in this order, so two timers never run out of
 * the order of their due times (Node's per-duration timer lists would: 19.999… ms and
 * 20.000… ms land in different lists).
 *
 * Cancelling only forgets the id; the entry leaves the heap when it reaches the top.
 */
export class TimerQueue {
  private readonly heap: QueuedTimer[] = [];
  private readonly live = new Set<number>();
  private seq = 0;
  private nextId = 1;

  /** Adds a timer due at `at`; returns its id. */
  add(at: number, fn: () => void): number {
    const id = this.nextId++;
    this.push({ at, seq: this.seq++, id, fn });
    this.live.add(id);
    return id;
  }

  cancel(id: number): void {
    this.live.delete(id);
  }

  /** Live timers. */
  get size(): number {
    return this.live.size;
  }

  /** When the earliest live timer is due, or undefined when none is. */
  nextDue(): number | undefined {
    this.dropCancelledTop();
    return this.heap.length > 0 ? this.heap[0]!.at : undefined;
  }

  /** Removes and returns the earliest live timer. */
  pop(): QueuedTimer | undefined {
    this.dropCancelledTop();
    const e = this.popTop();
    if (e !== undefined) this.live.delete(e.id);
    return e;
  }

  private dropCancelledTop(): void {
    while (this.heap.length > 0 && !this.live.has(this.heap[0]!.id)) this.popTop();
  }

  private static less(a: QueuedTimer, b: QueuedTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: QueuedTimer): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!TimerQueue.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private popTop(): QueuedTimer | undefined {
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
        if (l < h.length && TimerQueue.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && TimerQueue.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
