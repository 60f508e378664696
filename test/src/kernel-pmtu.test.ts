/**
 * Path MTU discovery against the Linux kernel as the router: nuse (tun, MTU 1500) ↔
 * router namespace R, whose next hop (the veth to S) has a smaller MTU ↔ kernel host S. The stack's packets
 * carry DF (IPv4) and IPv6 routers never fragment, so R answers the first full-sized
 * segment with ICMP "fragmentation needed" (RFC 1191) or "packet too big" (RFC 8201);
 * the stack must lower its path MTU, cut its segments to it, and deliver every byte.
 *
 * Needs root, /dev/net/tun, the built addon, iproute2, socat: FAILS (never skips)
 * naming what is missing.
 */

import { parseIp } from '@nuse/core';
import { ADDR, assertRequirements, randomFile, type Topology, waitForPort } from './harness/netns';
import { createTopology } from './harness/servers';
import { describeSocket, hashStdout, upload, withTimeout } from './harness/transfer';

const MB = 1_000_000;

let t: Topology;

beforeAll(() => {
  assertRequirements('kernel path-MTU interop tests', ['socat']);
  t = createTopology({ seed: 'kernel-pmtu' });
}, 30_000);

afterAll(async () => {
  await t?.close();
});

/**
 * Narrows R's end of the R–S veth only: S keeps 1500 and announces an MSS of 1460, so
 * the stack's full-sized segments reach R and do not fit its next hop. (Only ACKs come
 * back from S in these uploads, and they fit.)
 */
async function narrowHop(mtu: number): Promise<void> {
  await t.runR('ip', ['link', 'set', 'dev', t.vethR, 'mtu', String(mtu)]);
}

test.each([
  { v6: false, mtu: 1400, port: 5101 },
  { v6: true, mtu: 1280, port: 5102 },
])(
  'v6=$v6: a $mtu-byte hop: the kernel router’s ICMP lowers the path MTU; 4 MB arrive intact',
  async ({ v6, mtu, port }) => {
    await narrowHop(mtu);
    const file = randomFile(t.dir, `pmtu-${mtu}.bin`, 4 * MB);
    const host = v6 ? ADDR.host6 : ADDR.host;
    const receiver = t.spawnS('socat', ['-u', `${v6 ? 'TCP6' : 'TCP'}-LISTEN:${port},reuseaddr`, 'STDOUT']);
    const received = hashStdout(receiver, 'socat sink in S');
    await waitForPort(t.nsS, port);
    const before = { ...t.stack.ip.drops };
    const { socket, done } = upload(t.stack, host, port, file.data);
    await withTimeout(done, 30_000, `upload over a ${mtu}-byte hop`, () => describeSocket(socket));
    const got = await withTimeout(received, 10_000, 'socat sink exit');
    expect(got.length).toBe(file.size);
    expect(got.sha256).toBe(file.sha256);
    // The stack learned the hop's MTU from the kernel's ICMP, for that destination only.
    expect(t.stack.ip.route(parseIp(host))?.mtu).toBe(mtu);
    expect(t.stack.ip.route(parseIp(v6 ? ADDR.routerVeth6 : ADDR.routerVeth))?.mtu).toBe(1500);
    expect(t.stack.ip.drops['icmpv6-ptb-below-minimum'] ?? 0).toBe(before['icmpv6-ptb-below-minimum'] ?? 0);
  },
  60_000,
);
