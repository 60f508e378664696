import { RttEstimator } from './rtt';

describe('RttEstimator (RFC 6298)', () => {
  test('§2.1: before any sample, RTO is the initial 1 s and SRTT/RTTVAR are unset', () => {
    const r = new RttEstimator();
    expect(r.rtoMs).toBe(1000);
    expect(r.srttMs).toBeUndefined();
    expect(r.rttvarMs).toBeUndefined();
    expect(r.minRttMs).toBeUndefined();
    expect(r.latestRttMs).toBeUndefined();
    expect(r.hasSample).toBe(false);
    expect(r.backoffCount).toBe(0);
  });

  test('§2.2: the first sample sets SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4*RTTVAR)', () => {
    const r = new RttEstimator();
    r.sample(100);
    expect(r.hasSample).toBe(true);
    expect(r.srttMs).toBe(100);
    expect(r.rttvarMs).toBe(50);
    expect(r.rtoMs).toBe(300);
  });

  test('§2.3: later samples use alpha = 1/8, beta = 1/4, RTTVAR updated with the old SRTT', () => {
    const r = new RttEstimator();
    r.sample(100);
    r.sample(200);
    // RTTVAR = 3/4*50 + 1/4*|100 - 200| = 62.5; SRTT = 7/8*100 + 1/8*200 = 112.5
    expect(r.rttvarMs).toBe(62.5);
    expect(r.srttMs).toBe(112.5);
    expect(r.rtoMs).toBe(112.5 + 4 * 62.5);
    r.sample(50);
    // RTTVAR = 3/4*62.5 + 1/4*|112.5 - 50| = 62.5; SRTT = 7/8*112.5 + 1/8*50 = 104.6875
    expect(r.rttvarMs).toBe(62.5);
    expect(r.srttMs).toBe(104.6875);
    expect(r.rtoMs).toBe(354.6875);
  });

  test('§2.3 on a longer sequence matches a straightforward reference computation', () => {
    const r = new RttEstimator({ minRtoMs: 0 });
    const samples = [120, 80, 95, 300, 110, 105, 100, 98, 250, 90];
    let srtt = 0;
    let rttvar = 0;
    samples.forEach((x, i) => {
      if (i === 0) {
        srtt = x;
        rttvar = x / 2;
      } else {
        rttvar = 0.75 * rttvar + 0.25 * Math.abs(srtt - x);
        srtt = 0.875 * srtt + 0.125 * x;
      }
      r.sample(x);
      expect(r.srttMs).toBeCloseTo(srtt, 12);
      expect(r.rttvarMs).toBeCloseTo(rttvar, 12);
      expect(r.rtoMs).toBeCloseTo(srtt + Math.max(1, 4 * rttvar), 12);
    });
  });

  test('§2: the clock granularity G is a floor on the variance term', () => {
    const r = new RttEstimator({ minRtoMs: 0, granularityMs: 10 });
    r.sample(100);
    expect(r.rtoMs).toBe(300);
    // Identical samples: SRTT stays 100 exactly, RTTVAR decays by 3/4 each time.
    for (let i = 0; i < 20; i++) r.sample(100);
    expect(r.srttMs).toBe(100);
    expect(r.rttvarMs).toBeCloseTo(50 * 0.75 ** 20, 12);
    expect(r.rtoMs).toBe(110);
  });

  test('§2.4: the RTO is clamped to the minimum (200 ms by default, like Linux)', () => {
    const r = new RttEstimator();
    r.sample(10);
    expect(r.rtoMs).toBe(200);
    expect(r.srttMs).toBe(10);
  });

  test("§2.4: minRtoMs = 1000 gives the RFC's own floor", () => {
    const r = new RttEstimator({ minRtoMs: 1000 });
    r.sample(100);
    expect(r.rtoMs).toBe(1000);
    r.sample(1000);
    // RTTVAR = 3/4*50 + 1/4*900 = 262.5; SRTT = 87.5 + 125 = 212.5; RTO = 212.5 + 1050
    expect(r.rtoMs).toBe(1262.5);
  });

  test('§2.5: the RTO is clamped to the maximum', () => {
    const r = new RttEstimator({ maxRtoMs: 60_000 });
    r.sample(50_000);
    expect(r.rtoMs).toBe(60_000);
    expect(new RttEstimator({ initialRtoMs: 500_000 }).rtoMs).toBe(120_000);
  });

  test('§5.5: each backoff doubles the RTO, up to the maximum', () => {
    const r = new RttEstimator({ maxRtoMs: 5000 });
    r.sample(100); // RTO 300
    r.backoff();
    expect(r.rtoMs).toBe(600);
    r.backoff();
    expect(r.rtoMs).toBe(1200);
    r.backoff();
    r.backoff();
    expect(r.rtoMs).toBe(4800);
    r.backoff();
    expect(r.rtoMs).toBe(5000);
    r.backoff();
    expect(r.rtoMs).toBe(5000);
    expect(r.backoffCount).toBe(6);
    // SRTT and RTTVAR are untouched by backoff.
    expect(r.srttMs).toBe(100);
    expect(r.rttvarMs).toBe(50);
  });

  test('§5.5: backoff before any sample doubles the initial RTO', () => {
    const r = new RttEstimator();
    r.backoff();
    r.backoff();
    expect(r.rtoMs).toBe(4000);
    expect(r.backoffCount).toBe(2);
  });

  test('§5.7 / Karn: resetBackoff returns to the computed RTO', () => {
    const r = new RttEstimator();
    r.sample(100);
    r.backoff();
    r.backoff();
    expect(r.rtoMs).toBe(1200);
    r.resetBackoff();
    expect(r.rtoMs).toBe(300);
    expect(r.backoffCount).toBe(0);
    r.resetBackoff();
    expect(r.rtoMs).toBe(300);
  });

  test('§5.7 / Karn: a fresh sample recomputes the RTO, ending the backoff', () => {
    const r = new RttEstimator();
    r.sample(100);
    r.backoff();
    r.backoff();
    r.sample(100);
    // RTTVAR = 37.5, SRTT = 100: RTO = 250, not 250 * 4.
    expect(r.rtoMs).toBe(250);
    expect(r.backoffCount).toBe(0);
  });

  test('§5.7: a handshake timeout without samples re-initialises the RTO to 3 s', () => {
    const r = new RttEstimator();
    r.backoff(); // SYN retransmitted: 2 s
    r.handshakeTimedOut();
    expect(r.rtoMs).toBe(3000);
    expect(r.backoffCount).toBe(0);
    const withSample = new RttEstimator();
    withSample.sample(100);
    withSample.handshakeTimedOut();
    expect(withSample.rtoMs).toBe(300);
    const capped = new RttEstimator({ maxRtoMs: 2000 });
    capped.handshakeTimedOut();
    expect(capped.rtoMs).toBe(2000);
  });

  test('tracks the lowest and the latest sample', () => {
    const r = new RttEstimator();
    r.sample(80);
    r.sample(40);
    r.sample(120);
    expect(r.minRttMs).toBe(40);
    expect(r.latestRttMs).toBe(120);
    r.sample(0);
    expect(r.minRttMs).toBe(0);
    expect(r.latestRttMs).toBe(0);
  });

  test('ignores negative and non-finite samples', () => {
    const r = new RttEstimator();
    r.sample(-5);
    r.sample(Number.NaN);
    r.sample(Number.POSITIVE_INFINITY);
    expect(r.hasSample).toBe(false);
    expect(r.rtoMs).toBe(1000);
    r.sample(100);
    r.sample(-1);
    expect(r.srttMs).toBe(100);
    expect(r.latestRttMs).toBe(100);
  });

  test('rejects impossible options', () => {
    expect(() => new RttEstimator({ minRtoMs: 5000, maxRtoMs: 1000 })).toThrow(/minRtoMs/);
    expect(() => new RttEstimator({ initialRtoMs: -1 })).toThrow(/initialRtoMs/);
    expect(() => new RttEstimator({ granularityMs: Number.NaN })).toThrow(/granularityMs/);
    const r = new RttEstimator({ initialRtoMs: 50 });
    expect(r.rtoMs).toBe(200); // the initial RTO is clamped like any other
  });
});
