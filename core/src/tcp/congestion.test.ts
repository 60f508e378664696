import {
  type CongestionControl,
  type CongestionControlFactory,
  CongestionControlRegistry,
  type CongestionGroup,
  type CongestionState,
  congestionAvoidanceAdditive,
  defaultCongestionControls,
  halvedSsthresh,
  initialWindow,
  lossWindow,
  slowStart,
} from './congestion';
import { RenoCongestionControl } from './reno';

const MSS = 1000;

type MutableState = { -readonly [K in keyof CongestionState]: CongestionState[K] };

function state(overrides: Partial<MutableState> = {}): MutableState {
  return {
    cwnd: 0,
    ssthresh: Number.POSITIVE_INFINITY,
    mss: MSS,
    bytesInFlight: 0,
    now: 0,
    srttMs: undefined,
    minRttMs: undefined,
    phase: 'open',
    appLimited: false,
    ...overrides,
  };
}

/** A minimal valid algorithm: keeps a fixed window of `segments` full-sized segments. */
function fixedWindow(segments: number, name = 'fixed'): CongestionControlFactory {
  return () => ({
    name,
    init(s) {
      s.cwnd = segments * s.mss;
      s.ssthresh = Number.POSITIVE_INFINITY;
    },
    onAck() {},
    ssthresh(s) {
      return Math.max((segments * s.mss) / 2, 2 * s.mss);
    },
    onPhaseChange(s, phase) {
      s.cwnd = phase === 'loss' ? lossWindow(s.mss) : segments * s.mss;
    },
  });
}

describe('window helpers', () => {
  test('initialWindow: RFC 6928 min(10*MSS, max(2*MSS, 14600))', () => {
    expect(initialWindow(1460)).toBe(14600);
    expect(initialWindow(1000)).toBe(10000);
    expect(initialWindow(536)).toBe(5360);
    expect(initialWindow(1500)).toBe(14600);
    expect(initialWindow(9000)).toBe(18000);
  });

  test('lossWindow: RFC 5681 §3.1 LW = 1 SMSS', () => {
    expect(lossWindow(1460)).toBe(1460);
  });

  test('halvedSsthresh: RFC 5681 eq. 4 max(FlightSize/2, 2*SMSS)', () => {
    expect(halvedSsthresh(30000, MSS)).toBe(15000);
    expect(halvedSsthresh(3000, MSS)).toBe(2000);
    expect(halvedSsthresh(0, MSS)).toBe(2000);
    expect(halvedSsthresh(14601, 1)).toBe(7300);
  });

  test('slowStart grows by the acknowledged bytes below ssthresh', () => {
    const s = state({ cwnd: 10000 });
    expect(slowStart(s, 1000)).toBe(0);
    expect(s.cwnd).toBe(11000);
  });

  test('slowStart: RFC 3465 §2.2 limit L per ACK (2*SMSS by default, SMSS for RFC 5681 eq. 2)', () => {
    const s = state({ cwnd: 10000 });
    expect(slowStart(s, 10000)).toBe(0);
    expect(s.cwnd).toBe(12000);
    expect(slowStart(s, 10000, MSS)).toBe(0);
    expect(s.cwnd).toBe(13000);
  });

  test('slowStart stops at ssthresh and returns the leftover for congestion avoidance', () => {
    const s = state({ cwnd: 10000, ssthresh: 11000 });
    expect(slowStart(s, 2000)).toBe(1000);
    expect(s.cwnd).toBe(11000);
    // At or above ssthresh: nothing consumed.
    expect(slowStart(s, 1500)).toBe(1500);
    expect(s.cwnd).toBe(11000);
  });

  test('congestionAvoidanceAdditive: +1 SMSS per cwnd of acknowledged bytes', () => {
    const s = state({ cwnd: 10000, ssthresh: 5000 });
    const acc = { acc: 0 };
    for (let i = 0; i < 9; i++) congestionAvoidanceAdditive(s, 1000, acc);
    expect(s.cwnd).toBe(10000);
    expect(acc.acc).toBe(9000);
    congestionAvoidanceAdditive(s, 1000, acc);
    expect(s.cwnd).toBe(11000);
    expect(acc.acc).toBe(0);
  });

  test('congestionAvoidanceAdditive: a stretch ACK of several windows grows by several SMSS', () => {
    const s = state({ cwnd: 10000, ssthresh: 5000 });
    const acc = { acc: 0 };
    congestionAvoidanceAdditive(s, 25000, acc);
    expect(s.cwnd).toBe(12000);
    expect(acc.acc).toBe(5000);
  });

  test('congestionAvoidanceAdditive: an explicit w slows growth (coupled algorithms)', () => {
    const s = state({ cwnd: 10000, ssthresh: 5000 });
    const acc = { acc: 0 };
    for (let i = 0; i < 19; i++) congestionAvoidanceAdditive(s, 1000, acc, 20000);
    expect(s.cwnd).toBe(10000);
    congestionAvoidanceAdditive(s, 1000, acc, 20000);
    expect(s.cwnd).toBe(11000);
  });

  test('congestionAvoidanceAdditive: credit above a shrunken window is spent as one SMSS', () => {
    const s = state({ cwnd: 5000, ssthresh: 2000 });
    const acc = { acc: 15000 };
    congestionAvoidanceAdditive(s, 1000, acc);
    expect(s.cwnd).toBe(6000);
    expect(acc.acc).toBe(1000);
  });
});

describe('CongestionControlRegistry', () => {
  test('the default registry has reno and newreno', () => {
    expect(defaultCongestionControls.has('reno')).toBe(true);
    expect(defaultCongestionControls.has('newreno')).toBe(true);
    expect(defaultCongestionControls.names()).toEqual(expect.arrayContaining(['newreno', 'reno']));
    const a = defaultCongestionControls.create('newreno');
    const b = defaultCongestionControls.create('newreno');
    expect(a).toBeInstanceOf(RenoCongestionControl);
    expect(a.name).toBe('newreno');
    expect(defaultCongestionControls.create('reno').name).toBe('reno');
    expect(a).not.toBe(b); // one instance per connection
  });

  test('names() is sorted', () => {
    const r = new CongestionControlRegistry();
    r.register('zeta', fixedWindow(4, 'zeta'));
    r.register('alpha', fixedWindow(4, 'alpha'));
    r.register('mid', fixedWindow(4, 'mid'));
    expect(r.names()).toEqual(['alpha', 'mid', 'zeta']);
  });

  test('a duplicate name is refused', () => {
    expect(() => defaultCongestionControls.register('reno', fixedWindow(4, 'reno'))).toThrow(
      "congestion control 'reno' is already registered; unregister it first",
    );
    expect(defaultCongestionControls.create('reno')).toBeInstanceOf(RenoCongestionControl);
  });

  test.each(['', 'Reno', 'a b', 'cc.1', 'é', 'x'.repeat(33)])('a bad name is refused: %j', (name) => {
    const r = new CongestionControlRegistry();
    expect(() => r.register(name, fixedWindow(4, name))).toThrow(/is invalid/);
    expect(r.names()).toEqual([]);
  });

  test.each(['a', '0', 'my_cc-2', 'x'.repeat(32)])('a good name is accepted: %j', (name) => {
    const r = new CongestionControlRegistry();
    r.register(name, fixedWindow(4, name));
    expect(r.has(name)).toBe(true);
  });

  test('missing required hooks are named, and nothing is registered', () => {
    const r = new CongestionControlRegistry();
    const partial = () => ({ name: 'half', init() {} }) as unknown as CongestionControl;
    expect(() => r.register('half', partial)).toThrow(
      "congestion control 'half': missing required hook(s): onAck, ssthresh, onPhaseChange",
    );
    expect(r.has('half')).toBe(false);
  });

  test('an optional hook that is not a function is refused', () => {
    const r = new CongestionControlRegistry();
    const bad: CongestionControlFactory = (ctx) =>
      ({ ...fixedWindow(4, 'bad')(ctx), getInfo: 42 }) as unknown as CongestionControl;
    expect(() => r.register('bad', bad)).toThrow(/optional hook\(s\) that are not functions: getInfo/);
  });

  test('an instance reporting another name is refused', () => {
    const r = new CongestionControlRegistry();
    expect(() => r.register('alias', fixedWindow(4, 'fixed'))).toThrow(/reports the name "fixed"/);
  });

  test('a factory that throws, returns nothing, or is not a function is refused clearly', () => {
    const r = new CongestionControlRegistry();
    expect(() =>
      r.register('boom', () => {
        throw new Error('no config');
      }),
    ).toThrow("congestion control 'boom': the factory threw when probed: no config");
    expect(() => r.register('nul', () => null as unknown as CongestionControl)).toThrow(/returned null/);
    expect(() => r.register('num', 7 as unknown as CongestionControlFactory)).toThrow(/must be a function/);
    expect(r.names()).toEqual([]);
  });

  test('the probe instance is released', () => {
    const r = new CongestionControlRegistry();
    const release = jest.fn();
    r.register('rel', (ctx) => ({ ...fixedWindow(4, 'rel')(ctx), release }));
    expect(release).toHaveBeenCalledTimes(1);
    r.create('rel');
    expect(release).toHaveBeenCalledTimes(1);
  });

  test('an unknown name lists the available ones', () => {
    expect(() => defaultCongestionControls.create('cubic')).toThrow(
      /unknown congestion control 'cubic' \(available: .*newreno, reno/,
    );
    const r = new CongestionControlRegistry();
    expect(() => r.create('reno')).toThrow("unknown congestion control 'reno' (available: none)");
    r.register('b', fixedWindow(2, 'b'));
    r.register('a', fixedWindow(2, 'a'));
    expect(() => r.create('c')).toThrow("unknown congestion control 'c' (available: a, b)");
  });

  test('unregister removes a name once; running instances are unaffected', () => {
    const r = new CongestionControlRegistry();
    r.register('fixed', fixedWindow(3));
    const cc = r.create('fixed');
    expect(r.unregister('fixed')).toBe(true);
    expect(r.unregister('fixed')).toBe(false);
    expect(r.has('fixed')).toBe(false);
    expect(() => r.create('fixed')).toThrow(/unknown congestion control 'fixed'/);
    const s = state();
    cc.init(s);
    expect(s.cwnd).toBe(3 * MSS);
    // The name is free again.
    r.register('fixed', fixedWindow(5));
    expect(r.create('fixed')).toBeDefined();
  });

  test('built-ins are registered lazily, and validated like any other', () => {
    const thunk = jest.fn(() => [['fixed', fixedWindow(2)] as const]);
    const r = new CongestionControlRegistry(thunk);
    expect(thunk).not.toHaveBeenCalled();
    expect(r.names()).toEqual(['fixed']);
    r.has('fixed');
    expect(thunk).toHaveBeenCalledTimes(1);
    const broken = new CongestionControlRegistry(() => [['Bad', fixedWindow(2, 'Bad')]]);
    expect(() => broken.names()).toThrow(/is invalid/);
  });

  test('the default registry works whichever of congestion.ts and reno.ts loads first', () => {
    jest.isolateModules(() => {
      const reno = require('./reno') as typeof import('./reno');
      const cc = require('./congestion') as typeof import('./congestion');
      const s = state();
      const instance = cc.defaultCongestionControls.create('reno');
      expect(instance).toBeInstanceOf(reno.RenoCongestionControl);
      instance.init(s);
      expect(s.cwnd).toBe(10 * MSS);
    });
  });
});

describe('a third-party congestion control', () => {
  test('a toy fixed-window algorithm registers in the default registry and is created by name', () => {
    defaultCongestionControls.register('fixed', fixedWindow(4));
    try {
      expect(defaultCongestionControls.names()).toContain('fixed');
      const cc = defaultCongestionControls.create('fixed');
      const s = state({ bytesInFlight: 4 * MSS });
      cc.init(s);
      expect(s.cwnd).toBe(4000);
      cc.onAck(s, { ackedBytes: 1000 });
      expect(s.cwnd).toBe(4000);
      expect(cc.ssthresh(s)).toBe(2000);
      s.phase = 'loss';
      cc.onPhaseChange(s, 'loss');
      expect(s.cwnd).toBe(1000);
      s.phase = 'open';
      cc.onPhaseChange(s, 'open');
      expect(s.cwnd).toBe(4000);
    } finally {
      expect(defaultCongestionControls.unregister('fixed')).toBe(true);
    }
    expect(defaultCongestionControls.has('fixed')).toBe(false);
  });

  test('a coupled toy sees its group: a shared window split among the subflows', () => {
    const TOTAL = 12 * MSS;
    const shared: CongestionControlFactory = ({ group }) => {
      const share = (s: CongestionState) => {
        const n = group ? group.members().length : 1;
        return Math.max(Math.floor(TOTAL / n), 2 * s.mss);
      };
      return {
        name: 'shared',
        init(s) {
          s.cwnd = share(s);
        },
        onAck(s) {
          s.cwnd = share(s);
        },
        ssthresh(s) {
          return share(s);
        },
        onPhaseChange(s) {
          s.cwnd = share(s);
        },
      };
    };
    const r = new CongestionControlRegistry();
    r.register('shared', shared);

    const alone = state();
    r.create('shared').init(alone);
    expect(alone.cwnd).toBe(TOTAL);

    const sub1 = state();
    const sub2 = state();
    const members: CongestionState[] = [sub1];
    const group: CongestionGroup = { id: 'token-1', members: () => members };
    const cc1 = r.create('shared', { group });
    cc1.init(sub1);
    expect(sub1.cwnd).toBe(TOTAL);
    members.push(sub2);
    const cc2 = r.create('shared', { group });
    cc2.init(sub2);
    cc1.onAck(sub1, { ackedBytes: MSS });
    expect(sub1.cwnd).toBe(TOTAL / 2);
    expect(sub2.cwnd).toBe(TOTAL / 2);
  });
});
