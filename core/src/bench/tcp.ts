/**
 * TCP benchmarks (part of `npm run bench`):
 *  - stack cost: 200 MB from one nuse stack to another over an ideal in-memory link in
 *    virtual time, in MB/s of wall time and CPU ns per byte, next to the kernel's TCP
 *    moving the same bytes over loopback with Node's `net` in the same run;
 *  - memory: heap bytes per established idle connection, with 10,000 open.
 */
import * as net from 'node:net';
import type { TcpConnection } from '../tcp/connection';
import { twoStacks } from '../tcp/test-harness';

const MB = 1_000_000;

function nuseTransfer(size: number): { wallMs: number; cpuMs: number } {
  const env = twoStacks({ mtu: 1500, config: { receiveBuffer: 4 * MB, sendBuffer: 4 * MB } });
  const { tcpA, tcpB, clock, addrB } = env;
  const chunk = new Uint8Array(64 * 1024).fill(7);
  const listener = tcpB.listen(80);
  let received = 0;
  let done = false;
  listener.onAcceptable = () => {
    const s = listener.accept()!;
    const buf = new Uint8Array(256 * 1024);
    s.events.onReadable = () => {
      for (;;) {
        const d = s.read(buf.length);
        if (d.length === 0) break;
        received += d.length;
      }
      tcpB.poke(s);
    };
    s.events.onRemoteEnd = () => {
      done = true;
    };
  };
  const client = tcpA.connect({ address: addrB, port: 80 });
  let sent = 0;
  const feed = (): void => {
    while (sent < size && client.writable > 0) {
      const n = client.send(chunk.subarray(0, Math.min(chunk.length, size - sent)));
      if (n === 0) break;
      sent += n;
    }
    if (sent >= size) client.shutdownWrite();
    tcpA.poke(client);
  };
  client.events.onEstablished = feed;
  client.events.onWritable = feed;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  clock.runUntilIdle({ done: () => done });
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (received !== size) throw new Error(`nuse transfer moved ${received} of ${size} bytes`);
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

function kernelTransfer(size: number): Promise<{ wallMs: number; cpuMs: number }> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((sock) => {
      let received = 0;
      sock.on('data', (d: Buffer) => {
        received += d.length;
      });
      sock.on('end', () => {
        const wallMs = performance.now() - t0;
        const cpu = process.cpuUsage(cpu0);
        server.close();
        if (received !== size) reject(new Error(`kernel transfer moved ${received} of ${size}`));
        else resolve({ wallMs, cpuMs: (cpu.user + cpu.system) / 1000 });
      });
    });
    let t0 = 0;
    let cpu0 = process.cpuUsage();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      const chunk = Buffer.alloc(64 * 1024, 7);
      cpu0 = process.cpuUsage();
      t0 = performance.now();
      const c = net.connect(port, '127.0.0.1', () => {
        let sent = 0;
        const write = (): void => {
          while (sent < size) {
            const n = Math.min(chunk.length, size - sent);
            sent += n;
            if (!c.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
              c.once('drain', write);
              return;
            }
          }
          c.end();
        };
        write();
      });
      c.on('error', reject);
    });
  });
}

function idleConnections(count: number): { bytesPerConnection: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  // A SYN queue big enough for every SYN sent at once (the point here is memory, not SYN floods).
  const env = twoStacks({ config: { synQueueLength: count + 1 } });
  const { tcpA, tcpB, clock, addrB } = env;
  const listener = tcpB.listen(80, { backlog: count + 1 });
  const accepted: TcpConnection[] = [];
  listener.onAcceptable = () => {
    for (let s = listener.accept(); s; s = listener.accept()) accepted.push(s);
  };
  clock.runUntilIdle();
  gc?.();
  const before = process.memoryUsage().heapUsed;
  const clients: TcpConnection[] = [];
  for (let i = 0; i < count; i++) clients.push(tcpA.connect({ address: addrB, port: 80 }));
  clock.runUntilIdle({ done: () => accepted.length === count });
  clock.advance(1000);
  gc?.();
  const after = process.memoryUsage().heapUsed;
  if (accepted.length !== count) throw new Error(`only ${accepted.length} of ${count} connections established`);
  // Both ends live in this process: divide by the number of connection endpoints.
  return { bytesPerConnection: (after - before) / (2 * count) };
}

export async function tcpBench(): Promise<void> {
  console.log('\nTCP stack cost: 200 MB over an ideal in-memory link (virtual time), vs kernel TCP on loopback');
  const size = 200 * MB;
  const nuse = nuseTransfer(size);
  const kernel = await kernelTransfer(size);
  const rate = (ms: number): string => `${(size / MB / (ms / 1000)).toFixed(1)} MB/s`;
  console.log(
    `  nuse → nuse            ${rate(nuse.wallMs).padStart(12)}   ${((nuse.cpuMs * 1e6) / size).toFixed(1)} CPU ns/byte (both stacks, one thread)`,
  );
  console.log(
    `  kernel TCP (Node net)  ${rate(kernel.wallMs).padStart(12)}   ${((kernel.cpuMs * 1e6) / size).toFixed(1)} CPU ns/byte (this process only)`,
  );
  console.log(`  ratio nuse / kernel: ${(kernel.wallMs / nuse.wallMs).toFixed(2)}× the kernel's throughput`);

  console.log('\nTCP memory: established idle connections');
  const gcAvailable = typeof (globalThis as { gc?: unknown }).gc === 'function';
  const { bytesPerConnection } = idleConnections(10_000);
  console.log(
    `  10,000 connections: ${Math.round(bytesPerConnection)} heap bytes per connection endpoint${gcAvailable ? '' : ' (run node with --expose-gc for a steadier figure)'}`,
  );
}
