/**
 * A tiny benchmark harness: runs a body repeatedly for a minimum wall time after a
 * warm-up and reports operations and bytes per second. Benchmarks print ratios
 * against a baseline measured in the same run, so the figures mean something on any
 * machine.
 */
export interface Measurement {
  name: string;
  opsPerSec: number;
  bytesPerSec: number;
}

export function measure(name: string, bytesPerOp: number, body: () => void, minMs = 400): Measurement {
  // Warm-up: let the JIT settle before timing.
  const warmEnd = performance.now() + minMs / 4;
  while (performance.now() < warmEnd) body();
  let ops = 0;
  const start = performance.now();
  let elapsed = 0;
  let batch = 16;
  do {
    for (let i = 0; i < batch; i++) body();
    ops += batch;
    elapsed = performance.now() - start;
    if (elapsed < minMs / 10) batch *= 2;
  } while (elapsed < minMs);
  const opsPerSec = (ops * 1000) / elapsed;
  return { name, opsPerSec, bytesPerSec: opsPerSec * bytesPerOp };
}

export function formatRate(m: Measurement): string {
  const mb = m.bytesPerSec / 1e6;
  const pps = m.opsPerSec;
  const ppsText = pps >= 1e6 ? `${(pps / 1e6).toFixed(2)} M/s` : `${(pps / 1e3).toFixed(1)} k/s`;
  return `${m.name.padEnd(44)} ${mb.toFixed(1).padStart(9)} MB/s ${ppsText.padStart(11)}`;
}

export function ratio(m: Measurement, baseline: Measurement): string {
  return `${(m.bytesPerSec / baseline.bytesPerSec).toFixed(2)}× ${baseline.name}`;
}
