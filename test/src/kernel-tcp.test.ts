/**
 * Interop with the Linux kernel's TCP over a clean path: nuse (this process, over a
 * tun) ↔ router namespace R ↔ veth ↔ kernel host namespace S (harness/netns.ts).
 * Every transfer checks the length and the sha256 of what arrived against the file.
 *
 * - nuse as the client: HTTP GET of a 50 MB file from python3 http.server in S, a 50 MB
 *   download from `socat -u FILE TCP-LISTEN`, a 50 MB upload to a socat sink in S;
 * - nuse as the server: curl in S fetches 50 MB from the stack's HTTP server, socat in
 *   S uploads 50 MB to the stack;
 * - IPv6: 10 MB each way (curl -6 from the stack's server, upload to socat over TCP6).
 *
 * Needs root, /dev/net/tun, the built addon, iproute2, python3, curl, socat: the suite
 * FAILS (never skips) naming what is missing.
 */

import { ADDR, assertRequirements, type DataFile, randomFile, type Topology, waitForPort } from './harness/netns';
import { createTopology, type NsServer, startHttpServer, startSocatSender } from './harness/servers';
import {
  describeSocket,
  download,
  hashStdout,
  httpGet,
  type Received,
  serveHttp,
  sink,
  upload,
  withTimeout,
} from './harness/transfer';

const MB = 1_000_000;
const BIG = 50 * MB;
const V6_SIZE = 10 * MB;
const TRANSFER_TIMEOUT_MS = 60_000;

let t: Topology;
let big: DataFile;
let v6file: DataFile;
let http: NsServer;

/** Logs the transfer's rate (jest prints it with --verbose; handy when a run is slow). */
function rate(what: string, r: { length?: number; ms: number }, size: number): void {
  process.stdout.write(
    `  ${what}: ${size / MB} MB in ${(r.ms / 1000).toFixed(2)} s = ${(size / r.ms / 1000).toFixed(1)} MB/s\n`,
  );
}

beforeAll(async () => {
  assertRequirements('kernel TCP interop tests', ['python3', 'curl', 'socat']);
  t = createTopology({ seed: 'kernel-tcp' });
  big = randomFile(t.dir, 'big.bin', BIG);
  v6file = randomFile(t.dir, 'v6.bin', V6_SIZE);
  http = await startHttpServer(t, t.dir, 8000);
}, 30_000);

afterAll(async () => {
  http?.stop();
  await t?.close();
});

function expectSame(got: Received, file: DataFile): void {
  expect(got.length).toBe(file.size);
  expect(got.sha256).toBe(file.sha256);
}

describe('nuse client, kernel server (no impairment)', () => {
  test('HTTP GET of 50 MB from python3 http.server: Content-Length, length and sha256 match', async () => {
    const { socket, done } = httpGet(t.stack, ADDR.host, 8000, '/big.bin');
    const got = await withTimeout(done, TRANSFER_TIMEOUT_MS, 'GET /big.bin', () => describeSocket(socket));
    expect(got.contentLength).toBe(BIG);
    expectSame(got, big);
    rate('kernel http.server → nuse', got, BIG);
  }, 90_000);

  test('50 MB from `socat -u FILE TCP-LISTEN` arrive intact, ended by the kernel’s FIN', async () => {
    const sender = await startSocatSender(t, big.path, 5001);
    try {
      const { socket, done } = download(t.stack, ADDR.host, 5001);
      const got = await withTimeout(done, TRANSFER_TIMEOUT_MS, 'socat download', () => describeSocket(socket));
      expectSame(got, big);
      rate('kernel socat → nuse', got, BIG);
    } finally {
      sender.stop();
    }
  }, 90_000);

  test('50 MB uploaded to a socat sink in S arrive intact', async () => {
    const receiver = t.spawnS('socat', ['-u', 'TCP-LISTEN:5002,reuseaddr', 'STDOUT']);
    const received = hashStdout(receiver, 'socat sink in S');
    await waitForPort(t.nsS, 5002);
    const { socket, done } = upload(t.stack, ADDR.host, 5002, big.data);
    await withTimeout(done, TRANSFER_TIMEOUT_MS, 'upload to socat', () => describeSocket(socket));
    const got = await withTimeout(received, 10_000, 'socat sink exit');
    expectSame(got, big);
    rate('nuse → kernel socat', got, BIG);
  }, 90_000);
});

describe('nuse server, kernel client (no impairment)', () => {
  test('curl in S fetches 50 MB from the stack’s HTTP server', async () => {
    const { server } = serveHttp(t.stack, 8080, big.data);
    try {
      const curl = t.spawnS('curl', ['-sS', '--fail', '--max-time', '60', '-o', '-', `http://${ADDR.stack}:8080/big`]);
      const got = await withTimeout(hashStdout(curl, 'curl'), TRANSFER_TIMEOUT_MS, 'curl from nuse');
      expectSame(got, big);
      rate('nuse HTTP server → kernel curl', got, BIG);
    } finally {
      server.close();
    }
  }, 90_000);

  test('socat in S uploads 50 MB to the stack; the stack hashes them', async () => {
    const { server, next } = sink(t.stack, 9000);
    try {
      const sender = t.runS('socat', ['-u', `FILE:${big.path}`, `TCP:${ADDR.stack}:9000`], {
        timeoutMs: TRANSFER_TIMEOUT_MS,
      });
      const got = await withTimeout(next(), TRANSFER_TIMEOUT_MS, 'upload from socat');
      await sender;
      expectSame(got, big);
      rate('kernel socat → nuse server', got, BIG);
    } finally {
      server.close();
    }
  }, 90_000);
});

describe('IPv6', () => {
  test('curl -6 in S fetches 10 MB from the stack over IPv6', async () => {
    const { server } = serveHttp(t.stack, 8086, v6file.data);
    try {
      const url = `http://[${ADDR.stack6}]:8086/v6`;
      const curl = t.spawnS('curl', ['-6', '-g', '-sS', '--fail', '--max-time', '60', '-o', '-', url]);
      const got = await withTimeout(hashStdout(curl, 'curl -6'), TRANSFER_TIMEOUT_MS, 'curl -6 from nuse');
      expectSame(got, v6file);
    } finally {
      server.close();
    }
  }, 90_000);

  test('the stack uploads 10 MB to a socat TCP6 sink in S', async () => {
    const receiver = t.spawnS('socat', ['-u', 'TCP6-LISTEN:5006,reuseaddr', 'STDOUT']);
    const received = hashStdout(receiver, 'socat TCP6 sink in S');
    await waitForPort(t.nsS, 5006);
    const { socket, done } = upload(t.stack, ADDR.host6, 5006, v6file.data);
    await withTimeout(done, TRANSFER_TIMEOUT_MS, 'IPv6 upload', () => describeSocket(socket));
    expect(socket.remoteFamily).toBe('IPv6');
    const got = await withTimeout(received, 10_000, 'socat TCP6 sink exit');
    expectSame(got, v6file);
  }, 90_000);

  test('HTTP GET over IPv6 from python3 http.server (10 MB)', async () => {
    const http6 = await startHttpServer(t, t.dir, 8006, ADDR.host6);
    try {
      const { socket, done } = httpGet(t.stack, ADDR.host6, 8006, '/v6.bin');
      const got = await withTimeout(done, TRANSFER_TIMEOUT_MS, 'GET over IPv6', () => describeSocket(socket));
      expectSame(got, v6file);
    } finally {
      http6.stop();
    }
  }, 90_000);
});
