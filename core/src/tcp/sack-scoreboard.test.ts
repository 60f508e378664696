import { Random } from '../util/random';
import type { SackBlock } from '../wire/tcp-options';
import { SackScoreboard } from './sack-scoreboard';
import { seqAdd } from './seq';

const SMSS = 1000;

/** Blocks as [left, right] offsets from `origin`. */
function blocksAt(origin: number, ...pairs: [number, number][]): SackBlock[] {
  return pairs.map(([l, r]) => ({ left: seqAdd(origin, l), right: seqAdd(origin, r) }));
}

function setup(origin = 0, opts?: { dupThresh?: number; maxRanges?: number }) {
  const sb = new SackScoreboard(opts);
  const at = (off: number) => seqAdd(origin, off);
  /** update with offsets: una, blocks, nxt. */
  const sack = (una: number, nxt: number, ...pairs: [number, number][]) => {
    const r = sb.update(at(una), blocksAt(origin, ...pairs), at(nxt));
    return { newlySacked: r.newlySacked, dsack: r.dsack };
  };
  const ranges = () => sb.sackedRanges().map((b) => [(b.left - origin) | 0, (b.right - origin) | 0]);
  return { sb, at, sack, ranges };
}

describe('SackScoreboard: update', () => {
  test('blocks mark bytes SACKed; overlapping blocks count once', () => {
    const { sb, sack, ranges, at } = setup();
    expect(sack(0, 10_000, [2000, 3000])).toEqual({ newlySacked: 1000, dsack: false });
    expect(sack(0, 10_000, [4000, 5000], [2000, 3000])).toEqual({ newlySacked: 1000, dsack: false });
    expect(sack(0, 10_000, [2500, 4500], [2000, 4000])).toEqual({ newlySacked: 1000, dsack: false });
    expect(ranges()).toEqual([[2000, 5000]]);
    expect(sb.sackedBytes).toBe(3000);
    expect(sb.highestSacked).toBe(at(5000));
    expect(sb.isSacked(at(1999))).toBe(false);
    expect(sb.isSacked(at(2000))).toBe(true);
    expect(sb.isSacked(at(4999))).toBe(true);
    expect(sb.isSacked(at(5000))).toBe(false);
  });

  test('repeated blocks add nothing', () => {
    const { sb, sack } = setup();
    sack(0, 10_000, [1000, 2000]);
    expect(sack(0, 10_000, [1000, 2000])).toEqual({ newlySacked: 0, dsack: false });
    expect(sb.sackedBytes).toBe(1000);
  });

  test('adjacent blocks merge into one range', () => {
    const { sack, ranges } = setup();
    sack(0, 10_000, [1000, 2000]);
    sack(0, 10_000, [3000, 4000]);
    sack(0, 10_000, [2000, 3000]);
    expect(ranges()).toEqual([[1000, 4000]]);
  });

  test('state below SND.UNA is dropped as it advances', () => {
    const { sb, sack, ranges } = setup();
    sack(0, 10_000, [1000, 2000], [3000, 4000]);
    expect(sack(1500, 10_000)).toEqual({ newlySacked: 0, dsack: false });
    expect(ranges()).toEqual([
      [1500, 2000],
      [3000, 4000],
    ]);
    expect(sb.sackedBytes).toBe(1500);
    sb.setPipe(3500, 10_000, SMSS); // any call with SND.UNA trims
    expect(ranges()).toEqual([[3500, 4000]]);
    expect(sb.sackedBytes).toBe(500);
    sb.ack(4500);
    expect(sb.sackedBytes).toBe(0);
    sb.ack(4000); // older: ignored
    sack(5000, 10_000);
    expect(ranges()).toEqual([]);
    expect(sb.sackedBytes).toBe(0);
    expect(sb.highestSacked).toBe(5000);
  });

  test('an older SND.UNA does not bring state back', () => {
    const { sb, sack } = setup();
    sack(2000, 10_000, [3000, 4000]);
    sack(1000, 10_000, [1500, 1800]); // a reordered, older ACK
    expect(sb.sackedBytes).toBe(1000);
    expect(sb.isSacked(1500)).toBe(false);
  });
});

describe('SackScoreboard: hostile and malformed blocks are ignored', () => {
  const cases: [string, [number, number]][] = [
    ['empty (left = right)', [3000, 3000]],
    ['reversed (left > right)', [4000, 3000]],
    ['beyond SND.NXT', [9000, 10_001]],
    ['entirely beyond SND.NXT', [20_000, 30_000]],
    ['starting below SND.UNA (not first)', [500, 3000]],
    ['half the sequence space away', [0x80000000, 0x80001000]],
    ['spanning the whole space', [2000, 1999]],
  ];
  test.each(cases)('%s', (_name, bad) => {
    const { sb, sack } = setup(0xfffff000);
    // Placed second so that the D-SACK rule for the first block does not apply.
    expect(sack(1000, 10_000, [6000, 7000], bad)).toEqual({ newlySacked: 1000, dsack: false });
    expect(sb.sackedBytes).toBe(1000);
    expect(sb.sackedRanges()).toHaveLength(1);
  });

  test('a block ending exactly at SND.NXT and one starting at SND.UNA are fine', () => {
    const { sb, sack } = setup();
    expect(sack(1000, 10_000, [9000, 10_000], [1000, 1500])).toEqual({ newlySacked: 1500, dsack: false });
    expect(sb.sackedBytes).toBe(1500);
  });

  test('too many discontiguous ranges: new ones are ignored, merges still work', () => {
    const { sb, sack } = setup(0, { maxRanges: 2 });
    sack(0, 10_000, [1000, 1100], [2000, 2100]);
    expect(sack(0, 10_000, [3000, 3100])).toEqual({ newlySacked: 0, dsack: false });
    expect(sack(0, 10_000, [1100, 1200])).toEqual({ newlySacked: 100, dsack: false });
    expect(sb.sackedRanges()).toHaveLength(2);
  });
});

describe('SackScoreboard: D-SACK (RFC 2883 §4)', () => {
  test('first block below the cumulative ACK', () => {
    const { sb, sack } = setup();
    // RFC 2883 §4.1.1: a duplicate of already-acknowledged data.
    expect(sack(4000, 10_000, [3000, 3500])).toEqual({ newlySacked: 0, dsack: true });
    expect(sb.sackedBytes).toBe(0);
  });

  test('first block below the ACK, followed by ordinary blocks', () => {
    const { sb, sack } = setup();
    expect(sack(4000, 10_000, [3000, 3500], [5000, 6000])).toEqual({ newlySacked: 1000, dsack: true });
    expect(sb.sackedBytes).toBe(1000);
  });

  test('first block contained in the second', () => {
    const { sb, sack } = setup();
    // RFC 2883 §4.1.2: a duplicate of out-of-order data already SACKed.
    sack(1000, 10_000, [4000, 6000]);
    expect(sack(1000, 10_000, [5000, 5500], [4000, 6000])).toEqual({ newlySacked: 0, dsack: true });
    expect(sb.sackedBytes).toBe(2000);
  });

  test('first block merely overlapping the second is an ordinary SACK', () => {
    const { sack } = setup();
    expect(sack(1000, 10_000, [3000, 5000], [4000, 6000])).toEqual({ newlySacked: 3000, dsack: false });
  });

  test('a "D-SACK" from half the sequence space away is not one', () => {
    const { sack } = setup(0x10);
    expect(sack(1000, 10_000, [-0x50000000, -0x4fff0000])).toEqual({ newlySacked: 0, dsack: false });
  });

  test('D-SACK below SND.UNA across the wrap', () => {
    const { sack } = setup(0xfffffe00);
    expect(sack(0x300, 0x1000, [0x100, 0x280])).toEqual({ newlySacked: 0, dsack: true });
  });
});

describe('SackScoreboard: IsLost (RFC 6675 §4)', () => {
  test('DupThresh discontiguous SACKed ranges above make a byte lost', () => {
    const { sb, sack, at } = setup();
    sack(0, 20_000, [1000, 1100], [2000, 2100]);
    expect(sb.isLost(at(0), SMSS)).toBe(false);
    sack(0, 20_000, [3000, 3100]);
    expect(sb.isLost(at(0), SMSS)).toBe(true);
    expect(sb.isLost(at(999), SMSS)).toBe(true);
    expect(sb.isLost(at(1100), SMSS)).toBe(false); // only two ranges above
    expect(sb.isLost(at(1050), SMSS)).toBe(false); // SACKed itself
  });

  test('more than (DupThresh - 1) * SMSS SACKed bytes above make a byte lost', () => {
    const { sb, sack, at } = setup();
    sack(0, 20_000, [1000, 3000]); // exactly 2 * SMSS: not more
    expect(sb.isLost(at(0), SMSS)).toBe(false);
    sack(0, 20_000, [3000, 3001]);
    expect(sb.isLost(at(0), SMSS)).toBe(true);
    // Bytes above the queried byte only.
    expect(sb.isLost(at(3001), SMSS)).toBe(false);
  });

  test('three full segments SACKed after a loss (the classic fast retransmit)', () => {
    const { sb, sack, at } = setup();
    sack(0, 5000, [1000, 2000]);
    expect(sb.isLost(at(0), SMSS)).toBe(false);
    sack(0, 5000, [1000, 3000]);
    expect(sb.isLost(at(0), SMSS)).toBe(false);
    sack(0, 5000, [1000, 4000]);
    expect(sb.isLost(at(0), SMSS)).toBe(true);
  });

  test('DupThresh is configurable', () => {
    const { sb, sack, at } = setup(0, { dupThresh: 2 });
    sack(0, 20_000, [1000, 1100], [2000, 2100]);
    expect(sb.isLost(at(0), SMSS)).toBe(true);
    expect(sb.isLost(at(1500), SMSS)).toBe(false);
    expect(() => new SackScoreboard({ dupThresh: 0 })).toThrow(RangeError);
  });

  test('across the wrap', () => {
    const { sb, sack, at } = setup(0xfffffc00);
    sack(0, 8000, [1000, 2000], [2500, 2600], [3000, 3100]);
    expect(sb.isLost(at(500), SMSS)).toBe(true);
    expect(sb.isLost(at(2200), SMSS)).toBe(false);
  });
});

describe('SackScoreboard: SetPipe (RFC 6675 §4)', () => {
  test('no SACK: everything outstanding is in the pipe', () => {
    const { sb } = setup();
    expect(sb.setPipe(1000, 6000, SMSS)).toBe(5000);
    expect(sb.setPipe(6000, 6000, SMSS)).toBe(0);
  });

  test('lost holes leave the pipe, SACKed bytes are out, holes not lost stay', () => {
    const { sb, sack, at } = setup();
    // Ten 1000-byte segments 0..9 sent; 0 and 1 acked; 2 and 4 lost; the rest SACKed.
    sack(2000, 10_000, [3000, 4000], [5000, 10_000]);
    // [2000,3000): 2 ranges, 6000 bytes above: lost. [4000,5000): 5000 bytes above: lost.
    expect(sb.setPipe(at(2000), at(10_000), SMSS)).toBe(0);
    // Two new segments beyond the highest SACK: not lost, in flight.
    expect(sb.setPipe(at(2000), at(12_000), SMSS)).toBe(2000);
    // Retransmitting segment 2 puts it back in the pipe (step (b)).
    sb.markRetransmitted(at(2000), 1000);
    expect(sb.setPipe(at(2000), at(12_000), SMSS)).toBe(3000);
    sb.markRetransmitted(at(4000), 1000);
    expect(sb.setPipe(at(2000), at(12_000), SMSS)).toBe(4000);
    // Segment 2 arrives: SND.UNA jumps to 4000.
    expect(sb.setPipe(at(4000), at(12_000), SMSS)).toBe(3000);
  });

  test('a hole that is not lost counts once, twice when retransmitted', () => {
    const { sb, sack } = setup();
    sack(2000, 10_000, [3000, 4000]);
    // [2000,3000): one range, 1000 bytes above: not lost. [4000,10000): not lost.
    expect(sb.setPipe(2000, 10_000, SMSS)).toBe(1000 + 6000);
    sb.markRetransmitted(2000, 500);
    expect(sb.setPipe(2000, 10_000, SMSS)).toBe(1000 + 6000 + 500);
  });

  test('retransmitted bytes that were later SACKed are not in the pipe', () => {
    const { sb, sack } = setup();
    sack(0, 10_000, [2000, 5000]);
    sb.markRetransmitted(0, 3000); // runs under the SACKed range
    // Hole [0,2000): 3000 bytes above: lost, so only (b) counts: 2000. [5000,10000): 5000.
    expect(sb.setPipe(0, 10_000, SMSS)).toBe(2000 + 5000);
  });

  test('across the wrap', () => {
    const { sb, sack, at } = setup(0xffffff00);
    sack(0, 10_000, [1000, 4001]);
    sb.markRetransmitted(at(0), 1000);
    expect(sb.setPipe(at(0), at(10_000), SMSS)).toBe(1000 + 5999);
  });
});

describe('SackScoreboard: NextSeg (RFC 6675 §4)', () => {
  const seg = (r: { seq: number; len: number; rule: number } | undefined) =>
    r && { seq: r.seq, len: r.len, rule: r.rule };

  test('rule 1: the first lost hole, one SMSS at a time, never into SACKed data', () => {
    const { sb, sack } = setup();
    sack(0, 20_000, [2500, 6000], [7000, 8000]);
    // Hole [0,2500): 2 ranges, 4500 bytes above: lost.
    expect(seg(sb.nextSeg(0, 20_000, SMSS, true))).toEqual({ seq: 0, len: 1000, rule: 1 });
    sb.markRetransmitted(0, 1000);
    expect(seg(sb.nextSeg(0, 20_000, SMSS, true))).toEqual({ seq: 1000, len: 1000, rule: 1 });
    sb.markRetransmitted(1000, 1000);
    expect(seg(sb.nextSeg(0, 20_000, SMSS, true))).toEqual({ seq: 2000, len: 500, rule: 1 });
    sb.markRetransmitted(2000, 500);
    expect(sb.highRxt).toBe(2500);
    // Hole [6000,7000): 1000 bytes above, one range: not lost. Rule 2 next.
    expect(seg(sb.nextSeg(0, 20_000, SMSS, true))).toEqual({ seq: 20_000, len: 1000, rule: 2 });
    // Rule 3 when no new data may be sent: unSACKed above HighRxt, below the highest SACK.
    expect(seg(sb.nextSeg(0, 20_000, SMSS, false))).toEqual({ seq: 6000, len: 1000, rule: 3 });
    sb.markRetransmitted(6000, 1000);
    expect(sb.nextSeg(0, 20_000, SMSS, false)).toBeUndefined();
  });

  test('rule 1 skips retransmitted bytes that run under SACKed data into the next hole', () => {
    const { sb, sack } = setup();
    sack(0, 30_000, [1000, 2000], [3000, 4000], [5000, 6000], [7000, 9000]);
    sb.markRetransmitted(0, 3500); // [0, 3500): holes [0,1000) and [2000,3000) done
    expect(seg(sb.nextLostHole(0, 30_000, SMSS))).toEqual({ seq: 4000, len: 1000, rule: 1 });
    sb.markRetransmitted(4000, 200);
    expect(seg(sb.nextLostHole(0, 30_000, SMSS))).toEqual({ seq: 4200, len: 800, rule: 1 });
  });

  test('rule 1 stops before a retransmitted range inside the hole', () => {
    const { sb, sack } = setup();
    sack(0, 30_000, [5000, 9000]);
    sb.markRetransmitted(500, 100);
    expect(seg(sb.nextLostHole(0, 30_000, SMSS))).toEqual({ seq: 0, len: 500, rule: 1 });
    sb.markRetransmitted(0, 500);
    expect(seg(sb.nextLostHole(0, 30_000, SMSS))).toEqual({ seq: 600, len: 1000, rule: 1 });
  });

  test('rule 1 repairs a hole below HighRxt that became lost later (per-range marks)', () => {
    const { sb, sack } = setup();
    sack(0, 30_000, [1000, 2000], [3000, 4000], [5000, 6000]);
    // [2000,3000) is above 2 ranges, 2000 bytes: not lost; [0,1000) is lost.
    expect(seg(sb.nextLostHole(0, 30_000, SMSS))).toEqual({ seq: 0, len: 1000, rule: 1 });
    sb.markRetransmitted(0, 1000);
    sb.markRetransmitted(4000, 1000); // rule 3 sent something higher: HighRxt = 5000
    expect(sb.nextLostHole(0, 30_000, SMSS)).toBeUndefined();
    sack(0, 30_000, [7000, 8000]);
    expect(seg(sb.nextLostHole(0, 30_000, SMSS))).toEqual({ seq: 2000, len: 1000, rule: 1 });
  });

  test('nothing SACKed: no lost hole; rule 2 only', () => {
    const { sb } = setup();
    expect(sb.nextLostHole(0, 5000, SMSS)).toBeUndefined();
    expect(sb.nextSeg(0, 5000, SMSS, false)).toBeUndefined();
    expect(seg(sb.nextSeg(0, 5000, SMSS, true))).toEqual({ seq: 5000, len: 1000, rule: 2 });
  });

  test('across the wrap', () => {
    const { sb, sack, at } = setup(0xfffffa00);
    sack(0, 30_000, [2000, 6000]);
    expect(seg(sb.nextLostHole(at(0), at(30_000), SMSS))).toEqual({ seq: at(0), len: 1000, rule: 1 });
    sb.markRetransmitted(at(0), 1000);
    expect(seg(sb.nextLostHole(at(0), at(30_000), SMSS))).toEqual({ seq: at(1000), len: 1000, rule: 1 });
  });
});

describe('SackScoreboard: retransmission marks, clear and reset', () => {
  test('marks below SND.UNA are dropped; HighRxt never below SND.UNA', () => {
    const { sb } = setup();
    sb.update(0, [], 10_000);
    expect(sb.highRxt).toBe(0);
    sb.markRetransmitted(1000, 2000);
    expect(sb.highRxt).toBe(3000);
    expect(sb.isRetransmitted(2999)).toBe(true);
    sb.update(2000, [], 10_000);
    expect(sb.retransmittedRanges()).toEqual([{ left: 2000, right: 3000 }]);
    sb.update(5000, [], 10_000);
    expect(sb.retransmittedBytes).toBe(0);
    expect(sb.highRxt).toBe(5000);
    sb.markRetransmitted(4000, 500); // entirely acknowledged already
    expect(sb.retransmittedBytes).toBe(0);
  });

  test('clear() keeps SACK information but forgets retransmissions (after an RTO)', () => {
    const { sb, sack } = setup();
    sack(0, 10_000, [2000, 3000]);
    sb.markRetransmitted(0, 1000);
    sb.clear();
    expect(sb.sackedBytes).toBe(1000);
    expect(sb.retransmittedBytes).toBe(0);
    expect(sb.highRxt).toBe(0);
    expect(sb.nextUnsacked(2500)).toBe(3000);
    expect(sb.unsackedRun(0, 5000)).toBe(2000);
    expect(sb.unsackedRun(2000, 5000)).toBe(0);
    expect(sb.unsackedRun(3000, 5000)).toBe(5000);
  });

  test('reset() forgets everything', () => {
    const { sb, sack } = setup();
    sack(0, 10_000, [2000, 3000]);
    sb.markRetransmitted(0, 1000);
    sb.reset();
    expect(sb.sackedBytes).toBe(0);
    expect(sb.hasSacked).toBe(false);
    expect(sb.retransmittedBytes).toBe(0);
    sb.update(50_000, [{ left: 51_000, right: 52_000 }], 60_000);
    expect(sb.sackedBytes).toBe(1000);
    expect(sb.highestSacked).toBe(52_000);
  });
});

describe('SackScoreboard: property (against a per-byte model of RFC 6675)', () => {
  test.each([1, 2, 3, 4, 5, 6])('random blocks, acks and retransmissions (seed %i)', (seed) => {
    const rand = new Random(seed);
    const origin = seed % 2 === 0 ? 0xffffffff - rand.int(3000) : rand.u32();
    const span = 3000;
    const smss = 50 + rand.int(150);
    const dupThresh = 1 + rand.int(4);
    const sb = new SackScoreboard({ dupThresh });
    const sackedM = new Uint8Array(span);
    const rexmitM = new Uint8Array(span);
    let una = 0;
    let nxt = 500;
    let highSacked = -1;
    const isLostM = (s: number) => {
      if (sackedM[s]) return false;
      let runs = 0;
      let bytes = 0;
      for (let q = s + 1; q < nxt; q++) {
        if (sackedM[q]) {
          bytes++;
          if (!sackedM[q - 1]) runs++;
        }
      }
      return runs >= dupThresh || bytes > (dupThresh - 1) * smss;
    };
    for (let step = 0; step < 300; step++) {
      const action = rand.int(10);
      if (action < 5) {
        const blocks: SackBlock[] = [];
        const nb = 1 + rand.int(4);
        for (let k = 0; k < nb; k++) {
          const l = una - 100 + rand.int(nxt - una + 200);
          const len = rand.int(300) - 20;
          blocks.push({ left: seqAdd(origin, l), right: seqAdd(origin, l + len) });
        }
        const before = sackedM.reduce((a, b) => a + b, 0);
        const r = sb.update(seqAdd(origin, una), blocks, seqAdd(origin, nxt));
        // Model: the same validity rules.
        blocks.forEach((b, k) => {
          const l = (b.left - origin) | 0;
          const rr = (b.right - origin) | 0;
          if (!(l < rr) || rr > nxt) return;
          if (k === 0) {
            if (l < una) return;
            if (blocks.length > 1) {
              const l2 = (blocks[1]!.left - origin) | 0;
              const r2 = (blocks[1]!.right - origin) | 0;
              if (l2 < r2 && r2 <= nxt && l2 <= l && rr <= r2) return;
            }
          }
          if (l < una) return;
          for (let q = l; q < rr; q++) sackedM[q] = 1;
          highSacked = Math.max(highSacked, rr);
        });
        const after = sackedM.reduce((a, b) => a + b, 0);
        expect(r.newlySacked).toBe(after - before);
      } else if (action < 7) {
        const s = una + rand.int(nxt - una);
        const len = 1 + rand.int(smss);
        sb.markRetransmitted(seqAdd(origin, s), len);
        for (let q = s; q < s + len && q < span; q++) rexmitM[q] = 1;
      } else if (action < 8 && nxt < span - 300) {
        nxt += rand.int(300);
      } else if (action < 9) {
        const newUna = Math.min(nxt, una + rand.int(200));
        for (let q = una; q < newUna; q++) {
          sackedM[q] = 0;
          rexmitM[q] = 0;
        }
        una = newUna;
        sb.update(seqAdd(origin, una), [], seqAdd(origin, nxt));
      }
      // Compare everything with the model.
      let sackedBytes = 0;
      let pipe = 0;
      let firstLost = -1;
      for (let q = una; q < nxt; q++) {
        if (sackedM[q]) {
          sackedBytes++;
          continue;
        }
        const lost = isLostM(q);
        if (!lost) pipe++;
        if (rexmitM[q]) pipe++;
        if (firstLost < 0 && lost && !rexmitM[q] && q < highSacked) firstLost = q;
      }
      expect(sb.sackedBytes).toBe(sackedBytes);
      expect(sb.setPipe(seqAdd(origin, una), seqAdd(origin, nxt), smss)).toBe(pipe);
      const probe = una + rand.int(nxt - una + 1);
      expect(sb.isLost(seqAdd(origin, probe), smss)).toBe(probe < nxt ? isLostM(probe) : false);
      expect(sb.isSacked(seqAdd(origin, probe))).toBe(sackedM[probe] === 1);
      const hole = sb.nextLostHole(seqAdd(origin, una), seqAdd(origin, nxt), smss);
      if (firstLost < 0) {
        expect(hole).toBeUndefined();
      } else {
        expect(hole && (hole.seq - origin) | 0).toBe(firstLost);
        // The length never runs into SACKed or retransmitted bytes.
        let clean = true;
        for (let q = firstLost; q < firstLost + hole!.len; q++) if (sackedM[q] || rexmitM[q]) clean = false;
        expect(clean).toBe(true);
        expect(hole!.len).toBeLessThanOrEqual(smss);
      }
    }
  });
});
