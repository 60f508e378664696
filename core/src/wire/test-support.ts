/**
 * Helpers shared by the codec tests (not part of the public API).
 */
import { ParseError } from './parse-error';

/** Bytes from hex text; whitespace and line breaks are ignored. */
export function hex(text: string): Uint8Array {
  return Uint8Array.from(text.match(/[0-9a-f]{2}/gi) ?? [], (pair) => Number.parseInt(pair, 16));
}

/** RFC 1071 §4.1 word by word, folding as it goes: an independent reference checksum. */
export function naiveChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += (bytes[i]! << 8) | (i + 1 < bytes.length ? bytes[i + 1]! : 0);
    if (sum > 0xffff) sum = (sum & 0xffff) + 1;
  }
  return ~sum & 0xffff;
}

/** Asserts that `run` throws a ParseError of `layer` with `reason`, and nothing else. */
export function expectParseErrorOf(layer: string, run: () => unknown, reason: string): void {
  let error: unknown;
  try {
    run();
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(ParseError);
  expect(error).toMatchObject({ layer, reason });
}
