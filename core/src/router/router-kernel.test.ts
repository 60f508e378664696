/**
 * The router between two kernel hosts. Needs root (CAP_NET_ADMIN), /dev/net/tun, the
 * built addon (npm run build), iproute2 (ip, ss, nstat), ping, python3 and tshark.
 * Without them the tests FAIL with the reason: they are never skipped.
 *
 * Two network namespaces, each with one tun of the router (the device stays in this
 * process, the interface lives in the namespace): host 1 is 10.91.1.1/24 behind tun 1,
 * host 2 is 10.91.2.1/24 behind tun 2, each with a default route into its tun; the
 * router's own addresses are 10.91.1.2 and 10.91.2.2. The router runs in this process,
 * so every child process here is asynchronous. Namespaces (and so the interfaces) are
 * deleted in afterAll, even when a test fails.
 */

import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { Link } from '../link/link';
import { PcapTap } from '../link/pcap-tap';
import { FileSink, PcapngWriter } from '../link/pcap-writer';
import { Shaper } from '../link/shaper';
import { runIp, TunLink } from '../link/tun';
import { assertRootRequirements } from '../testing/requirements';
import { RealClock } from '../time/real-clock';
import { Router, type RouterOptions } from './engine';
import {
  deleteNetns,
  inNetns,
  inNetnsAnyExit,
  nstat,
  sweepStaleNetns,
  TCPI_OPT_TIMESTAMPS,
  transfer,
  writeScripts,
} from './kernel-hosts';

const execFileAsync = promisify(execFile);

const NS1 = `nuse-rt1-${process.pid}`;
const NS2 = `nuse-rt2-${process.pid}`;
const T1 = `nrt1-${process.pid}`.slice(0, 15);
const T2 = `nrt2-${process.pid}`.slice(0, 15);
const HOST1 = '10.91.1.1';
const HOST2 = '10.91.2.1';
const ROUTER1 = '10.91.1.2';
const HOST1_V6 = 'fd00:91:1::1';
const HOST2_V6 = 'fd00:91:2::1';
const ROUTER1_V6 = 'fd00:91:1::2';
const MB = 1_000_000;

jest.setTimeout(60_000);

const clock = new RealClock();
let scripts = '';
let shaper1: Shaper;
let shaper2: Shaper;
let router: Router | undefined;
let nextPort = 5001;

/** (Re)builds the router over the two shaped links. */
function useRouter(opts: Partial<RouterOptions> = {}, links: [Link, Link] = [shaper1, shaper2]): Router {
  router?.close();
  const r = new Router({ clock, icmpRateLimit: false, ...opts });
  r.addPort({
    link: links[0],
    name: T1,
    prefixes: [`${HOST1}/24`, `${HOST1_V6}/64`],
    addresses: [ROUTER1, ROUTER1_V6],
  });
  r.addPort({ link: links[1], name: T2, prefixes: [`${HOST2}/24`, `${HOST2_V6}/64`], addresses: ['10.91.2.2'] });
  router = r;
  return r;
}

function portCounters(name: string) {
  return router!.port(name)!.counters;
}

function rtt(pingOutput: string): { min: number; avg: number; max: number } {
  const m = /rtt min\/avg\/max\/mdev = ([\d.]+)\/([\d.]+)\/([\d.]+)/.exec(pingOutput);
  if (!m) throw new Error(`no RTT summary in ping's output:\n${pingOutput}`);
  return { min: Number(m[1]), avg: Number(m[2]), max: Number(m[3]) };
}

beforeAll(() => {
  assertRootRequirements('the router tests', ['ss', 'nstat', 'ping', 'python3', 'tshark']);
  sweepStaleNetns();
  scripts = writeScripts();
  for (const ns of [NS1, NS2]) {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.mptcp.enabled=1']);
  }
  const tun1 = TunLink.open({ name: T1, address: `${HOST1}/24`, netns: NS1 });
  shaper1 = new Shaper(tun1, { clock, seed: 'router-kernel-1' });
  const tun2 = TunLink.open({ name: T2, address: `${HOST2}/24`, netns: NS2 });
  shaper2 = new Shaper(tun2, { clock, seed: 'router-kernel-2' });
  runIp(['-n', NS1, 'route', 'add', 'default', 'dev', T1]);
  runIp(['-n', NS2, 'route', 'add', 'default', 'dev', T2]);
  // IPv6 as well: a second address on each tun's host side (a tun has no DAD: usable at once).
  runIp(['-n', NS1, 'addr', 'add', `${HOST1_V6}/64`, 'dev', T1]);
  runIp(['-n', NS2, 'addr', 'add', `${HOST2_V6}/64`, 'dev', T2]);
  runIp(['-n', NS1, '-6', 'route', 'add', 'default', 'dev', T1]);
  runIp(['-n', NS2, '-6', 'route', 'add', 'default', 'dev', T2]);
});

beforeEach(() => {
  if (shaper1 === undefined) return;
  shaper1.configure({ tx: {}, rx: {} });
  shaper2.configure({ tx: {}, rx: {} });
  useRouter();
});

afterEach(() => {
  // Nothing a kernel sent may have hit a bug in the engine.
  expect(router?.lastError).toBeUndefined();
  expect(router?.stats().totals.drops['internal-error']).toBeUndefined();
});

afterAll(() => {
  router?.close();
  shaper1?.close(); // closes the tun: the kernel deletes the interface
  shaper2?.close();
  for (const ns of [NS1, NS2]) deleteNetns(ns);
  if (scripts) fs.rmSync(scripts, { recursive: true, force: true });
});

describe('nuse router between two kernel hosts', () => {
  test('the hosts ping each other through the router; the TTL drops by one; the router answers its own address', async () => {
    const out = await inNetns(NS1, ['ping', '-n', '-c', '3', '-i', '0.2', '-W', '2', HOST2]);
    expect(out).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);
    expect(out).toMatch(/ttl=63/); // host 2 sends 64, the router takes one
    const own = await inNetns(NS2, ['ping', '-n', '-c', '1', '-W', '2', ROUTER1]);
    expect(own).toMatch(/ttl=64/);
    expect(portCounters(T1).forwarded).toBe(3);
    expect(portCounters(T2).forwarded).toBe(3);
    expect(portCounters(T2).events['echo-replies']).toBe(1);
  });

  test('TTL 1: ping hears "time to live exceeded" from the router', async () => {
    const out = await inNetnsAnyExit(NS1, ['ping', '-n', '-c', '1', '-t', '1', '-W', '1', HOST2]);
    expect(out).toMatch(new RegExp(`From ${ROUTER1.replace(/\./g, '\\.')} icmp_seq=1 Time to live exceeded`));
    expect(portCounters(T1).events['icmp-time-exceeded']).toBe(1);
  });

  test('delay=20ms on tun 2 (both directions): the RTT is at least 40 ms, and not much more', async () => {
    shaper2.configure({ tx: { delayMs: 20 }, rx: { delayMs: 20 } });
    const out = await inNetns(NS1, ['ping', '-n', '-c', '5', '-i', '0.2', '-W', '2', HOST2]);
    const { min, avg, max } = rtt(out);
    expect(min).toBeGreaterThanOrEqual(40);
    // Upper bounds leave room for a loaded machine: the router shares this process with jest.
    expect(avg).toBeLessThan(70);
    expect(max).toBeLessThan(150);
    // One direction only: 20 ms.
    shaper2.configure({ tx: { delayMs: 20 }, rx: {} });
    const one = rtt(await inNetns(NS1, ['ping', '-n', '-c', '3', '-i', '0.2', '-W', '2', HOST2]));
    expect(one.min).toBeGreaterThanOrEqual(20);
    expect(one.avg).toBeLessThan(50);
  });

  test('20 MB over the kernel’s TCP through the router: length and SHA-256 match', async () => {
    const r = await transfer({ scripts, fromNs: NS1, toNs: NS2, to: HOST2, port: nextPort++, bytes: 20 * MB });
    expect(r.received.bytes).toBe(20 * MB);
    expect(r.received.sha256).toBe(r.sent.sha256);
    expect(portCounters(T1).forwarded).toBeGreaterThan((20 * MB) / 1500);
    // Nothing dropped but the kernel's own IPv6 multicast (router solicitations, MLD).
    expect(Object.keys(router!.stats().totals.drops).filter((k) => k !== 'multicast')).toEqual([]);
    // The other way too.
    const back = await transfer({ scripts, fromNs: NS2, toNs: NS1, to: HOST1, port: nextPort++, bytes: 20 * MB });
    expect(back.received.sha256).toBe(back.sent.sha256);
  });

  test('20 MB with 1% loss each way on tun 2: TCP recovers, nothing is corrupted', async () => {
    shaper2.configure({ tx: { loss: 0.01 }, rx: { loss: 0.01 } });
    const r = await transfer({ scripts, fromNs: NS1, toNs: NS2, to: HOST2, port: nextPort++, bytes: 20 * MB });
    expect(r.received.bytes).toBe(20 * MB);
    expect(r.received.sha256).toBe(r.sent.sha256);
    const drops = shaper2.counters.drops;
    expect(drops['tx-loss']).toBeGreaterThan(50); // ~1% of ~14,000 data packets
    expect(drops['rx-loss']).toBeGreaterThan(0);
  });

  test('stripping timestamps (kind 8): the kernel’s connection runs without them', async () => {
    const plain = await transfer({ scripts, fromNs: NS1, toNs: NS2, to: HOST2, port: nextPort++, bytes: MB });
    expect(plain.sent.tcpiOptions! & TCPI_OPT_TIMESTAMPS).toBe(TCPI_OPT_TIMESTAMPS);

    useRouter({ strip: { kinds: [8] } });
    const r = await transfer({ scripts, fromNs: NS1, toNs: NS2, to: HOST2, port: nextPort++, bytes: MB });
    expect(r.received.sha256).toBe(r.sent.sha256);
    expect(r.sent.tcpiOptions! & TCPI_OPT_TIMESTAMPS).toBe(0);
    // The SYN lost its timestamps; the SYN-ACK then carries none (RFC 7323 §3.2).
    expect(portCounters(T1).events['tcp-options-stripped']).toBe(1);
    expect(router!.stats().totals.events['tcp-options-malformed']).toBeUndefined();
  });

  test('MPTCP: with kind 30 stripped from the SYN the kernel falls back to TCP and still moves the data; unstripped it is MPTCP', async () => {
    const before = await nstat(NS1, 'MPTcpExtMPCapableFallbackSYNACK');
    const mptcp = await transfer({
      scripts,
      fromNs: NS1,
      toNs: NS2,
      to: HOST2,
      port: nextPort++,
      bytes: 2 * MB,
      protocol: 262,
    });
    expect(mptcp.received.sha256).toBe(mptcp.sent.sha256);
    expect(mptcp.sent.mptcp).toBe(1);
    expect(mptcp.received.mptcp).toBe(1);

    // Strip only SYNs going into tun 2, and capture both tuns next to the router.
    const file = path.join(scripts, 'strip.pcapng');
    const writer = new PcapngWriter(new FileSink(file));
    const tap1 = new PcapTap(shaper1, writer, { clock, interfaceName: T1 });
    const tap2 = new PcapTap(shaper2, writer, { clock, interfaceName: T2 });
    useRouter({ strip: { kinds: [30], synOnly: true, on: [{ port: T2, direction: 'tx' }] } }, [tap1, tap2]);
    const r = await transfer({
      scripts,
      fromNs: NS1,
      toNs: NS2,
      to: HOST2,
      port: nextPort++,
      bytes: 2 * MB,
      protocol: 262,
    });
    router!.close();
    tap1.detach();
    tap2.detach();
    writer.close();
    expect(r.received.bytes).toBe(2 * MB);
    expect(r.received.sha256).toBe(r.sent.sha256);
    expect(r.sent.mptcp).toBe(0);
    expect(r.received.mptcp).toBe(0);
    expect(await nstat(NS1, 'MPTcpExtMPCapableFallbackSYNACK')).toBe(before + 1);
    expect(portCounters(T1).events['tcp-options-stripped']).toBe(1);

    // On the wire: the SYN arrives from host 1 with MPTCP (kind 30) and leaves into tun 2 without it.
    const { stdout } = await execFileAsync('tshark', [
      '-r',
      file,
      '-Y',
      'tcp.flags.syn == 1 && tcp.flags.ack == 0',
      '-T',
      'fields',
      '-E',
      'separator=;',
      '-e',
      'frame.interface_name',
      '-e',
      'tcp.option_kind',
    ]);
    const syns = stdout
      .trim()
      .split('\n')
      .map((l) => l.split(';'));
    expect(syns).toHaveLength(2);
    const [inbound, outbound] = syns as [string[], string[]];
    expect(inbound[0]).toBe(T1);
    expect(inbound[1]!.split(',')).toContain('30');
    expect(outbound[0]).toBe(T2);
    expect(outbound[1]!.split(',')).not.toContain('30');
    expect(outbound[1]!.split(',')).toContain('8'); // other options untouched
  });

  test('IPv6: ping through the router (hop limit 63), time exceeded at hop limit 1, TCP with timestamps stripped, packet too big at a 1300-byte hop', async () => {
    const out = await inNetns(NS1, ['ping', '-6', '-n', '-c', '2', '-i', '0.2', '-W', '2', HOST2_V6]);
    expect(out).toMatch(/2 received/);
    expect(out).toMatch(/ttl=63/);
    const hop = await inNetnsAnyExit(NS1, ['ping', '-6', '-n', '-c', '1', '-t', '1', '-W', '1', HOST2_V6]);
    expect(hop).toMatch(new RegExp(`From ${ROUTER1_V6} icmp_seq=1 Time exceeded: Hop limit`));
    expect(portCounters(T1).events['icmp-time-exceeded']).toBe(1);
    // TCP over IPv6, with timestamps stripped on the way.
    useRouter({ strip: { kinds: [8] } });
    const r = await transfer({ scripts, fromNs: NS1, toNs: NS2, to: HOST2_V6, port: nextPort++, bytes: 2 * MB });
    expect(r.received.sha256).toBe(r.sent.sha256);
    expect(r.sent.tcpiOptions! & TCPI_OPT_TIMESTAMPS).toBe(0);
    expect(portCounters(T1).events['tcp-options-stripped']).toBe(1);
    shaper2.configure({ tx: { mtu: 1300 }, rx: {} });
    const big = await inNetnsAnyExit(NS1, [
      'ping',
      '-6',
      '-n',
      '-c',
      '2',
      '-i',
      '0.2',
      '-s',
      '1400',
      '-W',
      '1',
      HOST2_V6,
    ]);
    expect(big).toMatch(/Packet too big: mtu=1300|mtu=1300/);
    expect(portCounters(T1).events['icmp-packet-too-big']).toBeGreaterThanOrEqual(1);
  });

  test('IPv4 without DF through a 1300-byte hop: the router fragments the kernel’s fragments, the far host reassembles', async () => {
    shaper2.configure({ tx: { mtu: 1300 }, rx: {} });
    const out = await inNetns(NS1, [
      'ping',
      '-n',
      '-c',
      '2',
      '-i',
      '0.2',
      '-M',
      'dont',
      '-s',
      '3000',
      '-W',
      '2',
      HOST2,
    ]);
    expect(out).toMatch(/2 received/);
    expect(out).toMatch(/3008 bytes from/);
    // Each request leaves host 1 as fragments of 1500, 1500 and 68 bytes; both full ones are cut again.
    expect(portCounters(T1).events.fragmented).toBe(4);
    expect(portCounters(T1).events.fragments).toBe(8);
  });

  test('PMTU: a 1300-byte hop makes the router send fragmentation needed; the kernel’s TCP adapts', async () => {
    shaper2.configure({ tx: { mtu: 1300 }, rx: {} });
    const r = await transfer({ scripts, fromNs: NS1, toNs: NS2, to: HOST2, port: nextPort++, bytes: 5 * MB });
    expect(r.received.sha256).toBe(r.sent.sha256);
    expect(portCounters(T1).events['icmp-frag-needed']).toBeGreaterThanOrEqual(1);
    expect(portCounters(T1).drops['too-big']).toBeGreaterThanOrEqual(1);
    // The kernel remembers the path MTU: ping with DF says so.
    const out = await inNetnsAnyExit(NS1, ['ping', '-n', '-c', '1', '-M', 'do', '-s', '1400', '-W', '1', HOST2]);
    expect(out + (await inNetns(NS1, ['ip', 'route', 'get', HOST2]))).toMatch(/mtu 1300|mtu = 1300|mtu=1300/);
  });
});
