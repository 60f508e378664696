import { createHash } from 'node:crypto';
import type { ShapeConfig } from '../link/shaper';
import { SimNetwork } from '../link/sim-network';
import type { TcpConfig } from '../tcp/config';
import { Random } from '../util/random';
import type { TcpServer, TcpSocket } from './net';
import { IPPROTO_MPTCP, IPPROTO_TCP, ProtocolRegistry, type SocketProtocol } from './protocols';
import { runUntil, Stack, TCP_SOCKET_PROTOCOL } from './stack';

// Two stacks on one simulated path, in virtual time, seeded.
interface World {
  net: SimNetwork;
  client: Stack;
  server: Stack;
  run(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  /** Runs the network for `ms` of virtual time. */
  advance(ms: number): Promise<void>;
  close(): void;
}

function world(opts: { seed?: number; aToB?: ShapeConfig; bToA?: ShapeConfig; tcp?: Partial<TcpConfig> } = {}): World {
  const net = new SimNetwork({ seed: opts.seed ?? 1 });
  const a = net.addHost('client');
  const b = net.addHost('server');
  net.connect(a, b, {
    a: '10.0.0.1/24',
    b: '10.0.0.2/24',
    aToB: opts.aToB ?? { delayMs: 5 },
    bToA: opts.bToA ?? { delayMs: 5 },
  });
  const client = new Stack({ clock: net.clock, seed: 'client', tcp: opts.tcp });
  client.addSimHost(a);
  const server = new Stack({ clock: net.clock, seed: 'server', tcp: opts.tcp });
  server.addSimHost(b);
  return {
    net,
    client,
    server,
    run: (predicate, timeoutMs = 60_000) => runUntil(client, predicate, { timeoutMs }),
    advance: (ms) => {
      const until = net.clock.now() + ms;
      net.clock.setTimer(ms, () => {}); // something due at the end, so the run never goes idle
      return runUntil(client, () => net.clock.now() >= until, { timeoutMs: ms + 1 });
    },
    close: () => {
      client.close();
      server.close();
      net.close();
    },
  };
}

function bytes(n: number, seed: number | string): Uint8Array {
  return new Random(seed).fill(new Uint8Array(n));
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Everything a socket emits, for assertions. */
interface Recorder {
  chunks: Buffer[];
  readonly received: Buffer;
  length: number;
  connected: boolean;
  ended: boolean;
  finished: boolean;
  closed: boolean;
  hadError: boolean | undefined;
  error: (Error & { code?: string; syscall?: string; errno?: number; address?: string; port?: number }) | undefined;
  events: string[];
}

function record(socket: TcpSocket, opts: { read?: boolean } = {}): Recorder {
  const r: Recorder = {
    chunks: [],
    get received() {
      return Buffer.concat(this.chunks);
    },
    length: 0,
    connected: false,
    ended: false,
    finished: false,
    closed: false,
    hadError: undefined,
    error: undefined,
    events: [],
  };
  if (opts.read !== false) {
    socket.on('data', (d: Buffer) => {
      r.chunks.push(d);
      r.length += d.length;
    });
  }
  socket.on('connect', () => {
    r.connected = true;
    r.events.push('connect');
  });
  socket.on('ready', () => r.events.push('ready'));
  socket.on('end', () => {
    r.ended = true;
    r.events.push('end');
  });
  socket.on('finish', () => {
    r.finished = true;
    r.events.push('finish');
  });
  socket.on('error', (e) => {
    r.error = e;
    r.events.push(`error:${(e as { code?: string }).code}`);
  });
  socket.on('close', (hadError: boolean) => {
    r.closed = true;
    r.hadError = hadError;
    r.events.push('close');
  });
  return r;
}

/** A server whose accepted sockets are recorded in order. */
function serve(
  stack: Stack,
  port: number,
  onSocket: (s: TcpSocket, r: Recorder) => void = () => {},
  opts: Parameters<Stack['createServer']>[0] = {},
): { server: TcpServer; sockets: TcpSocket[]; records: Recorder[] } {
  const sockets: TcpSocket[] = [];
  const records: Recorder[] = [];
  const server = stack.createServer(typeof opts === 'function' ? {} : opts, (s) => {
    const r = record(s);
    sockets.push(s);
    records.push(r);
    onSocket(s, r);
  });
  server.listen(port);
  return { server, sockets, records };
}

describe('TcpSocket and TcpServer over two stacks', () => {
  test('echo round trip: bytes and SHA-256 match, endpoints and counters as Node reports them', async () => {
    const w = world();
    let listening = false;
    const { server, records: serverSide } = serve(w.server, 7, (s) => s.pipe(s));
    server.on('listening', () => (listening = true));
    const payload = bytes(50_000, 'echo');
    const sock = w.client.connect({ host: '10.0.0.2', port: 7 });
    expect(sock.connecting).toBe(true);
    expect(sock.pending).toBe(true);
    expect(sock.readyState).toBe('opening');
    const r = record(sock);
    // Written before the handshake completes: buffered, as Node does.
    sock.write(payload.subarray(0, 10_000));
    sock.end(payload.subarray(10_000));
    await w.run(() => r.closed);
    expect(listening).toBe(true);
    expect(r.error).toBeUndefined();
    expect(r.events.slice(0, 2)).toEqual(['connect', 'ready']);
    expect(r.ended && r.finished).toBe(true);
    expect(r.hadError).toBe(false);
    expect(r.length).toBe(payload.length);
    expect(sha256(r.received)).toBe(sha256(payload));
    expect(sock.bytesRead).toBe(payload.length);
    expect(sock.bytesWritten).toBe(payload.length);
    expect(sock.remoteAddress).toBe('10.0.0.2');
    expect(sock.remotePort).toBe(7);
    expect(sock.remoteFamily).toBe('IPv4');
    expect(sock.localAddress).toBe('10.0.0.1');
    expect(sock.localPort).toBeGreaterThanOrEqual(32768);
    expect(sock.readyState).toBe('closed');
    await w.run(() => serverSide[0]?.closed === true);
    const peer = serverSide[0]!;
    expect(peer.error).toBeUndefined();
    expect(peer.length).toBe(payload.length);
    expect(server.address()).toEqual({ address: '0.0.0.0', family: 'IPv4', port: 7 });
    expect(w.client.sockets.size).toBe(0);
    expect(w.server.sockets.size).toBe(0);
    w.close();
  });

  test('1 MB each way at once: length and SHA-256 of both directions', async () => {
    const w = world({ aToB: { delayMs: 10, rateBytesPerSec: 5_000_000, queueBytes: 200_000 }, bToA: { delayMs: 10 } });
    const up = bytes(1 << 20, 'up');
    const down = bytes(1 << 20, 'down');
    const { records } = serve(
      w.server,
      5001,
      (s) => {
        s.end(down);
      },
      { allowHalfOpen: true },
    );
    const sock = w.client.connect({ host: '10.0.0.2', port: 5001, allowHalfOpen: true });
    const r = record(sock);
    sock.end(up);
    await w.run(() => r.closed && records[0]?.closed === true, 120_000);
    const s = records[0]!;
    expect(r.error).toBeUndefined();
    expect(s.error).toBeUndefined();
    expect(s.length).toBe(up.length);
    expect(sha256(s.received)).toBe(sha256(up));
    expect(r.length).toBe(down.length);
    expect(sha256(r.received)).toBe(sha256(down));
    w.close();
  });

  test('half-close: the client ends first and still reads the reply', async () => {
    const w = world();
    const request = bytes(20_000, 'request');
    const { records, sockets } = serve(
      w.server,
      80,
      (s, r) => {
        s.on('end', () => {
          // The whole request arrived (the client's FIN); answer with a digest of it.
          s.end(`${r.length} ${sha256(r.received)}`);
        });
      },
      { allowHalfOpen: true },
    );
    const sock = w.client.connect({ host: '10.0.0.2', port: 80 });
    const r = record(sock);
    sock.end(request);
    await w.run(() => r.finished);
    // Our FIN is out; the readable side is still open.
    expect(r.ended).toBe(false);
    expect(sock.readyState).toBe('readOnly');
    await w.run(() => r.closed);
    expect(r.error).toBeUndefined();
    expect(r.received.toString()).toBe(`${request.length} ${sha256(request)}`);
    await w.run(() => records[0]?.closed === true);
    expect(records[0]!.events).toEqual(['end', 'finish', 'close']);
    expect(sockets[0]!.bytesRead).toBe(request.length);
    w.close();
  });

  test('half-close: the server ends first; a half-open client replies; a default client ends itself', async () => {
    const w = world();
    const { records } = serve(w.server, 80, (s) => s.end('hello'));
    // allowHalfOpen: the client keeps writing after the server's FIN.
    const halfOpen = w.client.connect({ host: '10.0.0.2', port: 80, allowHalfOpen: true });
    const h = record(halfOpen);
    await w.run(() => h.ended);
    expect(h.received.toString()).toBe('hello');
    expect(h.finished).toBe(false);
    expect(halfOpen.readyState).toBe('writeOnly');
    halfOpen.end('reply after your FIN');
    await w.run(() => h.closed && records[0]?.closed === true);
    expect(records[0]!.received.toString()).toBe('reply after your FIN');
    expect(records[0]!.error).toBeUndefined();
    expect(h.error).toBeUndefined();

    // Node's default (allowHalfOpen false): 'end' ends the writable side too.
    const plain = w.client.connect({ host: '10.0.0.2', port: 80 });
    const p = record(plain);
    await w.run(() => p.closed && records[1]?.closed === true);
    expect(p.received.toString()).toBe('hello');
    expect(p.events).toEqual(['connect', 'ready', 'end', 'finish', 'close']);
    expect(p.hadError).toBe(false);
    expect(records[1]!.error).toBeUndefined();
    w.close();
  });

  test('destroy() with a write held by a full send buffer: the write callback hears ERR_STREAM_DESTROYED', async () => {
    const w = world();
    const { sockets } = serve(w.server, 80, () => {}, { pauseOnConnect: true });
    const sock = w.client.connect({ host: '10.0.0.2', port: 80, tcp: { sendBuffer: 4096 } });
    const r = record(sock);
    await w.run(() => r.connected && sockets.length === 1);
    let writeError: (Error & { code?: string }) | null | undefined;
    sock.write(bytes(1 << 20, 'big'), (e) => (writeError = e));
    await w.advance(1_000);
    expect(writeError).toBeUndefined();
    sock.destroy();
    await w.run(() => r.closed);
    expect(writeError?.code).toBe('ERR_STREAM_DESTROYED');
    expect(r.error).toBeUndefined();
    expect(sock.bytesWritten).toBeGreaterThan(0);
    expect(sock.bytesWritten).toBeLessThan(1 << 20);
    w.close();
  });

  test('destroy() resets the connection: the peer gets ECONNRESET', async () => {
    const w = world();
    const { records, sockets } = serve(w.server, 80);
    const sock = w.client.connect({ host: '10.0.0.2', port: 80 });
    const r = record(sock);
    await w.run(() => r.connected && sockets.length === 1);
    sock.write('some data');
    await w.run(() => records[0]!.length === 9);
    sockets[0]!.destroy();
    await w.run(() => r.closed && records[0]!.closed);
    expect(r.error?.code).toBe('ECONNRESET');
    expect(r.error?.syscall).toBe('read');
    expect(r.error?.errno).toBe(-104);
    expect(r.error?.message).toBe('read ECONNRESET');
    expect(r.hadError).toBe(true);
    expect(r.events.slice(-2)).toEqual(['error:ECONNRESET', 'close']);
    // The destroying side closes without an error.
    expect(records[0]!.error).toBeUndefined();
    expect(records[0]!.hadError).toBe(false);
    w.close();
  });

  test('connect to a port nobody listens on: ECONNREFUSED, as Node reports it', async () => {
    const w = world();
    const connectCb = jest.fn();
    const sock = w.client.connect({ host: '10.0.0.2', port: 81 }, connectCb);
    const r = record(sock);
    await w.run(() => r.closed);
    expect(connectCb).not.toHaveBeenCalled();
    expect(r.error?.code).toBe('ECONNREFUSED');
    expect(r.error?.errno).toBe(-111);
    expect(r.error?.syscall).toBe('connect');
    expect(r.error?.address).toBe('10.0.0.2');
    expect(r.error?.port).toBe(81);
    expect(r.error?.message).toBe('connect ECONNREFUSED 10.0.0.2:81');
    expect(r.hadError).toBe(true);
    w.close();
  });

  test('connect with no route: EHOSTUNREACH; not an IP literal: ENOTFOUND; unknown protocol: EPROTONOSUPPORT', async () => {
    const w = world();
    const noRoute = record(w.client.connect({ host: '192.168.7.7', port: 80 }));
    const badHost = record(w.client.connect({ host: 'example.invalid', port: 80 }));
    const badProto = record(w.client.connect({ host: '10.0.0.2', port: 80, protocol: 9999 }));
    await w.run(() => noRoute.closed && badHost.closed && badProto.closed);
    expect(noRoute.error?.code).toBe('EHOSTUNREACH');
    expect(noRoute.error?.syscall).toBe('connect');
    expect(noRoute.error?.message).toBe('connect EHOSTUNREACH 192.168.7.7:80');
    expect(badHost.error?.code).toBe('ENOTFOUND');
    expect(badHost.error?.syscall).toBe('getaddrinfo');
    expect(badProto.error?.code).toBe('EPROTONOSUPPORT');
    expect(() => w.client.connect({ host: '10.0.0.2', port: 70_000 })).toThrow(RangeError);
    w.close();
  });

  test('connect to an unreachable peer: ETIMEDOUT after the SYN retries', async () => {
    const w = world({ tcp: { synRetries: 2 } });
    w.net.paths[0]!.setUp(false);
    const sock = w.client.connect({ host: '10.0.0.2', port: 80 });
    const r = record(sock);
    await w.run(() => r.closed);
    expect(r.error?.code).toBe('ETIMEDOUT');
    expect(r.error?.syscall).toBe('connect');
    expect(r.error?.message).toBe('connect ETIMEDOUT 10.0.0.2:80');
    // RTO 1 s, doubled per retry (RFC 6298 §5.5): 1 + 2 + 4 s.
    expect(w.net.clock.now()).toBe(7_000);
    w.close();
  });

  test('echo over a lossy, jittery path: every byte arrives in order', async () => {
    const path = { delayMs: 15, jitterMs: 5, loss: 0.02 };
    const w = world({ seed: 7, aToB: path, bToA: path });
    serve(w.server, 7, (s) => s.pipe(s));
    const payload = bytes(200_000, 'lossy');
    const sock = w.client.connect({ host: '10.0.0.2', port: 7 });
    const r = record(sock);
    sock.end(payload);
    await w.run(() => r.closed, 600_000);
    expect(r.error).toBeUndefined();
    expect(r.length).toBe(payload.length);
    expect(sha256(r.received)).toBe(sha256(payload));
    w.close();
  });

  test('a socket made before connect buffers writes and end() until connected', async () => {
    const w = world();
    const { records } = serve(w.server, 80);
    const sock = w.client.socket();
    expect(sock.pending).toBe(true);
    expect(sock.readyState).toBe('closed');
    sock.write('early ');
    sock.end('bird');
    const r = record(sock);
    sock.connect({ host: '10.0.0.2', port: 80 });
    await w.run(() => records[0]?.ended === true);
    expect(records[0]!.received.toString()).toBe('early bird');
    await w.run(() => r.closed);
    expect(r.error).toBeUndefined();
    w.close();
  });

  test('backpressure end to end: a paused reader makes write() return false; drain comes after resume', async () => {
    const w = world();
    const { sockets, records } = serve(w.server, 9, () => {}, { pauseOnConnect: true });
    const sock = w.client.connect({ host: '10.0.0.2', port: 9 });
    const r = record(sock);
    await w.run(() => r.connected && sockets.length === 1);
    const chunk = bytes(4096, 'chunk');
    const sent = createHash('sha256');
    let written = 0;
    let drains = 0;
    sock.on('drain', () => drains++);
    // Write until the stream says stop, letting the network carry data every 64 KB.
    for (;;) {
      const ok = sock.write(chunk);
      sent.update(chunk);
      written += chunk.length;
      if (!ok) break;
      if (written % 65_536 === 0) await w.advance(20);
      if (written > 16 << 20) throw new Error('write() never returned false');
    }
    expect(sock.writableNeedDrain).toBe(true);
    // Let the network run for a long while: nothing drains while the reader is paused.
    await w.advance(10_000);
    expect(drains).toBe(0);
    const receiver = sockets[0]!;
    const conn = receiver.connection!;
    // The receiver's TCP buffer is full and its window closed; the bytes wait in the sender's send buffer.
    expect(records[0]!.length).toBe(0);
    expect(conn.readable).toBeGreaterThan(200_000);
    expect(written).toBeGreaterThan(conn.readable);
    expect(written).toBeLessThan(4 * 1024 * 1024);
    receiver.resume();
    await w.run(() => drains > 0);
    sock.end();
    await w.run(() => records[0]!.ended);
    expect(records[0]!.length).toBe(written);
    expect(sha256(records[0]!.received)).toBe(sent.digest('hex'));
    w.close();
  });

  test('200 sequential short connections', async () => {
    const w = world({ aToB: { delayMs: 1 }, bToA: { delayMs: 1 } });
    serve(w.server, 7000, (s) => {
      s.once('data', (d: Buffer) => s.end(`pong ${d.toString().slice(5)}`));
    });
    const replies: string[] = [];
    for (let i = 0; i < 200; i++) {
      const sock = w.client.connect({ host: '10.0.0.2', port: 7000 });
      const r = record(sock);
      sock.write(`ping ${i}`);
      await w.run(() => r.closed);
      expect(r.error).toBeUndefined();
      replies.push(r.received.toString());
    }
    expect(replies).toEqual(Array.from({ length: 200 }, (_, i) => `pong ${i}`));
    expect(w.client.sockets.size).toBe(0);
    await w.run(() => w.server.sockets.size === 0);
    w.close();
  }, 30_000);

  test('server.close(): no new connections, the existing one continues, then close', async () => {
    const w = world();
    const { server, sockets, records } = serve(w.server, 80, (s) => s.on('data', (d: Buffer) => s.write(d)));
    const sock = w.client.connect({ host: '10.0.0.2', port: 80 });
    const r = record(sock);
    await w.run(() => r.connected && sockets.length === 1);
    let closedCb = false;
    let closeEvent = false;
    server.on('close', () => (closeEvent = true));
    server.close(() => (closedCb = true));
    expect(server.listening).toBe(false);
    expect(server.address()).toBeNull();
    // New connections are refused.
    const late = record(w.client.connect(80, '10.0.0.2'));
    await w.run(() => late.closed);
    expect(late.error?.code).toBe('ECONNREFUSED');
    // The accepted connection still works.
    sock.write('still here');
    await w.run(() => r.length === 10);
    expect(r.received.toString()).toBe('still here');
    expect(closeEvent).toBe(false);
    sock.end();
    await w.run(() => records[0]!.closed && closeEvent && closedCb);
    expect(server.connections).toBe(0);
    // Closing again: the callback gets ERR_SERVER_NOT_RUNNING.
    const again = await new Promise<Error | undefined>((resolve) => server.close(resolve));
    expect((again as { code?: string }).code).toBe('ERR_SERVER_NOT_RUNNING');
    w.close();
  });

  test('listen: EADDRINUSE as an error event, port 0 picks a free port, a foreign host is EADDRNOTAVAIL', async () => {
    const w = world();
    const first = w.server.createServer().listen(80);
    const second = w.server.createServer();
    let err: (Error & { code?: string; syscall?: string }) | undefined;
    second.on('error', (e) => (err = e));
    second.listen({ port: 80, host: '10.0.0.2' });
    const any = w.server.createServer();
    let anyListening = false;
    any.listen(0, '10.0.0.2', () => (anyListening = true));
    const foreign = w.server.createServer();
    let foreignErr: (Error & { code?: string }) | undefined;
    foreign.on('error', (e) => (foreignErr = e));
    foreign.listen(80, '10.9.9.9');
    await w.run(() => err !== undefined && anyListening && foreignErr !== undefined);
    expect(err?.code).toBe('EADDRINUSE');
    expect(err?.syscall).toBe('listen');
    expect(err?.message).toBe('listen EADDRINUSE: address already in use 10.0.0.2:80');
    expect(foreignErr?.code).toBe('EADDRNOTAVAIL');
    expect(first.listening).toBe(true);
    expect(second.listening).toBe(false);
    const addr = any.address()!;
    expect(addr.address).toBe('10.0.0.2');
    expect(addr.port).toBeGreaterThanOrEqual(32768);
    // A client reaches the ephemeral port.
    let accepted = 0;
    any.on('connection', (s: TcpSocket) => {
      accepted++;
      s.end();
    });
    const c = record(w.client.connect({ host: '10.0.0.2', port: addr.port }));
    await w.run(() => c.closed);
    expect(accepted).toBe(1);
    expect(c.error).toBeUndefined();
    w.close();
  });

  test('setTimeout: an idle socket emits timeout after the idle time, in virtual time, and stays open', async () => {
    const w = world();
    const { sockets } = serve(w.server, 80);
    const sock = w.client.connect({ host: '10.0.0.2', port: 80 });
    const r = record(sock);
    await w.run(() => r.connected && sockets.length === 1);
    const start = w.net.clock.now();
    let firedAt = -1;
    sock.setTimeout(3_000, () => (firedAt = w.net.clock.now()));
    await w.run(() => firedAt >= 0);
    expect(firedAt - start).toBe(3_000);
    expect(sock.destroyed).toBe(false);
    expect(sock.timeout).toBe(3_000);
    // Activity pushes the timeout back.
    let again = -1;
    sock.setTimeout(3_000, () => (again = w.net.clock.now()));
    await w.advance(2_000);
    sock.write('x');
    const wroteAt = w.net.clock.now();
    await w.run(() => again >= 0);
    expect(again - wroteAt).toBe(3_000);
    sock.setTimeout(0);
    expect(sock.timeout).toBeUndefined();
    w.close();
  });

  test('setNoDelay and setKeepAlive reach the connection; connect options apply from the SYN', async () => {
    const w = world();
    const { sockets } = serve(w.server, 80, () => {}, { noDelay: true, keepAlive: true, keepAliveInitialDelay: 5_000 });
    const sock = w.client.connect({
      host: '10.0.0.2',
      port: 80,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: 1_000,
    });
    const r = record(sock);
    await w.run(() => r.connected && sockets.length === 1);
    const conn = sock.connection as unknown as { config: TcpConfig };
    expect(conn.config.noDelay).toBe(true);
    expect(conn.config.keepAlive).toBe(true);
    expect(conn.config.keepAliveIdleMs).toBe(1_000);
    const accepted = sockets[0]!.connection as unknown as { config: TcpConfig };
    expect(accepted.config.noDelay).toBe(true);
    expect(accepted.config.keepAliveIdleMs).toBe(5_000);
    sock.setNoDelay(false);
    sock.setKeepAlive(false);
    expect(conn.config.noDelay).toBe(false);
    expect(conn.config.keepAlive).toBe(false);
    w.close();
  });

  test('IPv6 endpoints', async () => {
    const net = new SimNetwork({ seed: 3 });
    const a = net.addHost('a');
    const b = net.addHost('b');
    net.connect(a, b, { a: 'fd00::1/64', b: 'fd00::2/64', aToB: { delayMs: 3 }, bToA: { delayMs: 3 } });
    const sa = new Stack({ clock: net.clock, seed: 1 });
    sa.addSimHost(a);
    const sb = new Stack({ clock: net.clock, seed: 2 });
    sb.addSimHost(b);
    const srv = sb.createServer((s) => s.pipe(s)).listen(443, '::');
    const sock = sa.connect({ host: '[fd00::2]', port: 443 });
    const r = record(sock);
    sock.end('over IPv6');
    await runUntil(sa, () => r.closed);
    expect(r.received.toString()).toBe('over IPv6');
    expect(sock.remoteAddress).toBe('fd00::2');
    expect(sock.remoteFamily).toBe('IPv6');
    expect(srv.address()).toEqual({ address: '::', family: 'IPv6', port: 443 });
    sa.close();
    sb.close();
    net.close();
  });

  test('a stream pipeline with a slow consumer: async iteration reads everything', async () => {
    const w = world();
    const data = bytes(300_000, 'iter');
    serve(w.server, 80, (s) => s.end(data));
    const sock = w.client.connect({ host: '10.0.0.2', port: 80 });
    const parts: Buffer[] = [];
    let done = false;
    (async () => {
      for await (const chunk of sock) parts.push(chunk as Buffer);
      done = true;
    })();
    await w.run(() => done);
    expect(sha256(Buffer.concat(parts))).toBe(sha256(data));
    w.close();
  });

  test('Stack.close() resets open connections', async () => {
    const w = world();
    const { records, sockets } = serve(w.server, 80);
    const r = record(w.client.connect({ host: '10.0.0.2', port: 80 }));
    await w.run(() => r.connected && sockets.length === 1);
    w.client.close();
    await w.run(() => records[0]!.closed);
    expect(records[0]!.error?.code).toBe('ECONNRESET');
    expect(r.closed).toBe(true);
    w.close();
  });
});

describe('ProtocolRegistry', () => {
  const fake = (number: number, name: string): SocketProtocol => ({
    number,
    name,
    connect: () => {
      throw new Error('unused');
    },
    listen: () => {
      throw new Error('unused');
    },
    unlisten: () => {},
    poke: () => {},
  });

  test('the stack registers TCP; MPTCP is number 262', () => {
    const net = new SimNetwork();
    const stack = new Stack({ clock: net.clock });
    expect(stack.protocols.get(IPPROTO_TCP)).toBe(TCP_SOCKET_PROTOCOL);
    expect(stack.protocols.names()).toEqual(['tcp']);
    expect(IPPROTO_MPTCP).toBe(262);
    stack.protocols.register(fake(IPPROTO_MPTCP, 'mptcp'));
    expect(stack.protocols.names()).toEqual(['tcp', 'mptcp']);
    expect(stack.protocols.byName('MPTCP')?.number).toBe(262);
    expect(stack.protocols.unregister(IPPROTO_MPTCP)).toBe(true);
    expect(stack.protocols.has(IPPROTO_MPTCP)).toBe(false);
  });

  test('validation: number range, unique number and name, methods; unknown numbers are EPROTONOSUPPORT', () => {
    const reg = new ProtocolRegistry();
    reg.register(fake(6, 'tcp'));
    expect(() => reg.register(fake(6, 'other'))).toThrow(/number 6 is already registered \(by "tcp"\)/);
    expect(() => reg.register(fake(7, 'TCP'))).toThrow(/name "TCP" is already registered/);
    expect(() => reg.register(fake(-1, 'neg'))).toThrow(/0\.\.65535/);
    expect(() => reg.register(fake(65536, 'big'))).toThrow(/0\.\.65535/);
    expect(() => reg.register(fake(1.5, 'frac'))).toThrow(/0\.\.65535/);
    expect(() => reg.register(fake(8, ''))).toThrow(/name must be/);
    expect(() => reg.register({ ...fake(9, 'nolisten'), listen: undefined } as unknown as SocketProtocol)).toThrow(
      /listen must be a function/,
    );
    expect(() => reg.get(262)).toThrow(expect.objectContaining({ code: 'EPROTONOSUPPORT' }));
    expect(() => reg.get(262)).toThrow(/protocol 262 is not supported; registered: tcp \(6\)/);
  });
});

describe('runUntil', () => {
  test('rejects with a clear error when virtual time passes the timeout', async () => {
    const net = new SimNetwork();
    const stack = new Stack({ clock: net.clock });
    const tick = (): void => {
      net.clock.setTimer(100, tick);
    };
    tick();
    await expect(runUntil(stack, () => false, { timeoutMs: 1_000 })).rejects.toThrow(/after 1000 ms of virtual time/);
    expect(net.clock.now()).toBeLessThanOrEqual(1_000);
  });

  test('real time: polls until the condition holds (an echo over a real-time simulated path)', async () => {
    const net = new SimNetwork({ time: 'real' });
    const a = net.addHost('a');
    const b = net.addHost('b');
    net.connect(a, b, { a: '10.1.0.1/24', b: '10.1.0.2/24', aToB: { delayMs: 2 }, bToA: { delayMs: 2 } });
    // A short TIME-WAIT, so no real timer outlives the test.
    const sa = new Stack({ clock: net.clock, tcp: { mslMs: 5 } });
    sa.addSimHost(a);
    const sb = new Stack({ clock: net.clock, tcp: { mslMs: 5 } });
    sb.addSimHost(b);
    sb.createServer((s) => s.pipe(s)).listen(7);
    const sock = sa.connect(7, '10.1.0.2');
    const r = record(sock);
    sock.end('real time');
    await runUntil(sa, () => r.closed, { timeoutMs: 5_000 });
    expect(r.received.toString()).toBe('real time');
    await expect(runUntil(sa, () => false, { timeoutMs: 20 })).rejects.toThrow(/after 20 ms/);
    sa.close();
    sb.close();
    await runUntil(sa, () => sa.tcp.connections.length === 0 && sb.tcp.connections.length === 0, { timeoutMs: 2_000 });
    net.close();
  });

  test('rejects when nothing is left to run', async () => {
    const net = new SimNetwork();
    await expect(runUntil(net.clock, () => false)).rejects.toThrow(/went idle/);
  });

  test('lets ticks run before virtual time moves on', async () => {
    const net = new SimNetwork();
    const seen: string[] = [];
    net.clock.setTimer(10, () => {
      process.nextTick(() => seen.push(`tick@${net.clock.now()}`));
    });
    net.clock.setTimer(20, () => seen.push(`timer@${net.clock.now()}`));
    await runUntil(net.clock, () => seen.length === 2);
    expect(seen).toEqual(['tick@10', 'timer@20']);
  });
});
