import { VirtualClock } from '../time/virtual-clock';
import { Random } from '../util/random';
import { type Fragment, FragmentReassembler, type OverlapPolicy, type ReassemblyLimits } from './fragment-reassembler';
import { shuffle } from './test-support';

const LIMITS: ReassemblyLimits = { timeoutMs: 30_000, maxDatagrams: 4, maxBytes: 200_000, maxFragmentsPerDatagram: 64 };

function setup(policy: OverlapPolicy = 'identical-bytes-allowed', limits: Partial<ReassemblyLimits> = {}) {
  const clock = new VirtualClock();
  const timeouts: (string | undefined)[] = [];
  const r = new FragmentReassembler<string>(clock, { ...LIMITS, ...limits }, policy, (first) => timeouts.push(first));
  return { clock, r, timeouts };
}

/** Cuts `data` into fragments of `size` bytes (a multiple of 8), fragment 0 carrying "first". */
function cut(data: Uint8Array, size: number, key = 'k'): Fragment<string>[] {
  const out: Fragment<string>[] = [];
  for (let at = 0; at < data.length; at += size) {
    const end = Math.min(data.length, at + size);
    out.push({
      key,
      offset: at,
      data: data.subarray(at, end),
      more: end < data.length,
      maxEnd: 65515,
      first: at === 0 ? 'first' : undefined,
    });
  }
  return out;
}

const data = new Random(1).fill(new Uint8Array(5000));

describe('FragmentReassembler (RFC 791 §3.2, RFC 815, RFC 8200 §4.5, RFC 5722)', () => {
  test.each([
    ['in order', (f: Fragment<string>[]) => f],
    ['reversed (last first: the length is known early)', (f: Fragment<string>[]) => [...f].reverse()],
    ['shuffled', (f: Fragment<string>[]) => shuffle([...f], new Random(5))],
  ])('reassembles %s', (_name, order) => {
    const { r } = setup();
    const frags = order(cut(data, 1480));
    const results = frags.map((f) => r.insert(f));
    expect(results.slice(0, -1).every((x) => x.kind === 'pending')).toBe(true);
    const last = results[results.length - 1]!;
    expect(last.kind).toBe('complete');
    if (last.kind !== 'complete') return;
    expect(Buffer.from(last.data).equals(Buffer.from(data))).toBe(true);
    expect(last.first).toBe('first');
    expect(last.fragments).toBe(4);
    expect(r.inProgress).toBe(0);
    expect(r.bytesHeld).toBe(0);
  });

  test('an exact duplicate is dropped alone and counted; the datagram still completes', () => {
    for (const policy of ['identical-bytes-allowed', 'discard-datagram'] as const) {
      const { r } = setup(policy);
      const f = cut(data, 1480);
      expect(r.insert(f[1]!).kind).toBe('pending');
      expect(r.insert(f[1]!)).toEqual({ kind: 'dropped', cause: 'fragment-duplicate' });
      for (const x of [f[0]!, f[2]!]) expect(r.insert(x).kind).toBe('pending');
      expect(r.insert(f[3]!).kind).toBe('complete');
    }
  });

  test('IPv4: an overlap carrying the same bytes fills only the gaps (RFC 791 §3.2)', () => {
    const { r } = setup('identical-bytes-allowed');
    const pieces: Fragment<string>[] = [
      { key: 'k', offset: 0, data: data.subarray(0, 1000), more: true, maxEnd: 65515, first: 'first' },
      { key: 'k', offset: 2000, data: data.subarray(2000, 3000), more: true, maxEnd: 65515 },
      // Spans both, and the gap between them.
      { key: 'k', offset: 504, data: data.subarray(504, 2504), more: true, maxEnd: 65515 },
      { key: 'k', offset: 2504, data: data.subarray(2504, 5000), more: false, maxEnd: 65515 },
    ];
    const results = pieces.map((f) => r.insert(f));
    const last = results[3]!;
    expect(last.kind).toBe('complete');
    if (last.kind === 'complete') expect(Buffer.from(last.data).equals(Buffer.from(data))).toBe(true);
  });

  test('IPv4: an overlap with different bytes discards the whole datagram, and its later fragments', () => {
    const { r, clock, timeouts } = setup('identical-bytes-allowed');
    const f = cut(data, 1480);
    r.insert(f[0]!);
    const forged = data.slice(1000, 2480);
    forged[100] ^= 0xff; // inside the overlap with fragment 0 (bytes 1000–1479)
    expect(r.insert({ key: 'k', offset: 1000, data: forged, more: true, maxEnd: 65515 })).toEqual({
      kind: 'dropped',
      cause: 'fragment-overlap',
    });
    expect(r.bytesHeld).toBe(0);
    for (const x of f.slice(1)) {
      expect(r.insert(x)).toEqual({ kind: 'dropped', cause: 'fragment-of-discarded-datagram' });
    }
    // The condemned key lives until its timer, then goes without an ICMP (nothing to report).
    clock.advance(30_000);
    expect(r.inProgress).toBe(0);
    expect(timeouts).toEqual([]);
    // A fresh datagram with the same key reassembles again.
    const results = f.map((x) => r.insert(x));
    expect(results[3]!.kind).toBe('complete');
  });

  test('IPv6 (RFC 5722 §4): any overlap, even of identical bytes, discards the datagram silently', () => {
    const { r } = setup('discard-datagram');
    r.insert({ key: 'k', offset: 0, data: data.subarray(0, 1000), more: true, maxEnd: 65515, first: 'first' });
    expect(r.insert({ key: 'k', offset: 992, data: data.subarray(992, 2000), more: true, maxEnd: 65515 })).toEqual({
      kind: 'dropped',
      cause: 'fragment-overlap',
    });
    expect(r.insert({ key: 'k', offset: 1000, data: data.subarray(1000, 5000), more: false, maxEnd: 65515 })).toEqual({
      kind: 'dropped',
      cause: 'fragment-of-discarded-datagram',
    });
  });

  test('inconsistent ends: a second, different last fragment or data past the end discards', () => {
    const { r } = setup();
    r.insert({ key: 'a', offset: 0, data: data.subarray(0, 8), more: true, maxEnd: 65515, first: 'x' });
    r.insert({ key: 'a', offset: 16, data: data.subarray(0, 8), more: false, maxEnd: 65515 });
    expect(r.insert({ key: 'a', offset: 24, data: data.subarray(0, 8), more: true, maxEnd: 65515 })).toEqual({
      kind: 'dropped',
      cause: 'fragment-inconsistent-end',
    });
    r.insert({ key: 'b', offset: 64, data: data.subarray(0, 8), more: true, maxEnd: 65515 });
    expect(r.insert({ key: 'b', offset: 8, data: data.subarray(0, 8), more: false, maxEnd: 65515 })).toEqual({
      kind: 'dropped',
      cause: 'fragment-inconsistent-end',
    });
  });

  test('malformed fragments are counted drops: non-final length not a multiple of 8, empty, past 65535', () => {
    const { r } = setup();
    const bad = (f: Partial<Fragment<string>>) =>
      r.insert({ key: 'k', offset: 0, data: data.subarray(0, 8), more: true, maxEnd: 65515, ...f });
    expect(bad({ data: data.subarray(0, 12) })).toEqual({ kind: 'dropped', cause: 'fragment-bad-length' });
    expect(bad({ data: new Uint8Array(0) })).toEqual({ kind: 'dropped', cause: 'fragment-bad-length' });
    expect(bad({ offset: 65512, more: false })).toEqual({ kind: 'dropped', cause: 'fragment-too-big' });
    expect(r.inProgress).toBe(0);
  });

  test('the largest datagram (65515 bytes of data in 45 fragments) reassembles', () => {
    const { r } = setup('identical-bytes-allowed', { maxBytes: 1 << 20 });
    const big = new Random(2).fill(new Uint8Array(65515));
    const results = cut(big, 1480).map((f) => r.insert(f));
    const last = results[results.length - 1]!;
    expect(last.kind).toBe('complete');
    if (last.kind === 'complete') expect(last.data.length).toBe(65515);
  });

  test('timeout: the datagram is abandoned after 30 s; fragment 0 present → onTimeout gets it', () => {
    const { r, clock, timeouts } = setup();
    const f = cut(data, 1480);
    r.insert(f[0]!);
    r.insert(f[2]!);
    r.insert({ ...f[1]!, key: 'other' });
    clock.advance(29_999);
    expect(r.inProgress).toBe(2);
    clock.advance(1);
    expect(r.inProgress).toBe(0);
    expect(r.bytesHeld).toBe(0);
    expect(timeouts.sort()).toEqual(['first', undefined].sort());
    expect(r.counters.timedOut).toBe(2);
    expect(clock.nextDue()).toBeUndefined();
  });

  test('limits: datagrams in progress, bytes held, fragments per datagram', () => {
    const { r } = setup('identical-bytes-allowed', { maxDatagrams: 2, maxBytes: 3000, maxFragmentsPerDatagram: 3 });
    const frag = (key: string, offset: number, len = 8) => ({
      key,
      offset,
      data: data.subarray(0, len),
      more: true,
      maxEnd: 65515,
    });
    expect(r.insert(frag('a', 8)).kind).toBe('pending');
    expect(r.insert(frag('b', 8)).kind).toBe('pending');
    expect(r.insert(frag('c', 8))).toEqual({ kind: 'dropped', cause: 'reassembly-table-full' });
    expect(r.insert(frag('a', 16, 2992))).toEqual({ kind: 'dropped', cause: 'reassembly-memory-full' });
    expect(r.insert(frag('a', 16)).kind).toBe('pending');
    expect(r.insert(frag('a', 24)).kind).toBe('pending');
    expect(r.insert(frag('a', 32))).toEqual({ kind: 'dropped', cause: 'fragment-too-many' });
  });

  test('a fragment refused for memory does not take a slot in the table', () => {
    const { r } = setup('identical-bytes-allowed', { maxDatagrams: 4, maxBytes: 1000 });
    const frag = (key: string, len: number) => ({
      key,
      offset: 0,
      data: new Uint8Array(len),
      more: true,
      maxEnd: 65515,
    });
    expect(r.insert(frag('a', 992)).kind).toBe('pending');
    for (const key of ['b', 'c', 'd']) {
      expect(r.insert(frag(key, 16))).toEqual({ kind: 'dropped', cause: 'reassembly-memory-full' });
    }
    expect(r.inProgress).toBe(1);
  });

  test('clear() cancels every timer', () => {
    const { r, clock } = setup();
    r.insert(cut(data, 1480)[1]!);
    expect(clock.nextDue()).toBeDefined();
    r.clear();
    expect(clock.nextDue()).toBeUndefined();
    expect(r.inProgress).toBe(0);
  });
});
