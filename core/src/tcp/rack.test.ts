import { Rack, type SentSegment, TransmitLog } from './rack';

/** Sequence numbers near the wrap, so the arithmetic crosses 2^32. */
const BASE = 0xffff_f000;
const at = (n: number): number => (BASE + n) >>> 0;
const MSS = 1000;

/** A log of `count` segments of MSS bytes sent at times 0, 1, 2, ... */
function logOf(count: number): TransmitLog {
  const log = new TransmitLog();
  for (let i = 0; i < count; i++) log.record(at(i * MSS), MSS, i, false);
  return log;
}

const segs = (log: TransmitLog): SentSegment[] => [...log.live()];
const sackedUpTo =
  (ranges: [number, number][]) =>
  (seq: number): number => {
    for (const [a, b] of ranges) if (((seq - at(a)) | 0) >= 0 && ((seq - at(b)) | 0) < 0) return at(b);
    return seq;
  };

describe('TransmitLog: per-segment transmissions and the pipe (RFC 8985 §6.1, RFC 6675 §4)', () => {
  test('new data adds to the pipe; a cumulative ACK removes whole and partial segments', () => {
    const log = logOf(4);
    expect(log.pipe).toBe(4 * MSS);
    const delivered: number[] = [];
    log.ack(at(1500), (s) => delivered.push(s.start));
    expect(delivered).toEqual([at(0)]);
    expect(log.pipe).toBe(2500);
    expect(segs(log)[0]!.start).toBe(at(1500));
  });

  test('SACKed segments leave the pipe and count as segs_sacked; lost ones leave it until resent, then count once', () => {
    const log = logOf(4);
    const newly: number[] = [];
    log.markSacked(sackedUpTo([[1000, 3000]]), (s) => newly.push(s.start));
    expect(newly).toEqual([at(1000), at(2000)]);
    expect(log.sackedSegments).toBe(2);
    expect(log.pipe).toBe(2 * MSS);
    const first = segs(log)[0]!;
    log.markLost(first);
    expect(log.pipe).toBe(MSS);
    expect(log.nextLost()).toBe(first);
    log.record(at(0), MSS, 10, true);
    expect(log.nextLost()).toBeUndefined();
    expect(log.pipe).toBe(2 * MSS);
    expect(first).toMatchObject({ retransmitted: true, retransInFlight: true, xmitAt: 10 });
    // Cumulatively ACKed: SACKed segments are not delivered twice.
    const delivered: number[] = [];
    log.ack(at(3000), (s) => delivered.push(s.start));
    expect(delivered).toEqual([at(0)]);
    expect(log.sackedSegments).toBe(0);
    expect(log.pipe).toBe(MSS);
  });

  test('a retransmission of part of a segment splits it; a retransmission not marked lost counts twice (RFC 6675 §4 SetPipe (b))', () => {
    const log = logOf(2);
    log.record(at(1500), 500, 5, true);
    expect(segs(log).map((s) => [s.start, s.end, s.retransmitted])).toEqual([
      [at(0), at(1000), false],
      [at(1000), at(1500), false],
      [at(1500), at(2000), true],
    ]);
    expect(log.pipe).toBe(2 * MSS + 500);
    expect(log.last?.start).toBe(at(1500));
  });

  test('an RTO marks everything lost; an undo forgets the marks', () => {
    const log = logOf(3);
    log.markAllLost();
    expect(log.pipe).toBe(0);
    log.record(at(0), MSS, 9, true);
    expect(log.pipe).toBe(MSS);
    log.clearLossMarks();
    expect(log.pipe).toBe(3 * MSS);
  });
});

describe('Rack (RFC 8985 §6.2)', () => {
  const deliver = (rack: Rack, s: SentSegment, now: number, minRtt = 10) => rack.onDelivered(s, now, minRtt, undefined);

  test('RACK_detect_loss: a segment sent before the latest delivered one is lost after RACK.rtt + reo_wnd; the timer covers the wait', () => {
    const log = logOf(3);
    const rack = new Rack();
    const [, second] = segs(log);
    log.markSacked(sackedUpTo([[1000, 2000]]), (s) => deliver(rack, s, 11));
    expect(second!.sacked).toBe(true);
    expect(rack.rtt).toBe(10);
    // Segment 0 (sent at 0) waits until 0 + 10 + reo_wnd; segment 2 was sent after the delivered one.
    expect(rack.detectLoss(log, 11, 2.5)).toEqual({ timeoutMs: 1.5, lostBytes: 0, latestLostOrder: 0 });
    expect(rack.detectLoss(log, 12.5, 2.5)).toEqual({ timeoutMs: 0, lostBytes: MSS, latestLostOrder: 1 });
    expect(segs(log)[0]!.lost).toBe(true);
    expect(log.nextLost()?.start).toBe(at(0));
  });

  test('a lost retransmission is detected again once something sent after it is delivered', () => {
    const log = logOf(3);
    const rack = new Rack();
    log.markSacked(sackedUpTo([[1000, 2000]]), (s) => deliver(rack, s, 11));
    rack.detectLoss(log, 20, 0);
    const first = segs(log)[0]!;
    log.record(at(0), MSS, 20, true); // resent at 20
    log.record(at(3000), MSS, 21, false); // new data at 21
    log.markSacked(
      sackedUpTo([
        [1000, 2000],
        [3000, 4000],
      ]),
      (s) => deliver(rack, s, 31),
    );
    expect(rack.detectLoss(log, 31, 0).lostBytes).toBe(2 * MSS); // the retransmission and segment 2
    expect(first.lost && !first.retransInFlight).toBe(true);
  });

  test('reordering: a segment delivered below RACK.fack that was never resent sets reordering_seen', () => {
    const log = logOf(3);
    const rack = new Rack();
    log.markSacked(sackedUpTo([[2000, 3000]]), (s) => deliver(rack, s, 12));
    expect(rack.reorderingSeen).toBe(false);
    log.ack(at(1000), (s) => deliver(rack, s, 13));
    expect(rack.reorderingSeen).toBe(true);
  });

  test('step 2: a retransmitted segment acknowledged for its original copy does not move RACK', () => {
    const log = logOf(1);
    const rack = new Rack();
    log.record(at(0), MSS, 50, true);
    log.ack(at(1000), (s) => rack.onDelivered(s, 52, 10, true)); // the echo predates the resend
    expect(rack.xmitAt).toBeUndefined();
    const log2 = logOf(1);
    log2.record(at(0), MSS, 50, true);
    log2.ack(at(1000), (s) => rack.onDelivered(s, 55, 10, undefined)); // 5 ms < min_RTT: the original
    expect(rack.xmitAt).toBeUndefined();
  });

  test('reo_wnd (step 4): 0 with DupThresh SACKed or in recovery before reordering is seen; else min_RTT/4, grown by D-SACK rounds, capped by SRTT', () => {
    const rack = new Rack();
    expect(rack.reoWnd(false, 2, 3, 40, 100)).toBe(10);
    expect(rack.reoWnd(false, 3, 3, 40, 100)).toBe(0);
    expect(rack.reoWnd(true, 0, 3, 40, 100)).toBe(0);
    rack.reorderingSeen = true;
    expect(rack.reoWnd(true, 5, 3, 40, 100)).toBe(10);
    // One increase per round trip: a second D-SACK before SND.UNA passes the round's SND.NXT does nothing.
    rack.onAckForReoWnd(true, at(0), at(5000));
    rack.onAckForReoWnd(true, at(1000), at(6000));
    expect(rack.reoWndMult).toBe(2);
    rack.onAckForReoWnd(true, at(5000), at(7000));
    expect(rack.reoWndMult).toBe(3);
    expect(rack.reoWnd(false, 0, 3, 40, 100)).toBe(30);
    expect(rack.reoWnd(false, 0, 3, 40, 20)).toBe(20);
    // Sixteen recoveries without a D-SACK bring the multiplier back to 1.
    for (let i = 0; i < 15; i++) rack.onRecoveryEnd();
    expect(rack.reoWndMult).toBe(3);
    rack.onRecoveryEnd();
    expect(rack.reoWndMult).toBe(1);
  });
});
