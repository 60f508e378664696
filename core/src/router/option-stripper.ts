/**
 * The middlebox behaviour that MPTCP (RFC 8684 §3.7 "Fallback"), TCP Fast Open and
 * every other TCP extension must survive: a box on the path that removes options it
 * does not know. Like many real middleboxes (see RFC 8684 §3.7 and Honda et al., "Is it
 * still possible to extend TCP?", IMC 2011) it overwrites each unwanted option with
 * NOPs (kind 1, RFC 9293 §3.2) rather than shortening the header, so that neither the
 * data offset nor any sequence number changes, and fixes the TCP checksum
 * incrementally (RFC 1624 eqn. 3). The incremental update keeps whatever the checksum
 * said about the rest of the segment: a segment that arrived corrupted stays
 * detectably corrupted.
 */

import { fold, sumBytes } from '../wire/checksum';
import { TcpOptionKind } from '../wire/tcp-options';

/** Returned by stripTcpOptions when the header or its option list is malformed. */
export const STRIP_MALFORMED = -1;

const TCP_HEADER_LEN = 20;
const TCP_CHECKSUM_OFFSET = 16;
/** RFC 9293 §3.1: the SYN bit in byte 13. */
const SYN = 0x02;

/** A set of option kinds as 256 flags, for a branch-free test per option. */
export function optionKindSet(kinds: Iterable<number>): Uint8Array {
  const set = new Uint8Array(256);
  for (const kind of kinds) {
    if (!Number.isInteger(kind) || kind < 0 || kind > 255)
      throw new RangeError(`TCP option kind ${kind} is not 0..255`);
    if (kind === TcpOptionKind.EOL || kind === TcpOptionKind.NOP) {
      throw new RangeError(`TCP option kind ${kind} (${kind === 0 ? 'EOL' : 'NOP'}) cannot be stripped`);
    }
    set[kind] = 1;
  }
  return set;
}

/** True if the segment (at least 14 bytes) has SYN set. */
export function isSyn(segment: Uint8Array): boolean {
  return segment.length > 13 && (segment[13]! & SYN) !== 0;
}

/**
 * Replaces, in place, every option of a kind flagged in `kinds` (see optionKindSet)
 * with NOPs and updates the TCP checksum. `segment` is the whole TCP segment (the IP
 * payload); the checksum's pseudo-header is untouched, so no address is needed.
 *
 * Returns the number of options replaced (0: the segment is unchanged), or
 * STRIP_MALFORMED, with the segment unchanged, when the header is truncated, the data
 * offset is below 5, or an option's length byte is missing, below 2 or runs past the
 * header (RFC 9293 §3.1 MUST-7: a receiver must be prepared for illegal option
 * lengths; a middlebox that guessed would corrupt the segment). The whole list is
 * checked before anything is written.
 */
export function stripTcpOptions(segment: Uint8Array, kinds: Uint8Array): number {
  if (segment.length < TCP_HEADER_LEN) return STRIP_MALFORMED;
  const headerLen = (segment[12]! >>> 4) << 2;
  if (headerLen < TCP_HEADER_LEN || headerLen > segment.length) return STRIP_MALFORMED;

  // Pass 1: validate the list and find what to strip. At most 20 options fit in 40 bytes.
  let found = 0;
  let firstStart = -1;
  let lastEnd = -1;
  let at = TCP_HEADER_LEN;
  while (at < headerLen) {
    const kind = segment[at]!;
    if (kind === TcpOptionKind.EOL) break; // RFC 9293 §3.2: the rest is padding
    if (kind === TcpOptionKind.NOP) {
      at++;
      continue;
    }
    if (at + 1 >= headerLen) return STRIP_MALFORMED;
    const length = segment[at + 1]!;
    if (length < 2 || at + length > headerLen) return STRIP_MALFORMED;
    if (kinds[kind] === 1) {
      found++;
      if (firstStart < 0) firstStart = at;
      lastEnd = at + length;
    }
    at += length;
  }
  if (found === 0) return 0;

  // Pass 2: one checksum update over the 16-bit words spanning every stripped option
  // (words are aligned to the segment's start, as the checksum sums them; the header
  // length is a multiple of 4, so the span stays inside the header).
  const spanStart = firstStart & ~1;
  const spanLen = ((lastEnd + 1) & ~1) - spanStart;
  const oldSum = fold(sumBytes(segment, spanStart, spanLen));
  at = TCP_HEADER_LEN;
  while (at < lastEnd) {
    const kind = segment[at]!;
    if (kind === TcpOptionKind.NOP) {
      at++;
      continue;
    }
    const length = segment[at + 1]!;
    if (kinds[kind] === 1) segment.fill(TcpOptionKind.NOP, at, at + length);
    at += length;
  }
  const newSum = fold(sumBytes(segment, spanStart, spanLen));
  const checksum = (segment[TCP_CHECKSUM_OFFSET]! << 8) | segment[TCP_CHECKSUM_OFFSET + 1]!;
  // RFC 1624 eqn. 3 with m and m' the sums of the span before and after: HC' = ~(~HC + ~m + m').
  const updated = ~fold((~checksum & 0xffff) + (~oldSum & 0xffff) + newSum) & 0xffff;
  segment[TCP_CHECKSUM_OFFSET] = updated >>> 8;
  segment[TCP_CHECKSUM_OFFSET + 1] = updated & 0xff;
  return found;
}
