import { SimNetwork } from '../link/sim-network';
import { RealClock } from '../time/real-clock';
import type { VirtualClock } from '../time/virtual-clock';
import type { TcpSocket } from './net';
import { runUntil, Stack } from './stack';

// Stack.close() leaves nothing running: no TCP timer (TIME-WAIT, retransmission, keepalive), no reassembly timer.

function pair(time: 'virtual' | 'real') {
  const net = new SimNetwork({ seed: 3, time });
  const ha = net.addHost('a');
  const hb = net.addHost('b');
  net.connect(ha, hb, { a: '10.0.0.1/24', b: '10.0.0.2/24', aToB: { delayMs: 1 }, bToA: { delayMs: 1 } });
  const a = new Stack({ clock: net.clock, seed: 'a' });
  a.addSimHost(ha);
  const b = new Stack({ clock: net.clock, seed: 'b' });
  b.addSimHost(hb);
  return { net, a, b };
}

/** A finished exchange (a TIME-WAIT on the client), one live connection with data in flight, and a listener. */
async function busy(a: Stack, b: Stack): Promise<{ live: TcpSocket; closedEvents: () => number }> {
  let closedEvents = 0;
  b.createServer((s) => {
    s.on('data', () => {});
    s.on('end', () => s.end());
    s.on('error', () => {});
  }).listen(80);
  const first = a.connect({ host: '10.0.0.2', port: 80 });
  first.resume();
  first.on('close', () => closedEvents++);
  first.end('hello');
  await runUntil(a, () => closedEvents === 1);
  expect(a.tcp.connections.map((c) => c.state)).toEqual(['TIME-WAIT']);
  const live = a.connect({ host: '10.0.0.2', port: 80 });
  live.on('error', () => {});
  live.on('close', () => closedEvents++);
  let connected = false;
  live.on('connect', () => (connected = true));
  await runUntil(a, () => connected);
  live.write(Buffer.alloc(100_000, 1));
  live.setKeepAlive(true, 1000);
  return { live, closedEvents: () => closedEvents };
}

describe('Stack.close(): connections reset, listeners gone, no timer left', () => {
  test('virtual time: the clock has nothing due once the RSTs have crossed the wire', async () => {
    const { net, a, b } = pair('virtual');
    const clock = net.clock as VirtualClock;
    const { closedEvents } = await busy(a, b);
    const peerConnections = b.tcp.connections.length;
    expect(peerConnections).toBeGreaterThan(0);
    a.close();
    expect(a.tcp.connections).toHaveLength(0);
    b.close();
    expect(b.tcp.connections).toHaveLength(0);
    // Only the wire's deliveries of the last packets (the RSTs) may remain, at most 1 ms away.
    clock.runUntilIdle({ until: clock.now() + 10 });
    await runUntil(clock, () => closedEvents() === 2, { timeoutMs: 10 });
    expect(clock.nextDue()).toBeUndefined();
    net.close();
  });

  test('the peer of a closed stack hears a RST (a daemon shutting down: "connections reset")', async () => {
    const { net, a, b } = pair('virtual');
    let serverError: (Error & { code?: string }) | undefined;
    let accepted = false;
    b.createServer((s) => {
      accepted = true;
      s.on('error', (e) => (serverError = e));
    }).listen(81);
    const c = a.connect({ host: '10.0.0.2', port: 81 });
    c.on('error', () => {});
    await runUntil(a, () => accepted);
    a.close();
    await runUntil(b, () => serverError !== undefined, { timeoutMs: 1000 });
    expect(serverError?.code).toBe('ECONNRESET');
    b.close();
    net.close();
  });

  test('real time: after close() no timer of the clock is pending (the process can exit)', async () => {
    const { net, a, b } = pair('real');
    const clock = net.clock as RealClock;
    expect(clock).toBeInstanceOf(RealClock);
    await busy(a, b);
    a.close();
    b.close();
    // The wire's last deliveries are immediates; let them run.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(clock.pendingTimers).toBe(0);
    net.close();
  });
});
