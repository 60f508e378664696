import { Packr } from 'msgpackr';
import { decodeReply, decodeRequest, encodeFrame, FrameReader, MAX_FRAME, ProtocolError } from './protocol';

const packr = new Packr({ useRecords: false });
const pack = (v: unknown): Buffer => packr.pack(v);
const SOCK = 'nuse/4/6/1234.1';

describe('control protocol: requests', () => {
  test('a valid request decodes as it was sent', () => {
    const req = {
      op: 'connect',
      id: 7,
      sock: SOCK,
      addr: Buffer.from([10, 0, 0, 1]),
      port: 80,
      fill: 2048,
      sndbuf: 106496,
    };
    const got = decodeRequest(pack(req));
    expect(got).toMatchObject({ op: 'connect', id: 7, sock: SOCK, port: 80, fill: 2048 });
    expect(Buffer.from((got as { addr: Uint8Array }).addr)).toEqual(req.addr);
  });

  test('optional fields: the policy in hello, connect in status; shutdown and linger', () => {
    expect(decodeRequest(pack({ op: 'hello', id: 1, v: 1, pid: 9 }))).toEqual({ op: 'hello', id: 1, v: 1, pid: 9 });
    const hello = { op: 'hello', id: 1, v: 1, pid: 9, kernel: '10.0.0.0/8,fd00::/8', only: '192.0.2.1', mptcp: true };
    expect(decodeRequest(pack(hello))).toEqual(hello);
    const status = { op: 'status', id: 2, sock: SOCK, clear: true, connect: true };
    expect(decodeRequest(pack(status))).toEqual(status);
    expect(decodeRequest(pack({ op: 'shutdown', id: 3, sock: SOCK, how: 0 }))).toMatchObject({ how: 0 });
    expect(decodeRequest(pack({ op: 'linger', id: 4, sock: SOCK }))).toMatchObject({ op: 'linger' });
  });

  test("the shim's encoding (fixmap, fixstr, uint32, bin8) decodes", () => {
    // {"op":"status","sock":SOCK,"clear":true,"id":4294967295}
    const parts = [
      Buffer.from([0x84, 0xa2]),
      Buffer.from('op'),
      Buffer.from([0xa6]),
      Buffer.from('status'),
      Buffer.from([0xa4]),
      Buffer.from('sock'),
      Buffer.from([0xa0 | SOCK.length]),
      Buffer.from(SOCK),
      Buffer.from([0xa5]),
      Buffer.from('clear'),
      Buffer.from([0xc3, 0xa2]),
      Buffer.from('id'),
      Buffer.from([0xce, 0xff, 0xff, 0xff, 0xff]),
    ];
    expect(decodeRequest(Buffer.concat(parts))).toEqual({ op: 'status', sock: SOCK, clear: true, id: 0xffffffff });
  });

  test.each([
    ['not msgpack', Buffer.from([0x81, 0xa2]), /not msgpack/],
    ['the never-used byte 0xc1', Buffer.from([0xc1]), /must be a map/],
    ['a timestamp extension', Buffer.from([0xd6, 0xff, 0, 0, 0, 1]), /must be a map/],
    ['an array', pack([1, 2]), /must be a map/],
    ['a string', pack('hello'), /must be a map/],
    ['an unknown op', pack({ op: 'format-disk', id: 1 }), /unknown op/],
    ['no id', pack({ op: 'closed', sock: SOCK }), /"id"/],
    ['a negative id', pack({ op: 'closed', sock: SOCK, id: -1 }), /"id"/],
    ['a bad socket name', pack({ op: 'closed', sock: '../../etc/passwd', id: 1 }), /"sock"/],
    ['a socket name of another protocol', pack({ op: 'closed', sock: 'nuse/4/17/1.1', id: 1 }), /"sock"/],
    ['a 5-byte address', pack({ op: 'bind', sock: SOCK, id: 1, addr: Buffer.alloc(5), port: 1 }), /"addr"/],
    ['a port over 65535', pack({ op: 'bind', sock: SOCK, id: 1, addr: Buffer.alloc(4), port: 65536 }), /"port"/],
    ['a float', pack({ op: 'listen', sock: SOCK, id: 1, backlog: 1.5 }), /"backlog"/],
    ['a string for a bool', pack({ op: 'name', sock: SOCK, id: 1, peer: 'yes' }), /"peer"/],
    ['an unknown field', pack({ op: 'closed', sock: SOCK, id: 1, extra: 1 }), /unknown field/],
    ['a bad policy prefix in hello', pack({ op: 'hello', id: 1, v: 1, pid: 1, kernel: '10.0.0.0/33' }), /bad "kernel"/],
    ['a policy that is not text', pack({ op: 'hello', id: 1, v: 1, pid: 1, only: 7 }), /bad "only"/],
    [
      'an optional field of another op',
      pack({ op: 'bind', sock: SOCK, id: 1, addr: Buffer.alloc(4), port: 1, connect: true }),
      /unknown field/,
    ],
    ['shutdown without how', pack({ op: 'shutdown', sock: SOCK, id: 1 }), /"how"/],
    ['a missing field', pack({ op: 'setopt', sock: SOCK, id: 1, level: 6, opt: 1 }), /"val"/],
  ])('refuses %s', (_what, body, reason) => {
    expect(() => decodeRequest(body)).toThrow(ProtocolError);
    expect(() => decodeRequest(body)).toThrow(reason);
  });
});

describe('control protocol: frames', () => {
  test('frames split across and within chunks', () => {
    const a = encodeFrame({ op: 'closed', id: 1, sock: SOCK });
    const b = encodeFrame({ op: 'closed', id: 2, sock: SOCK });
    const all = Buffer.concat([a, b]);
    const reader = new FrameReader();
    const got: Buffer[] = [];
    for (let i = 0; i < all.length; i += 3) got.push(...reader.push(all.subarray(i, i + 3)));
    expect(got.map((f) => decodeRequest(f).id)).toEqual([1, 2]);
  });

  test('an oversized or empty frame is refused at once', () => {
    const big = Buffer.alloc(4);
    big.writeUInt32BE(MAX_FRAME + 1);
    expect(() => new FrameReader().push(big)).toThrow(/limit/);
    expect(() => new FrameReader().push(Buffer.alloc(4))).toThrow(/empty/);
  });

  test('replies round-trip', () => {
    const frame = encodeFrame({ id: 3, err: 111, state: 'failed' });
    expect(frame.readUInt32BE(0)).toBe(frame.length - 4);
    expect(decodeReply(frame.subarray(4))).toEqual({ id: 3, err: 111, state: 'failed' });
  });
});

describe('control protocol: option values', () => {
  test('setopt takes an int or up to 64 bytes', () => {
    const base = { op: 'setopt', id: 1, sock: SOCK, level: 6, opt: 13 };
    expect(decodeRequest(pack({ ...base, val: 1 }))).toMatchObject({ val: 1 });
    expect(
      Buffer.from((decodeRequest(pack({ ...base, val: Buffer.from('reno') })) as { val: Uint8Array }).val),
    ).toEqual(Buffer.from('reno'));
    expect(() => decodeRequest(pack({ ...base, val: Buffer.alloc(65) }))).toThrow(ProtocolError);
    expect(() => decodeRequest(pack({ ...base, val: 'reno' }))).toThrow(ProtocolError);
  });
});
