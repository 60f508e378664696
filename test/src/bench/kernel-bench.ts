/**
 * `npm run bench`, second part: nuse against the Linux kernel's TCP on one real path.
 *
 * Topology (test/src/harness/netns.ts): the nuse stack in this process on a tun whose
 * interface is in router namespace R; R ↔ veth ↔ namespace S. In one run:
 *   - kernel baseline: iperf3 -s in S, iperf3 -c in R over the veth, both directions
 *     (-R for S → R): the kernel's TCP at both ends, on the part of the path that nuse's
 *     traffic shares (nuse's packets also cross the tun and R's forwarding);
 *   - nuse → kernel: the stack sends SIZE bytes to `socat -u TCP-LISTEN OPEN:/dev/null` in S;
 *   - kernel → nuse: `head -c SIZE /dev/zero | socat -u STDIN TCP:stack` in S sends to a
 *     counting server on the stack.
 * After one warm-up transfer each way (not counted: the JIT compiles the stack's hot
 * paths), each nuse figure is the median of RUNS transfers, with the CPU time of this process
 * during the transfer (process.cpuUsage(): user + system) as % of one core and ns per
 * byte, and its ratio to the kernel's throughput in the same direction.
 *
 * Needs root (tun, namespaces) and iperf3, socat. Without root it prints one line saying
 * it was not run and why, and exits 0 — except under CI=true, where it exits 1 (CI runs
 * as root, so there it is a failure). Run alone: `node test/dist/bench/kernel-bench.js`
 * after `npx tsc -b`.
 */

import { ADDR, missingRequirements, Topology, waitForPort } from '../harness/netns';
import { sendAll } from '../harness/transfer';

const MB = 1_000_000;
const SIZE = Number(process.env.NUSE_BENCH_MB ?? 100) * MB;
const RUNS = Number(process.env.NUSE_BENCH_RUNS ?? 3);
const IPERF_SECONDS = 3;

interface NuseRun {
  wallMs: number;
  cpuMs: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function iperf(t: Topology, reverse: boolean): Promise<{ bytesPerSec: number; senderCpu: number }> {
  const server = t.spawnS('iperf3', ['-s', '-1', '-p', '5201']);
  server.stdout!.resume();
  server.stderr!.resume();
  await waitForPort(t.nsS, 5201);
  const args = ['-c', ADDR.host, '-p', '5201', '-t', String(IPERF_SECONDS), '-J', ...(reverse ? ['-R'] : [])];
  const r = await t.runR('iperf3', args, { timeoutMs: (IPERF_SECONDS + 15) * 1000 });
  const j = JSON.parse(r.stdout.toString()) as {
    end: { sum_received: { bits_per_second: number }; cpu_utilization_percent: Record<string, number> };
  };
  const cpu = j.end.cpu_utilization_percent;
  return {
    bytesPerSec: j.end.sum_received.bits_per_second / 8,
    // The sending host's iperf3 process: the client (R) forwards, the server (S) with -R.
    senderCpu: (reverse ? cpu.remote_total : cpu.host_total) ?? Number.NaN,
  };
}

/** The stack sends SIZE bytes to a socat sink in S; timed from connect to close. */
async function nuseSend(t: Topology, port: number): Promise<NuseRun> {
  const sinkProc = t.spawnS('socat', ['-u', `TCP-LISTEN:${port},reuseaddr`, 'OPEN:/dev/null']);
  sinkProc.stderr!.resume();
  await waitForPort(t.nsS, port);
  const chunk = new Uint8Array(SIZE);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const socket = t.stack.connect({ host: ADDR.host, port });
  await sendAll(socket, chunk, 'nuse → kernel');
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await new Promise<void>((resolve) =>
    sinkProc.exitCode !== null ? resolve() : sinkProc.once('exit', () => resolve()),
  );
  if (socket.bytesWritten < SIZE) throw new Error(`nuse → kernel moved ${socket.bytesWritten} of ${SIZE} bytes`);
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** socat in S sends SIZE zero bytes to a counting server on the stack; timed from accept to end. */
async function nuseReceive(t: Topology, port: number): Promise<NuseRun> {
  let result: ((r: NuseRun) => void) | undefined;
  let failed: ((e: Error) => void) | undefined;
  const done = new Promise<NuseRun>((resolve, reject) => {
    result = resolve;
    failed = reject;
  });
  const server = t.stack.createServer((socket) => {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let received = 0;
    socket.on('data', (d: Buffer) => {
      received += d.length;
    });
    socket.on('error', (e) => failed?.(e));
    socket.on('end', () => {
      const wallMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      socket.end();
      if (received !== SIZE) failed?.(new Error(`kernel → nuse moved ${received} of ${SIZE} bytes`));
      else result?.({ wallMs, cpuMs: (cpu.user + cpu.system) / 1000 });
    });
  });
  server.listen(port);
  const sender = t.runS('sh', ['-c', `head -c ${SIZE} /dev/zero | socat -u STDIN TCP:${ADDR.stack}:${port}`], {
    timeoutMs: 120_000,
  });
  try {
    const r = await done;
    await sender;
    return r;
  } finally {
    server.close();
  }
}

const mbps = (bytesPerSec: number): string => `${(bytesPerSec / MB).toFixed(1)} MB/s`;

function report(name: string, runs: NuseRun[], kernelBytesPerSec: number): void {
  const wall = median(runs.map((r) => r.wallMs));
  const cpu = median(runs.map((r) => r.cpuMs));
  const rate = SIZE / (wall / 1000);
  const all = runs.map((r) => (SIZE / MB / (r.wallMs / 1000)).toFixed(1)).join(', ');
  console.log(
    `  ${name.padEnd(24)} ${mbps(rate).padStart(11)}   ${((cpu / wall) * 100).toFixed(0).padStart(3)}% of one core, ` +
      `${((cpu * 1e6) / SIZE).toFixed(1)} CPU ns/byte   ${(rate / kernelBytesPerSec).toFixed(2)}× the kernel   (runs: ${all} MB/s)`,
  );
}

async function main(): Promise<void> {
  const missing = missingRequirements(['iperf3', 'socat']);
  if (missing.length > 0) {
    const ci = process.env.CI === 'true';
    console.log(
      `\nKernel TCP vs nuse over tun + veth: not run — it needs ${missing.join('; ')}` +
        (ci ? ' (CI=true: this is a failure)' : ' (run `sudo npm run bench` for it)'),
    );
    process.exit(ci ? 1 : 0);
  }
  const t = Topology.create({ seed: 'kernel-bench' });
  try {
    console.log(
      `\nKernel TCP vs nuse over a real path: nuse (tun) → router netns → veth → kernel netns; ${SIZE / MB} MB per nuse transfer, median of ${RUNS}`,
    );
    const kSend = await iperf(t, false);
    const kRecv = await iperf(t, true);
    console.log(
      `  kernel → kernel (iperf3, R → S over the veth, ${IPERF_SECONDS} s) ${mbps(kSend.bytesPerSec).padStart(11)}   sender iperf3 ${kSend.senderCpu.toFixed(0)}% CPU`,
    );
    console.log(
      `  kernel → kernel (iperf3 -R, S → R over the veth, ${IPERF_SECONDS} s) ${mbps(kRecv.bytesPerSec).padStart(11)}   sender iperf3 ${kRecv.senderCpu.toFixed(0)}% CPU`,
    );
    // Warm-up (not counted): the JIT compiles the stack's hot paths on the first transfer.
    await nuseSend(t, 5998);
    await nuseReceive(t, 5999);
    const sendRuns: NuseRun[] = [];
    const recvRuns: NuseRun[] = [];
    for (let i = 0; i < RUNS; i++) {
      sendRuns.push(await nuseSend(t, 6000 + i));
      recvRuns.push(await nuseReceive(t, 7000 + i));
    }
    report('nuse → kernel (socat)', sendRuns, kSend.bytesPerSec);
    report('kernel (socat) → nuse', recvRuns, kRecv.bytesPerSec);
    console.log('  (ratios: nuse throughput / the kernel’s over the veth alone, same direction, same run)');
  } finally {
    await t.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`kernel benchmark failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
