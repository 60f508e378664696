/**
 * The demo (`npm start`): two simulated hosts, a laptop and a server, joined by two
 * impaired paths — "wifi" (fast, short, a little lossy) and "lte" (slower, longer,
 * jittery). The laptop pings the server over both paths and sends a burst of UDP
 * datagrams that the server echoes; the LTE path drops out for a while and comes back.
 * Every packet the laptop sends or receives is printed as a readable trace and written
 * to a pcapng file (one interface per path) that Wireshark opens.
 *
 * It runs in virtual time by default (the same output for the same seed, instantly),
 * or in real time with --real. TCP and MPTCP join this demo as later issues land.
 */
import * as path from 'node:path';
import {
  buildPacket,
  type Clock,
  describePacket,
  FileSink,
  formatIp,
  Icmpv4Repr,
  Icmpv4View,
  IpProtocol,
  Ipv4View,
  type Link,
  PcapngWriter,
  PcapTap,
  parseIp,
  type ShapeConfig,
  type SimHost,
  SimNetwork,
  type SimPath,
  UdpRepr,
  UdpView,
} from '@nuse/core';

export interface DemoOptions {
  seed?: number;
  /** Where to write the capture; null for none. */
  pcapPath?: string | null;
  /** Run on the wall clock instead of virtual time. */
  realTime?: boolean;
  /** Receives each output line (default: console.log). */
  print?: (line: string) => void;
}

export interface PathReport {
  name: string;
  pingsSent: number;
  pingsAnswered: number;
  rttMinMs: number;
  rttAvgMs: number;
  rttMaxMs: number;
  drops: Record<string, number>;
}

export interface DemoReport {
  paths: PathReport[];
  udpSent: number;
  udpEchoed: number;
  udpBytesEchoed: number;
  pcapPath: string | null;
  virtualMs: number;
}

const PATHS: {
  name: string;
  laptop: string;
  server: string;
  laptopToServer: ShapeConfig;
  serverToLaptop: ShapeConfig;
}[] = [
  {
    name: 'wifi',
    laptop: '10.0.1.1/24',
    server: '10.0.1.2/24',
    // 20 Mbit/s, 10 ms each way with ±2 ms of jitter that keeps order, 3% loss.
    laptopToServer: { rateBytesPerSec: 2_500_000, delayMs: 10, jitterMs: 2, jitterReorders: false, loss: 0.03 },
    serverToLaptop: { rateBytesPerSec: 2_500_000, delayMs: 10, jitterMs: 2, jitterReorders: false, loss: 0.03 },
  },
  {
    name: 'lte',
    laptop: '10.0.2.1/24',
    server: '10.0.2.2/24',
    // 5 Mbit/s up, 20 Mbit/s down, 35 ms each way with ±8 ms of jitter (may reorder).
    laptopToServer: { rateBytesPerSec: 625_000, delayMs: 35, jitterMs: 8, queueBytes: 30_000 },
    serverToLaptop: { rateBytesPerSec: 2_500_000, delayMs: 35, jitterMs: 8 },
  },
];

const PING_ID = 0x6e75;
const PINGS_PER_PATH = 12;
const PING_INTERVAL_MS = 25;
const ECHO_PORT = 7;
const UDP_BURST = 40;
const UDP_SIZE = 1200;

export async function runDemo(opts: DemoOptions = {}): Promise<DemoReport> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const net = new SimNetwork({ seed: opts.seed ?? 2026, time: opts.realTime ? 'real' : 'virtual' });
  const clock = net.clock;
  const laptop = net.addHost('laptop');
  const server = net.addHost('server');
  const paths: SimPath[] = PATHS.map((p) =>
    net.connect(laptop, server, {
      a: p.laptop,
      b: p.server,
      aToB: p.laptopToServer,
      bToA: p.serverToLaptop,
    }),
  );

  const pcapPath = opts.pcapPath === undefined ? path.resolve('nuse-demo.pcapng') : opts.pcapPath;
  const writer = pcapPath === null ? null : new PcapngWriter(new FileSink(pcapPath), { application: 'nuse demo' });

  // The laptop's view of each path, tapped into the capture like `tcpdump -i any`.
  const laptopLinks: Link[] = laptop.interfaces.map((itf, i) => {
    const name = `${itf.name}(${PATHS[i]!.name})`;
    const link = writer === null ? itf.link : new PcapTap(itf.link, writer, { clock, interfaceName: PATHS[i]!.name });
    link.onReceive((packet) => trace(name, '←', packet));
    link.onStateChange((up) => print(`${stamp(clock)}  ${name.padEnd(11)} ${up ? 'link up' : 'link DOWN'}`));
    return link;
  });
  const names = laptopLinks.map((_, i) => `${laptop.interfaces[i]!.name}(${PATHS[i]!.name})`);

  const rtts: number[][] = PATHS.map(() => []);
  const pingSentAt = new Map<string, number>();
  let udpEchoed = 0;
  let udpBytesEchoed = 0;

  function trace(where: string, dir: '→' | '←', packet: Uint8Array, note = ''): void {
    if (dir === '←') note = onLaptopReceive(where, packet);
    print(`${stamp(clock)}  ${where.padEnd(11)} ${dir}  ${describePacket(packet)}${note}`);
  }

  function onLaptopReceive(where: string, packet: Uint8Array): string {
    const ip = Ipv4View.parse(packet);
    if (ip.protocol === IpProtocol.ICMP) {
      const icmp = Icmpv4Repr.parse(Icmpv4View.parse(ip.payload));
      if (icmp.kind === 'echoReply' && icmp.identifier === PING_ID) {
        const key = `${where}/${icmp.sequence}`;
        const sentAt = pingSentAt.get(key);
        if (sentAt !== undefined) {
          const rtt = clock.now() - sentAt;
          rtts[names.indexOf(where)]!.push(rtt);
          pingSentAt.delete(key);
          return `   rtt ${rtt.toFixed(2)} ms`;
        }
      }
    } else if (ip.protocol === IpProtocol.UDP) {
      const udp = UdpView.parse(ip.payload);
      if (udp.srcPort === ECHO_PORT) {
        udpEchoed++;
        udpBytesEchoed += udp.payload.length;
      }
    }
    return '';
  }

  function send(index: number, packet: Uint8Array): void {
    const link = laptopLinks[index]!;
    const queueDropsBefore = paths[index]!.a.counters.drops['tx-queue'] ?? 0;
    const accepted = link.send(packet);
    let note = '';
    if (!accepted && !link.isUp) note = '   (not sent: link down)';
    else if ((paths[index]!.a.counters.drops['tx-queue'] ?? 0) > queueDropsBefore)
      note = '   (dropped: bottleneck queue full)';
    trace(names[index]!, '→', packet, note);
  }

  serveEchoes(server);

  // The schedule: pings on both paths; a UDP burst on wifi; LTE drops out and returns.
  PATHS.forEach((p, i) => {
    const src = parseIp(p.laptop.split('/')[0]!);
    const dst = parseIp(p.server.split('/')[0]!);
    for (let seq = 0; seq < PINGS_PER_PATH; seq++) {
      clock.setTimer(seq * PING_INTERVAL_MS + i * 3, () => {
        pingSentAt.set(`${names[i]}/${seq}`, clock.now());
        const data = new TextEncoder().encode(`nuse ping ${p.name} #${seq}`.padEnd(56, '.'));
        send(
          i,
          buildPacket(
            { src, dst },
            { protocol: 'icmpv4', repr: { kind: 'echoRequest', identifier: PING_ID, sequence: seq, data } },
          ),
        );
      });
    }
  });
  clock.setTimer(110, () => {
    print(`${stamp(clock)}  -- the LTE path goes down (radio handover) --`);
    paths[1]!.setUp(false);
  });
  clock.setTimer(190, () => {
    print(`${stamp(clock)}  -- the LTE path comes back --`);
    paths[1]!.setUp(true);
  });
  clock.setTimer(320, () => {
    print(
      `${stamp(clock)}  -- a burst of ${UDP_BURST} UDP datagrams of ${UDP_SIZE} bytes to the echo port, over the 5 Mbit/s LTE uplink --`,
    );
    const src = parseIp('10.0.2.1');
    const dst = parseIp('10.0.2.2');
    for (let k = 0; k < UDP_BURST; k++) {
      const payload = new Uint8Array(UDP_SIZE).fill(k);
      send(
        1,
        buildPacket({ src, dst }, { protocol: 'udp', repr: { srcPort: 40000 + k, dstPort: ECHO_PORT, payload } }),
      );
    }
  });

  print('nuse demo: a laptop and a server on two simulated paths');
  for (const p of PATHS)
    print(`  ${p.name.padEnd(5)} laptop ${p.laptop} ↔ server ${p.server}  ${describeShape(p.laptopToServer)}`);
  print(`  time: ${net.isVirtual ? 'virtual (instant, same output for the same seed)' : 'real'}\n`);
  print(`${'    t (ms)'}  ${'interface'.padEnd(11)} dir packet`);

  const end = 1000;
  await net.run({ until: end });

  const reports: PathReport[] = PATHS.map((p, i) => {
    const r = rtts[i]!;
    const drops: Record<string, number> = {};
    for (const [k, v] of Object.entries(paths[i]!.a.counters.drops)) drops[`laptop ${k}`] = v;
    for (const [k, v] of Object.entries(paths[i]!.b.counters.drops)) drops[`server ${k}`] = v;
    return {
      name: p.name,
      pingsSent: PINGS_PER_PATH,
      pingsAnswered: r.length,
      rttMinMs: r.length ? Math.min(...r) : Number.NaN,
      rttAvgMs: r.length ? r.reduce((a, b) => a + b, 0) / r.length : Number.NaN,
      rttMaxMs: r.length ? Math.max(...r) : Number.NaN,
      drops,
    };
  });
  writer?.close();
  net.close();

  print('\nsummary');
  for (const r of reports) {
    const drops = Object.entries(r.drops)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    print(
      `  ${r.name.padEnd(5)} ${r.pingsAnswered}/${r.pingsSent} pings answered, rtt min/avg/max ${r.rttMinMs.toFixed(1)}/${r.rttAvgMs.toFixed(1)}/${r.rttMaxMs.toFixed(1)} ms; drops: ${drops || 'none'}`,
    );
  }
  print(`  udp   ${udpEchoed}/${UDP_BURST} datagrams echoed (${udpBytesEchoed} bytes)`);
  if (pcapPath !== null) print(`  capture written to ${pcapPath} (open it in Wireshark: one interface per path)`);

  return {
    paths: reports,
    udpSent: UDP_BURST,
    udpEchoed,
    udpBytesEchoed,
    pcapPath,
    virtualMs: end,
  };
}

/** The server answers pings to its addresses and echoes UDP datagrams sent to port 7. */
function serveEchoes(server: SimHost): void {
  for (const itf of server.interfaces) {
    const own = parseIp(itf.address);
    itf.link.onReceive((packet) => {
      const reply = answer(packet, own);
      if (reply !== undefined) itf.link.send(reply);
    });
  }
}

function answer(packet: Uint8Array, own: Uint8Array): Uint8Array | undefined {
  const ip = Ipv4View.parse(packet);
  if (formatIp(ip.dst) !== formatIp(own)) return undefined;
  const back = { src: ip.dst.slice(), dst: ip.src.slice() };
  if (ip.protocol === IpProtocol.ICMP) {
    const icmp = Icmpv4Repr.parse(Icmpv4View.parse(ip.payload));
    if (icmp.kind !== 'echoRequest') return undefined;
    return buildPacket(back, { protocol: 'icmpv4', repr: { ...icmp, kind: 'echoReply' } });
  }
  if (ip.protocol === IpProtocol.UDP) {
    const udp = UdpRepr.parse(UdpView.parse(ip.payload), 0, { verifyChecksum: false });
    if (udp.dstPort !== ECHO_PORT) return undefined;
    return buildPacket(back, {
      protocol: 'udp',
      repr: { srcPort: ECHO_PORT, dstPort: udp.srcPort, payload: udp.payload },
    });
  }
  return undefined;
}

function stamp(clock: Clock): string {
  return clock.now().toFixed(3).padStart(10);
}

function describeShape(c: ShapeConfig): string {
  const parts: string[] = [];
  if (c.rateBytesPerSec) parts.push(`${((c.rateBytesPerSec * 8) / 1e6).toFixed(0)} Mbit/s`);
  if (c.delayMs) parts.push(`${c.delayMs} ms`);
  if (c.jitterMs) parts.push(`±${c.jitterMs} ms jitter`);
  if (c.loss) parts.push(`${(c.loss * 100).toFixed(1)}% loss`);
  return parts.join(', ');
}

function parseArgs(argv: string[]): DemoOptions {
  const opts: DemoOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--seed') {
      const seed = Number(value());
      if (!Number.isInteger(seed)) throw new Error('--seed takes an integer');
      opts.seed = seed;
    } else if (arg === '--pcap') opts.pcapPath = value();
    else if (arg === '--no-pcap') opts.pcapPath = null;
    else if (arg === '--real') opts.realTime = true;
    else if (arg === '--help' || arg === '-h') {
      console.log('usage: npm start -- [--seed N] [--pcap FILE | --no-pcap] [--real]');
      process.exit(0);
    } else throw new Error(`unknown argument "${arg}" (try --help)`);
  }
  return opts;
}

if (require.main === module) {
  let opts: DemoOptions;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`nuse demo: ${(e as Error).message}`);
    process.exit(2);
  }
  runDemo(opts).catch((e: unknown) => {
    console.error(`nuse demo failed: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  });
}
