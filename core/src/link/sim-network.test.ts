import { VirtualClock } from '../time/virtual-clock';
import { SimNetwork } from './sim-network';

describe('SimNetwork', () => {
  test('several connects between two hosts make several independent paths', async () => {
    const net = new SimNetwork({ seed: 1 });
    const client = net.addHost('client');
    const server = net.addHost('server');
    const wifi = net.connect(client, server, { a: '10.0.1.1/24', b: '10.0.1.2/24', aToB: { delayMs: 5 } });
    net.connect(client, server, { a: '10.0.2.1/24', b: '10.0.2.2/24', aToB: { delayMs: 40 } });
    expect(client.interfaces.map((i) => `${i.name} ${i.address}/${i.prefixLength}`)).toEqual([
      'eth0 10.0.1.1/24',
      'eth1 10.0.2.1/24',
    ]);
    const arrivals: string[] = [];
    for (const itf of server.interfaces) {
      itf.link.onReceive((p) => arrivals.push(`${itf.name}:${p[0]}@${net.clock.now()}`));
    }
    client.interfaces[0]!.link.send(Uint8Array.of(1));
    client.interfaces[1]!.link.send(Uint8Array.of(2));
    await net.run();
    expect(arrivals).toEqual(['eth0:1@5', 'eth1:2@40']);
    wifi.setUp(false);
    expect(client.interfaces[0]!.link.isUp).toBe(false);
    expect(server.interfaceFor('10.0.2.2')?.link.isUp).toBe(true);
    net.close();
  });

  test('virtual time is deterministic by seed', async () => {
    const trace = async (seed: number) => {
      const net = new SimNetwork({ seed });
      const a = net.addHost('a');
      const b = net.addHost('b');
      net.connect(a, b, { a: 'fd00::1/64', b: 'fd00::2/64', aToB: { delayMs: 10, jitterMs: 5, loss: 0.2 } });
      const got: string[] = [];
      b.interfaces[0]!.link.onReceive((p) => got.push(`${p[0]}@${net.clock.now().toFixed(4)}`));
      for (let i = 0; i < 200; i++) a.interfaces[0]!.link.send(Uint8Array.of(i));
      await net.run();
      return got;
    };
    expect(await trace(11)).toEqual(await trace(11));
    expect(await trace(11)).not.toEqual(await trace(12));
  });

  test('runs in real time too', async () => {
    const net = new SimNetwork({ time: 'real' });
    expect(net.isVirtual).toBe(false);
    const a = net.addHost('a');
    const b = net.addHost('b');
    net.connect(a, b, { a: '10.0.0.1/30', b: '10.0.0.2/30', aToB: { delayMs: 30 } });
    let arrivedAt = -1;
    b.interfaces[0]!.link.onReceive(() => (arrivedAt = net.clock.now()));
    const sentAt = net.clock.now();
    a.interfaces[0]!.link.send(Uint8Array.of(1));
    await net.run({ done: () => arrivedAt >= 0, until: sentAt + 2000 });
    expect(arrivedAt - sentAt).toBeGreaterThanOrEqual(29);
    net.close();
  });

  test('bad input gets a clear error', () => {
    const net = new SimNetwork();
    const a = net.addHost('a');
    const b = net.addHost('b');
    expect(() => net.addHost('a')).toThrow(/already exists/);
    expect(() => net.connect(a, b, { a: '10.0.0.1', b: '10.0.0.2/24' })).toThrow(/prefix length/);
    expect(() => net.connect(a, b, { a: '10.0.0.1/33', b: '10.0.0.2/24' })).toThrow(/bad prefix/);
    expect(net.clock).toBeInstanceOf(VirtualClock);
  });
});
