/**
 * Time for the stack. Nothing in tcp/, link/ or plugins/ reads wall time directly:
 * it asks a Clock (DESIGN.md decision 3). Production uses RealClock; tests and the
 * simulator use VirtualClock, which jumps from one timer to the next.
 *
 * Times are in milliseconds as floating-point numbers (sub-millisecond precision is
 * needed for serialisation delays on fast links).
 */
export type TimerHandle = { readonly id: number };

export interface Clock {
  /** Milliseconds since this clock's epoch. Monotonic, never goes backwards. */
  now(): number;
  /** Runs `fn` once, `delayMs` from now (negative delays count as 0). */
  setTimer(delayMs: number, fn: () => void): TimerHandle;
  /** Cancels a timer; cancelling one that already ran or was cancelled is a no-op. */
  cancelTimer(handle: TimerHandle): void;
}
