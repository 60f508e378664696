/**
 * How fast the forwarding engine runs, in-process, without devices:
 *
 *   node core/dist/router/bench-router.js
 *
 * Each case feeds one kind of packet from port a to port b for about a second and
 * prints packets per second. The figure includes copying the template into a fresh
 * buffer per packet (the engine edits packets in place), printed separately as a
 * baseline. Through real tun devices the system calls cost more than the engine: see
 * docs/router.md for both figures.
 */

import { LinkBase } from '../link/link';
import { RealClock } from '../time/real-clock';
import { parseIp } from '../wire/address';
import { buildPacket } from '../wire/packet';
import { TcpFlags } from '../wire/tcp';
import { Router, type StripOptions } from './engine';

/** A link that accepts and forgets. */
class NullLink extends LinkBase {
  inject(packet: Uint8Array): void {
    this.deliver(packet);
  }
  protected transmit(): boolean {
    return true;
  }
}

function udp(src: string, dst: string, payloadLen: number): Uint8Array {
  return buildPacket(
    { src: parseIp(src), dst: parseIp(dst) },
    { protocol: 'udp', repr: { srcPort: 1, dstPort: 2, payload: new Uint8Array(payloadLen) } },
  );
}

function tcpWithTimestamps(payloadLen: number): Uint8Array {
  return buildPacket(
    { src: parseIp('10.1.0.1'), dst: parseIp('10.2.0.1') },
    {
      protocol: 'tcp',
      repr: {
        srcPort: 40000,
        dstPort: 80,
        seq: 1,
        ack: 1,
        flags: TcpFlags.ACK,
        window: 1000,
        urgentPointer: 0,
        options: [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'timestamps', tsVal: 1, tsEcr: 2 }],
        payload: new Uint8Array(payloadLen),
      },
    },
  );
}

function measure(name: string, template: Uint8Array, strip?: StripOptions): void {
  const a = new NullLink('a', 65535);
  const b = new NullLink('b', 65535);
  const router = new Router({ clock: new RealClock(), strip });
  router.addPort({ link: a, prefixes: ['10.1.0.1/24', 'fd00:1::1/64'], addresses: ['10.1.0.2'] });
  router.addPort({ link: b, prefixes: ['10.2.0.1/24', 'fd00:2::1/64'], addresses: ['10.2.0.2'] });
  const run = (forward: boolean, ms: number): number => {
    const end = performance.now() + ms;
    let n = 0;
    while (performance.now() < end) {
      for (let i = 0; i < 1000; i++) {
        const p = template.slice();
        if (forward) a.inject(p);
      }
      n += 1000;
    }
    return n / (ms / 1000);
  };
  run(true, 200); // warm-up
  const copy = run(false, 500);
  const rate = run(true, 1000);
  const stats = router.stats();
  const drops = Object.keys(stats.totals.drops);
  if (drops.length > 0) throw new Error(`${name}: unexpected drops ${drops.join(', ')}`);
  const line = `${name.padEnd(44)} ${(rate / 1e6).toFixed(2)} M packets/s  (${((rate * template.length * 8) / 1e9).toFixed(1)} Gbit/s; copying alone ${(copy / 1e6).toFixed(1)} M/s)`;
  console.log(line);
}

measure('IPv4 UDP, 64 B', udp('10.1.0.1', '10.2.0.1', 36));
measure('IPv4 UDP, 1500 B', udp('10.1.0.1', '10.2.0.1', 1472));
measure('IPv6 UDP, 1500 B', udp('fd00:1::1', 'fd00:2::1', 1452));
measure('IPv4 TCP, 1500 B, stripping timestamps', tcpWithTimestamps(1436), { kinds: [8] });
measure('IPv4 TCP, 1500 B, strip rule (nothing to strip)', tcpWithTimestamps(1436), { kinds: [30] });
