import {
  defaultPeer,
  parseDuration,
  parseProbability,
  parseRate,
  parseRouteSpec,
  parseSize,
  parseTunSpec,
} from './link-spec';
import { UsageError } from './usage-error';

describe('parseTunSpec', () => {
  test('name and address only: no shaping', () => {
    expect(parseTunSpec('nuse0,10.0.0.2/24')).toEqual({ name: 'nuse0', address: '10.0.0.2', prefixLength: 24 });
  });

  test('every key, IPv4', () => {
    const spec = parseTunSpec(
      'wifi,10.1.0.2/24,peer=10.1.0.9,netns=client,mtu=1400,delay=20ms,jitter=2ms,loss=1%,rate=20mbit,queue=64kb,limit=50,duplicate=0.1%,corrupt=0.01',
    );
    expect(spec).toMatchObject({ name: 'wifi', address: '10.1.0.2', peer: '10.1.0.9', netns: 'client', mtu: 1400 });
    const both = {
      delayMs: 20,
      jitterMs: 2,
      loss: 0.01,
      rateBytesPerSec: 2_500_000,
      queueBytes: 65536,
      queuePackets: 50,
      duplicate: 0.001,
      corrupt: 0.01,
    };
    expect(spec.shape).toEqual({ tx: both, rx: both });
  });

  test('tx- and rx- keys shape one direction', () => {
    const spec = parseTunSpec('lte,fd00:1::2/64,tx-delay=30ms,rx-delay=10ms,rx-loss=5%,tx-rate=1gbit');
    expect(spec.address).toBe('fd00:1::2');
    expect(spec.shape).toEqual({
      tx: { delayMs: 30, rateBytesPerSec: 125_000_000 },
      rx: { delayMs: 10, loss: 0.05 },
    });
  });

  test('reorder with a delay', () => {
    expect(parseTunSpec('t,10.0.0.2/24,delay=10ms,reorder=25%').shape?.tx).toEqual({ delayMs: 10, reorder: 0.25 });
  });

  test.each([
    ['', /expected NAME,ADDR\/PREFIX/],
    ['nuse0', /expected NAME,ADDR\/PREFIX/],
    ['nuse0,10.0.0.2', /is not ADDR\/PREFIX/],
    ['nuse0,10.0.0.300/24', /is not ADDR\/PREFIX/],
    ['nuse0,10.0.0.2/33', /is not ADDR\/PREFIX/],
    ['averyveryverylongname,10.0.0.2/24', /1 to 15 bytes/],
    ['bad/name,10.0.0.2/24', /must not/],
    ['nuse0,10.0.0.2/24,delay', /is not key=value/],
    ['nuse0,10.0.0.2/24,speed=1', /unknown key "speed"/],
    ['nuse0,10.0.0.2/24,delay=fast', /bad duration "fast"/],
    ['nuse0,10.0.0.2/24,loss=150%', /more than 100%/],
    ['nuse0,10.0.0.2/24,loss=-1%', /bad probability/],
    ['nuse0,10.0.0.2/24,rate=20', /bad rate "20"/],
    ['nuse0,10.0.0.2/24,rate=20furlongs', /bad rate/],
    ['nuse0,10.0.0.2/24,mtu=40', /out of range \(68 to 65535\)/],
    ['nuse0,fd00::2/64,mtu=1000', /out of range \(1280 to 65535\)/],
    ['nuse0,10.0.0.2/24,peer=fd00::1', /not an IPv4 address/],
    ['nuse0,10.0.0.2/24,peer=10.0.0.2', /must differ/],
    ['nuse0,10.0.0.2/24,peer=10.9.9.9', /peer 10\.9\.9\.9 is not in 10\.0\.0\.2\/24/],
    ['nuse0,10.0.0.2/24,peer=nonsense', /not an IP address/],
    ['nuse0,10.0.0.2/24,netns=../etc', /bad netns name/],
    ['nuse0,10.0.0.2/24,delay=1ms,delay=2ms', /delay is given twice/],
    ['nuse0,10.0.0.2/24,delay=1ms,tx-delay=2ms', /both with and without a direction/],
    ['nuse0,10.0.0.2/24,reorder=5%', /reorder needs a delay/],
    ['nuse0,10.0.0.2/24,queue=10kb', /queue needs a rate/],
    ['nuse0,10.0.0.2/24,delay=2h', /bad duration/],
  ])('rejects %j', (text, message) => {
    expect(() => parseTunSpec(text)).toThrow(UsageError);
    expect(() => parseTunSpec(text)).toThrow(message);
  });
});

describe('defaultPeer', () => {
  test.each([
    ['10.0.0.2/24', '10.0.0.1'],
    ['10.0.0.1/24', '10.0.0.2'],
    ['198.18.0.1/30', '198.18.0.2'],
    ['198.18.0.0/31', '198.18.0.1'],
    ['fd00:1::2/64', 'fd00:1::1'],
    ['fd00:1::1/64', 'fd00:1::2'],
  ])('%s → %s', (cidr, peer) => {
    expect(defaultPeer(parseTunSpec(`t,${cidr}`))).toBe(peer);
  });

  test('a /32 has no room for a peer', () => {
    expect(() => defaultPeer(parseTunSpec('t,10.0.0.2/32'))).toThrow(/no room for a peer/);
  });
});

describe('parseRouteSpec', () => {
  test('via and dev', () => {
    expect(parseRouteSpec('10.2.3.4/16,via=10.0.0.1')).toEqual({ prefix: '10.2.0.0/16', via: '10.0.0.1' });
    expect(parseRouteSpec('0.0.0.0/0,dev=nuse0')).toEqual({ prefix: '0.0.0.0/0', dev: 'nuse0' });
    expect(parseRouteSpec('default,via=fd00::1')).toEqual({ prefix: 'default', via: 'fd00::1' });
  });

  test.each([
    ['', /expected PREFIX/],
    ['10.0.0.0/8', /give via=ADDR or dev=NAME/],
    ['10.0.0.0/8,via=fd00::1', /not an IPv4 address/],
    ['10.0.0.0/8,gw=1.2.3.4', /unexpected "gw=1.2.3.4"/],
    ['10.0.0.0/8,dev=', /dev needs an interface name/],
    ['nonsense,dev=x', /is not ADDR\/PREFIX/],
  ])('rejects %j', (text, message) => {
    expect(() => parseRouteSpec(text)).toThrow(message);
  });
});

describe('units', () => {
  test('durations', () => {
    expect(parseDuration('20', 'x')).toBe(20);
    expect(parseDuration('500us', 'x')).toBe(0.5);
    expect(parseDuration('1.5s', 'x')).toBe(1500);
  });
  test('probabilities', () => {
    expect(parseProbability('0.5%', 'x')).toBeCloseTo(0.005);
    expect(parseProbability('0.2', 'x')).toBe(0.2);
  });
  test('rates (tc units)', () => {
    expect(parseRate('8kbit', 'x')).toBe(1000);
    expect(parseRate('2mbps', 'x')).toBe(2_000_000);
    expect(parseRate('10Mbit', 'x')).toBe(1_250_000);
  });
  test('sizes (k = 1024)', () => {
    expect(parseSize('1500', 'x')).toBe(1500);
    expect(parseSize('64kb', 'x')).toBe(65536);
    expect(parseSize('1mb', 'x')).toBe(1048576);
  });
});
