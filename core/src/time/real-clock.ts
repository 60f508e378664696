import type { Clock, TimerHandle } from './clock';
import { TimerQueue } from './timer-queue';

/**
 * Wall-clock time from the monotonic high-resolution timer. Timers wait in one queue
 * ordered by due time, behind a single Node timer armed for the earliest, so they run
 * in the order they are due — as on the virtual clock. (One Node timer per stack timer
 * would not: Node keeps a list per duration, and a shaper's 20 ms delays computed as
 * 19.999… and 20.000… ms land in different lists and overtake each other, reordering
 * packets on a path that should only delay them.)
 */
/** The longest delay Node's setTimeout honours (about 24.8 days). */
const MAX_NODE_DELAY_MS = 0x7fffffff;

export class RealClock implements Clock {
  private readonly origin = performance.now();
  private readonly queue = new TimerQueue();
  private timeout: NodeJS.Timeout | undefined;
  /** Due time the armed Node timeout was set for. */
  private timeoutAt = Number.POSITIVE_INFINITY;
  private immediate: NodeJS.Immediate | undefined;

  now(): number {
    return performance.now() - this.origin;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const delay = Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0;
    const id = this.queue.add(this.now() + delay, fn);
    this.arm();
    return { id };
  }

  cancelTimer(handle: TimerHandle): void {
    this.queue.cancel(handle.id);
    // Nothing left: release the Node timer so the process may exit.
    if (this.queue.size === 0) this.disarm();
  }

  /** Timers still pending: a leak check for tests. */
  get pendingTimers(): number {
    return this.queue.size;
  }

  private readonly fire = (): void => {
    this.disarm();
    // Run what is due now; timers set while running (even for 0 ms) wait for the next
    // turn of the event loop, so I/O is never starved.
    const now = this.now();
    for (let due = this.queue.nextDue(); due !== undefined && due <= now; due = this.queue.nextDue()) {
      this.queue.pop()!.fn();
    }
    this.arm();
  };

  private arm(): void {
    const due = this.queue.nextDue();
    if (due === undefined) return;
    const wait = due - this.now();
    if (wait <= 0) {
      // "Now" means the next turn of the event loop (setTimeout(0) would wait about 1 ms).
      this.immediate ??= setImmediate(this.fire);
      return;
    }
    if (this.timeout !== undefined) {
      if (this.timeoutAt <= due) return;
      clearTimeout(this.timeout);
    }
    this.timeoutAt = due;
    // Node's timers count whole milliseconds: round up so the timer is never early. Node
    // turns a delay above 2^31-1 ms into 1 ms; waking up early instead re-arms the rest.
    this.timeout = setTimeout(this.fire, Math.min(Math.ceil(wait), MAX_NODE_DELAY_MS));
  }

  private disarm(): void {
    if (this.timeout !== undefined) clearTimeout(this.timeout);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timeout = undefined;
    this.immediate = undefined;
    this.timeoutAt = Number.POSITIVE_INFINITY;
  }
}
