import {
  CongestionControlRegistry,
  type CongestionPhase,
  type CongestionState,
  defaultCongestionControls,
} from './congestion';
import { RenoCongestionControl, reno } from './reno';

const MSS = 1000;
const INF = Number.POSITIVE_INFINITY;

type MutableState = { -readonly [K in keyof CongestionState]: CongestionState[K] };

/** A connection's side of the contract, reduced to its fields. */
function setup(overrides: Partial<MutableState> = {}, cc = new RenoCongestionControl()) {
  const s: MutableState = {
    cwnd: 0,
    ssthresh: INF,
    mss: MSS,
    bytesInFlight: 0,
    now: 0,
    srttMs: 100,
    minRttMs: 100,
    phase: 'open',
    appLimited: false,
  };
  cc.init(s);
  Object.assign(s, overrides);
  /** What the connection does on a phase change: the state reads the new phase first. */
  const enter = (phase: CongestionPhase) => {
    s.phase = phase;
    cc.onPhaseChange(s, phase);
  };
  /** One round trip: a whole window acknowledged, `perAck` bytes at a time. */
  const roundTrip = (perAck = MSS) => {
    const window = s.cwnd;
    for (let acked = 0; acked < window; acked += perAck) cc.onAck(s, { ackedBytes: perAck });
  };
  return { s, cc, enter, roundTrip };
}

describe('Reno: initial window (RFC 6928, RFC 5681 §3.1)', () => {
  test('init sets cwnd = IW and ssthresh = Infinity', () => {
    const { s } = setup();
    expect(s.cwnd).toBe(10 * MSS);
    expect(s.ssthresh).toBe(INF);
    const big = { ...s, mss: 1460, cwnd: 0, ssthresh: 0 };
    new RenoCongestionControl().init(big);
    expect(big.cwnd).toBe(14600);
    expect(big.ssthresh).toBe(INF);
  });
});

describe('Reno: slow start (RFC 5681 §3.1, RFC 3465)', () => {
  test('cwnd doubles every round trip with one ACK per segment', () => {
    const { s, roundTrip } = setup();
    roundTrip();
    expect(s.cwnd).toBe(20000);
    roundTrip();
    expect(s.cwnd).toBe(40000);
    roundTrip();
    expect(s.cwnd).toBe(80000);
  });

  test('with delayed ACKs (2 segments each), ABC L=2 still doubles per round trip', () => {
    const { s, roundTrip } = setup();
    roundTrip(2 * MSS);
    expect(s.cwnd).toBe(20000);
    roundTrip(2 * MSS);
    expect(s.cwnd).toBe(40000);
  });

  test('with L=1 (strict RFC 5681 eq. 2), delayed ACKs grow cwnd by 1.5x per round trip', () => {
    const { s, roundTrip } = setup({}, new RenoCongestionControl({ abcLimitSegments: 1 }));
    roundTrip(2 * MSS);
    expect(s.cwnd).toBe(15000);
  });

  test('ABC: a stretch ACK grows cwnd by at most 2*SMSS', () => {
    const { s, cc } = setup();
    cc.onAck(s, { ackedBytes: 10 * MSS });
    expect(s.cwnd).toBe(12000);
    cc.onAck(s, { ackedBytes: 500 });
    expect(s.cwnd).toBe(12500);
  });

  test('slow start stops at ssthresh; the rest of the ACK counts toward congestion avoidance', () => {
    const { s, cc } = setup({ cwnd: 14000, ssthresh: 15000 });
    cc.onAck(s, { ackedBytes: 2000 });
    expect(s.cwnd).toBe(15000);
    expect(cc.getInfo().caAccBytes).toBe(1000);
    for (let i = 0; i < 14; i++) cc.onAck(s, { ackedBytes: MSS });
    expect(s.cwnd).toBe(16000);
  });

  test('ACKs that acknowledge nothing change nothing', () => {
    const { s, cc } = setup();
    cc.onAck(s, { ackedBytes: 0 });
    cc.onAck(s, { ackedBytes: 0, isDuplicate: true });
    expect(s.cwnd).toBe(10000);
  });
});

describe('Reno: congestion avoidance (RFC 5681 §3.1 eq. 3)', () => {
  test('cwnd grows by exactly 1 SMSS per round trip', () => {
    const { s, roundTrip } = setup({ cwnd: 20000, ssthresh: 10000 });
    roundTrip();
    expect(s.cwnd).toBe(21000);
    roundTrip();
    expect(s.cwnd).toBe(22000);
    for (let i = 0; i < 8; i++) roundTrip();
    expect(s.cwnd).toBe(30000);
  });

  test('delayed ACKs do not change the per-round-trip growth (byte counting)', () => {
    const { s, roundTrip } = setup({ cwnd: 20000, ssthresh: 20000 });
    roundTrip(2 * MSS);
    expect(s.cwnd).toBe(21000);
  });

  test('cwnd == ssthresh is congestion avoidance, not slow start', () => {
    const { s, cc } = setup({ cwnd: 10000, ssthresh: 10000 });
    cc.onAck(s, { ackedBytes: MSS });
    expect(s.cwnd).toBe(10000);
  });
});

describe('Reno: application-limited (RFC 7661)', () => {
  test('no growth in slow start or congestion avoidance while app-limited', () => {
    const { s, roundTrip } = setup({ appLimited: true });
    roundTrip();
    expect(s.cwnd).toBe(10000);
    s.ssthresh = 5000;
    roundTrip();
    expect(s.cwnd).toBe(10000);
    s.appLimited = false;
    roundTrip();
    expect(s.cwnd).toBe(11000);
  });
});

describe('Reno: ssthresh (RFC 5681 §3.1 eq. 4)', () => {
  test('half the FlightSize, not half of cwnd', () => {
    const { s, cc } = setup({ cwnd: 40000, bytesInFlight: 30000 });
    expect(cc.ssthresh(s)).toBe(15000);
  });

  test('never below 2*SMSS', () => {
    const { s, cc } = setup({ cwnd: 40000, bytesInFlight: 3000 });
    expect(cc.ssthresh(s)).toBe(2000);
    s.bytesInFlight = 0;
    expect(cc.ssthresh(s)).toBe(2000);
  });

  test('is a query: it changes nothing', () => {
    const { s, cc } = setup({ cwnd: 40000, bytesInFlight: 30000 });
    cc.ssthresh(s);
    expect(s.cwnd).toBe(40000);
    expect(s.ssthresh).toBe(INF);
  });
});

describe('Reno: fast recovery (RFC 5681 §3.2, RFC 6582 §3.2)', () => {
  test('entering recovery halves: ssthresh = cwnd = FlightSize/2', () => {
    const { s, enter } = setup({ cwnd: 30000, bytesInFlight: 30000 });
    enter('recovery');
    expect(s.ssthresh).toBe(15000);
    expect(s.cwnd).toBe(15000);
  });

  test('the floor of 2*SMSS holds for a tiny flight', () => {
    const { s, enter } = setup({ cwnd: 3000, bytesInFlight: 3000 });
    enter('recovery');
    expect(s.ssthresh).toBe(2000);
    expect(s.cwnd).toBe(2000);
  });

  test('ACKs during recovery leave the window to the connection', () => {
    const { s, cc, enter } = setup({ cwnd: 30000, bytesInFlight: 30000 });
    enter('recovery');
    s.cwnd = s.ssthresh + 3 * MSS; // the connection's inflation (RFC 5681 §3.2 step 4)
    cc.onAck(s, { ackedBytes: 5 * MSS });
    expect(s.cwnd).toBe(18000);
  });

  test('full ACK: cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS) (RFC 6582 §3.2 step 3)', () => {
    const cases: [flight: number, expected: number][] = [
      [5000, 6000], // little outstanding: no burst
      [14000, 15000],
      [20000, 15000], // capped at ssthresh
      [0, 2000], // max(FlightSize, SMSS) + SMSS
    ];
    for (const [flight, expected] of cases) {
      const { s, enter } = setup({ cwnd: 30000, bytesInFlight: 30000 });
      enter('recovery');
      s.cwnd = 25000; // inflated by the connection
      s.bytesInFlight = flight;
      enter('open');
      expect(s.cwnd).toBe(expected);
      expect(s.ssthresh).toBe(15000);
    }
  });

  test('after recovery, congestion avoidance resumes from the new window', () => {
    const { s, enter, roundTrip } = setup({ cwnd: 30000, bytesInFlight: 30000 });
    enter('recovery');
    s.bytesInFlight = 15000;
    enter('open');
    expect(s.cwnd).toBe(15000);
    roundTrip();
    expect(s.cwnd).toBe(16000);
  });
});

describe('Reno: retransmission timeout (RFC 5681 §3.1)', () => {
  test('RTO: ssthresh = FlightSize/2, cwnd = LW = 1 SMSS', () => {
    const { s, enter } = setup({ cwnd: 30000, bytesInFlight: 24000 });
    enter('loss');
    expect(s.ssthresh).toBe(12000);
    expect(s.cwnd).toBe(1000);
  });

  test('after an RTO, cwnd slow-starts again up to ssthresh, then grows linearly', () => {
    const { s, cc, enter, roundTrip } = setup({ cwnd: 32000, bytesInFlight: 32000 });
    enter('loss');
    expect(s.ssthresh).toBe(16000);
    roundTrip();
    expect(s.cwnd).toBe(2000);
    roundTrip();
    roundTrip();
    roundTrip();
    expect(s.cwnd).toBe(16000);
    enter('open'); // everything sent before the timeout is acknowledged
    expect(s.cwnd).toBe(16000); // leaving 'loss' keeps the regrown window
    roundTrip();
    expect(s.cwnd).toBe(17000);
    expect(cc.getInfo().caAccBytes).toBe(0);
  });

  test('a repeated timeout holds ssthresh and resets cwnd to LW', () => {
    const { s, enter } = setup({ cwnd: 30000, bytesInFlight: 30000 });
    enter('loss');
    expect(s.ssthresh).toBe(15000);
    s.cwnd = 3000;
    s.bytesInFlight = 2000; // eq. 4 would now give 2000
    enter('loss');
    expect(s.ssthresh).toBe(15000);
    expect(s.cwnd).toBe(1000);
  });

  test('a timeout during recovery does not halve ssthresh a second time', () => {
    const { s, enter } = setup({ cwnd: 30000, bytesInFlight: 30000 });
    enter('recovery');
    expect(s.ssthresh).toBe(15000);
    s.bytesInFlight = 32000; // new data sent during recovery
    enter('loss');
    expect(s.ssthresh).toBe(15000);
    expect(s.cwnd).toBe(1000);
  });

  test('a timeout during recovery takes a lower eq. 4 value if there is one', () => {
    const { s, enter } = setup({ cwnd: 30000, bytesInFlight: 30000 });
    enter('recovery');
    s.bytesInFlight = 10000;
    enter('loss');
    expect(s.ssthresh).toBe(5000);
  });
});

describe('Reno: undo after a spurious reduction (Linux tcp_reno_undo_cwnd)', () => {
  test('undo after recovery restores cwnd and ssthresh; the following open keeps them', () => {
    const { s, cc, enter } = setup({ cwnd: 30000, ssthresh: INF, bytesInFlight: 30000 });
    enter('recovery');
    expect(s.cwnd).toBe(15000);
    s.cwnd = cc.undoCwnd(s);
    expect(s.cwnd).toBe(30000);
    expect(s.ssthresh).toBe(INF);
    s.bytesInFlight = 5000;
    enter('open');
    expect(s.cwnd).toBe(30000);
  });

  test('undo after a spurious RTO restores the pre-timeout window', () => {
    const { s, cc, enter } = setup({ cwnd: 24000, ssthresh: 40000, bytesInFlight: 24000 });
    enter('loss');
    expect(s.cwnd).toBe(1000);
    expect(s.ssthresh).toBe(12000);
    s.cwnd = cc.undoCwnd(s);
    enter('open');
    expect(s.cwnd).toBe(24000);
    expect(s.ssthresh).toBe(40000);
  });

  test('undo never shrinks, and keeps the values from before the first reduction', () => {
    const { s, cc, enter } = setup({ cwnd: 30000, ssthresh: 50000, bytesInFlight: 30000 });
    enter('recovery');
    enter('loss'); // recovery escalated to a timeout: prior values are still the original ones
    s.cwnd = cc.undoCwnd(s);
    expect(s.cwnd).toBe(30000);
    expect(s.ssthresh).toBe(50000);
  });

  test('undo with nothing to undo returns the current window', () => {
    const { s, cc } = setup({ cwnd: 12345 });
    expect(cc.undoCwnd(s)).toBe(12345);
    expect(s.ssthresh).toBe(INF);
  });

  test('undo is single-use', () => {
    const { s, cc, enter } = setup({ cwnd: 30000, bytesInFlight: 30000 });
    enter('recovery');
    s.cwnd = cc.undoCwnd(s);
    enter('open');
    s.cwnd = 8000;
    expect(cc.undoCwnd(s)).toBe(8000);
  });
});

describe('Reno: events', () => {
  test('restart after idle: cwnd = min(cwnd, IW) (RFC 5681 §4.1)', () => {
    const { s, cc } = setup({ cwnd: 50000, ssthresh: 30000 });
    cc.onEvent(s, 'tx-start-after-idle');
    expect(s.cwnd).toBe(10000);
    expect(s.ssthresh).toBe(30000);
    s.cwnd = 4000;
    cc.onEvent(s, 'tx-start-after-idle');
    expect(s.cwnd).toBe(4000);
  });

  test('ECN-Echo halves once, like a loss, but not during recovery (RFC 3168 §6.1.2)', () => {
    const { s, cc } = setup({ cwnd: 20000, bytesInFlight: 20000 });
    cc.onEvent(s, 'ecn-echo');
    expect(s.ssthresh).toBe(10000);
    expect(s.cwnd).toBe(10000);
    const r = setup({ cwnd: 20000, bytesInFlight: 20000 });
    r.enter('recovery');
    r.cc.onEvent(r.s, 'ecn-echo');
    expect(r.s.ssthresh).toBe(10000);
    expect(r.s.cwnd).toBe(10000);
  });

  test('established changes nothing', () => {
    const { s, cc } = setup();
    cc.onEvent(s, 'established');
    expect(s.cwnd).toBe(10000);
    expect(s.ssthresh).toBe(INF);
  });
});

describe('Reno: registration', () => {
  test("'reno' and 'newreno' are the same algorithm under two names", () => {
    for (const name of ['reno', 'newreno']) {
      const cc = defaultCongestionControls.create(name);
      expect(cc).toBeInstanceOf(RenoCongestionControl);
      expect(cc.name).toBe(name);
    }
  });

  test('the factory takes its configuration first', () => {
    const r = new CongestionControlRegistry();
    r.register('strict-reno', reno({ name: 'strict-reno', abcLimitSegments: 1 }));
    const cc = r.create('strict-reno');
    expect(cc.getInfo?.()).toEqual({ caAccBytes: 0, priorCwndBytes: 0, abcLimitSegments: 1 });
    expect(() => r.register('bad-reno', reno({ name: 'bad-reno', abcLimitSegments: 0 }))).toThrow(/abcLimitSegments/);
    expect(reno()({}).name).toBe('reno');
  });

  test('getInfo reports the accumulator and the prior window', () => {
    const { s, cc, enter } = setup({ cwnd: 20000, ssthresh: 10000, bytesInFlight: 20000 });
    cc.onAck(s, { ackedBytes: 3000 });
    expect(cc.getInfo()).toEqual({ caAccBytes: 3000, priorCwndBytes: 0, abcLimitSegments: 2 });
    enter('recovery');
    expect(cc.getInfo()).toEqual({ caAccBytes: 0, priorCwndBytes: 20000, abcLimitSegments: 2 });
  });
});
