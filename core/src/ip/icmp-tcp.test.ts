import { createHash } from 'node:crypto';
import type { TcpSocket } from '../socket/net';
import { runUntil } from '../socket/stack';
import type { TcpConnection } from '../tcp/connection';
import { Random } from '../util/random';
import { Prefix, parseIp } from '../wire/address';
import { Icmpv4DestUnreachableCode } from '../wire/icmpv4';
import { Icmpv6DestUnreachableCode } from '../wire/icmpv6';
import { buildPacket } from '../wire/packet';
import { TcpFlags } from '../wire/tcp';
import { routedStacks } from './test-router';

// ICMP errors and path MTU discovery end to end: two stacks with a stub router between
// them that answers as a real router would, in virtual time, seeded.

type CodedError = Error & { code?: string; syscall?: string; address?: string; port?: number };

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function connectAndWatch(socket: TcpSocket): { error?: CodedError; connected: boolean; closed: boolean } {
  const r: { error?: CodedError; connected: boolean; closed: boolean } = { connected: false, closed: false };
  socket.on('connect', () => (r.connected = true));
  socket.on('error', (e: CodedError) => (r.error = e));
  socket.on('close', () => (r.closed = true));
  return r;
}

/** Sends `data` from a to b through the router and returns what b received, and when. */
async function transfer(env: ReturnType<typeof routedStacks>, data: Uint8Array, port = 80) {
  const { a, b, clock } = env;
  const chunks: Buffer[] = [];
  let ended = false;
  b.createServer((s) => {
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      ended = true;
      s.end();
    });
  }).listen(port);
  const client = a.connect({ host: env.addrB, port });
  const watch = connectAndWatch(client);
  client.resume();
  client.end(data);
  const started = clock.now();
  await runUntil(a, () => ended && watch.closed, { timeoutMs: 600_000 });
  const received = Buffer.concat(chunks);
  return { received, watch, elapsedMs: clock.now() - started, client };
}

describe('ICMP errors reach the TCP connection they concern (RFC 1122 §4.2.3.9, RFC 5461)', () => {
  const cases: [string, number, string][] = [
    ['host unreachable', Icmpv4DestUnreachableCode.HOST_UNREACHABLE, 'EHOSTUNREACH'],
    ['net unreachable', Icmpv4DestUnreachableCode.NET_UNREACHABLE, 'ENETUNREACH'],
    ['port unreachable', Icmpv4DestUnreachableCode.PORT_UNREACHABLE, 'ECONNREFUSED'],
    ['protocol unreachable', Icmpv4DestUnreachableCode.PROTOCOL_UNREACHABLE, 'ENOPROTOOPT'],
    ['communication administratively prohibited', Icmpv4DestUnreachableCode.ADMIN_PROHIBITED, 'EHOSTUNREACH'],
  ];
  test.each(cases)('SYN-SENT, IPv4 %s (code %i): connect fails with %s at once', async (_name, code, errno) => {
    const env = routedStacks();
    env.router.unreachable = [{ prefix: Prefix.parse('10.9.0.0/16'), code }];
    const socket = env.a.connect({ host: '10.9.1.2', port: 80 });
    const r = connectAndWatch(socket);
    await runUntil(env.a, () => r.closed);
    expect(r.connected).toBe(false);
    expect(r.error?.code).toBe(errno);
    expect(r.error?.syscall).toBe('connect');
    expect(r.error?.message).toBe(`connect ${errno} 10.9.1.2:80`);
    // One round trip to the router (2 × 5 ms), far below the 1 s initial RTO of the SYN.
    expect(env.clock.now()).toBeLessThan(50);
    expect(env.a.ip.counters.icmpErrorsDelivered).toBe(1);
    expect(env.a.tcp.connections).toHaveLength(0);
  });

  test.each([
    ['no route', Icmpv6DestUnreachableCode.NO_ROUTE, 'ENETUNREACH'],
    ['address unreachable', Icmpv6DestUnreachableCode.ADDRESS_UNREACHABLE, 'EHOSTUNREACH'],
    ['port unreachable', Icmpv6DestUnreachableCode.PORT_UNREACHABLE, 'ECONNREFUSED'],
    ['administratively prohibited', Icmpv6DestUnreachableCode.ADMIN_PROHIBITED, 'EACCES'],
  ])('SYN-SENT, ICMPv6 %s (code %i): connect fails with %s', async (_name, code, errno) => {
    const env = routedStacks({ v6: true });
    env.router.unreachable = [{ prefix: Prefix.parse('fd00:9::/32'), code }];
    const socket = env.a.connect({ host: 'fd00:9::2', port: 443 });
    const r = connectAndWatch(socket);
    await runUntil(env.a, () => r.closed);
    expect(r.error?.code).toBe(errno);
    expect(r.error?.message).toBe(`connect ${errno} fd00:9::2:443`);
    expect(env.clock.now()).toBeLessThan(50);
  });

  test.each([
    ['port unreachable (hard)', Icmpv4DestUnreachableCode.PORT_UNREACHABLE, 0],
    ['host unreachable (soft)', Icmpv4DestUnreachableCode.HOST_UNREACHABLE, 1],
  ])(
    'a listener’s SYN-RECEIVED connection whose SYN-ACK earns %s: dropped only if hard (as Linux)',
    async (_n, code, left) => {
      const env = routedStacks();
      env.b.createServer(() => {}).listen(80);
      // Everything towards a is refused: a's SYN gets through, b's SYN-ACK earns the ICMP error.
      env.router.unreachable = [{ prefix: Prefix.parse('10.0.1.0/24'), code }];
      const socket = env.a.connect({ host: '10.0.2.1', port: 80 });
      socket.on('error', () => {});
      await runUntil(env.a, () => env.b.ip.counters.icmpErrorsDelivered === 1);
      expect(env.clock.now()).toBeLessThan(100);
      expect(env.b.tcp.connections).toHaveLength(left);
      socket.destroy();
    },
  );

  test('ESTABLISHED: host unreachable is a soft error; the timeout then reports EHOSTUNREACH, not ETIMEDOUT', async () => {
    const env = routedStacks({ tcp: { userTimeoutMs: 20_000 } });
    let server: TcpSocket | undefined;
    env.b.createServer((s) => (server = s)).listen(80);
    const socket = env.a.connect({ host: '10.0.2.1', port: 80 });
    const r = connectAndWatch(socket);
    await runUntil(env.a, () => r.connected && server !== undefined);
    // The path to b breaks: the router now answers every packet to b with host unreachable.
    env.router.unreachable = [
      { prefix: Prefix.parse('10.0.2.0/24'), code: Icmpv4DestUnreachableCode.HOST_UNREACHABLE },
    ];
    socket.write(Buffer.alloc(10_000, 1));
    const conn = socket.connection as TcpConnection;
    await runUntil(env.a, () => conn.softError !== undefined);
    // Soft: the connection lives on and keeps retransmitting.
    expect(conn.softError).toBe('EHOSTUNREACH');
    expect(conn.state).toBe('ESTABLISHED');
    expect(r.error).toBeUndefined();
    await runUntil(env.a, () => r.closed, { timeoutMs: 60_000 });
    expect(r.error?.code).toBe('EHOSTUNREACH');
    expect(r.error?.syscall).toBe('read');
  });

  test('ESTABLISHED, control: a silent black hole still ends in ETIMEDOUT', async () => {
    const env = routedStacks({ tcp: { userTimeoutMs: 20_000 } });
    env.b.createServer(() => {}).listen(80);
    const socket = env.a.connect({ host: '10.0.2.1', port: 80 });
    const r = connectAndWatch(socket);
    await runUntil(env.a, () => r.connected);
    env.router.blackHole = true;
    socket.write(Buffer.alloc(10_000, 1));
    await runUntil(env.a, () => r.closed, { timeoutMs: 60_000 });
    expect(r.error?.code).toBe('ETIMEDOUT');
  });

  test('a soft error is forgotten once an ACK gets through (as Linux tcp_ack)', async () => {
    const env = routedStacks();
    let got = 0;
    env.b.createServer((s) => s.on('data', (c: Buffer) => (got += c.length))).listen(80);
    const socket = env.a.connect({ host: '10.0.2.1', port: 80 });
    const r = connectAndWatch(socket);
    await runUntil(env.a, () => r.connected);
    const conn = socket.connection as TcpConnection;
    env.router.unreachable = [{ prefix: Prefix.parse('10.0.2.0/24'), code: Icmpv4DestUnreachableCode.NET_UNREACHABLE }];
    socket.write(Buffer.alloc(1000, 1));
    await runUntil(env.a, () => conn.softError !== undefined);
    expect(conn.softError).toBe('ENETUNREACH');
    env.router.unreachable = [];
    await runUntil(env.a, () => got === 1000, { timeoutMs: 10_000 });
    await runUntil(env.a, () => conn.softError === undefined, { timeoutMs: 10_000 });
    expect(r.error).toBeUndefined();
  });

  test('RFC 5927 §4.1: a forged ICMP error quoting a sequence number outside SND.UNA..SND.NXT is ignored and counted', async () => {
    const env = routedStacks();
    const data = new Random(3).fill(new Uint8Array(200_000));
    let server: TcpSocket | undefined;
    const chunks: Buffer[] = [];
    env.b
      .createServer((s) => {
        server = s;
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('end', () => s.end());
      })
      .listen(80);
    const socket = env.a.connect({ host: '10.0.2.1', port: 80 });
    const r = connectAndWatch(socket);
    await runUntil(env.a, () => r.connected && server !== undefined);
    const conn = socket.connection as TcpConnection;
    const forge = (seq: number, src = conn.local.address): Uint8Array => {
      // The quoted segment: our address and port to b's, with the given sequence number.
      const quoted = buildPacket(
        { src, dst: conn.remote.address },
        {
          protocol: 'tcp',
          repr: {
            srcPort: conn.local.port,
            dstPort: conn.remote.port,
            seq,
            ack: 0,
            flags: TcpFlags.ACK,
            window: 0,
            urgentPointer: 0,
            options: [],
            payload: new Uint8Array(0),
          },
        },
      );
      return buildPacket(
        { src: parseIp('10.0.1.254'), dst: conn.local.address },
        { protocol: 'icmpv4', repr: { kind: 'destUnreachable', code: 3, invoking: quoted.subarray(0, 28) } },
      );
    };
    env.router.injectLeft(forge((conn.sndUna - 1_000_000) >>> 0));
    env.router.injectLeft(forge((conn.sndMax + 70_000) >>> 0));
    env.router.injectLeft(forge(conn.sndUna, parseIp('10.0.1.99'))); // quotes a packet that was never ours
    socket.resume();
    socket.end(data);
    await runUntil(env.a, () => r.closed, { timeoutMs: 60_000 });
    expect(r.error).toBeUndefined();
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(data));
    expect(env.a.tcp.drops['icmp-out-of-window']).toBe(2);
    expect(env.a.ip.drops['icmp-error-not-from-us']).toBe(1);
    expect(conn.softError).toBeUndefined();
    expect(conn.stats.icmpErrors).toBe(0);
  });
});

describe('Path MTU discovery (RFC 1191, RFC 8201)', () => {
  test('a 1400-byte bottleneck: 1 MB arrives intact, every segment after the ICMP fits, no congestion response', async () => {
    const env = routedStacks({ seed: 4 });
    env.router.forwardMtu = 1400;
    const data = new Random(9).fill(new Uint8Array(1_000_000));
    const baseline = await transfer(routedStacks({ seed: 4 }), data);
    const { received, watch, client, elapsedMs } = await transfer(env, data);
    // The discovery costs about one round trip to the router, not a slower transfer: the
    // receiver counts the smaller segments as full-sized and keeps ACKing every second one.
    expect(elapsedMs).toBeLessThanOrEqual(baseline.elapsedMs + 20);
    expect(watch.error).toBeUndefined();
    expect(received.length).toBe(data.length);
    expect(sha256(received)).toBe(sha256(data));
    // The router refused some 1500-byte packets (fragmentation needed, mtu 1400) and forwarded only what fit.
    expect(env.router.counters.icmpSent).toBeGreaterThan(0);
    expect(env.router.counters.largestForwarded).toBeLessThanOrEqual(1400);
    expect(env.router.forwardedToRight.filter((n) => n === 1400).length).toBeGreaterThan(500);
    expect(env.a.ip.route(parseIp('10.0.2.1'))?.mtu).toBe(1400);
    // Resent at once, without waiting for the RTO.
    const conn = client.connection as TcpConnection;
    expect(conn.stats.retransmitTimeouts).toBe(0);
    expect(conn.sendMss()).toBe(1360);
    expect(env.a.ip.drops['tx-too-big']).toBeUndefined();
  });

  test('the path MTU drops twice in the middle of a lossy transfer (in and out of SACK recovery): 4 MB intact', async () => {
    const env = routedStacks({ seed: 11 });
    env.left.configure({ aToB: { delayMs: 5, loss: 0.02 }, bToA: { delayMs: 5, loss: 0.02 } });
    const data = new Random(12).fill(new Uint8Array(4_000_000));
    env.clock.setTimer(150, () => (env.router.forwardMtu = 1300));
    env.clock.setTimer(400, () => (env.router.forwardMtu = 1100));
    const { received, watch, client } = await transfer(env, data);
    expect(watch.error).toBeUndefined();
    expect(received.length).toBe(data.length);
    expect(sha256(received)).toBe(sha256(data));
    expect(env.a.ip.route(parseIp('10.0.2.1'))?.mtu).toBe(1100);
    expect((client.connection as TcpConnection).sendMss()).toBe(1060);
    expect(env.router.counters.icmpSent).toBeGreaterThan(1);
  });

  test('a new connection to the same destination starts at the learned path MTU; entries age out after 10 min', async () => {
    const env = routedStacks({ seed: 5 });
    env.router.forwardMtu = 1300;
    const data = new Random(1).fill(new Uint8Array(100_000));
    await transfer(env, data);
    const icmpAfterFirst = env.router.counters.icmpSent;
    expect(icmpAfterFirst).toBeGreaterThan(0);
    const second = await transfer(env, data, 81);
    expect(sha256(second.received)).toBe(sha256(data));
    expect(env.router.counters.icmpSent).toBe(icmpAfterFirst); // nothing too big was sent again
    expect((second.client.connection as TcpConnection).sendMss()).toBe(1260);
    env.clock.advance(10 * 60_000);
    expect(env.a.ip.route(parseIp('10.0.2.1'))?.mtu).toBe(1500);
  });

  test('a next-hop MTU of 0 (pre-RFC 1191 router): the plateau table (1492) is used', async () => {
    const env = routedStacks({ seed: 6 });
    env.router.forwardMtu = 1492;
    // An old router: the same refusals, but with no MTU in them.
    const send = env.router.left.link.send.bind(env.router.left.link);
    env.router.left.link.send = (p: Uint8Array) => {
      if (p[9] === 1 && p[20] === 3 && p[21] === 4) {
        p[26] = 0;
        p[27] = 0;
        // Fix the ICMP checksum after zeroing the MTU field.
        p[22] = 0;
        p[23] = 0;
        let sum = 0;
        for (let i = 20; i < p.length; i += 2) sum += (p[i]! << 8) | (p[i + 1] ?? 0);
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
        const c = ~sum & 0xffff;
        p[22] = c >> 8;
        p[23] = c & 0xff;
      }
      return send(p);
    };
    const data = new Random(2).fill(new Uint8Array(300_000));
    const { received } = await transfer(env, data);
    expect(sha256(received)).toBe(sha256(data));
    expect(env.a.ip.route(parseIp('10.0.2.1'))?.mtu).toBe(1492);
  });

  test('IPv6: packet too big with 1280 → 1 MB intact, segments ≤ 1280', async () => {
    const env = routedStacks({ seed: 7, v6: true });
    env.router.forwardMtu = 1280;
    const data = new Random(8).fill(new Uint8Array(1_000_000));
    const { received, watch } = await transfer(env, data);
    expect(watch.error).toBeUndefined();
    expect(sha256(received)).toBe(sha256(data));
    expect(env.router.counters.largestForwarded).toBeLessThanOrEqual(1280);
    expect(env.a.ip.route(parseIp('fd00:2::1'))?.mtu).toBe(1280);
  });

  test('IPv6: a packet too big below 1280 is discarded (RFC 8201 §4)', async () => {
    const env = routedStacks({ seed: 8, v6: true });
    env.router.forwardMtu = 1000;
    env.b.createServer(() => {}).listen(80);
    const socket = env.a.connect({ host: 'fd00:2::1', port: 80 });
    const r = connectAndWatch(socket);
    await runUntil(env.a, () => r.connected);
    socket.write(Buffer.alloc(5000, 7));
    await runUntil(env.a, () => env.a.ip.drops['icmpv6-ptb-below-minimum'] !== undefined);
    expect(env.a.ip.route(parseIp('fd00:2::1'))?.mtu).toBe(1500);
    socket.destroy();
  });
});
