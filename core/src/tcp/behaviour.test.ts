import { parseIp } from '../wire/address';
import { buildPacket } from '../wire/packet';
import { TcpFlags } from '../wire/tcp';
import { ChallengeAckBudget, type TcpConnection } from './connection';
import type { TcpError } from './segment';
import { payload, pump, sha256, sink, twoStacks } from './test-harness';

const MB = 1_000_000;

describe('TCP behaviour between two stacks (virtual time)', () => {
  test('half-close, client first: the client ends its side, then still reads the reply', () => {
    const { tcpA, tcpB, clock, addrB } = twoStacks({ aToB: { delayMs: 5 }, bToA: { delayMs: 5 } });
    const request = payload(50_000, 1);
    const reply = payload(MB, 2);
    const listener = tcpB.listen(80);
    let serverGot: ReturnType<typeof sink> | undefined;
    listener.onAcceptable = () => {
      const s = listener.accept()!;
      serverGot = sink(s, () => tcpB.poke(s));
      // Reply only once the client's FIN arrived: the half-closed connection still carries data back.
      const prev = s.events.onRemoteEnd;
      s.events.onRemoteEnd = () => {
        prev?.();
        expect(s.state).toBe('CLOSE-WAIT');
        pump(s, reply, () => tcpB.poke(s));
      };
    };
    const client = tcpA.connect({ address: addrB, port: 80 });
    const clientGot = sink(client, () => tcpA.poke(client));
    const states: string[] = [];
    client.events.onStateChange = (_f, t) => states.push(t);
    pump(client, request, () => tcpA.poke(client));
    clock.runUntilIdle();
    expect(sha256(serverGot!.chunks)).toBe(sha256(request));
    expect(sha256(clientGot.chunks)).toBe(sha256(reply));
    expect(clientGot.eof()).toBe(true);
    expect(states).toEqual(['ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSED']);
  });

  test('half-close, server first: the server ends, the client keeps sending', () => {
    const { tcpA, tcpB, clock, addrB } = twoStacks({ aToB: { delayMs: 5 }, bToA: { delayMs: 5 } });
    const upload = payload(MB, 3);
    const listener = tcpB.listen(80);
    let serverGot: ReturnType<typeof sink> | undefined;
    let server: TcpConnection | undefined;
    listener.onAcceptable = () => {
      server = listener.accept()!;
      serverGot = sink(server, () => tcpB.poke(server!));
      server.shutdownWrite();
      tcpB.poke(server);
    };
    const client = tcpA.connect({ address: addrB, port: 80 });
    const clientGot = sink(client, () => tcpA.poke(client));
    client.events.onRemoteEnd = ((prev) => () => {
      prev?.();
      expect(client.state).toBe('CLOSE-WAIT');
      pump(client, upload, () => tcpA.poke(client));
    })(client.events.onRemoteEnd);
    clock.runUntilIdle();
    expect(clientGot.bytes()).toBe(0);
    expect(sha256(serverGot!.chunks)).toBe(sha256(upload));
    expect(client.state).toBe('CLOSED');
    expect(server!.state).toBe('CLOSED');
  });

  test('both sides close at once: FIN-WAIT-1 → CLOSING → TIME-WAIT on both', () => {
    const { tcpA, tcpB, clock, addrB } = twoStacks({ aToB: { delayMs: 20 }, bToA: { delayMs: 20 } });
    const listener = tcpB.listen(80);
    let server: TcpConnection | undefined;
    const serverStates: string[] = [];
    listener.onAcceptable = () => {
      server = listener.accept()!;
      server.events.onStateChange = (_f, t) => serverStates.push(t);
    };
    const client = tcpA.connect({ address: addrB, port: 80 });
    const clientStates: string[] = [];
    client.events.onStateChange = (_f, t) => clientStates.push(t);
    clock.runUntilIdle({ done: () => server?.state === 'ESTABLISHED' && client.state === 'ESTABLISHED' });
    clock.advance(100);
    client.close();
    server!.close();
    tcpA.poke(client);
    tcpB.poke(server!);
    clock.runUntilIdle();
    expect(clientStates.slice(-4)).toEqual(['FIN-WAIT-1', 'CLOSING', 'TIME-WAIT', 'CLOSED']);
    expect(serverStates.slice(-4)).toEqual(['FIN-WAIT-1', 'CLOSING', 'TIME-WAIT', 'CLOSED']);
  });

  test('1,000 short connections in a row, each echoed and checked', () => {
    const { tcpA, tcpB, clock, addrB } = twoStacks({ aToB: { delayMs: 1 }, bToA: { delayMs: 1 } });
    const listener = tcpB.listen(7);
    listener.onAcceptable = () => {
      for (let s = listener.accept(); s !== undefined; s = listener.accept()) {
        const conn = s;
        conn.events.onReadable = () => {
          const d = conn.read();
          if (d.length > 0) conn.send(d);
          tcpB.poke(conn);
        };
        conn.events.onRemoteEnd = () => {
          conn.close();
          tcpB.poke(conn);
        };
      }
    };
    let ok = 0;
    const run = (i: number): void => {
      const message = new TextEncoder().encode(`message ${i} `.repeat(10));
      const c = tcpA.connect({ address: addrB, port: 7 });
      const got = sink(c, () => tcpA.poke(c));
      c.events.onEstablished = () => {
        c.send(message);
        c.shutdownWrite();
        tcpA.poke(c);
      };
      c.events.onRemoteEnd = ((prev) => () => {
        prev?.();
        if (sha256(got.chunks) === sha256(message)) ok++;
        if (i + 1 < 1000) run(i + 1);
      })(c.events.onRemoteEnd);
    };
    run(0);
    clock.runUntilIdle();
    expect(ok).toBe(1000);
    expect(tcpA.connections).toHaveLength(0);
    expect(tcpB.connections).toHaveLength(0);
  });

  /** Establishes a connection, cuts the path, sends data; returns how the client ended. */
  function vanish(configA: Parameters<typeof twoStacks>[0]['configA']) {
    const { tcpA, tcpB, clock, addrB, path } = twoStacks({ aToB: { delayMs: 10 }, bToA: { delayMs: 10 }, configA });
    tcpB.listen(80);
    const client = tcpA.connect({ address: addrB, port: 80 });
    let error: TcpError | undefined;
    let failedAt = 0;
    client.events.onClosed = (e) => {
      error = e;
      failedAt = clock.now();
    };
    clock.runUntilIdle({ done: () => client.state === 'ESTABLISHED' });
    path.setUp(false);
    const lostAt = clock.now();
    client.send(payload(10_000));
    tcpA.poke(client);
    clock.runUntilIdle();
    return { error, afterMs: failedAt - lostAt, client };
  }

  test('a peer that vanishes: ETIMEDOUT after the retransmission limit', () => {
    const { error, afterMs, client } = vanish({ maxRetransmits: 6 });
    expect(error?.code).toBe('ETIMEDOUT');
    // RFC 6298 backoff: 7 timeouts from ~200 ms doubling: about 0.2·(2^7 − 1) = 25 s.
    expect(afterMs).toBeGreaterThan(20_000);
    expect(afterMs).toBeLessThan(60_000);
    expect(client.stats.retransmitTimeouts).toBe(6);
  });

  test('a peer that vanishes: ETIMEDOUT at the user timeout (RFC 5482)', () => {
    const { error, afterMs } = vanish({ userTimeoutMs: 5000 });
    expect(error?.code).toBe('ETIMEDOUT');
    expect(afterMs).toBeGreaterThanOrEqual(5000);
    expect(afterMs).toBeLessThan(5000 + 7000);
  });

  test('connecting to a closed port gives ECONNREFUSED (RST), to a dead host ETIMEDOUT after the SYN retries', () => {
    const { tcpA, clock, addrB, path } = twoStacks({ configA: { synRetries: 3 } });
    const refused = tcpA.connect({ address: addrB, port: 9 });
    let e1: TcpError | undefined;
    refused.events.onClosed = (e) => (e1 = e);
    clock.runUntilIdle();
    expect(e1?.code).toBe('ECONNREFUSED');
    path.setUp(false);
    const dead = tcpA.connect({ address: addrB, port: 9 });
    let e2: TcpError | undefined;
    dead.events.onClosed = (e) => (e2 = e);
    const start = clock.now();
    clock.runUntilIdle();
    expect(e2?.code).toBe('ETIMEDOUT');
    // 1 s initial RTO, doubled: 1 + 2 + 4 + 8 = 15 s for three retries.
    expect(clock.now() - start).toBeCloseTo(15_000, -2);
  });
});

describe('TCP goodput sanity (virtual time)', () => {
  function goodput(size: number, shape: Parameters<typeof twoStacks>[0]) {
    const { tcpA, tcpB, clock, addrB } = twoStacks(shape);
    const listener = tcpB.listen(80);
    let got: ReturnType<typeof sink> | undefined;
    let doneAt = 0;
    listener.onAcceptable = () => {
      const s = listener.accept()!;
      got = sink(s, () => tcpB.poke(s));
      s.events.onRemoteEnd = ((prev) => () => {
        prev?.();
        doneAt = clock.now();
      })(s.events.onRemoteEnd);
    };
    const data = payload(size, 4);
    const client = tcpA.connect({ address: addrB, port: 80 });
    const start = clock.now();
    pump(client, data, () => tcpA.poke(client));
    clock.runUntilIdle({ done: () => doneAt > 0 });
    expect(sha256(got!.chunks)).toBe(sha256(data));
    return { bytesPerSec: size / ((doneAt - start) / 1000), client };
  }

  test('10 Mbit/s, 50 ms RTT, no loss: 20 MB reach at least 90% of the rate', () => {
    const rate = 1_250_000;
    const shape = { rateBytesPerSec: rate, delayMs: 25, queueBytes: 100_000 };
    const { bytesPerSec } = goodput(20 * MB, { aToB: shape, bToA: { delayMs: 25 }, seed: 2 });
    expect(bytesPerSec / rate).toBeGreaterThanOrEqual(0.9);
  });

  test('1% random loss, 50 ms RTT: NewReno stays within the Mathis bound', () => {
    // Mathis et al. (1997): throughput ≤ (MSS / RTT) · C / √p with C = √(3/2) ≈ 1.22 (an ACK per
    // segment; delayed ACKs lower it). MSS 1448 (timestamps on), RTT 50 ms, p = 0.01:
    // 1448 / 0.05 · 1.22 / 0.1 ≈ 354 kB/s. The link (100 Mbit/s) is not the limit.
    const mss = 1448;
    const bound = (mss / 0.05) * (Math.sqrt(1.5) / Math.sqrt(0.01));
    const { bytesPerSec } = goodput(10 * MB, {
      aToB: { rateBytesPerSec: 12_500_000, delayMs: 25, loss: 0.01, queueBytes: 1_000_000 },
      bToA: { delayMs: 25 },
      seed: 3,
      config: { receiveBuffer: 4 * MB, sendBuffer: 4 * MB },
    });
    expect(bytesPerSec).toBeLessThanOrEqual(bound * 1.1);
    // And it is not collapsing either: at least a third of the model's figure.
    expect(bytesPerSec).toBeGreaterThanOrEqual(bound / 3);
  });
});

describe('TCP layer input checks', () => {
  test('challenge ACKs share one stack-wide budget per second (RFC 5961 §7)', () => {
    const budget = new ChallengeAckBudget(3);
    expect([1, 2, 3, 4].map(() => budget.take(100))).toEqual([true, true, true, false]);
    expect(budget.take(1099)).toBe(false);
    expect(budget.take(1100)).toBe(true);
    const { tcpA, tcpB } = twoStacks({});
    expect(tcpA.challengeAcks).toBeInstanceOf(ChallengeAckBudget);
    expect(tcpA.challengeAcks).not.toBe(tcpB.challengeAcks);
  });

  test('a SYN from a multicast or broadcast source is ignored and counted (RFC 1122 §4.2.3.10)', () => {
    const { tcpB, clock, addrB, path } = twoStacks({});
    tcpB.listen(80);
    const replies: Uint8Array[] = [];
    path.a.onReceive((p) => replies.push(p));
    for (const src of ['224.0.0.1', '255.255.255.255', '0.0.0.0']) {
      path.a.send(
        buildPacket(
          { src: parseIp(src), dst: addrB },
          {
            protocol: 'tcp',
            repr: {
              srcPort: 1234,
              dstPort: 80,
              seq: 1,
              ack: 0,
              flags: TcpFlags.SYN,
              window: 1000,
              urgentPointer: 0,
              options: [],
              payload: new Uint8Array(0),
            },
          },
        ),
      );
    }
    clock.runUntilIdle();
    // The IP layer drops them first (RFC 1122 §3.2.1.3: not valid sources); TCP's own
    // check (bad-source) stays as the second line for a transport fed another way.
    const dropped = (tcpB.drops['bad-source'] ?? 0) + (tcpB.ip.drops['martian-source'] ?? 0);
    expect(dropped).toBe(3);
    expect(replies).toHaveLength(0);
    expect(tcpB.connections).toHaveLength(0);
  });
});
