import { createHash } from 'node:crypto';
import { IpLayer } from '../ip/ip-layer';
import type { ShapeConfig } from '../link/shaper';
import { SimNetwork } from '../link/sim-network';
import type { VirtualClock } from '../time/virtual-clock';
import { Random } from '../util/random';
import { parseIp } from '../wire/address';
import type { TcpConfig } from './config';
import type { TcpConnection } from './connection';
import type { TcpOptionRegistry } from './options';
import { TcpLayer } from './tcp-layer';

/**
 * Two TCP stacks joined by one simulated path in virtual time: the fixture of the
 * transfer tests (and of benchmarks). Not part of the public API.
 */
export function twoStacks(opts: {
  seed?: number;
  aToB?: ShapeConfig;
  bToA?: ShapeConfig;
  mtu?: number;
  config?: Partial<TcpConfig>;
  configA?: Partial<TcpConfig>;
  configB?: Partial<TcpConfig>;
  v6?: boolean;
  /** Option registries per side (default: the core options only). */
  optionsA?: TcpOptionRegistry;
  optionsB?: TcpOptionRegistry;
}) {
  const net = new SimNetwork({ seed: opts.seed ?? 1 });
  const clock = net.clock as VirtualClock;
  const a = net.addHost('a');
  const b = net.addHost('b');
  const addrA = opts.v6 ? 'fd00::1' : '10.0.0.1';
  const addrB = opts.v6 ? 'fd00::2' : '10.0.0.2';
  const len = opts.v6 ? 64 : 24;
  const path = net.connect(a, b, {
    a: `${addrA}/${len}`,
    b: `${addrB}/${len}`,
    aToB: opts.aToB ?? {},
    bToA: opts.bToA ?? {},
    mtu: opts.mtu ?? 1500,
  });
  const ipA = new IpLayer(clock);
  ipA.addInterface(path.a, `${addrA}/${len}`);
  const ipB = new IpLayer(clock);
  ipB.addInterface(path.b, `${addrB}/${len}`);
  const tcpA = new TcpLayer(ipA, clock, {
    seed: `a${opts.seed ?? 1}`,
    config: { ...opts.config, ...opts.configA },
    ...(opts.optionsA ? { options: opts.optionsA } : {}),
  });
  const tcpB = new TcpLayer(ipB, clock, {
    seed: `b${opts.seed ?? 1}`,
    config: { ...opts.config, ...opts.configB },
    ...(opts.optionsB ? { options: opts.optionsB } : {}),
  });
  return { net, clock, path, ipA, ipB, tcpA, tcpB, addrA: parseIp(addrA), addrB: parseIp(addrB) };
}

/** Deterministic pseudo-random payload. */
export function payload(size: number, seed = 7): Uint8Array {
  return new Random(seed).fill(new Uint8Array(size));
}

export function sha256(data: Uint8Array | Uint8Array[]): string {
  const h = createHash('sha256');
  for (const d of Array.isArray(data) ? data : [data]) h.update(d);
  return h.digest('hex');
}

/** Feeds `data` into a connection as the send buffer allows, then half-closes. */
export function pump(conn: TcpConnection, data: Uint8Array, poke: () => void, thenShutdown = true): void {
  let offset = 0;
  const write = (): void => {
    while (offset < data.length) {
      const n = conn.writable > 0 ? conn.send(data.subarray(offset)) : 0;
      if (n === 0) break;
      offset += n;
    }
    if (offset >= data.length && thenShutdown) conn.shutdownWrite();
    poke();
  };
  const prev = conn.events.onWritable;
  conn.events.onWritable = () => {
    prev?.();
    if (offset < data.length) write();
  };
  const prevEst = conn.events.onEstablished;
  conn.events.onEstablished = () => {
    prevEst?.();
    write();
  };
  if (conn.state === 'ESTABLISHED' || conn.state === 'CLOSE-WAIT') write();
}

/** Collects everything a connection receives. */
export function sink(
  conn: TcpConnection,
  poke: () => void,
): { chunks: Uint8Array[]; bytes: () => number; eof: () => boolean } {
  const chunks: Uint8Array[] = [];
  let total = 0;
  let eof = false;
  const drain = (): void => {
    for (;;) {
      const d = conn.read();
      if (d.length === 0) break;
      chunks.push(d.slice());
      total += d.length;
    }
    poke();
  };
  const prevR = conn.events.onReadable;
  conn.events.onReadable = () => {
    prevR?.();
    drain();
  };
  const prevE = conn.events.onRemoteEnd;
  conn.events.onRemoteEnd = () => {
    prevE?.();
    drain();
    eof = true;
  };
  return { chunks, bytes: () => total, eof: () => eof };
}
