/**
 * Policy (DESIGN.md decision 2): which destinations a program's TCP sockets reach through
 * the userspace stack and which stay on the kernel, and whether plain TCP sockets are
 * upgraded to MPTCP. Two layers apply together:
 *
 * - per application: `nuse run --kernel PREFIX --only PREFIX --mptcp`, which the shim
 *   reads from its environment (NUSE_KERNEL, NUSE_ONLY, NUSE_MPTCP) and sends in its
 *   `hello`;
 * - system-wide: the daemon's config (`"policy": { "kernel": [...], "only": [...],
 *   "mptcp": false }`) or its `--kernel`/`--only`/`--mptcp` flags.
 *
 * The backend of a socket is fixed at socket() (it is always the shim's unix stream); a
 * destination the policy keeps on the kernel is served by the daemon through an ordinary
 * kernel socket, as loopback always is.
 */

import { Prefix } from '../wire/address';

export interface Policy {
  /** Destinations (and local addresses for bind) served through kernel sockets; loopback always is. */
  kernel: Prefix[];
  /** When set, only these destinations go to the userspace stack; every other one stays on the kernel. */
  only: Prefix[] | undefined;
  /** Plain TCP sockets become IPPROTO_MPTCP. */
  mptcp: boolean;
}

export const EMPTY_POLICY: Policy = Object.freeze({ kernel: [], only: undefined, mptcp: false }) as Policy;

/** The most prefixes one list may hold (the shim's hello carries them in one frame). */
export const MAX_PREFIXES = 64;

/**
 * Parses one prefix: `ADDR/LEN`, or a bare address (a host: /32 or /128). Throws an
 * Error whose message says what is wrong.
 */
export function parsePrefix(text: string): Prefix {
  const t = text.trim();
  try {
    return Prefix.parse(t.includes('/') ? t : `${t}/${t.includes(':') ? 128 : 32}`);
  } catch {
    throw new Error(`"${text}" is not a prefix (ADDR/LEN, e.g. 10.0.0.0/8 or fd00::/8)`);
  }
}

/** Parses a list of prefixes separated by commas or white space (the environment's form). */
export function parsePrefixList(text: string): Prefix[] {
  const parts = text.split(/[,\s]+/).filter((p) => p !== '');
  if (parts.length > MAX_PREFIXES) throw new Error(`more than ${MAX_PREFIXES} prefixes`);
  return parts.map(parsePrefix);
}

function isLoopback(a: Uint8Array): boolean {
  if (a.length === 4) return a[0] === 127;
  return a.every((b, i) => (i === 15 ? b === 1 : b === 0));
}

/**
 * Whether the policies keep `address` on the kernel: loopback always; an address in any
 * layer's `kernel` prefixes; an address outside a layer's `only` prefixes.
 */
export function keptOnKernel(address: Uint8Array, ...layers: Policy[]): boolean {
  if (isLoopback(address)) return true;
  for (const p of layers) {
    if (p.kernel.some((k) => k.contains(address))) return true;
    if (p.only !== undefined && !p.only.some((k) => k.contains(address))) return true;
  }
  return false;
}

/** A policy as log fields. */
export function describePolicy(p: Policy): Record<string, unknown> {
  return {
    kernel: p.kernel.map(String).join(',') || undefined,
    only: p.only?.map(String).join(','),
    mptcp: p.mptcp || undefined,
  };
}
