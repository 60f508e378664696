/**
 * IP addresses as bytes: a Uint8Array of 4 (IPv4) or 16 (IPv6) bytes in network order,
 * the form every repr in wire/ uses. Text forms follow RFC 4291 §2.2 on input and
 * RFC 5952 on output; bad text throws ParseError('address', …).
 */

import { ParseError } from './parse-error';

export const IPV4_ADDRESS_LEN = 4;
export const IPV6_ADDRESS_LEN = 16;

const DECIMAL_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/**
 * Parses dotted-quad text ("192.0.2.1"). Exactly four decimal parts of 0–255; leading
 * zeros are refused because some parsers read them as octal (inet_aton), so "010.0.0.1"
 * means different addresses to different programs.
 */
export function parseIpv4(text: string): Uint8Array {
  const address = tryParseIpv4(text);
  if (address === undefined) throw new ParseError('address', 'bad-ipv4', JSON.stringify(text));
  return address;
}

function tryParseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const address = new Uint8Array(IPV4_ADDRESS_LEN);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!DECIMAL_OCTET.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    address[i] = value;
  }
  return address;
}

export function formatIpv4(address: Uint8Array): string {
  checkLength(address, IPV4_ADDRESS_LEN);
  return `${address[0]}.${address[1]}.${address[2]}.${address[3]}`;
}

/**
 * Parses any RFC 4291 §2.2 text form: eight groups of 1–4 hex digits, one "::" standing
 * for one or more zero groups, and an optional dotted quad in the last 32 bits
 * ("::ffff:192.0.2.1"). Zone identifiers ("fe80::1%eth0", RFC 4007) are not addresses
 * and are refused.
 */
export function parseIpv6(text: string): Uint8Array {
  const address = tryParseIpv6(text);
  if (address === undefined) throw new ParseError('address', 'bad-ipv6', JSON.stringify(text));
  return address;
}

function tryParseIpv6(text: string): Uint8Array | undefined {
  const gap = text.indexOf('::');
  if (gap !== text.lastIndexOf('::')) return undefined; // at most one "::" (also refuses ":::")
  const hasGap = gap >= 0;
  const head = hasGap ? splitGroups(text.slice(0, gap)) : splitGroups(text);
  const tail = hasGap ? splitGroups(text.slice(gap + 2)) : [];
  if (head === undefined || tail === undefined) return undefined;

  // A dotted quad may only be the last thing in the text (RFC 4291 §2.2 form 3).
  const last = hasGap ? tail : head;
  let embeddedIpv4: Uint8Array | undefined;
  if (last.length > 0 && last[last.length - 1]!.includes('.')) {
    embeddedIpv4 = tryParseIpv4(last.pop()!);
    if (embeddedIpv4 === undefined) return undefined;
  }

  const explicitWords = head.length + tail.length + (embeddedIpv4 === undefined ? 0 : 2);
  if (hasGap ? explicitWords > 7 : explicitWords !== 8) return undefined;

  const address = new Uint8Array(IPV6_ADDRESS_LEN);
  if (!writeGroups(head, address, 0)) return undefined;
  const tailStart = 16 - 2 * (tail.length + (embeddedIpv4 === undefined ? 0 : 2));
  if (!writeGroups(tail, address, tailStart)) return undefined;
  if (embeddedIpv4 !== undefined) address.set(embeddedIpv4, 12);
  return address;
}

/** "" → no groups; an empty group anywhere else (":1", "1::2:", "1:") is malformed. */
function splitGroups(text: string): string[] | undefined {
  if (text === '') return [];
  const groups = text.split(':');
  return groups.includes('') ? undefined : groups;
}

function writeGroups(groups: readonly string[], address: Uint8Array, offset: number): boolean {
  for (const group of groups) {
    if (!HEX_GROUP.test(group)) return false;
    const word = Number.parseInt(group, 16);
    address[offset] = word >> 8;
    address[offset + 1] = word & 0xff;
    offset += 2;
  }
  return true;
}

/**
 * The RFC 5952 canonical text: lower-case hex without leading zeros (§4.1, §4.3), the
 * longest run of two or more zero groups shortened to "::", the first such run on a tie
 * (§4.2), and IPv4-mapped addresses with a dotted quad (§5).
 */
export function formatIpv6(address: Uint8Array): string {
  checkLength(address, IPV6_ADDRESS_LEN);
  if (isIpv4Mapped(address)) return `::ffff:${formatIpv4(address.subarray(12))}`;

  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((address[i]! << 8) | address[i + 1]!);

  let bestStart = -1;
  let bestLength = 1; // §4.2.2: a single zero group is never shortened
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let end = i;
    while (end < 8 && words[end] === 0) end++;
    if (end - i > bestLength) {
      bestStart = i;
      bestLength = end - i;
    }
    i = end;
  }

  const hex = (from: number, to: number): string =>
    words
      .slice(from, to)
      .map((word) => word.toString(16))
      .join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/** ::ffff:0:0/96 (RFC 4291 §2.5.5.2). */
export function isIpv4Mapped(address: Uint8Array): boolean {
  if (address.length !== IPV6_ADDRESS_LEN) return false;
  for (let i = 0; i < 10; i++) if (address[i] !== 0) return false;
  return address[10] === 0xff && address[11] === 0xff;
}

/** Parses either family: text with a colon is IPv6. */
export function parseIp(text: string): Uint8Array {
  return text.includes(':') ? parseIpv6(text) : parseIpv4(text);
}

/** Formats either family, chosen by the address length. */
export function formatIp(address: Uint8Array): string {
  return address.length === IPV4_ADDRESS_LEN ? formatIpv4(address) : formatIpv6(address);
}

export function addressEquals(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function checkLength(address: Uint8Array, expected: number): void {
  if (address.length !== expected) {
    throw new RangeError(`expected a ${expected}-byte address, got ${address.length} bytes`);
  }
}

const PREFIX_LENGTH = /^(0|[1-9][0-9]{0,2})$/;

/**
 * An address with a prefix length ("192.0.2.7/24", "2001:db8::/32"; RFC 4632 §3.1,
 * RFC 4291 §2.3). The address is kept as written, host bits included, so one Prefix
 * can name both an interface address and its on-link subnet; `network` clears them.
 */
export class Prefix {
  private constructor(
    readonly address: Uint8Array,
    readonly length: number,
  ) {}

  static parse(text: string): Prefix {
    const slash = text.indexOf('/');
    const lengthText = text.slice(slash + 1);
    if (slash < 0 || !PREFIX_LENGTH.test(lengthText)) {
      throw new ParseError('address', 'bad-prefix', JSON.stringify(text));
    }
    const address = parseIp(text.slice(0, slash));
    const length = Number(lengthText);
    if (length > address.length * 8) throw new ParseError('address', 'bad-prefix', JSON.stringify(text));
    return new Prefix(address, length);
  }

  /** A prefix from bytes; the address is copied. */
  static of(address: Uint8Array, length: number): Prefix {
    if (address.length !== IPV4_ADDRESS_LEN && address.length !== IPV6_ADDRESS_LEN) {
      throw new RangeError(`an address is 4 or 16 bytes, got ${address.length}`);
    }
    if (!Number.isInteger(length) || length < 0 || length > address.length * 8) {
      throw new RangeError(`bad prefix length ${length} for a ${address.length}-byte address`);
    }
    return new Prefix(address.slice(), length);
  }

  get family(): 4 | 6 {
    return this.address.length === IPV4_ADDRESS_LEN ? 4 : 6;
  }

  /** The address with its host bits cleared. */
  get network(): Uint8Array {
    const network = this.address.slice();
    for (let i = 0; i < network.length; i++) network[i] = network[i]! & maskByte(this.length, i);
    return network;
  }

  /** True if `address` is of the same family and its first `length` bits match. */
  contains(address: Uint8Array): boolean {
    if (address.length !== this.address.length) return false;
    const fullBytes = this.length >> 3;
    for (let i = 0; i < fullBytes; i++) if (address[i] !== this.address[i]) return false;
    const mask = maskByte(this.length, fullBytes);
    return mask === 0 || (address[fullBytes]! & mask) === (this.address[fullBytes]! & mask);
  }

  toString(): string {
    return `${formatIp(this.address)}/${this.length}`;
  }
}

/** The netmask byte at index `i` for a prefix of `length` bits. */
function maskByte(length: number, i: number): number {
  const bits = Math.min(8, Math.max(0, length - 8 * i));
  return (0xff00 >> bits) & 0xff;
}
