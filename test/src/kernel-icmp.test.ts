/**
 * What the kernel says back at the network layer, and what the stack's sockets make of
 * it (topology: harness/netns.ts):
 * - ping and ping -6 from the kernel host S reach the stack's addresses and get replies;
 * - a connect to a closed port in S: the kernel's RST → ECONNREFUSED;
 * - a connect to a network the router R has no route for: R's ICMP "net unreachable"
 *   (ICMPv6 "no route") → ENETUNREACH;
 * - a connect through R's `unreachable` route: ICMP "host unreachable" → EHOSTUNREACH;
 * - a connect to an address on the R–S link nobody holds: R's ARP (or neighbour
 *   discovery) fails after ~3 s and R sends "host/address unreachable" → EHOSTUNREACH.
 *
 * The connects run with synRetries 2 (SYNs at 0, 1 and 3 s; give-up at 7 s): an ICMP
 * error must end them before that, whether the stack treats it as a hard error at once
 * (as Linux does in SYN-SENT) or reports it when the retries run out (RFC 1122 soft
 * error); a stack that ignores ICMP fails with ETIMEDOUT instead.
 *
 * Needs root, /dev/net/tun, the built addon, iproute2, ping, socat: the suite FAILS
 * (never skips) naming what is missing.
 */

import { ADDR, assertRequirements, ip, type Topology } from './harness/netns';
import { createTopology } from './harness/servers';

let t: Topology;

beforeAll(() => {
  assertRequirements('kernel ICMP interop tests', ['ping']);
  t = createTopology({ seed: 'kernel-icmp' });
  // R: an explicit unreachable route (the kernel answers it with ICMP host unreachable).
  ip(['-n', t.nsR, 'route', 'add', 'unreachable', '10.72.0.0/16']);
});

afterAll(async () => {
  await t?.close();
});

/** Connects and resolves with the socket's error code and how long it took (ms). */
function connectOutcome(host: string, port: number): Promise<{ code: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const socket = t.stack.connect({ host, port, tcp: { synRetries: 2 } });
    socket.on('connect', () => {
      resolve({ code: 'connected', ms: performance.now() - t0 });
      socket.destroy();
    });
    socket.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ code: err.code ?? err.message, ms: performance.now() - t0 }),
    );
  });
}

async function ping(args: string[]): Promise<string> {
  const r = await t.runS('ping', args, { allowFailure: true, timeoutMs: 15_000 });
  return r.stdout.toString() + r.stderr;
}

describe('ping from the kernel host', () => {
  test('ping reaches the stack and gets 3 replies', async () => {
    const out = await ping(['-n', '-c', '3', '-i', '0.2', '-W', '1', ADDR.stack]);
    expect(out).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);
  }, 20_000);

  test('ping -6 reaches the stack and gets 3 replies', async () => {
    const out = await ping(['-6', '-n', '-c', '3', '-i', '0.2', '-W', '1', ADDR.stack6]);
    expect(out).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);
  }, 20_000);

  test('a large ping (4000 bytes, fragmented by the kernel) gets its reply', async () => {
    const out = await ping(['-n', '-c', '2', '-i', '0.2', '-W', '1', '-s', '4000', ADDR.stack]);
    expect(out).toMatch(/2 packets transmitted, 2 received, 0% packet loss/);
  }, 20_000);
});

describe('connect errors from the kernel', () => {
  test('a closed port in S: the kernel answers RST → ECONNREFUSED, at once', async () => {
    const r = await connectOutcome(ADDR.host, 4);
    expect(r.code).toBe('ECONNREFUSED');
    expect(r.ms).toBeLessThan(1000);
  }, 20_000);

  test('a closed port in S over IPv6 → ECONNREFUSED', async () => {
    const r = await connectOutcome(ADDR.host6, 4);
    expect(r.code).toBe('ECONNREFUSED');
  }, 20_000);

  test('a network R has no route for: ICMP net unreachable → ENETUNREACH', async () => {
    const r = await connectOutcome('10.99.0.1', 80);
    expect(r.code).toBe('ENETUNREACH');
  }, 20_000);

  test('an IPv6 network R has no route for: ICMPv6 no route → ENETUNREACH', async () => {
    const r = await connectOutcome('fd00:99::1', 80);
    expect(r.code).toBe('ENETUNREACH');
  }, 20_000);

  test('an `unreachable` route in R: ICMP host unreachable → EHOSTUNREACH', async () => {
    const r = await connectOutcome('10.72.1.1', 80);
    expect(r.code).toBe('EHOSTUNREACH');
  }, 20_000);

  test('nobody holds the address on the R–S link: ARP fails, ICMP host unreachable → EHOSTUNREACH', async () => {
    const r = await connectOutcome('10.71.2.77', 80);
    expect(r.code).toBe('EHOSTUNREACH');
    expect(r.ms).toBeGreaterThan(2000); // the kernel's ARP gives up after ~3 s
  }, 20_000);

  test('nobody holds the IPv6 address on the R–S link: neighbour discovery fails → EHOSTUNREACH', async () => {
    const r = await connectOutcome('fd00:71:2::77', 80);
    expect(r.code).toBe('EHOSTUNREACH');
    expect(r.ms).toBeGreaterThan(2000);
  }, 20_000);
});
