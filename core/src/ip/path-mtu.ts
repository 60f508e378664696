import type { Clock } from '../time/clock';
import { IPV6_MIN_MTU } from '../wire/ipv6';

/** RFC 791 §3.1 / RFC 1191 §3: every IPv4 host must accept 68-byte datagrams; PMTU never goes below. */
export const IPV4_MIN_PATH_MTU = 68;

/**
 * RFC 1191 §7, Table 7-1: the plateaus to try when a router's "fragmentation needed"
 * carries no next-hop MTU (a pre-RFC 1191 router sends 0), largest first.
 */
const RFC1191_PLATEAUS = [65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68] as const;

/**
 * RFC 1191 §5: the largest plateau strictly below the total length of the datagram the
 * router refused (the quoted header's total length); 68 at the bottom.
 */
export function plateauBelow(datagramLength: number): number {
  for (const p of RFC1191_PLATEAUS) if (p < datagramLength) return p;
  return IPV4_MIN_PATH_MTU;
}

export interface PathMtuOptions {
  /**
   * How long a learned PMTU lasts before the first-hop MTU is tried again: RFC 1191 §6.3
   * and RFC 8201 §5.3 suggest 10 minutes (Linux net.ipv4.route.mtu_expires, 600 s).
   */
  expiryMs?: number;
  /** Destinations remembered at most; the oldest entry goes first (forged reports cannot grow the cache). */
  maxEntries?: number;
}

interface Entry {
  mtu: number;
  expiresAt: number;
}

/**
 * The path MTU cache: per destination, the smallest MTU a validated "fragmentation
 * needed" (RFC 1191) or "packet too big" (RFC 8201) reported. Entries only ever go down
 * while they live (RFC 1191 §6.3, RFC 8201 §4: a report never raises the estimate) and
 * age out lazily on lookup, so the cache owns no timer.
 */
export class PathMtuCache {
  readonly expiryMs: number;
  readonly maxEntries: number;
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly clock: Clock,
    opts: PathMtuOptions = {},
  ) {
    this.expiryMs = opts.expiryMs ?? 10 * 60_000;
    this.maxEntries = opts.maxEntries ?? 4096;
  }

  /** The learned PMTU towards `dst`, or undefined (use the link's MTU). */
  get(dst: Uint8Array): number | undefined {
    const key = addressKey(dst);
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (this.clock.now() >= e.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    return e.mtu;
  }

  /**
   * Records `mtu` for `dst` if it is lower than what is known. IPv4 clamps at 68 (RFC
   * 791's minimum); an IPv6 report below 1280 is discarded (RFC 8201 §4: the node MUST
   * NOT go below the IPv6 minimum link MTU and MUST discard such a Packet Too Big).
   * Returns the PMTU now in force, or undefined when nothing changed.
   */
  lower(dst: Uint8Array, mtu: number, currentMtu: number): number | undefined {
    if (dst.length === 16 && mtu < IPV6_MIN_MTU) return undefined;
    const floor = dst.length === 16 ? IPV6_MIN_MTU : IPV4_MIN_PATH_MTU;
    const next = Math.max(floor, Math.floor(mtu));
    if (next >= currentMtu) return undefined;
    const key = addressKey(dst);
    this.entries.delete(key); // re-inserted last: the Map's order is the age order
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, { mtu: next, expiresAt: this.clock.now() + this.expiryMs });
    return next;
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}

function addressKey(a: Uint8Array): string {
  let k = '';
  for (let i = 0; i < a.length; i++) k += String.fromCharCode(a[i]!);
  return k;
}
