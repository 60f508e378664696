import { Writable } from 'node:stream';
import { UsageError } from '../cli/usage-error';
import { createLogger } from '../daemon/logger';
import { VirtualClock } from '../time/virtual-clock';
import { parseIp } from '../wire/address';
import { Ipv4View } from '../wire/ipv4';
import { buildPacket } from '../wire/packet';
import { parseOptionKinds, parseRouterTun, resolveRouterConfig } from './config';
import { formatRouterStats } from './stats';
import { MemoryLink } from './test-links';
import { TunRouter } from './tun-router';

function quietLogger() {
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  return createLogger({ format: 'json', destination: sink });
}

describe('router configuration', () => {
  test('a --tun is read from the host side: the router takes the first other address, or peer=', () => {
    const t = parseRouterTun('a,10.1.0.1/24,netns=ns1,route=default,route=10.9.0.5/16,delay=5ms');
    expect(t.spec).toMatchObject({ name: 'a', address: '10.1.0.1', prefixLength: 24, netns: 'ns1' });
    expect(t.spec.shape?.tx).toEqual({ delayMs: 5 });
    expect(t.routerAddress).toBe('10.1.0.2');
    expect(t.hostRoutes).toEqual(['0.0.0.0/0', '10.9.0.0/16']);
    expect(parseRouterTun('b,10.2.0.7/24,peer=10.2.0.254').routerAddress).toBe('10.2.0.254');
    expect(parseRouterTun('c,fd00:3::1/64,route=default').hostRoutes).toEqual(['::/0']);
    const dual = parseRouterTun('d,10.4.0.1/24,addr=fd00:4::1/64,route=default');
    expect(dual.extraAddresses).toEqual([{ address: 'fd00:4::1', prefixLength: 64, routerAddress: 'fd00:4::2' }]);
    expect(dual.hostRoutes).toEqual(['0.0.0.0/0', '::/0']);
    expect(() => parseRouterTun('e,10.5.0.1/24,addr=fd00:5::1/64,mtu=1200')).toThrow(/below IPv6's minimum/);
    expect(() => parseRouterTun('e,10.5.0.1/24,addr=fd00::1')).toThrow(/addr=fd00::1 is not ADDR\/PREFIX/);
  });

  test('option kinds by number or name', () => {
    expect(parseOptionKinds('30')).toEqual([30]);
    expect(parseOptionKinds('mptcp,ts, 34')).toEqual([30, 8, 34]);
    expect(() => parseOptionKinds('256')).toThrow(UsageError);
    // Names are the table's own: nothing inherited from Object.prototype.
    for (const name of ['constructor', '__proto__', 'toString']) {
      expect(() => parseOptionKinds(name)).toThrow(/is not an option kind/);
    }
  });

  test('flags become a configuration; mistakes are UsageErrors', () => {
    const config = resolveRouterConfig({
      tun: ['a,10.1.0.1/24', 'b,10.2.0.1/24'],
      route: ['default,dev=b', '10.8.0.0/16,via=10.1.0.9'],
      stripOption: ['mptcp', '8'],
      stripOptionOn: ['b:tx', 'a'],
      stripSynOnly: true,
      icmpRate: '0',
    });
    expect(config.strip).toEqual({
      kinds: [30, 8],
      synOnly: true,
      on: [{ port: 'b', direction: 'tx' }, { port: 'a' }],
    });
    expect(config.icmpRate).toBe(0);
    expect(() => resolveRouterConfig({ tun: ['a,10.1.0.1/24', 'b,10.1.0.2/24'] })).toThrow(
      /address 10.1.0.2 is used on a and b/,
    );
    expect(() => resolveRouterConfig({ tun: ['a,10.1.0.1/24,peer=10.1.0.2', 'b,10.1.0.5/24,peer=10.1.0.6'] })).toThrow(
      /prefixes 10\.1\.0\.1\/24 and 10\.1\.0\.5\/24 overlap/,
    );
    expect(() => resolveRouterConfig({ tun: ['a,10.1.0.1/24'], statsInterval: '90000' })).toThrow(/more than a day/);
    expect(() => resolveRouterConfig({ tun: ['a,10.1.0.1/24'], route: ['10.8.0.0/16,via=10.3.0.1'] })).toThrow(
      /on no link's prefix/,
    );
  });
});

describe('TunRouter over in-memory devices', () => {
  test('opens, routes, adds host routes, reports, and closes every device', () => {
    const devices = new Map<string, MemoryLink>();
    const hostRoutes: string[] = [];
    const hostAddresses: string[] = [];
    const config = resolveRouterConfig({
      tun: ['a,10.1.0.1/24,route=default', 'b,10.2.0.1/24,addr=fd00:2::1/64,mtu=1400,loss=100%'],
      route: ['default,dev=b'],
    });
    const r = TunRouter.start(config, {
      logger: quietLogger(),
      clock: new VirtualClock(),
      openDevice: (o) => {
        const link = new MemoryLink(o.name, o.mtu);
        devices.set(o.name, link);
        return link;
      },
      addHostRoute: (tun, prefix) => hostRoutes.push(`${tun.spec.name} ${prefix}`),
      addHostAddress: (tun, cidr) => hostAddresses.push(`${tun.spec.name} ${cidr}`),
    });
    expect(hostRoutes).toEqual(['a 0.0.0.0/0']);
    expect(hostAddresses).toEqual(['b fd00:2::1/64']);
    expect(r.router.stats().routes).toEqual([
      '10.1.0.0/24 dev a',
      '10.2.0.0/24 dev b',
      '0.0.0.0/0 dev b',
      'fd00:2::/64 dev b',
      '::/0 dev b',
    ]);
    expect(r.router.port('b')!.addresses.map((a) => a.length)).toEqual([4, 16]);
    const a = devices.get('a')!;
    const b = devices.get('b')!;
    const packet = buildPacket(
      { src: parseIp('10.1.0.1'), dst: parseIp('192.0.2.1') },
      { protocol: 'udp', repr: { srcPort: 1, dstPort: 2, payload: new Uint8Array(10) } },
    );
    a.inject(packet);
    expect(b.sent).toEqual([]); // the shaper on b lost it (loss=100%)
    const back = buildPacket(
      { src: parseIp('10.2.0.1'), dst: parseIp('10.1.0.1') },
      { protocol: 'udp', repr: { srcPort: 1, dstPort: 2, payload: new Uint8Array(10) } },
    );
    b.inject(back); // lost on b's rx side too
    expect(a.sent).toEqual([]);
    const stats = r.stop('test');
    expect(stats.links.b!.shaper).toEqual({ 'tx-loss': 1, 'rx-loss': 1 });
    expect(stats.ports[0]!.counters.drops).toEqual({});
    expect(stats.ports[1]!.counters.drops).toEqual({ 'tx-refused': 1 });
    const text = formatRouterStats(stats);
    expect(text).toMatch(/^nuse router: 0\.0 s, 1 packets forwarded\n/);
    expect(text).toMatch(
      /b: rx 0 pkts 0 B, tx 0 pkts 0 B, forwarded 0; drops: tx-refused=1; events: none; shaper: tx-loss=1 rx-loss=1/,
    );
    // Stopped: the devices are closed and deliver nothing more.
    a.inject(packet);
    expect(r.router.stats().ports[0]!.counters.rxPackets).toBe(1);
    expect(Ipv4View.parse(packet).ttl).toBe(63);
  });

  test('a device that fails to open closes the ones already open', () => {
    const opened: MemoryLink[] = [];
    const config = resolveRouterConfig({ tun: ['a,10.1.0.1/24', 'b,10.2.0.1/24'] });
    let closed = 0;
    expect(() =>
      TunRouter.start(config, {
        logger: quietLogger(),
        clock: new VirtualClock(),
        openDevice: (o) => {
          if (o.name === 'b') throw Object.assign(new Error('name taken'), { code: 'EBUSY' });
          const link = new MemoryLink(o.name, o.mtu);
          const close = link.close.bind(link);
          link.close = () => {
            closed++;
            close();
          };
          opened.push(link);
          return link;
        },
      }),
    ).toThrow(/name taken/);
    expect(opened).toHaveLength(1);
    expect(closed).toBeGreaterThanOrEqual(1);
  });
});
