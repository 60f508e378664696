/**
 * The only error a parser in wire/ ever throws. `layer` names the protocol whose
 * bytes were bad, `reason` is a short machine-readable cause that the stack counts
 * drops by (e.g. "truncated", "bad-checksum", "bad-version").
 */
export class ParseError extends Error {
  override readonly name = 'ParseError';
  constructor(
    readonly layer: string,
    readonly reason: string,
    detail?: string,
  ) {
    // A malformed packet is routine, not a bug: skip the stack trace, which would
    // cost microseconds per dropped packet (a cheap drop resists floods of garbage).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${layer}: ${reason}${detail === undefined ? '' : ` (${detail})`}`);
    Error.stackTraceLimit = limit;
  }
}
