import { RealClock } from './real-clock';
import { VirtualClock } from './virtual-clock';

describe('VirtualClock', () => {
  test('jumps straight to the next due timer', () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    clock.setTimer(30_000, () => log.push(`b@${clock.now()}`));
    clock.setTimer(10, () => log.push(`a@${clock.now()}`));
    const started = Date.now();
    clock.runUntilIdle();
    expect(log).toEqual(['a@10', 'b@30000']);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(clock.now()).toBe(30_000);
  });

  test('timers due at the same instant run in the order they were set', () => {
    const clock = new VirtualClock();
    const log: number[] = [];
    for (let i = 0; i < 100; i++) clock.setTimer(5, () => log.push(i));
    clock.runUntilIdle();
    expect(log).toEqual([...Array(100).keys()]);
  });

  test('a cancelled timer never runs; cancelling twice or after running is harmless', () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    const t = clock.setTimer(5, () => log.push('cancelled'));
    const u = clock.setTimer(6, () => log.push('ran'));
    clock.cancelTimer(t);
    clock.cancelTimer(t);
    clock.runUntilIdle();
    clock.cancelTimer(u);
    expect(log).toEqual(['ran']);
    expect(clock.pendingTimers).toBe(0);
  });

  test('timers set by timers run at the right time; zero and negative delays mean now', () => {
    const clock = new VirtualClock(100);
    const log: string[] = [];
    clock.setTimer(10, () => {
      log.push(`outer@${clock.now()}`);
      clock.setTimer(0, () => log.push(`zero@${clock.now()}`));
      clock.setTimer(-5, () => log.push(`negative@${clock.now()}`));
      clock.setTimer(Number.NaN, () => log.push(`nan@${clock.now()}`));
      clock.setTimer(1, () => log.push(`inner@${clock.now()}`));
    });
    clock.runUntilIdle();
    expect(log).toEqual(['outer@110', 'zero@110', 'negative@110', 'nan@110', 'inner@111']);
  });

  test('runUntil and advance run what is due and move time forward', () => {
    const clock = new VirtualClock();
    const log: number[] = [];
    clock.setTimer(5, () => log.push(5));
    clock.setTimer(15, () => log.push(15));
    clock.runUntil(10);
    expect(log).toEqual([5]);
    expect(clock.now()).toBe(10);
    expect(clock.nextDue()).toBe(15);
    clock.advance(5);
    expect(log).toEqual([5, 15]);
    expect(clock.now()).toBe(15);
    expect(clock.step()).toBe(false);
  });

  test('runUntilIdle stops on done() and on until, and refuses to spin forever', () => {
    const clock = new VirtualClock();
    let ticks = 0;
    const tick = (): void => {
      ticks++;
      clock.setTimer(1, tick);
    };
    tick();
    clock.runUntilIdle({ done: () => ticks >= 50 });
    expect(ticks).toBe(50);
    clock.runUntilIdle({ until: 100 });
    expect(clock.now()).toBe(100);
    expect(() => clock.runUntilIdle({ maxEvents: 1000 })).toThrow(/more than 1000 events/);
  });

  test('a heavy random schedule runs in time order', () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    let x = 1;
    for (let i = 0; i < 50_000; i++) {
      x = (Math.imul(x, 48271) + 11) >>> 0;
      const at = x % 100_000;
      const h = clock.setTimer(at, () => seen.push(clock.now()));
      if (i % 7 === 0) clock.cancelTimer(h);
    }
    clock.runUntilIdle();
    expect(seen.length).toBe(50_000 - Math.ceil(50_000 / 7));
    for (let i = 1; i < seen.length; i++) expect(seen[i]! >= seen[i - 1]!).toBe(true);
  });
});

describe('RealClock', () => {
  test('timers fire after their delay in wall time, immediately for zero, and can be cancelled', async () => {
    const clock = new RealClock();
    const start = clock.now();
    const fired: string[] = [];
    await new Promise<void>((resolve) => {
      clock.setTimer(0, () => fired.push('now'));
      const c = clock.setTimer(5, () => fired.push('cancelled'));
      clock.cancelTimer(c);
      const z = clock.setTimer(0, () => fired.push('cancelled-immediate'));
      clock.cancelTimer(z);
      clock.setTimer(20, () => {
        fired.push('later');
        resolve();
      });
    });
    expect(fired).toEqual(['now', 'later']);
    expect(clock.now() - start).toBeGreaterThanOrEqual(19);
    expect(clock.pendingTimers).toBe(0);
  });

  test('timers run in the order they are due, whatever the rounding of their delays', async () => {
    const clock = new RealClock();
    const order: number[] = [];
    await new Promise<void>((resolve) => {
      // As a shaper delaying packets by 20 ms: each computed delay is a hair apart.
      for (let i = 0; i < 200; i++) {
        const jiggle = i % 2 === 0 ? -1e-9 : 1e-9;
        clock.setTimer(5 + i * 0.01 + jiggle, () => {
          order.push(i);
          if (order.length === 200) resolve();
        });
      }
    });
    expect(order).toEqual([...Array(200).keys()]);
  });

  test('a timer set for earlier than the armed one re-arms; cancelling all releases the event loop', async () => {
    const clock = new RealClock();
    const fired: string[] = [];
    const late = clock.setTimer(1000, () => fired.push('late'));
    await new Promise<void>((resolve) => clock.setTimer(5, () => resolve()));
    clock.cancelTimer(late);
    expect(clock.pendingTimers).toBe(0);
    expect(fired).toEqual([]);
  });

  test("a timer beyond Node's 2^31-1 ms limit waits instead of spinning", async () => {
    const clock = new RealClock();
    const spy = jest.spyOn(global, 'setTimeout');
    try {
      const far = clock.setTimer(2 ** 31 + 1000, () => {});
      await new Promise<void>((resolve) => setImmediate(resolve));
      await new Promise<void>((resolve) => clock.setTimer(30, resolve));
      // One Node timer for the far one, one for 30 ms, one re-arm for the far one: no 1 ms loop.
      expect(spy.mock.calls.filter(([, ms]) => ms === 1)).toHaveLength(0);
      expect(spy.mock.calls.length).toBeLessThanOrEqual(4);
      clock.cancelTimer(far);
      expect(clock.pendingTimers).toBe(0);
    } finally {
      spy.mockRestore();
    }
  });
});
