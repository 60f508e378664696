import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readCaptureFile } from '@nuse/core';
import { runDemo } from './sim-trace';

describe('the demo (npm start)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nuse-demo-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function run(seed: number, file: string) {
    const lines: string[] = [];
    const report = await runDemo({ seed, pcapPath: path.join(dir, file), print: (l) => lines.push(l) });
    return { lines, report };
  }

  test('prints the same trace for the same seed, and a different one for another seed', async () => {
    const a = await run(7, 'a.pcapng');
    const b = await run(7, 'b.pcapng');
    const c = await run(8, 'c.pcapng');
    // Only the last line differs: it names the capture file.
    expect(b.lines.slice(0, -1)).toEqual(a.lines.slice(0, -1));
    expect(c.lines.slice(0, -1)).not.toEqual(a.lines.slice(0, -1));
    // Same seed, same capture, byte for byte (virtual time maps to a fixed epoch).
    expect(fs.readFileSync(path.join(dir, 'b.pcapng'))).toEqual(fs.readFileSync(path.join(dir, 'a.pcapng')));
  });

  test('shows pings on both paths, the LTE outage, and the bottleneck dropping the burst tail', async () => {
    const { lines, report } = await run(2026, 'demo.pcapng');
    const wifi = report.paths.find((p) => p.name === 'wifi')!;
    const lte = report.paths.find((p) => p.name === 'lte')!;
    expect(wifi.pingsAnswered).toBeGreaterThanOrEqual(10);
    // LTE: 35 ms each way ± 8 ms of jitter, so every answered ping took 54–86 ms.
    expect(lte.rttMinMs).toBeGreaterThanOrEqual(54);
    expect(lte.rttMaxMs).toBeLessThanOrEqual(86 + 2);
    // The pings sent while LTE was down were refused, and the trace says so.
    expect(lines.some((l) => l.includes('link DOWN'))).toBe(true);
    expect(lines.some((l) => l.includes('link up'))).toBe(true);
    expect(lines.filter((l) => l.includes('(not sent: link down)')).length).toBeGreaterThan(0);
    expect(lte.pingsAnswered).toBeLessThan(lte.pingsSent);
    // 40 datagrams into a 30 kB queue at 5 Mbit/s: the tail is dropped, the rest echoed.
    const tailDrops = lte.drops['laptop tx-queue'] ?? 0;
    expect(tailDrops).toBeGreaterThan(0);
    expect(lines.filter((l) => l.includes('(dropped: bottleneck queue full)'))).toHaveLength(tailDrops);
    expect(report.udpEchoed).toBeLessThanOrEqual(report.udpSent - tailDrops);
    expect(report.udpBytesEchoed).toBe(report.udpEchoed * 1200);
  });

  test('writes a pcapng with one interface per path holding exactly the packets on the laptop links', async () => {
    const { lines } = await run(2026, 'check.pcapng');
    const capture = readCaptureFile(path.join(dir, 'check.pcapng'));
    expect(capture.format).toBe('pcapng');
    expect(capture.interfaces.map((i) => i.name)).toEqual(['wifi', 'lte']);
    const sent = lines.filter((l) => l.includes(' →  ') && !l.includes('(not sent') && !l.includes('(dropped'));
    const received = lines.filter((l) => l.includes(' ←  '));
    // Packets refused by the link (down, or tail-dropped by the bottleneck queue) never
    // reached the wire, so they are not in the capture (as with tcpdump above a qdisc).
    expect(capture.records.filter((r) => r.direction === 'outbound')).toHaveLength(sent.length);
    expect(capture.records.filter((r) => r.direction === 'inbound')).toHaveLength(received.length);
  });
});
