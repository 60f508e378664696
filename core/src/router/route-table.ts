/**
 * The router's forwarding table: longest-prefix match (RFC 1812 §5.2.4.3, "Longest
 * Match"; RFC 4632 §5.1) over IPv4 and IPv6 prefixes, each naming an outgoing port.
 *
 * A router between a handful of tun interfaces has a handful of routes, so the table is
 * a list kept in order of decreasing prefix length and the first match wins. IPv4
 * entries are compared as 32-bit integers under a mask, which costs a few nanoseconds
 * per lookup; IPv6 entries compare whole bytes, then the masked last byte.
 */

import { Prefix } from '../wire/address';

export interface RouteEntry<T> {
  /** The destination prefix, host bits cleared. */
  readonly prefix: Prefix;
  readonly target: T;
}

interface V4Entry<T> {
  readonly network: number;
  readonly mask: number;
  readonly length: number;
  readonly entry: RouteEntry<T>;
}

interface V6Entry<T> {
  readonly network: Uint8Array;
  readonly length: number;
  readonly entry: RouteEntry<T>;
}

/** An IPv4 address (4 bytes from `at`) as an unsigned 32-bit integer. */
export function ipv4ToInt(bytes: Uint8Array, at = 0): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

function maskOf(length: number): number {
  return length === 0 ? 0 : (0xffffffff << (32 - length)) >>> 0;
}

export class ForwardingTable<T> {
  private readonly v4: V4Entry<T>[] = [];
  private readonly v6: V6Entry<T>[] = [];

  /**
   * Adds a route. A second route for the same prefix replaces the first (as `ip route
   * replace`): the table never holds two entries that could tie in a lookup.
   */
  add(prefix: Prefix, target: T): void {
    const network = prefix.network;
    const entry: RouteEntry<T> = { prefix: Prefix.of(network, prefix.length), target };
    if (prefix.family === 4) {
      const list = this.v4;
      const value = ipv4ToInt(network);
      const existing = list.findIndex((e) => e.length === prefix.length && e.network === value);
      const item: V4Entry<T> = { network: value, mask: maskOf(prefix.length), length: prefix.length, entry };
      if (existing >= 0) list[existing] = item;
      else insertByLength(list, item);
    } else {
      const list = this.v6;
      const existing = list.findIndex((e) => e.length === prefix.length && sameBytes(e.network, network));
      const item: V6Entry<T> = { network, length: prefix.length, entry };
      if (existing >= 0) list[existing] = item;
      else insertByLength(list, item);
    }
  }

  /** Removes the route for exactly this prefix; returns whether there was one. */
  remove(prefix: Prefix): boolean {
    const network = prefix.network;
    if (prefix.family === 4) {
      const value = ipv4ToInt(network);
      const i = this.v4.findIndex((e) => e.length === prefix.length && e.network === value);
      if (i >= 0) this.v4.splice(i, 1);
      return i >= 0;
    }
    const i = this.v6.findIndex((e) => e.length === prefix.length && sameBytes(e.network, network));
    if (i >= 0) this.v6.splice(i, 1);
    return i >= 0;
  }

  /** The most specific route for an IPv4 address given as a 32-bit unsigned integer. */
  lookupV4(address: number): T | undefined {
    const list = this.v4;
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      if ((address & e.mask) >>> 0 === e.network) return e.entry.target;
    }
    return undefined;
  }

  /** The most specific route for a 16-byte IPv6 address (from `at` in `bytes`). */
  lookupV6(bytes: Uint8Array, at = 0): T | undefined {
    const list = this.v6;
    outer: for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      const full = e.length >> 3;
      for (let b = 0; b < full; b++) if (bytes[at + b] !== e.network[b]) continue outer;
      const rest = e.length & 7;
      if (rest !== 0) {
        const mask = (0xff00 >> rest) & 0xff;
        if ((bytes[at + full]! & mask) !== e.network[full]) continue;
      }
      return e.entry.target;
    }
    return undefined;
  }

  /** The most specific route for an address of either family (4 or 16 bytes). */
  lookup(address: Uint8Array): T | undefined {
    if (address.length === 4) return this.lookupV4(ipv4ToInt(address));
    if (address.length === 16) return this.lookupV6(address);
    return undefined;
  }

  /** Every route, most specific first, IPv4 before IPv6. */
  entries(): RouteEntry<T>[] {
    return [...this.v4.map((e) => e.entry), ...this.v6.map((e) => e.entry)];
  }
}

/** Keeps `list` ordered by decreasing prefix length; equal lengths keep insertion order. */
function insertByLength<E extends { length: number }>(list: E[], item: E): void {
  let i = 0;
  while (i < list.length && list[i]!.length >= item.length) i++;
  list.splice(i, 0, item);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
