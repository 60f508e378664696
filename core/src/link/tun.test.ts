/**
 * The tun link against the real kernel. Needs root (CAP_NET_ADMIN), /dev/net/tun, the
 * built addon (npm run build), iproute2 and ping (iputils-ping). Without them the tests
 * FAIL with the reason: they are never skipped, in CI or anywhere else.
 *
 * The interface lives in the current network namespace (the addon opens the tun where
 * the process is), under a unique name, with addresses from the benchmarking range
 * 198.18.0.0/15 (RFC 2544): kernel side 198.18.7.1/30, stack side 198.18.7.2. It is
 * deleted in afterAll even when a test fails.
 */

import { execFile, execFileSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { promisify } from 'node:util';
import { Stack } from '../socket/stack';
import { payload, sha256 } from '../tcp/test-harness';
import { assertRootRequirements } from '../testing/requirements';
import { RealClock } from '../time/real-clock';
import { formatIpv4, parseIpv4 } from '../wire/address';
import { pseudoHeaderSumV4 } from '../wire/checksum';
import { Icmpv4Repr, Icmpv4View } from '../wire/icmpv4';
import { IpProtocol } from '../wire/ip-protocol';
import { Ipv4View } from '../wire/ipv4';
import { buildPacket } from '../wire/packet';
import { UdpRepr, UdpView } from '../wire/udp';
import { configureTun, TunLink } from './tun';

const execFileAsync = promisify(execFile);

const NAME = `nusetest${process.pid}`.slice(0, 15);
const KERNEL_ADDR = '198.18.7.1';
const STACK_ADDR = '198.18.7.2';

function interfaceExists(name: string): boolean {
  try {
    execFileSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const opened: TunLink[] = [];
function open(...args: Parameters<typeof TunLink.open>): TunLink {
  const link = TunLink.open(...args);
  opened.push(link);
  return link;
}

beforeAll(() => assertRootRequirements('the tun tests', ['ping']));

afterEach(() => {
  for (const link of opened.splice(0)) link.close();
});

afterAll(() => {
  for (const link of opened.splice(0)) link.close();
  if (interfaceExists(NAME)) execFileSync('ip', ['link', 'del', 'dev', NAME], { stdio: 'ignore' });
});

describe('TunLink with the kernel as the peer', () => {
  test('the kernel pings the stack address: requests arrive as bytes, our echo replies reach ping', async () => {
    const link = open({ name: NAME, address: `${KERNEL_ADDR}/30`, mtu: 1400 });
    expect(link.name).toBe(NAME);
    expect(link.mtu).toBe(1400);
    const shown = execFileSync('ip', ['-o', 'addr', 'show', 'dev', NAME], { encoding: 'utf8' });
    expect(shown).toContain(`inet ${KERNEL_ADDR}/30`);
    expect(execFileSync('ip', ['-o', 'link', 'show', 'dev', NAME], { encoding: 'utf8' })).toMatch(
      /<[^>]*\bUP\b[^>]*> mtu 1400 /,
    );

    const requests: { id: number; seq: number; src: string; dst: string; data: Uint8Array }[] = [];
    const replies: Uint8Array[] = [];
    link.onReceive((packet) => {
      if (packet[0]! >> 4 !== 4) return; // the kernel may also send IPv6 (router solicitations)
      const ip = Ipv4View.parse(packet);
      if (ip.protocol !== IpProtocol.ICMP) return;
      const icmp = Icmpv4Repr.parse(Icmpv4View.parse(ip.payload));
      if (icmp.kind !== 'echoRequest') return;
      requests.push({
        id: icmp.identifier,
        seq: icmp.sequence,
        src: formatIpv4(ip.src),
        dst: formatIpv4(ip.dst),
        data: icmp.data.slice(),
      });
      const reply = buildPacket(
        { src: ip.dst, dst: ip.src },
        {
          protocol: 'icmpv4',
          repr: { kind: 'echoReply', identifier: icmp.identifier, sequence: icmp.sequence, data: icmp.data },
        },
      );
      replies.push(reply);
      expect(link.send(reply)).toBe(true);
    });

    let stdout: string;
    try {
      ({ stdout } = await execFileAsync('ping', ['-n', '-c', '3', '-i', '0.2', '-W', '1', '-I', NAME, STACK_ADDR]));
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`ping failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
    expect(stdout).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);

    expect(requests.map((r) => r.seq)).toEqual([1, 2, 3]);
    for (const r of requests) {
      expect(r.src).toBe(KERNEL_ADDR);
      expect(r.dst).toBe(STACK_ADDR);
      expect(r.id).toBe(requests[0]!.id);
      expect(r.data.length).toBe(56); // ping's default payload
    }
    // The replies we sent are well-formed ICMP echo replies that mirror the requests.
    for (const [i, reply] of replies.entries()) {
      const ip = Ipv4View.parse(reply);
      expect(formatIpv4(ip.src)).toBe(STACK_ADDR);
      expect(formatIpv4(ip.dst)).toBe(KERNEL_ADDR);
      const icmp = Icmpv4Repr.parse(Icmpv4View.parse(ip.payload));
      expect(icmp).toMatchObject({ kind: 'echoReply', identifier: requests[i]!.id, sequence: i + 1 });
      expect(icmp.kind === 'echoReply' && Buffer.from(icmp.data).equals(Buffer.from(requests[i]!.data))).toBe(true);
    }
    expect(link.counters.txPackets).toBe(3);
    expect(link.counters.rxPackets).toBeGreaterThanOrEqual(3);
    const stats = link.deviceStats;
    expect(stats.txPackets).toBe(3);
    expect(stats.txErrors).toBe(0);
    expect(stats.rxBatches).toBeGreaterThanOrEqual(1);
    expect(stats.rxPackets).toBe(link.counters.rxPackets);
  });

  test('UDP both ways: kernel datagrams arrive byte for byte, the stack’s datagrams reach a kernel socket', async () => {
    const link = open({ name: NAME, address: `${KERNEL_ADDR}/30` });
    const socket = dgram.createSocket('udp4');
    try {
      await new Promise<void>((resolve) => socket.bind(0, KERNEL_ADDR, resolve));
      const kernelPort = socket.address().port;

      // Kernel -> stack: a burst, so the addon may hand several packets in one batch.
      const received: { srcPort: number; dstPort: number; payload: Buffer }[] = [];
      link.onReceive((packet) => {
        if (packet[0]! >> 4 !== 4) return;
        const ip = Ipv4View.parse(packet);
        if (ip.protocol !== IpProtocol.UDP) return;
        const view = UdpView.parse(ip.payload);
        const udp = UdpRepr.parse(view, pseudoHeaderSumV4(ip.src, ip.dst, IpProtocol.UDP, view.length));
        received.push({ srcPort: udp.srcPort, dstPort: udp.dstPort, payload: Buffer.from(udp.payload) });
      });
      const payloads = Array.from({ length: 20 }, (_, i) => Buffer.alloc(100 + i * 50, i + 1));
      for (const p of payloads) {
        await new Promise<void>((resolve, reject) =>
          socket.send(p, 9999, STACK_ADDR, (err) => (err ? reject(err) : resolve())),
        );
      }
      const deadline = Date.now() + 3000;
      while (received.length < payloads.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(received.length).toBe(payloads.length);
      for (const [i, r] of received.entries()) {
        expect(r.srcPort).toBe(kernelPort);
        expect(r.dstPort).toBe(9999);
        expect(r.payload.equals(payloads[i]!)).toBe(true);
      }

      // Stack -> kernel.
      const message = Buffer.from('hello from the nuse stack');
      const got = new Promise<{ msg: Buffer; rinfo: dgram.RemoteInfo }>((resolve) =>
        socket.once('message', (msg, rinfo) => resolve({ msg, rinfo })),
      );
      const packet = buildPacket(
        { src: parseIpv4(STACK_ADDR), dst: parseIpv4(KERNEL_ADDR) },
        { protocol: 'udp', repr: { srcPort: 4242, dstPort: kernelPort, payload: message } },
      );
      expect(link.send(packet)).toBe(true);
      const { msg, rinfo } = await got;
      expect(msg.equals(message)).toBe(true);
      expect(rinfo.address).toBe(STACK_ADDR);
      expect(rinfo.port).toBe(4242);
    } finally {
      socket.close();
    }
  });

  test('opening a name that is open already fails with EBUSY', () => {
    open({ name: NAME });
    expect(() => TunLink.open({ name: NAME })).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    expect(() => TunLink.open({ name: NAME })).toThrow(/name is taken/);
  });

  test('bad names give clear errors', () => {
    expect(() => TunLink.open({ name: 'x'.repeat(16) })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/1 to 15 bytes/) }),
    );
    expect(() => TunLink.open({ name: 'bad/name' })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/must not .* contain "\/"/) }),
    );
    // A name the kernel refuses: it belongs to a non-tun interface.
    expect(() => TunLink.open({ name: 'lo' })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => configureTun(NAME, { address: '198.18.7.1', mtu: 1500 })).toThrow(/expected ADDR\/PREFIX/);
  });

  test('a kernel-chosen name works', () => {
    const link = open();
    expect(link.name).toMatch(/^tun\d+$/);
    expect(interfaceExists(link.name)).toBe(true);
  });

  test('close() removes the interface and releases the name', () => {
    const link = open({ name: NAME, address: `${KERNEL_ADDR}/30` });
    expect(interfaceExists(NAME)).toBe(true);
    link.close();
    link.close(); // idempotent
    expect(interfaceExists(NAME)).toBe(false);
    expect(link.send(new Uint8Array(20))).toBe(false);
    const again = open({ name: NAME });
    expect(again.name).toBe(NAME);
  });

  test('a failing iproute2 step closes the device and names the command', () => {
    expect(() => open({ name: NAME, address: `${KERNEL_ADDR}/30`, peer: 'not-an-address' })).toThrow(
      expect.objectContaining({ code: 'EIP', message: expect.stringMatching(/^ip addr add .* failed/) }),
    );
    expect(interfaceExists(NAME)).toBe(false);
  });

  test('an interface moved into a network namespace keeps carrying packets; the namespace holds its address', async () => {
    const ns = `nusetest-ns${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      const link = open({ name: NAME, address: `${KERNEL_ADDR}/30`, netns: ns });
      expect(interfaceExists(NAME)).toBe(false); // gone from this namespace
      const shown = execFileSync('ip', ['-n', ns, '-o', 'addr', 'show', 'dev', NAME], { encoding: 'utf8' });
      expect(shown).toContain(`inet ${KERNEL_ADDR}/30`);
      let echoRequests = 0;
      link.onReceive((packet) => {
        if (packet[0]! >> 4 !== 4) return;
        const ip = Ipv4View.parse(packet);
        if (ip.protocol === IpProtocol.ICMP && formatIpv4(ip.dst) === STACK_ADDR) echoRequests++;
      });
      // Nothing answers: ping fails, but its requests reach the link through the namespace.
      const ping = ['ping', '-n', '-c', '2', '-i', '0.2', '-W', '1', STACK_ADDR];
      await execFileAsync('ip', ['netns', 'exec', ns, ...ping]).catch(() => undefined);
      expect(echoRequests).toBe(2);
    } finally {
      for (const link of opened.splice(0)) link.close();
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });

  test.each([
    { gso: false, rxOffload: false },
    { gso: true, rxOffload: true },
  ])(
    'TCP with the kernel both ways, intact (offloads %j)',
    async (offloads) => {
      const link = open({ name: NAME, address: `${KERNEL_ADDR}/30`, ...offloads });
      const stack = new Stack({ clock: new RealClock(), seed: 5 });
      stack.addInterface(link, `${STACK_ADDR}/30`);
      const size = 5_000_000;
      const data = payload(size, 9);
      try {
        // Kernel → stack: a Node (kernel TCP) client sends to a server on the stack.
        let got: Buffer[] = [];
        const received = new Promise<void>((resolve) => {
          stack
            .createServer((s) => {
              s.on('data', (d: Buffer) => got.push(d));
              s.on('end', () => {
                s.end();
                resolve();
              });
            })
            .listen(7000);
        });
        const client = net.connect({ host: STACK_ADDR, port: 7000, localAddress: KERNEL_ADDR });
        client.end(data);
        await received;
        expect(sha256(Buffer.concat(got))).toBe(sha256(data));
        // Stack → kernel: the stack sends to a Node server.
        got = [];
        const server = net.createServer((s) => s.on('data', (d: Buffer) => got.push(d)));
        await new Promise<void>((resolve) => server.listen(7001, KERNEL_ADDR, resolve));
        const closed = new Promise<void>((resolve) => server.on('connection', (s) => s.on('end', () => resolve())));
        stack.connect({ host: KERNEL_ADDR, port: 7001 }).end(data);
        await closed;
        server.close();
        expect(sha256(Buffer.concat(got))).toBe(sha256(data));
        const stats = link.deviceStats;
        if (offloads.gso) {
          expect(link.gsoStats.superSegments).toBeGreaterThan(0);
          expect(link.gsoStats.segments).toBeGreaterThan(link.gsoStats.superSegments);
        } else {
          expect(link.gsoStats.superSegments).toBe(0);
        }
        expect(stats.rxErrors).toBe(0);
        if (offloads.rxOffload) expect(stats.rxCutSegments).toBeGreaterThan(stats.rxSuperPackets);
        else expect(stats.rxSuperPackets).toBe(0);
      } finally {
        stack.close();
      }
    },
    60_000,
  );
});
