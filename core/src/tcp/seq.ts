/**
 * TCP sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4; RFC 1982 serial
 * arithmetic). Sequence numbers are plain unsigned 32-bit numbers; never compare
 * them with a raw `<`: use these, which are right across the wrap.
 *
 * `a` is "before" `b` when the signed 32-bit distance from a to b is positive, which
 * holds while the two are less than 2^31 apart (always true for live TCP windows).
 */
export type Seq = number;

/** a + n, wrapped to 32 bits. `n` may be negative. */
export function seqAdd(a: Seq, n: number): Seq {
  return (a + n) >>> 0;
}

/** The signed distance from `a` to `b` (b - a), in (-2^31, 2^31]. */
export function seqDiff(b: Seq, a: Seq): number {
  return (b - a) | 0;
}

/** a < b in sequence space. */
export function seqLt(a: Seq, b: Seq): boolean {
  return ((a - b) | 0) < 0;
}

/** a <= b in sequence space. */
export function seqLe(a: Seq, b: Seq): boolean {
  return ((a - b) | 0) <= 0;
}

/** a > b in sequence space. */
export function seqGt(a: Seq, b: Seq): boolean {
  return ((a - b) | 0) > 0;
}

/** a >= b in sequence space. */
export function seqGe(a: Seq, b: Seq): boolean {
  return ((a - b) | 0) >= 0;
}

/** The later of a and b. */
export function seqMax(a: Seq, b: Seq): Seq {
  return seqGe(a, b) ? a : b;
}

/** The earlier of a and b. */
export function seqMin(a: Seq, b: Seq): Seq {
  return seqLe(a, b) ? a : b;
}

/** lo <= x < hi in sequence space: the test RFC 9293 §3.4 uses for acceptability. */
export function seqInRange(x: Seq, lo: Seq, hi: Seq): boolean {
  return seqLe(lo, x) && seqLt(x, hi);
}
