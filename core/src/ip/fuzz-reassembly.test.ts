/**
 * Property tests for reassembly, from one fixed seed (change SEED to explore; a failure
 * names the seed and the case, so it replays exactly).
 *
 * 1. Valid fragment sets (random sizes, any order, duplicates, overlaps of identical
 *    bytes for IPv4) always reassemble to exactly the original data.
 * 2. Random fragment sets (random offsets, lengths, flags, conflicting bytes) never
 *    throw; whatever completes is consistent with the fragments given.
 * 3. Through the IP layer: fragments of real IPv4/IPv6 packets, shuffled, duplicated and
 *    mutated byte by byte, never make `input` throw; unmutated ones are delivered intact.
 */

import { WireEnd } from '../link/sim-link';
import { VirtualClock } from '../time/virtual-clock';
import { Random } from '../util/random';
import { parseIp } from '../wire/address';
import { IpProtocol } from '../wire/ip-protocol';
import { Ipv4View } from '../wire/ipv4';
import { type Fragment, FragmentReassembler, type OverlapPolicy } from './fragment-reassembler';
import { IpLayer } from './ip-layer';
import { fragmentIpv4 } from './ipv4-fragments';
import { shuffle } from './test-support';

const SEED = 0x66726167;

function reassembler(policy: OverlapPolicy, clock = new VirtualClock()) {
  return new FragmentReassembler<number>(
    clock,
    { timeoutMs: 30_000, maxDatagrams: 1000, maxBytes: 1 << 24, maxFragmentsPerDatagram: 10_000 },
    policy,
    () => {},
  );
}

/** Cuts `length` bytes into random pieces (multiples of 8 but the last), then adds duplicates and overlaps. */
function validSet(rng: Random, data: Uint8Array, key: string, policy: OverlapPolicy): Fragment<number>[] {
  const frags: Fragment<number>[] = [];
  for (let at = 0; at < data.length; ) {
    const len = Math.min(data.length - at, 8 * (1 + rng.int(200)));
    const end = at + len;
    frags.push({ key, offset: at, data: data.subarray(at, end), more: end < data.length, maxEnd: 65515, first: 1 });
    at = end;
  }
  const extra: Fragment<number>[] = [];
  for (const f of frags) if (rng.chance(0.2)) extra.push({ ...f }); // exact duplicates: allowed by both policies
  if (policy === 'identical-bytes-allowed') {
    // Overlapping fragments carrying the same bytes (RFC 791 allows them).
    for (let i = 0; i < 3; i++) {
      const offset = 8 * rng.int(Math.floor(data.length / 8));
      const len = Math.min(data.length - offset, 8 * (1 + rng.int(100)));
      const end = offset + len;
      if (len === 0) continue;
      // Ending before the datagram's end, it must be a multiple of 8 long to be well formed.
      if (end < data.length && len % 8 !== 0) continue;
      extra.push({ key, offset, data: data.subarray(offset, end), more: end < data.length, maxEnd: 65515, first: 1 });
    }
  }
  return shuffle([...frags, ...extra], rng);
}

describe(`reassembly property tests (seed 0x${SEED.toString(16)})`, () => {
  test.each(['identical-bytes-allowed', 'discard-datagram'] as const)(
    '%s: 2000 valid sets in random order, with duplicates, reassemble exactly',
    (policy) => {
      const rng = new Random(SEED);
      const r = reassembler(policy);
      for (let n = 0; n < 2000; n++) {
        const size = 1 + rng.int(rng.chance(0.1) ? 65515 : 8000);
        const data = rng.fill(new Uint8Array(size));
        const key = `d${n}`;
        const set = validSet(rng, data, key, policy);
        if (set.every((f) => f.offset === 0 && !f.more)) continue; // one piece: not a fragment
        let completions = 0;
        for (const f of set) {
          const result = r.insert(f);
          // Duplicates arriving after completion may form the datagram again, as duplicated packets do.
          if (result.kind !== 'complete') continue;
          completions++;
          if (!Buffer.from(result.data).equals(Buffer.from(data))) throw new Error(`case ${n}: wrong bytes`);
        }
        if (completions === 0) throw new Error(`case ${n} (${size} bytes, ${set.length} fragments): did not complete`);
        r.clear();
      }
    },
  );

  test.each(['identical-bytes-allowed', 'discard-datagram'] as const)(
    '%s: 20000 random fragments never throw, and anything completed agrees with its fragments',
    (policy) => {
      const rng = new Random(SEED + 1);
      const clock = new VirtualClock();
      const r = reassembler(policy, clock);
      const given = new Map<string, Fragment<number>[]>();
      for (let n = 0; n < 20_000; n++) {
        const key = `k${rng.int(8)}`;
        const offset = rng.chance(0.5) ? 8 * rng.int(64) : rng.int(70_000);
        const len = rng.chance(0.1) ? 0 : rng.int(700);
        const f: Fragment<number> = {
          key,
          offset,
          data: rng.fill(new Uint8Array(len)).map((b) => b & 1), // few distinct bytes: identical overlaps happen
          more: rng.chance(0.7),
          maxEnd: 65515,
          first: offset === 0 ? 1 : undefined,
        };
        const list = given.get(key) ?? [];
        list.push(f);
        given.set(key, list);
        const result = r.insert(f);
        if (result.kind === 'complete') {
          // Every byte equals what some fragment put there, and the fragments cover it all.
          const covered = new Uint8Array(result.data.length);
          for (const g of list) {
            for (let i = 0; i < g.data.length; i++) {
              const at = g.offset + i;
              if (at >= result.data.length) continue;
              if (result.data[at] === g.data[i]) covered[at] = 1;
            }
          }
          if (!covered.every((c) => c === 1)) throw new Error(`case ${n}: completed bytes no fragment gave`);
          given.delete(key);
        }
        if (rng.chance(0.01)) {
          clock.advance(30_000);
          given.clear();
        }
        expect(r.bytesHeld).toBeLessThanOrEqual(1 << 24);
      }
    },
  );

  test('through the IP layer: shuffled, duplicated, mutated fragments never throw; clean ones arrive', () => {
    const rng = new Random(SEED + 2);
    const clock = new VirtualClock();
    const [ours, peer] = WireEnd.pair(clock, 65535, ['ours', 'peer']);
    const ip = new IpLayer(clock);
    ip.addInterface(ours, '10.0.0.2/24');
    const [ours6] = WireEnd.pair(clock, 65535, ['ours6', 'peer6']);
    ip.addInterface(ours6, 'fd00::2/64');
    const delivered: Uint8Array[] = [];
    ip.registerProtocol(IpProtocol.UDP, (p) => delivered.push(p.payload.slice()));
    const input = (packet: Uint8Array): void =>
      (ip as unknown as { input(p: Uint8Array, i: unknown): void }).input(packet, ip.interfaces[0]);
    let clean = 0;
    for (let n = 0; n < 600; n++) {
      const size = 100 + rng.int(9000);
      const body = rng.fill(new Uint8Array(size));
      const v6 = rng.chance(0.3);
      const packet = v6 ? ipv6Fragments(body, n, rng) : ipv4Fragments(body, n, rng);
      const mutate = rng.chance(0.5);
      const set = shuffle([...packet, ...packet.filter(() => rng.chance(0.1))], rng).map((p) => {
        if (!mutate) return p;
        const m = p.slice();
        for (let k = 0; k < 3; k++) m[rng.int(m.length)] = rng.int(256);
        return m;
      });
      const before = delivered.length;
      for (const p of set) expect(() => input(p)).not.toThrow();
      if (!mutate) {
        clean++;
        // Delivered (twice when a duplicated set formed the datagram again), intact.
        if (delivered.length === before) throw new Error(`case ${n} v6=${v6}: ${JSON.stringify(ip.drops)}`);
        for (const d of delivered.slice(before)) expect(Buffer.from(d).equals(Buffer.from(body))).toBe(true);
      }
      if (rng.chance(0.05)) clock.advance(60_000);
    }
    expect(clean).toBeGreaterThan(200);
    ip.close();
    expect(peer).toBeDefined();
  });
});

/** An IPv4 UDP-protocol datagram carrying `body`, cut by our own fragmenter at a random MTU. */
function ipv4Fragments(body: Uint8Array, id: number, rng: Random): Uint8Array[] {
  const total = 20 + body.length;
  const packet = new Uint8Array(total);
  packet.set([0x45, 0, total >> 8, total & 0xff, id >> 8, id & 0xff, 0, 0, 64, IpProtocol.UDP, 0, 0]);
  packet.set(parseIp('10.0.0.1'), 12);
  packet.set(parseIp('10.0.0.2'), 16);
  packet.set(body, 20);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (packet[i]! << 8) | packet[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  packet[10] = c >> 8;
  packet[11] = c & 0xff;
  // At most ~60 fragments: within the default per-datagram bound.
  const minMtu = 20 + 8 * Math.ceil(body.length / 60 / 8);
  return fragmentIpv4(Ipv4View.parse(packet), Math.max(68, minMtu) + rng.int(3000))!;
}

/** An IPv6 packet carrying `body` as UDP-protocol data, cut into fragments of random size (RFC 8200 §4.5). */
function ipv6Fragments(body: Uint8Array, id: number, rng: Random): Uint8Array[] {
  const out: Uint8Array[] = [];
  const size = 8 * Math.ceil(body.length / 60 / 8) + 8 * rng.int(200);
  for (let at = 0; at < body.length; at += size) {
    const end = Math.min(body.length, at + size);
    const more = end < body.length;
    const p = new Uint8Array(48 + end - at);
    const payloadLen = 8 + end - at;
    p.set([0x60, 0, 0, 0, payloadLen >> 8, payloadLen & 0xff, IpProtocol.IPV6_FRAGMENT, 64]);
    p.set(parseIp('fd00::1'), 8);
    p.set(parseIp('fd00::2'), 24);
    p.set([IpProtocol.UDP, 0, at >> 8, (at & 0xf8) | (more ? 1 : 0), 0, 0, id >> 8, id & 0xff], 40);
    p.set(body.subarray(at, end), 48);
    out.push(p);
  }
  return out;
}
