/**
 * The IPC server's control channel without root: a stack on a simulated link, a fake
 * native helper that reports the uid we choose for each connection, and a client
 * speaking the protocol. (Real programs through the shim: test/src/shim-programs.test.ts.)
 */

import { spawn } from 'node:child_process';
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
const ENOENT = 2;
const EINVAL = 22;
const EADDRINUSE = 98;

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
  hungUp: () => false,
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

describe('IPC server: options and bind', () => {
  test('TCP_CONGESTION takes a name the registry knows (ENOENT otherwise) and reads back NUL-padded to 16 bytes', async () => {
    const c = await Client.open(1000);
    expect(await c.call({ op: 'getopt', sock: SOCK, level: 6, opt: 13 })).toMatchObject({
      err: 0,
      data: Buffer.from('newreno\0\0\0\0\0\0\0\0\0'),
    });
    expect((await c.call({ op: 'setopt', sock: SOCK, level: 6, opt: 13, val: Buffer.from('reno\0junk') })).err).toBe(0);
    const got = (await c.call({ op: 'getopt', sock: SOCK, level: 6, opt: 13 })).data as Uint8Array;
    expect(Buffer.from(got).toString('latin1').replace(/\0+$/, '')).toBe('reno');
    expect((await c.call({ op: 'setopt', sock: SOCK, level: 6, opt: 13, val: Buffer.from('cubic') })).err).toBe(ENOENT);
    // An int where a name belongs, bytes where an int belongs.
    expect((await c.call({ op: 'setopt', sock: SOCK, level: 6, opt: 13, val: 1 })).err).toBe(EINVAL);
    expect((await c.call({ op: 'setopt', sock: SOCK, level: 6, opt: 1, val: Buffer.from([1]) })).err).toBe(EINVAL);
    c.socket.destroy();
  });

  test('TCP_INFO of a socket without a connection is 232 bytes, state CLOSE; keepalive options are range-checked', async () => {
    const c = await Client.open(1000);
    const info = (await c.call({ op: 'getopt', sock: SOCK, level: 6, opt: 11 })).data as Uint8Array;
    expect(info.length).toBe(232);
    expect(info[0]).toBe(7);
    for (const [opt, bad, good] of [
      [4, 0, 60],
      [5, 32768, 10],
      [6, 128, 5],
    ] as const) {
      expect((await c.call({ op: 'setopt', sock: SOCK, level: 6, opt, val: bad })).err).toBe(EINVAL);
      expect((await c.call({ op: 'setopt', sock: SOCK, level: 6, opt, val: good })).err).toBe(0);
      expect(await c.call({ op: 'getopt', sock: SOCK, level: 6, opt })).toMatchObject({ err: 0, val: good });
    }
    c.socket.destroy();
  });

  test('bind: EADDRINUSE for a port another live socket holds, unless both set SO_REUSEPORT; a closed one frees it', async () => {
    // The program's sockets exist as abstract unix names (the daemon checks /proc/net/unix);
    // python3 holds them (Node pads abstract names to the full sun_path).
    const holder = spawn('python3', [
      '-u',
      '-c',
      "import socket, sys\nss = {}\nfor n in (1, 2, 3):\n    ss[n] = socket.socket(socket.AF_UNIX); ss[n].bind(f'\\0nuse/4/6/4242.{n}')\nprint('ok')\nfor line in sys.stdin: ss.pop(int(line)).close(); print('closed')",
    ]);
    const said: string[] = [];
    const next = () =>
      new Promise<string>((resolve) => {
        if (said.length > 0) return resolve(said.shift()!);
        holder.stdout.once('data', (d: Buffer) => {
          said.push(...String(d).trim().split('\n'));
          resolve(said.shift()!);
        });
      });
    expect(await next()).toBe('ok');
    const c = await Client.open(1000);
    const any = Buffer.alloc(4);
    const bind = async (n: number) =>
      (await c.call({ op: 'bind', sock: `nuse/4/6/4242.${n}`, addr: any, port: 8080 })).err;
    const reuseport = (n: number) => c.call({ op: 'setopt', sock: `nuse/4/6/4242.${n}`, level: 1, opt: 15, val: 1 });
    expect(await bind(1)).toBe(0);
    expect(await bind(2)).toBe(EADDRINUSE);
    await reuseport(1);
    await reuseport(2);
    expect(await bind(2)).toBe(0);
    expect(await bind(3)).toBe(EADDRINUSE); // without SO_REUSEPORT
    holder.stdin.write('1\n2\n');
    expect([await next(), await next()]).toEqual(['closed', 'closed']);
    expect(await bind(3)).toBe(0); // the holders are gone
    holder.kill();
    c.socket.destroy();
  });
});

describe('IPC server: policy, shutdown, linger', () => {
  const SOL_SOCKET = 1;
  const SO_PROTOCOL = 38;

  test("the program's policy comes in its hello; the reply and SO_PROTOCOL say whether TCP becomes MPTCP", async () => {
    const plain = await Client.open(1000);
    expect(await plain.call({ op: 'getopt', sock: SOCK, level: SOL_SOCKET, opt: SO_PROTOCOL })).toMatchObject({
      err: 0,
      val: 6,
    });
    const upgraded = await Client.open(1000, false);
    const hello = await upgraded.call({ op: 'hello', v: PROTOCOL_VERSION, pid: 1, mptcp: true, kernel: '10.9.0.0/16' });
    expect(hello).toMatchObject({ err: 0, mptcp: true });
    const other = 'nuse/4/6/4242.7';
    expect(await upgraded.call({ op: 'getopt', sock: other, level: SOL_SOCKET, opt: SO_PROTOCOL })).toMatchObject({
      val: 262,
    });
    expect(logText).toMatch(/"kernel":"10\.9\.0\.0\/16".*a program's policy/);
    plain.socket.destroy();
    upgraded.socket.destroy();
  });

  test("the daemon's policy upgrades every program's TCP to MPTCP", async () => {
    ipc.close();
    ipc = await IpcServer.start({
      stack,
      path: ipc.path,
      logger: pino({ level: 'silent' }),
      native: fakeNative,
      policy: { kernel: [], only: undefined, mptcp: true },
    });
    const c = await Client.open(1000, false);
    expect(await c.call({ op: 'hello', v: PROTOCOL_VERSION, pid: 1 })).toMatchObject({ err: 0, mptcp: true });
    expect(await c.call({ op: 'getopt', sock: SOCK, level: SOL_SOCKET, opt: SO_PROTOCOL })).toMatchObject({ val: 262 });
    c.socket.destroy();
  });

  test('a bind to a kernel address is EADDRNOTAVAIL unless the policy keeps it on the kernel', async () => {
    const kernelAddress = Object.values(os.networkInterfaces())
      .flat()
      .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)?.address;
    const bytes = kernelAddress !== undefined ? Buffer.from(kernelAddress.split('.').map(Number)) : undefined;
    const c = await Client.open(1000, false);
    expect((await c.call({ op: 'hello', v: PROTOCOL_VERSION, pid: 1, kernel: '0.0.0.0/0' })).err).toBe(0);
    // Not the kernel's: still EADDRNOTAVAIL, policy or not.
    expect((await c.call({ op: 'bind', sock: SOCK, addr: Buffer.from([192, 0, 2, 99]), port: 0 })).err).toBe(
      EADDRNOTAVAIL,
    );
    if (bytes !== undefined) {
      expect((await c.call({ op: 'bind', sock: SOCK, addr: bytes, port: 0 })).err).toBe(0);
      const d = await Client.open(1000);
      expect((await d.call({ op: 'bind', sock: 'nuse/4/6/4242.3', addr: bytes, port: 0 })).err).toBe(EADDRNOTAVAIL);
      d.socket.destroy();
    }
    c.socket.destroy();
  });

  test('shutdown, linger and status of sockets that are not connected', async () => {
    const c = await Client.open(1000);
    expect((await c.call({ op: 'shutdown', sock: SOCK, how: 3 })).err).toBe(EINVAL);
    expect((await c.call({ op: 'shutdown', sock: SOCK, how: 0 })).err).toBe(107); // ENOTCONN
    expect(await c.call({ op: 'linger', sock: SOCK })).toMatchObject({ err: 0, val: 0 });
    expect(await c.call({ op: 'status', sock: SOCK, clear: true, connect: true })).toMatchObject({
      err: 0,
      state: 'idle',
    });
    c.socket.destroy();
  });
});
