/**
 * `npm run bench`: throughput of the per-packet building blocks, each printed next to
 * a baseline measured in the same run on the same machine:
 *   - the Internet checksum against a straightforward RFC 1071 loop, and against a
 *     plain copy of the same bytes (the memory-bandwidth ceiling);
 *   - the codecs (parse, verify, emit) against copying the same packets;
 *   - the shaper and simulated path, in packets per second of wall time.
 * Later issues add the stack's own benchmarks (TCP transfers, kernel baselines).
 */

import { SimPath } from '../link/sim-link';
import { VirtualClock } from '../time/virtual-clock';
import { Random } from '../util/random';
import { parseIpv4 } from '../wire/address';
import { internetChecksum, pseudoHeaderSumV4 } from '../wire/checksum';
import { IpProtocol } from '../wire/ip-protocol';
import { Ipv4View } from '../wire/ipv4';
import { buildPacket } from '../wire/packet';
import { TcpFlags, TcpHeaderView, TcpRepr } from '../wire/tcp';
import { formatRate, type Measurement, measure, ratio } from './measure';
import { tcpBench } from './tcp';

/** RFC 1071 §4.1 as written: one 16-bit word at a time, folding as it goes. The baseline. */
function naiveChecksum(buf: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < buf.length; i += 2) {
    sum += (buf[i]! << 8) | buf[i + 1]!;
    if (sum > 0xffff) sum = (sum & 0xffff) + 1;
  }
  if (buf.length & 1) {
    sum += buf[buf.length - 1]! << 8;
    if (sum > 0xffff) sum = (sum & 0xffff) + 1;
  }
  return ~sum & 0xffff;
}

let sink = 0;

function section(title: string): void {
  console.log(`\n${title}`);
}

function line(m: Measurement, baselines: Measurement[] = []): void {
  const rel = baselines.map((b) => ratio(m, b)).join(', ');
  console.log(`  ${formatRate(m)}${rel ? `   ${rel}` : ''}`);
}

function checksumBench(): void {
  section('Internet checksum (RFC 1071)');
  const rng = new Random(1);
  for (const size of [64, 1500, 65536]) {
    const buf = rng.fill(new Uint8Array(size));
    const dst = new Uint8Array(size);
    const copy = measure(`copy ${size} B (memory baseline)`, size, () => {
      dst.set(buf);
      sink ^= dst[0]!;
    });
    const naive = measure(`naive RFC 1071 loop, ${size} B`, size, () => {
      sink ^= naiveChecksum(buf);
    });
    const ours = measure(`internetChecksum, ${size} B`, size, () => {
      sink ^= internetChecksum(buf);
    });
    if (naiveChecksum(buf) !== internetChecksum(buf)) throw new Error('checksum mismatch');
    line(copy);
    line(naive);
    line(ours, [naive, copy]);
  }
}

function tcpSegment(payloadLen: number): { packet: Uint8Array; repr: TcpRepr; src: Uint8Array; dst: Uint8Array } {
  const src = parseIpv4('10.0.1.1');
  const dst = parseIpv4('10.0.1.2');
  const repr: TcpRepr = {
    srcPort: 40000,
    dstPort: 443,
    seq: 0x12345678,
    ack: 0x9abcdef0,
    flags: TcpFlags.ACK | TcpFlags.PSH,
    window: 501,
    urgentPointer: 0,
    options: [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'timestamps', tsVal: 123456, tsEcr: 654321 }],
    payload: new Random(2).fill(new Uint8Array(payloadLen)),
  };
  return { packet: buildPacket({ src, dst }, { protocol: 'tcp', repr }), repr, src, dst };
}

function codecBench(): void {
  section('Codecs: IPv4 + TCP with timestamps (packets/s and MB/s of packet bytes)');
  for (const payloadLen of [0, 1448]) {
    const { packet, repr, src, dst } = tcpSegment(payloadLen);
    const size = packet.length;
    const copyDst = new Uint8Array(size);
    const copy = measure(`copy the packet (baseline), ${size} B`, size, () => {
      copyDst.set(packet);
      sink ^= copyDst[1]!;
    });
    const headers = measure(`parse IPv4 + TCP headers, ${size} B`, size, () => {
      const ip = Ipv4View.parse(packet);
      const tcp = TcpHeaderView.parse(ip.payload);
      sink ^= tcp.seq ^ tcp.window;
    });
    const full = measure(`parse + verify checksums + options, ${size} B`, size, () => {
      const ip = Ipv4View.parse(packet);
      const pseudo = pseudoHeaderSumV4(ip.src, ip.dst, IpProtocol.TCP, ip.payload.length);
      const tcp = TcpRepr.parse(TcpHeaderView.parse(ip.payload), pseudo);
      sink ^= tcp.options.length;
    });
    const out = new Uint8Array(size);
    const emit = measure(`emit TCP (options, checksum), ${size} B`, size, () => {
      const pseudo = pseudoHeaderSumV4(src, dst, IpProtocol.TCP, size - 20);
      sink ^= TcpRepr.emit(repr, out, 20, pseudo);
    });
    line(copy);
    line(headers, [copy]);
    line(full, [copy]);
    line(emit, [copy]);
  }
}

function simBench(): void {
  section('Simulated path in virtual time (wall-clock packets/s through the shaper)');
  const size = 1500;
  const packet = new Uint8Array(size);
  const count = 200_000;
  const run = (name: string, cfg: ConstructorParameters<typeof SimPath>[0]['aToB']): Measurement => {
    return measure(
      name,
      size * count,
      () => {
        const clock = new VirtualClock();
        const path = new SimPath({ clock, aToB: cfg ?? {} });
        let got = 0;
        path.b.onReceive(() => got++);
        for (let i = 0; i < count; i++) path.a.send(packet);
        clock.runUntilIdle();
        sink ^= got;
      },
      1500,
    );
  };
  const ideal = run('ideal wire, 200k packets', {});
  const shaped = run('delay 20 ms, jitter 2 ms, 1% loss, 200k packets', { delayMs: 20, jitterMs: 2, loss: 0.01 });
  for (const m of [ideal, shaped]) {
    const pps = (m.opsPerSec * count) / 1e6;
    console.log(`  ${m.name.padEnd(44)} ${pps.toFixed(2).padStart(9)} M packets/s`);
  }
  console.log(`  shaping costs ${(ideal.opsPerSec / shaped.opsPerSec).toFixed(2)}× the ideal wire`);
}

async function main(): Promise<void> {
  console.log(`nuse bench — Node ${process.version}, ${process.arch}`);
  checksumBench();
  codecBench();
  simBench();
  await tcpBench();
  if (sink === 0.5) console.log(''); // keeps results live so nothing is optimised away
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
