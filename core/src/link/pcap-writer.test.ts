import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Random } from '../util/random';
import {
  type CaptureSink,
  DEFAULT_SNAPLEN,
  FileSink,
  LINKTYPE_RAW,
  MemorySink,
  PCAPNG_BYTE_ORDER_MAGIC,
  PCAPNG_ENHANCED_PACKET,
  PCAPNG_INTERFACE_DESCRIPTION,
  PCAPNG_SECTION_HEADER,
  PcapngWriter,
  PcapWriter,
  splitUnixMs,
} from './pcap-writer';

/** A packet of `length` bytes counting up from `seed`, so misplaced bytes show. */
function packet(length: number, seed = 1): Uint8Array {
  const p = new Uint8Array(length);
  for (let i = 0; i < length; i++) p[i] = (seed + i) & 0xff;
  return p;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** The pcapng blocks of a file as [type, offset, totalLength], checking the repeated length (§3.1). */
function blocks(bytes: Uint8Array, le = true): [number, number, number][] {
  const v = viewOf(bytes);
  const out: [number, number, number][] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const type = v.getUint32(offset, le);
    const length = v.getUint32(offset + 4, le);
    expect(length % 4).toBe(0);
    expect(v.getUint32(offset + length - 4, le)).toBe(length);
    out.push([type, offset, length]);
    offset += length;
  }
  expect(offset).toBe(bytes.length);
  return out;
}

class ThrowingSink implements CaptureSink {
  writes = 0;
  constructor(private readonly error: Error) {}
  write(): void {
    this.writes++;
    throw this.error;
  }
  close(): void {
    throw this.error;
  }
}

describe('classic pcap (draft-gharris-opsawg-pcap)', () => {
  it('writes the §4 file header: µs magic, version 2.4, zero reserved words, snaplen, LINKTYPE_RAW', () => {
    const sink = new MemorySink();
    new PcapWriter(sink, { snaplen: 1500 }).close();
    expect(hex(sink.bytes())).toBe(`d4c3b2a1 0200 0400 00000000 00000000 dc050000 65000000`.replaceAll(' ', ''));
  });

  it('uses the nanosecond magic 0xa1b23c4d when asked, and big-endian when asked', () => {
    const ns = new MemorySink();
    new PcapWriter(ns, { nanosecond: true }).close();
    expect(viewOf(ns.bytes()).getUint32(0, true)).toBe(0xa1b23c4d);
    expect(viewOf(ns.bytes()).getUint32(16, true)).toBe(DEFAULT_SNAPLEN);

    const be = new MemorySink();
    new PcapWriter(be, { littleEndian: false, snaplen: 65535 }).close();
    expect(hex(be.bytes())).toBe(`a1b2c3d4 0002 0004 00000000 00000000 0000ffff 00000065`.replaceAll(' ', ''));
  });

  it('writes §5 records: seconds, microseconds (truncated), captured and original lengths, the bytes', () => {
    const sink = new MemorySink();
    const w = new PcapWriter(sink);
    const id = w.addInterface({ name: 'a' });
    w.writePacket(id, 1_700_000_000, 123_456_789, packet(5), 'outbound');
    w.close();
    const bytes = sink.bytes();
    const v = viewOf(bytes);
    expect(bytes.length).toBe(24 + 16 + 5);
    expect(v.getUint32(24, true)).toBe(1_700_000_000);
    expect(v.getUint32(28, true)).toBe(123_456);
    expect(v.getUint32(32, true)).toBe(5);
    expect(v.getUint32(36, true)).toBe(5);
    expect([...bytes.subarray(40)]).toEqual([1, 2, 3, 4, 5]);
  });

  it('keeps nanoseconds with the nanosecond magic, and truncates to the interface snaplen', () => {
    const sink = new MemorySink();
    const w = new PcapWriter(sink, { nanosecond: true });
    const id = w.addInterface({ name: 'a', snaplen: 3 });
    w.writePacket(id, 7, 999_999_999, packet(10));
    w.close();
    const v = viewOf(sink.bytes());
    expect(v.getUint32(28, true)).toBe(999_999_999);
    expect(v.getUint32(32, true)).toBe(3);
    expect(v.getUint32(36, true)).toBe(10);
    expect(sink.bytes().length).toBe(24 + 16 + 3);
    expect(w.stats).toMatchObject({ packets: 1, capturedBytes: 3, truncated: 1 });
  });

  it('never writes a record longer than the file header snaplen', () => {
    const sink = new MemorySink();
    const w = new PcapWriter(sink, { snaplen: 8 });
    const id = w.addInterface({ name: 'a', snaplen: 100 });
    w.writePacket(id, 0, 0, packet(20));
    w.close();
    expect(viewOf(sink.bytes()).getUint32(32, true)).toBe(8);
    expect(sink.bytes().length).toBe(24 + 16 + 8);
  });
});

describe('pcapng (draft-ietf-opsawg-pcapng)', () => {
  it('starts with a §4.1 Section Header Block: magic, version 1.0, unknown section length, shb_userappl', () => {
    const sink = new MemorySink();
    new PcapngWriter(sink, { application: 'nuse-test' }).close();
    const bytes = sink.bytes();
    const [[type, , length]] = blocks(bytes) as [[number, number, number]];
    expect(type).toBe(PCAPNG_SECTION_HEADER);
    const v = viewOf(bytes);
    expect(v.getUint32(8, true)).toBe(PCAPNG_BYTE_ORDER_MAGIC);
    expect(v.getUint16(12, true)).toBe(1);
    expect(v.getUint16(14, true)).toBe(0);
    expect(v.getBigInt64(16, true)).toBe(-1n);
    // shb_userappl (4), 9 bytes, padded to 12 with zeros; then opt_endofopt.
    expect(v.getUint16(24, true)).toBe(4);
    expect(v.getUint16(26, true)).toBe(9);
    expect(Buffer.from(bytes.subarray(28, 37)).toString()).toBe('nuse-test');
    expect([...bytes.subarray(37, 40)]).toEqual([0, 0, 0]);
    expect(v.getUint32(40, true)).toBe(0);
    expect(length).toBe(48);
  });

  it('writes one §4.2 Interface Description Block per interface: LINKTYPE_RAW, snaplen, if_name, if_tsresol', () => {
    const sink = new MemorySink();
    const w = new PcapngWriter(sink);
    expect(w.addInterface({ name: 'path0', snaplen: 2000 })).toBe(0);
    expect(w.addInterface({ name: 'path1' })).toBe(1);
    w.close();
    const bytes = sink.bytes();
    const found = blocks(bytes);
    expect(found.map(([t]) => t)).toEqual([
      PCAPNG_SECTION_HEADER,
      PCAPNG_INTERFACE_DESCRIPTION,
      PCAPNG_INTERFACE_DESCRIPTION,
    ]);
    const v = viewOf(bytes);
    const [, idb] = found[1]!;
    expect(v.getUint16(idb + 8, true)).toBe(LINKTYPE_RAW);
    expect(v.getUint16(idb + 10, true)).toBe(0);
    expect(v.getUint32(idb + 12, true)).toBe(2000);
    // if_name (2): "path0", 5 bytes padded to 8.
    expect(v.getUint16(idb + 16, true)).toBe(2);
    expect(v.getUint16(idb + 18, true)).toBe(5);
    expect(Buffer.from(bytes.subarray(idb + 20, idb + 25)).toString()).toBe('path0');
    expect([...bytes.subarray(idb + 25, idb + 28)]).toEqual([0, 0, 0]);
    // if_tsresol (9): one byte, 9 = 10^-9 s, padded to 4.
    expect(v.getUint16(idb + 28, true)).toBe(9);
    expect(v.getUint16(idb + 30, true)).toBe(1);
    expect([...bytes.subarray(idb + 32, idb + 36)]).toEqual([9, 0, 0, 0]);
    expect(v.getUint32(idb + 36, true)).toBe(0);
    expect(v.getUint32(found[2]![1] + 12, true)).toBe(DEFAULT_SNAPLEN);
  });

  it('declares microsecond units (if_tsresol 6) when asked', () => {
    const sink = new MemorySink();
    const w = new PcapngWriter(sink, { timestampResolution: 'us' });
    w.addInterface({ name: 'x' });
    w.close();
    const [, idb] = blocks(sink.bytes())[1]!;
    expect(sink.bytes()[idb + 28]).toBe(6);
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8, 1500])(
    'pads a %i-byte packet to 32 bits with zeros, and repeats the length',
    (n) => {
      const sink = new MemorySink();
      const w = new PcapngWriter(sink);
      const id = w.addInterface({ name: 'x' });
      w.writePacket(id, 1, 2, packet(n, 0x80), 'inbound');
      w.close();
      const bytes = sink.bytes();
      const [type, epb, length] = blocks(bytes)[2]!;
      expect(type).toBe(PCAPNG_ENHANCED_PACKET);
      const padded = Math.ceil(n / 4) * 4;
      expect(length).toBe(32 + padded + 12);
      const v = viewOf(bytes);
      expect(v.getUint32(epb + 20, true)).toBe(n);
      expect(v.getUint32(epb + 24, true)).toBe(n);
      expect(hex(bytes.subarray(epb + 28, epb + 28 + n))).toBe(hex(packet(n, 0x80)));
      expect([...bytes.subarray(epb + 28 + n, epb + 28 + padded)].every((b) => b === 0)).toBe(true);
    },
  );

  it('sets epb_flags (§4.3.1) to 01 inbound and 10 outbound, and omits options without a direction', () => {
    const sink = new MemorySink();
    const w = new PcapngWriter(sink);
    const id = w.addInterface({ name: 'x' });
    w.writePacket(id, 0, 0, packet(4), 'inbound');
    w.writePacket(id, 0, 0, packet(4), 'outbound');
    w.writePacket(id, 0, 0, packet(4));
    w.close();
    const bytes = sink.bytes();
    const v = viewOf(bytes);
    const epbs = blocks(bytes).slice(2);
    const flags = epbs.map(([, offset, length]) => {
      if (length === 36) return undefined;
      expect(v.getUint16(offset + 32, true)).toBe(2); // epb_flags
      expect(v.getUint16(offset + 34, true)).toBe(4);
      expect(v.getUint32(offset + 40, true)).toBe(0); // opt_endofopt
      return v.getUint32(offset + 36, true);
    });
    expect(flags).toEqual([0b01, 0b10, undefined]);
  });

  it('writes the interface id and a 64-bit nanosecond timestamp, exact beyond 2^53', () => {
    const random = new Random('pcapng-timestamps');
    const cases: [number, number][] = [
      [0, 0],
      [0, 999_999_999],
      [1, 0],
      [0xffff, 999_999_999],
      [0x10000, 1],
      [1_577_836_800, 123_456_789],
      [0xffffffff, 999_999_999],
    ];
    for (let i = 0; i < 200; i++) cases.push([random.u32(), random.int(1_000_000_000)]);
    const sink = new MemorySink();
    const w = new PcapngWriter(sink);
    w.addInterface({ name: 'a' });
    const id = w.addInterface({ name: 'b' });
    for (const [s, ns] of cases) w.writePacket(id, s, ns, packet(1));
    w.close();
    const bytes = sink.bytes();
    const v = viewOf(bytes);
    const epbs = blocks(bytes).slice(3);
    expect(epbs.length).toBe(cases.length);
    epbs.forEach(([, offset], i) => {
      const [s, ns] = cases[i]!;
      expect(v.getUint32(offset + 8, true)).toBe(1);
      const units = (BigInt(v.getUint32(offset + 12, true)) << 32n) | BigInt(v.getUint32(offset + 16, true));
      expect(units).toBe(BigInt(s) * 1_000_000_000n + BigInt(ns));
    });
  });

  it('writes microsecond timestamps when the resolution is microseconds', () => {
    const sink = new MemorySink();
    const w = new PcapngWriter(sink, { timestampResolution: 'us' });
    const id = w.addInterface({ name: 'a' });
    w.writePacket(id, 0xffffffff, 999_999_999, packet(1));
    w.close();
    const v = viewOf(sink.bytes());
    const [, epb] = blocks(sink.bytes())[2]!;
    const units = (BigInt(v.getUint32(epb + 12, true)) << 32n) | BigInt(v.getUint32(epb + 16, true));
    expect(units).toBe(0xffffffffn * 1_000_000n + 999_999n);
  });

  it('writes every field big-endian when asked', () => {
    const sink = new MemorySink();
    const w = new PcapngWriter(sink, { littleEndian: false });
    const id = w.addInterface({ name: 'x' });
    w.writePacket(id, 1, 0, packet(3), 'outbound');
    w.close();
    const bytes = sink.bytes();
    const v = viewOf(bytes);
    expect(v.getUint32(8, false)).toBe(PCAPNG_BYTE_ORDER_MAGIC);
    const found = blocks(bytes, false);
    expect(found.map(([t]) => t)).toEqual([
      PCAPNG_SECTION_HEADER,
      PCAPNG_INTERFACE_DESCRIPTION,
      PCAPNG_ENHANCED_PACKET,
    ]);
    expect(v.getUint16(found[1]![1] + 8, false)).toBe(LINKTYPE_RAW);
    expect(v.getUint32(found[2]![1] + 36, false)).toBe(0b10);
  });

  it('rejects unknown interface ids and impossible snaplens', () => {
    const w = new PcapngWriter(new MemorySink());
    expect(() => w.writePacket(0, 0, 0, packet(1))).toThrow(RangeError);
    expect(() => w.addInterface({ name: 'x', snaplen: 0 })).toThrow(RangeError);
    expect(() => w.addInterface({ name: 'x', snaplen: 1.5 })).toThrow(RangeError);
    expect(w.addInterface({ name: 'x' })).toBe(0);
  });
});

describe('buffering', () => {
  it('hands the sink nothing until the buffer fills or flush() is called', () => {
    const sink = new MemorySink();
    const w = new PcapngWriter(sink);
    const id = w.addInterface({ name: 'x' });
    for (let i = 0; i < 10; i++) w.writePacket(id, i, 0, packet(100));
    expect(sink.writes).toBe(0);
    w.flush();
    expect(sink.writes).toBe(1);
    w.flush();
    expect(sink.writes).toBe(1);
  });

  it('writes the same bytes in many chunks through a small buffer as in one through a large one', () => {
    const write = (bufferSize: number): MemorySink => {
      const sink = new MemorySink();
      const w = new PcapngWriter(sink, { bufferSize });
      const a = w.addInterface({ name: 'a' });
      const b = w.addInterface({ name: 'b' });
      for (let i = 0; i < 100; i++) w.writePacket(i % 2 === 0 ? a : b, i, i * 7, packet(i * 13), 'inbound');
      w.close();
      return sink;
    };
    const small = write(256);
    const large = write(1 << 20);
    expect(small.writes).toBeGreaterThan(20);
    expect(large.writes).toBe(1);
    expect(hex(small.bytes())).toBe(hex(large.bytes()));
  });

  it('grows its buffer for a record larger than the whole buffer', () => {
    const sink = new MemorySink();
    const w = new PcapWriter(sink, { bufferSize: 64 });
    const id = w.addInterface({ name: 'x' });
    w.writePacket(id, 0, 0, packet(1000));
    w.writePacket(id, 0, 0, packet(10));
    w.close();
    const bytes = sink.bytes();
    expect(bytes.length).toBe(24 + 16 + 1000 + 16 + 10);
    expect(hex(bytes.subarray(40, 1040))).toBe(hex(packet(1000)));
  });
});

describe('sink errors', () => {
  it('reports the first error once, counts them all, stops writing, and never throws', () => {
    const error = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    const sink = new ThrowingSink(error);
    const reported: Error[] = [];
    const w = new PcapngWriter(sink, { bufferSize: 256, onError: (e) => reported.push(e) });
    const id = w.addInterface({ name: 'x' });
    expect(() => {
      for (let i = 0; i < 50; i++) w.writePacket(id, 0, 0, packet(100));
      w.flush();
      w.close();
      w.close();
    }).not.toThrow();
    expect(reported).toEqual([error]);
    expect(w.hasFailed).toBe(true);
    expect(sink.writes).toBe(1);
    // One failed write, one failed close.
    expect(w.stats.writeErrors).toBe(2);
    // The packets in the failed chunk count as dropped, like those offered afterwards.
    expect(w.stats).toMatchObject({ packets: 0, dropped: 50 });
  });

  it('survives an onError handler that throws', () => {
    const w = new PcapWriter(new ThrowingSink(new Error('EBADF')), {
      onError: () => {
        throw new Error('handler bug');
      },
    });
    expect(() => w.close()).not.toThrow();
    expect(w.stats.writeErrors).toBe(2);
  });

  it('emits one process warning when no onError is given', () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const w = new PcapWriter(new ThrowingSink(new Error('EBADF: bad file descriptor')));
      w.flush();
      w.close();
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]![0])).toContain('EBADF');
    } finally {
      warn.mockRestore();
    }
  });

  it('reports a real disk-full error from a FileSink (/dev/full)', () => {
    if (!fs.existsSync('/dev/full')) throw new Error('/dev/full is missing: this test needs Linux');
    const reported: Error[] = [];
    const w = new PcapngWriter(new FileSink('/dev/full'), { onError: (e) => reported.push(e) });
    const id = w.addInterface({ name: 'x' });
    w.writePacket(id, 0, 0, packet(60));
    w.close();
    expect(reported).toHaveLength(1);
    expect((reported[0] as NodeJS.ErrnoException).code).toBe('ENOSPC');
  });

  it('counts packets written after close as dropped', () => {
    const w = new PcapWriter(new MemorySink());
    const id = w.addInterface({ name: 'x' });
    w.close();
    expect(w.isClosed).toBe(true);
    w.writePacket(id, 0, 0, packet(10));
    expect(w.stats).toMatchObject({ packets: 0, dropped: 1, writeErrors: 0 });
  });
});

describe('FileSink', () => {
  it('writes to the file exactly what a MemorySink receives, and closes idempotently', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nuse-pcap-writer-'));
    try {
      const file = path.join(dir, 'out.pcapng');
      const run = (sink: CaptureSink): void => {
        const w = new PcapngWriter(sink, { bufferSize: 128 });
        const id = w.addInterface({ name: 'f' });
        for (let i = 0; i < 20; i++) w.writePacket(id, i, 0, packet(50 + i), 'outbound');
        w.close();
      };
      const fileSink = new FileSink(file);
      run(fileSink);
      fileSink.close();
      const memory = new MemorySink();
      run(memory);
      expect(hex(new Uint8Array(fs.readFileSync(file)))).toBe(hex(memory.bytes()));
      expect(() => fileSink.write(new Uint8Array(1))).toThrow(/closed/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('splitUnixMs', () => {
  it('splits milliseconds into whole seconds and rounded nanoseconds, carrying at 1e9', () => {
    expect(splitUnixMs(0)).toEqual({ seconds: 0, nanoseconds: 0 });
    expect(splitUnixMs(1500.25)).toEqual({ seconds: 1, nanoseconds: 500_250_000 });
    expect(splitUnixMs(1999.9999999)).toEqual({ seconds: 2, nanoseconds: 0 });
    expect(splitUnixMs(Date.UTC(2020, 0, 1))).toEqual({ seconds: 1_577_836_800, nanoseconds: 0 });
  });
});
