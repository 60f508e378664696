import type { Clock, TimerHandle } from './clock';
import { TimerQueue } from './timer-queue';

/**
 * A clock that only moves when told to, jumping straight to the next due timer.
 * Timers due at the same time run in the order they were set, so a run is a pure
 * function of its inputs and seeds: same seed, same run, every time.
 */
export class VirtualClock implements Clock {
  private time: number;
  private readonly queue = new TimerQueue();

  constructor(startMs = 0) {
    this.time = startMs;
  }

  now(): number {
    return this.time;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const delay = Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0;
    return { id: this.queue.add(this.time + delay, fn) };
  }

  cancelTimer(handle: TimerHandle): void {
    this.queue.cancel(handle.id);
  }

  /** Timers still pending. */
  get pendingTimers(): number {
    return this.queue.size;
  }

  /** When the next live timer is due, or undefined when none is pending. */
  nextDue(): number | undefined {
    return this.queue.nextDue();
  }

  /** Runs the next due timer, advancing time to it. Returns false when none is pending. */
  step(): boolean {
    const e = this.queue.pop();
    if (e === undefined) return false;
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
}
