/**
 * A token bucket for the ICMP errors the stack sends (RFC 1812 §4.3.2.8, RFC 4443
 * §2.4 (f): error messages must be rate-limited so they cannot be turned into a flood).
 * Defaults as Linux: 1000 per second, bursts of 50 (net.ipv4.icmp_msgs_per_sec / _burst).
 */
export class IcmpRateLimiter {
  private tokens: number;
  private lastRefill: number | undefined;

  constructor(
    readonly perSecond = 1000,
    readonly burst = 50,
  ) {
    this.tokens = burst;
  }

  /** Takes one token at time `now` (ms); false when the bucket is empty. */
  take(now: number): boolean {
    if (this.lastRefill !== undefined) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.lastRefill) * this.perSecond) / 1000);
    }
    this.lastRefill = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
