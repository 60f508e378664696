/**
 * `nuse router`'s exit report: one line per port, readable by a person, e.g.
 *
 *   nuse router: 12.4 s, 41234 packets forwarded
 *   a: rx 20611 pkts 29.1 MB, tx 20598 pkts 1.1 MB, forwarded 20611; drops: none; events: icmp-frag-needed=1; shaper: tx-loss=3
 *
 * (`--stats-json` prints the same counters as one JSON object instead.)
 */

import type { TunRouterStats } from './tun-router';

function bytes(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

function counts(map: Record<string, number>): string {
  const entries = Object.entries(map).filter(([, v]) => v > 0);
  return entries.length === 0 ? 'none' : entries.map(([k, v]) => `${k}=${v}`).join(' ');
}

export function formatRouterStats(stats: TunRouterStats): string {
  const lines = [`nuse router: ${stats.seconds.toFixed(1)} s, ${stats.totals.forwarded} packets forwarded`];
  for (const p of stats.ports) {
    const c = p.counters;
    const link = stats.links[p.name];
    let line =
      `${p.name}: rx ${c.rxPackets} pkts ${bytes(c.rxBytes)}, tx ${c.txPackets} pkts ${bytes(c.txBytes)}, ` +
      `forwarded ${c.forwarded}; drops: ${counts(c.drops)}; events: ${counts(c.events)}`;
    if (link !== undefined && Object.keys(link.shaper).length > 0) line += `; shaper: ${counts(link.shaper)}`;
    if (link !== undefined && Object.keys(link.device).length > 0) line += `; device: ${counts(link.device)}`;
    lines.push(line);
  }
  return `${lines.join('\n')}\n`;
}
