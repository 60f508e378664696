/**
 * `npm run bench`, third part: the cost of running a program through the shim.
 *
 * One pair of programs (pingpong.c, built here with gcc -O2): a 1-byte request/response
 * client (RR round trips: median and p99) and a bulk sender (SIZE bytes to a counting
 * sink), each against its server, over four paths measured in the same run:
 *
 *   kernel, loopback        client → 127.0.0.1 server (both kernel TCP)
 *   shim, loopback          client through the shim → the daemon → a kernel socket to
 *                           127.0.0.1: the shim and IPC cost alone (policy keeps loopback
 *                           on the kernel, so no userspace TCP is involved)
 *   kernel, veth            client → server in namespace NS over a veth pair (one hop)
 *   shim over nuse, tun     client through the shim → the daemon's userspace TCP → tun →
 *                           the same server in NS (one hop)
 *
 * The ratios: shim loopback / kernel loopback is the IPC cost; shim over nuse / kernel
 * veth is the whole cost; their difference is the stack's (userspace TCP, tun, daemon).
 *
 * Needs root (tun, namespaces) and gcc. Without them it prints one line and exits 0,
 * except under CI=true (exit 1). Run alone: `node test/dist/bench/shim-bench.js` after
 * `npm run build`.
 */

import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { collect, commandExists, missingShimRequirements, ShimTopology } from '../harness/shim';

const RR = Number(process.env.NUSE_BENCH_RR ?? 10_000);
const SIZE = Number(process.env.NUSE_BENCH_SHIM_MB ?? 200) * 1_000_000;
const RUNS = Number(process.env.NUSE_BENCH_RUNS ?? 3);
const SUBNET = 84;
const HOST_VETH = `10.74.${SUBNET}.1`;
const NS_VETH = `10.74.${SUBNET}.2`;

interface Figures {
  rrMedianUs: number;
  rrP99Us: number;
  mbPerSec: number;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(t: ShimTopology, bin: string, host: string, shim: boolean, port: number): Promise<Figures> {
  const wrap = (argv: string[]): string[] => (shim ? t.nuse(argv) : argv);
  const rr = await t.procs.run(wrap([bin, 'rr', host, String(port), String(RR)]), { timeoutMs: 120_000 });
  if (rr.code !== 0) throw new Error(`rr over ${host}: ${rr.stderr}`);
  const [med, p99] = rr.stdout.toString().trim().split(' ').map(Number);
  const rates: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const s = await t.procs.run(wrap([bin, 'send', host, String(port + 1), String(SIZE)]), { timeoutMs: 120_000 });
    if (s.code !== 0) throw new Error(`send over ${host}: ${s.stderr}`);
    const [bytes, secs] = s.stdout.toString().trim().split(' ').map(Number);
    rates.push(bytes! / secs! / 1e6);
  }
  return { rrMedianUs: med!, rrP99Us: p99!, mbPerSec: median(rates) };
}

async function main(): Promise<void> {
  const missing = missingShimRequirements([['gcc', 'build-essential']]);
  if (missing.length > 0 || !commandExists('gcc')) {
    const ci = process.env.CI === 'true';
    console.log(
      `\nPrograms through the shim vs the kernel: not run — it needs ${missing.join('; ')}` +
        (ci ? ' (CI=true: this is a failure)' : ' (run `sudo npm run bench` for it)'),
    );
    process.exit(ci ? 1 : 0);
  }
  const t = await ShimTopology.start({ tag: 'bench', subnet: SUBNET, logLevel: 'info' });
  const vethHost = `vb${process.pid}`.slice(0, 15);
  const vethNs = `vn${process.pid}`.slice(0, 15);
  try {
    const bin = path.join(t.dir, 'pingpong');
    execFileSync('gcc', ['-O2', '-Wall', '-o', bin, path.join(__dirname, '..', '..', 'src', 'bench', 'pingpong.c')]);
    // The kernel's one-hop path: a veth pair into the same namespace.
    execFileSync('ip', ['link', 'add', vethHost, 'type', 'veth', 'peer', 'name', vethNs]);
    execFileSync('ip', ['link', 'set', vethNs, 'netns', t.ns]);
    execFileSync('ip', ['addr', 'add', `${HOST_VETH}/24`, 'dev', vethHost]);
    execFileSync('ip', ['link', 'set', vethHost, 'up']);
    execFileSync('ip', ['-n', t.ns, 'addr', 'add', `${NS_VETH}/24`, 'dev', vethNs]);
    execFileSync('ip', ['-n', t.ns, 'link', 'set', vethNs, 'up']);

    // Servers: kernel ones in NS (reached over the veth and over nuse's tun) and on this host's loopback.
    const port = 9500;
    for (const [mode, p] of [
      ['echo', port],
      ['sink', port + 1],
    ] as const) {
      await collect(t.procs.start(t.inNs([bin, mode, String(p)]))).waitFor(/listening/);
      await collect(t.procs.start([bin, mode, String(p + 10)])).waitFor(/listening/);
    }

    console.log(
      `\nPrograms through the shim vs the kernel (pingpong.c: ${RR} 1-byte round trips; ${SIZE / 1e6} MB, median of ${RUNS}):`,
    );
    const rows: [string, Figures][] = [];
    for (const [label, host, shim, p] of [
      ['kernel, loopback', '127.0.0.1', false, port + 10],
      ['shim, loopback (IPC only)', '127.0.0.1', true, port + 10],
      ['kernel, veth (one hop)', NS_VETH, false, port],
      ['shim over nuse, tun (one hop)', t.kernel, true, port],
    ] as const) {
      const f = await measure(t, bin, host, shim, p);
      rows.push([label, f]);
      console.log(
        `  ${label.padEnd(32)} RR median ${f.rrMedianUs.toFixed(1).padStart(7)} µs, p99 ${f.rrP99Us
          .toFixed(1)
          .padStart(7)} µs; ${f.mbPerSec.toFixed(0).padStart(6)} MB/s`,
      );
    }
    const [kl, sl, kv, sn] = rows.map((r) => r[1]);
    const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;
    console.log(
      `  IPC cost (shim loopback / kernel loopback): RR median ${ratio(sl!.rrMedianUs, kl!.rrMedianUs)}, ` +
        `+${(sl!.rrMedianUs - kl!.rrMedianUs).toFixed(1)} µs per round trip; throughput ${ratio(sl!.mbPerSec, kl!.mbPerSec)}`,
    );
    console.log(
      `  Whole cost (shim over nuse / kernel veth): RR median ${ratio(sn!.rrMedianUs, kv!.rrMedianUs)}, ` +
        `p99 ${ratio(sn!.rrP99Us, kv!.rrP99Us)}; throughput ${ratio(sn!.mbPerSec, kv!.mbPerSec)}`,
    );
    console.log(
      `  The stack's share (shim over nuse − shim loopback): +${(sn!.rrMedianUs - sl!.rrMedianUs).toFixed(1)} µs per round trip`,
    );
  } finally {
    try {
      execFileSync('ip', ['link', 'del', vethHost], { stdio: 'ignore' });
    } catch {
      // not created, or gone with the namespace
    }
    await t.stop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
