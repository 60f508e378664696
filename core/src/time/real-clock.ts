import type { Clock, TimerHandle } from './clock';

type NodeTimer = { immediate: true; t: NodeJS.Immediate } | { immediate: false; t: NodeJS.Timeout };

/** Wall-clock time from the monotonic high-resolution timer and Node's own timers. */
export class RealClock implements Clock {
  private readonly origin = performance.now();
  private nextId = 1;
  private readonly timers = new Map<number, NodeTimer>();

  now(): number {
    return performance.now() - this.origin;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const id = this.nextId++;
    const run = (): void => {
      this.timers.delete(id);
      fn();
    };
    // setTimeout(0) waits about a millisecond; "now" means the next event-loop turn.
    this.timers.set(
      id,
      delayMs > 0 ? { immediate: false, t: setTimeout(run, delayMs) } : { immediate: true, t: setImmediate(run) },
    );
    return { id };
  }

  cancelTimer(handle: TimerHandle): void {
    const timer = this.timers.get(handle.id);
    if (timer === undefined) return;
    if (timer.immediate) clearImmediate(timer.t);
    else clearTimeout(timer.t);
    this.timers.delete(handle.id);
  }

  /** Timers still pending: a leak check for tests. */
  get pendingTimers(): number {
    return this.timers.size;
  }
}
