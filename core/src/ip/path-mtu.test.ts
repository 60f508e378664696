import { VirtualClock } from '../time/virtual-clock';
import { parseIp } from '../wire/address';
import { PathMtuCache, plateauBelow } from './path-mtu';

describe('PathMtuCache (RFC 1191, RFC 8201)', () => {
  test('RFC 1191 §7 plateaus: the largest strictly below the refused length', () => {
    expect(plateauBelow(1500)).toBe(1492);
    expect(plateauBelow(1492)).toBe(1006);
    expect(plateauBelow(65535)).toBe(32000);
    expect(plateauBelow(100)).toBe(68);
    expect(plateauBelow(68)).toBe(68);
  });

  test('lowers only, floors per family, ages out after the expiry', () => {
    const clock = new VirtualClock();
    const cache = new PathMtuCache(clock, { expiryMs: 1000 });
    const v4 = parseIp('192.0.2.1');
    const v6 = parseIp('2001:db8::1');
    expect(cache.get(v4)).toBeUndefined();
    expect(cache.lower(v4, 1400, 1500)).toBe(1400);
    expect(cache.lower(v4, 1450, 1400)).toBeUndefined();
    expect(cache.lower(v4, 10, 1400)).toBe(68);
    expect(cache.lower(v6, 500, 1500)).toBeUndefined(); // RFC 8201 §4: discarded
    expect(cache.lower(v6, 1280, 1500)).toBe(1280);
    clock.advance(999);
    expect(cache.get(v4)).toBe(68);
    clock.advance(1);
    expect(cache.get(v4)).toBeUndefined();
    expect(cache.get(v6)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  test('bounded: the oldest destination is forgotten first', () => {
    const cache = new PathMtuCache(new VirtualClock(), { maxEntries: 2 });
    const a = parseIp('10.0.0.1');
    const b = parseIp('10.0.0.2');
    const c = parseIp('10.0.0.3');
    cache.lower(a, 1400, 1500);
    cache.lower(b, 1400, 1500);
    cache.lower(a, 1300, 1400); // refreshed: now the newest
    cache.lower(c, 1400, 1500);
    expect(cache.get(a)).toBe(1300);
    expect(cache.get(b)).toBeUndefined();
    expect(cache.get(c)).toBe(1400);
  });
});
