/**
 * Seeded pseudo-random numbers (xoshiro128**, seeded through splitmix32).
 * Every random choice in the stack and the simulator comes from one of these, so a
 * run is reproducible from its seed. Not for cryptography: ISNs and MPTCP keys use
 * node:crypto.
 */
// Module-level copies: under jest's vm sandbox every global lookup (Math) costs ~170 ns,
// and these run per simulated packet.
const { imul, floor, sqrt, log, cos, min, PI } = Math;

export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number | string = 1) {
    let s = typeof seed === 'number' ? seed >>> 0 : hashString(seed);
    const next = (): number => {
      // splitmix32: spreads a small seed over the whole 128-bit state.
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = imul(z ^ (z >>> 16), 0x85ebca6b);
      z = imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1;
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  u32(): number {
    const result = imul(rotl(imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** A float uniformly distributed in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** An integer uniformly distributed in [0, n). */
  int(n: number): number {
    return floor(this.float() * n);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  /** A normally distributed value (Box–Muller). */
  normal(mean = 0, stddev = 1): number {
    let u = 0;
    while (u === 0) u = this.float();
    const v = this.float();
    return mean + stddev * sqrt(-2 * log(u)) * cos(2 * PI * v);
  }

  /** Fills `buf` with random bytes. */
  fill(buf: Uint8Array): Uint8Array {
    for (let i = 0; i < buf.length; i += 4) {
      let x = this.u32();
      for (let j = i; j < min(i + 4, buf.length); j++) {
        buf[j] = x & 0xff;
        x >>>= 8;
      }
    }
    return buf;
  }

  /** An independent generator derived from this one and a label (e.g. one per link direction). */
  fork(label: string): Random {
    return new Random((this.u32() ^ hashString(label)) >>> 0);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** FNV-1a over UTF-16 code units: turns a string seed or label into 32 bits. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = imul(h, 0x01000193);
  }
  return h >>> 0;
}
