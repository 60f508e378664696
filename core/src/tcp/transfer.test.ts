import type { TcpConnection } from './connection';
import { payload, pump, sha256, sink, twoStacks } from './test-harness';

function transfer(size: number, opts: Parameters<typeof twoStacks>[0] = {}) {
  const env = twoStacks(opts);
  const { tcpA, tcpB, clock, addrB } = env;
  const listener = tcpB.listen(80);
  let server: TcpConnection | undefined;
  let received: ReturnType<typeof sink> | undefined;
  listener.onAcceptable = () => {
    server = listener.accept()!;
    received = sink(server, () => tcpB.poke(server!));
    server.events.onRemoteEnd = ((prev) => () => {
      prev?.();
      server!.close();
      tcpB.poke(server!);
    })(server.events.onRemoteEnd);
  };
  const data = payload(size, opts.seed ?? 1);
  const client = tcpA.connect({ address: addrB, port: 80 });
  let clientClosed = false;
  client.events.onClosed = () => {
    clientClosed = true;
  };
  pump(client, data, () => tcpA.poke(client));
  clock.runUntilIdle({ until: 600_000 });
  return { env, client, server, received, data, clientClosed };
}

describe('TCP transfers between two stacks (virtual time)', () => {
  test('1 MB over an ideal path arrives intact and both sides close', () => {
    const r = transfer(1_000_000);
    expect(r.received!.bytes()).toBe(1_000_000);
    expect(sha256(r.received!.chunks)).toBe(sha256(r.data));
    expect(r.received!.eof()).toBe(true);
    expect(r.clientClosed).toBe(true);
    expect(r.server!.state).toBe('CLOSED');
  });

  test.each([0.01, 0.05])('1 MB with %p random loss and 20 ms RTT', (loss) => {
    const r = transfer(1_000_000, { aToB: { delayMs: 10, loss }, bToA: { delayMs: 10, loss }, seed: 3 });
    expect(r.received!.bytes()).toBe(1_000_000);
    expect(sha256(r.received!.chunks)).toBe(sha256(r.data));
  });
});
