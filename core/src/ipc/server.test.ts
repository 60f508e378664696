/**
 * The IPC server's control channel without root: a stack on a simulated link, a fake
 * native helper that reports the uid we choose for each connection, and a client
 * speaking the protocol. (Real programs through the shim: test/src/shim-programs.test.ts.)
 */

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { SimNetwork } from '../link/sim-network';
import { Stack } from '../socket/stack';
import type { IpcNative } from './native';
import { decodeReply, encodeFrame, PROTOCOL_VERSION } from './protocol';
import { IpcServer } from './server';

const SOCK = 'nuse/4/6/4242.1';
const EACCES = 13;
const EPERM = 1;
const EADDRNOTAVAIL = 99;
const EPROTONOSUPPORT = 93;
const ENOPROTOOPT = 92;

let dir: string;
let simnet: SimNetwork;
let stack: Stack;
let ipc: IpcServer;
let logText = '';
let nextUid = 1000;

const fakeNative: IpcNative = {
  peerCred: () => ({ pid: 4242, uid: nextUid, gid: nextUid }),
  peerName: () => null, // every connection is a control connection here
  connectAbstract: () => {
    throw Object.assign(new Error('not in this test'), { code: 'ENOSYS' });
  },
};

class Client {
  private buf = Buffer.alloc(0);
  private waiting: ((v: Record<string, unknown>) => void)[] = [];
  private nextId = 1;
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readUInt32BE(0)) {
        const n = this.buf.readUInt32BE(0);
        const reply = decodeReply(this.buf.subarray(4, 4 + n));
        this.buf = this.buf.subarray(4 + n);
        this.waiting.shift()?.(reply);
      }
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async open(uid: number, hello = true): Promise<Client> {
    nextUid = uid;
    const socket = net.connect(ipc.path);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    const c = new Client(socket);
    if (hello) expect((await c.call({ op: 'hello', v: PROTOCOL_VERSION, pid: 4242 })).err).toBe(0);
    return c;
  }

  call(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.socket.write(encodeFrame({ ...req, id }));
    });
  }
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nuse-ipc-'));
  simnet = new SimNetwork({ seed: 1, time: 'real' });
  const a = simnet.addHost('a');
  const b = simnet.addHost('b');
  simnet.connect(a, b, { a: '10.0.0.1/24', b: '10.0.0.2/24' });
  stack = new Stack({ clock: simnet.clock, seed: 1 });
  stack.addSimHost(a);
  logText = '';
  const logger = pino({ level: 'debug' }, { write: (s: string) => (logText += s) });
  ipc = await IpcServer.start({ stack, path: path.join(dir, 'nuse.sock'), logger, native: fakeNative });
});

afterEach(() => {
  ipc.close();
  stack.close();
  simnet.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('IPC server: the control channel', () => {
  test('the socket is 0600; a second daemon on the same path is refused; a stale file is replaced', async () => {
    expect(fs.statSync(ipc.path).mode & 0o777).toBe(0o600);
    await expect(
      IpcServer.start({ stack, path: ipc.path, logger: pino({ level: 'silent' }), native: fakeNative }),
    ).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
    ipc.close();
    fs.writeFileSync(ipc.path, ''); // a leftover of a daemon that was killed
    ipc = await IpcServer.start({ stack, path: ipc.path, logger: pino({ level: 'silent' }), native: fakeNative });
    const c = await Client.open(1000);
    c.socket.destroy();
  });

  test("bind: a port below 1024 needs uid 0; the address must be the stack's, loopback or the wildcard", async () => {
    const user = await Client.open(1000);
    const any = Buffer.alloc(4);
    expect((await user.call({ op: 'bind', sock: SOCK, addr: any, port: 80 })).err).toBe(EACCES);
    expect((await user.call({ op: 'bind', sock: SOCK, addr: Buffer.from([10, 0, 0, 9]), port: 8080 })).err).toBe(
      EADDRNOTAVAIL,
    );
    expect((await user.call({ op: 'bind', sock: SOCK, addr: Buffer.from([10, 0, 0, 1]), port: 8080 })).err).toBe(0);
    expect(await user.call({ op: 'name', sock: SOCK, peer: false })).toMatchObject({ err: 0, port: 8080 });
    const root = await Client.open(0);
    expect((await root.call({ op: 'bind', sock: 'nuse/4/6/4242.2', addr: any, port: 80 })).err).toBe(0);
    user.socket.destroy();
    root.socket.destroy();
  });

  test('a process acts only on sockets of its own uid', async () => {
    const alice = await Client.open(1000);
    expect((await alice.call({ op: 'setopt', sock: SOCK, level: 6, opt: 1, val: 1 })).err).toBe(0);
    const mallory = await Client.open(1001);
    expect((await mallory.call({ op: 'getopt', sock: SOCK, level: 6, opt: 1 })).err).toBe(EPERM);
    expect((await mallory.call({ op: 'status', sock: SOCK, clear: true })).err).toBe(EPERM);
    expect(await alice.call({ op: 'getopt', sock: SOCK, level: 6, opt: 1 })).toMatchObject({ err: 0, val: 1 });
    expect((await alice.call({ op: 'setopt', sock: SOCK, level: 6, opt: 9999, val: 1 })).err).toBe(ENOPROTOOPT);
    alice.socket.destroy();
    mallory.socket.destroy();
  });

  test('another protocol version is refused with EPROTONOSUPPORT and the connection closes', async () => {
    const c = await Client.open(1000, false);
    expect((await c.call({ op: 'hello', v: PROTOCOL_VERSION + 1, pid: 1 })).err).toBe(EPROTONOSUPPORT);
    await c.closed;
  });

  test.each([
    [
      'a request before hello',
      (c: Client) => c.socket.write(encodeFrame({ op: 'closed', sock: SOCK, id: 1 })),
      /before "hello"/,
    ],
    ['an oversized frame', (c: Client) => c.socket.write(Buffer.from([0, 1, 0, 0])), /limit/],
    ['garbage', (c: Client) => c.socket.write(Buffer.from([0, 0, 0, 2, 0xc1, 0xc1])), /not msgpack/],
    ['a bad field', (c: Client) => c.socket.write(encodeFrame({ op: 'hello', v: 'one', pid: 1, id: 1 })), /"v"/],
  ])('%s closes that client only, with the reason logged', async (_what, send, reason) => {
    const good = await Client.open(1000);
    const bad = await Client.open(1000, false);
    send(bad);
    await bad.closed;
    expect(logText).toMatch(/closing a malformed control client/);
    const line = logText.split('\n').find((l) => l.includes('malformed'))!;
    expect(JSON.parse(line).reason).toMatch(reason);
    // The good client is unaffected.
    expect((await good.call({ op: 'status', sock: SOCK, clear: false })).err).toBe(0);
    good.socket.destroy();
  });
});
