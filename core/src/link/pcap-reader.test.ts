import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Random } from '../util/random';
import { CaptureFormatError, readCapture, readCaptureFile } from './pcap-reader';
import { type CaptureWriter, FileSink, LINKTYPE_RAW, MemorySink, PcapngWriter, PcapWriter } from './pcap-writer';

function packet(length: number, seed = 1): Uint8Array {
  const p = new Uint8Array(length);
  for (let i = 0; i < length; i++) p[i] = (seed * 31 + i) & 0xff;
  return p;
}

/** Concatenates byte arrays and numbers written as 8/16/32-bit fields. */
class Bytes {
  private readonly parts: number[] = [];
  constructor(private readonly le = true) {}
  u8(...values: number[]): this {
    this.parts.push(...values);
    return this;
  }
  u16(v: number): this {
    return this.le ? this.u8(v & 0xff, v >>> 8) : this.u8(v >>> 8, v & 0xff);
  }
  u32(v: number): this {
    const b = [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
    return this.u8(...(this.le ? b.reverse() : b));
  }
  bytes(b: Uint8Array): this {
    return this.u8(...b);
  }
  pad(): this {
    while (this.parts.length % 4 !== 0) this.parts.push(0);
    return this;
  }
  get length(): number {
    return this.parts.length;
  }
  build(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** One pcapng block around `body` (§3.1): type, total length, body padded to 32 bits, total length. */
function block(type: number, body: Uint8Array, le = true): Uint8Array {
  const padded = (body.length + 3) & ~3;
  const length = 12 + padded;
  return new Bytes(le).u32(type).u32(length).bytes(body).pad().u32(length).build();
}

function shb(le = true, major = 1): Uint8Array {
  return block(0x0a0d0d0a, new Bytes(le).u32(0x1a2b3c4d).u16(major).u16(0).u32(0xffffffff).u32(0xffffffff).build(), le);
}

function idb(le: boolean, options: Bytes, linkType = LINKTYPE_RAW, snaplen = 0): Uint8Array {
  return block(1, new Bytes(le).u16(linkType).u16(0).u32(snaplen).bytes(options.build()).build(), le);
}

function epb(le: boolean, ifId: number, high: number, low: number, data: Uint8Array, options?: Bytes): Uint8Array {
  const body = new Bytes(le).u32(ifId).u32(high).u32(low).u32(data.length).u32(data.length).bytes(data).pad();
  if (options !== undefined) body.bytes(options.build());
  return block(6, body.build(), le);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

function expectFormatError(bytes: Uint8Array, reason: string): void {
  let thrown: unknown;
  try {
    readCapture(bytes);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(CaptureFormatError);
  expect((thrown as CaptureFormatError).reason).toBe(reason);
}

/** Writes the same three packets through any writer. */
function writeSample(w: CaptureWriter): void {
  const a = w.addInterface({ name: 'path0', snaplen: 40 });
  const b = w.addInterface({ name: 'path1' });
  w.writePacket(a, 1_577_836_800, 1_000, packet(20, 1), 'outbound');
  w.writePacket(b, 1_577_836_800, 500_000_123, packet(60, 2), 'inbound');
  w.writePacket(a, 1_577_836_801, 999_999_999, packet(100, 3));
  w.close();
}

describe('round trips through our writers', () => {
  it.each([
    ['µs, little-endian', false, true],
    ['ns, little-endian', true, true],
    ['µs, big-endian', false, false],
    ['ns, big-endian', true, false],
  ])('classic pcap, %s', (_name, nanosecond, littleEndian) => {
    const sink = new MemorySink();
    writeSample(new PcapWriter(sink, { nanosecond, littleEndian, snaplen: 9000 }));
    const file = readCapture(sink.bytes());
    expect(file.format).toBe('pcap');
    expect(file.littleEndian).toBe(littleEndian);
    expect(file.interfaces).toEqual([
      { id: 0, linkType: LINKTYPE_RAW, snaplen: 9000, unitsPerSecond: nanosecond ? 1_000_000_000n : 1_000_000n },
    ]);
    const base = 1_577_836_800_000_000_000n;
    const ns = (n: bigint): bigint => (nanosecond ? n : (n / 1000n) * 1000n);
    expect(file.records.map((r) => [r.timestampNs, r.interfaceId, r.direction, r.originalLength, r.data])).toEqual([
      [base + 1_000n, 0, undefined, 20, packet(20, 1)],
      [base + ns(500_000_123n), 0, undefined, 60, packet(60, 2)],
      [base + ns(1_999_999_999n), 0, undefined, 100, packet(40, 3)],
    ]);
    expect(file.records[1]!.timestampMs).toBeCloseTo(1_577_836_800_500, 2);
  });

  it.each([
    ['ns, little-endian', 'ns', true],
    ['µs, little-endian', 'us', true],
    ['ns, big-endian', 'ns', false],
    ['µs, big-endian', 'us', false],
  ] as const)('pcapng, %s', (_name, timestampResolution, littleEndian) => {
    const sink = new MemorySink();
    writeSample(new PcapngWriter(sink, { timestampResolution, littleEndian }));
    const file = readCapture(sink.bytes());
    expect(file.format).toBe('pcapng');
    expect(file.littleEndian).toBe(littleEndian);
    const units = timestampResolution === 'ns' ? 1_000_000_000n : 1_000_000n;
    expect(file.interfaces).toEqual([
      { id: 0, linkType: LINKTYPE_RAW, snaplen: 40, name: 'path0', unitsPerSecond: units },
      { id: 1, linkType: LINKTYPE_RAW, snaplen: 262_144, name: 'path1', unitsPerSecond: units },
    ]);
    const base = 1_577_836_800_000_000_000n;
    const ns = (n: bigint): bigint => (timestampResolution === 'ns' ? n : (n / 1000n) * 1000n);
    expect(file.records.map((r) => [r.timestampNs, r.interfaceId, r.direction, r.originalLength, r.data])).toEqual([
      [base + 1_000n, 0, 'outbound', 20, packet(20, 1)],
      [base + ns(500_000_123n), 1, 'inbound', 60, packet(60, 2)],
      [base + ns(1_999_999_999n), 0, undefined, 100, packet(40, 3)],
    ]);
  });

  it('reads a file from disk', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nuse-pcap-reader-'));
    try {
      const file = path.join(dir, 'x.pcapng');
      writeSample(new PcapngWriter(new FileSink(file)));
      expect(readCaptureFile(file).records).toHaveLength(3);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('classic pcap written by hand (draft-gharris-opsawg-pcap)', () => {
  it('reads a big-endian microsecond file, ignoring the FCS bits above the link type', () => {
    const bytes = new Bytes(false)
      .u32(0xa1b2c3d4)
      .u16(2)
      .u16(4)
      .u32(0)
      .u32(0)
      .u32(65535)
      .u32(0x1000_0000 | LINKTYPE_RAW)
      .u32(10)
      .u32(250_000)
      .u32(3)
      .u32(70)
      .u8(0x45, 0, 0)
      .build();
    const file = readCapture(bytes);
    expect(file.interfaces[0]).toMatchObject({ linkType: LINKTYPE_RAW, snaplen: 65535 });
    expect(file.records).toEqual([
      {
        timestampMs: 10_250,
        timestampNs: 10_250_000_000n,
        interfaceId: 0,
        originalLength: 70,
        data: Uint8Array.of(0x45, 0, 0),
      },
    ]);
  });

  it('reads a file with no packets', () => {
    const sink = new MemorySink();
    new PcapWriter(sink).close();
    expect(readCapture(sink.bytes()).records).toEqual([]);
  });
});

describe('pcapng written by hand (draft-ietf-opsawg-pcapng)', () => {
  it('skips unknown blocks (§3.1) and honours if_tsresol as a power of two and if_tsoffset (§4.2)', () => {
    const ifOptions = new Bytes()
      .u16(9)
      .u16(1)
      .u8(0x80 | 10)
      .pad() // 2^-10 s units
      .u16(14)
      .u16(8)
      .u32(100)
      .u32(0) // if_tsoffset: +100 s
      .u16(0)
      .u16(0);
    const flags = new Bytes().u16(2).u16(4).u32(0b01).u16(0).u16(0);
    const bytes = concat(
      shb(),
      block(0x00000bad, Uint8Array.of(1, 2, 3, 4, 5)),
      idb(true, ifOptions, LINKTYPE_RAW, 128),
      block(4, new Uint8Array(8)), // a Name Resolution Block: not ours to read
      block(0x80000001, new Uint8Array(0)), // local-use block type
      epb(true, 0, 0, 1024 + 512, packet(5), flags), // 1.5 s in 2^-10 units
    );
    const file = readCapture(bytes);
    expect(file.interfaces).toEqual([{ id: 0, linkType: LINKTYPE_RAW, snaplen: 128, unitsPerSecond: 1024n }]);
    expect(file.records).toHaveLength(1);
    expect(file.records[0]).toMatchObject({
      timestampNs: 101_500_000_000n,
      timestampMs: 101_500,
      direction: 'inbound',
      originalLength: 5,
      data: packet(5),
    });
  });

  it('treats epb_flags direction 00 as unknown and an EPB without options as undirected', () => {
    const none = new Bytes().u16(2).u16(4).u32(0b00).u16(0).u16(0);
    const file = readCapture(
      concat(shb(), idb(true, new Bytes()), epb(true, 0, 0, 1, packet(4), none), epb(true, 0, 0, 2, packet(4))),
    );
    expect(file.records.map((r) => r.direction)).toEqual([undefined, undefined]);
    // Default resolution: microseconds.
    expect(file.records.map((r) => r.timestampNs)).toEqual([1_000n, 2_000n]);
  });

  it('numbers interfaces across sections and follows each section’s byte order', () => {
    const bytes = concat(
      shb(true),
      idb(true, new Bytes()),
      epb(true, 0, 0, 1, packet(3, 1)),
      shb(false),
      idb(false, new Bytes()),
      idb(false, new Bytes()),
      epb(false, 1, 0, 2, packet(3, 2)),
      epb(false, 0, 0, 3, packet(3, 3)),
    );
    const file = readCapture(bytes);
    expect(file.littleEndian).toBe(true);
    expect(file.interfaces.map((i) => i.id)).toEqual([0, 1, 2]);
    expect(file.records.map((r) => [r.interfaceId, r.data])).toEqual([
      [0, packet(3, 1)],
      [2, packet(3, 2)],
      [1, packet(3, 3)],
    ]);
  });
});

describe('bad files throw CaptureFormatError', () => {
  const goodPcap = (): Uint8Array => {
    const sink = new MemorySink();
    writeSample(new PcapWriter(sink));
    return sink.bytes();
  };
  const goodPcapng = (): Uint8Array => {
    const sink = new MemorySink();
    writeSample(new PcapngWriter(sink));
    return sink.bytes();
  };

  it('an empty file, or one too short for a magic number', () => {
    expectFormatError(new Uint8Array(0), 'truncated');
    expectFormatError(Uint8Array.of(0xd4, 0xc3), 'truncated');
  });

  it('an unknown magic number (e.g. a pcapng file that does not start with a Section Header Block)', () => {
    expectFormatError(Uint8Array.from(Buffer.from('GIF89a........')), 'bad-magic');
    expectFormatError(idb(true, new Bytes()), 'bad-magic');
  });

  it('a truncated pcap header, record header or packet', () => {
    const good = goodPcap();
    expectFormatError(good.subarray(0, 20), 'truncated');
    expectFormatError(good.subarray(0, 24 + 10), 'truncated');
    expectFormatError(good.subarray(0, good.length - 1), 'truncated');
  });

  it('a pcap version other than 2, and a sub-second field past one second', () => {
    const version = goodPcap();
    version[4] = 1;
    expectFormatError(version, 'bad-version');
    const fraction = goodPcap();
    new DataView(fraction.buffer).setUint32(28, 1_000_000, true);
    expectFormatError(fraction, 'bad-timestamp');
  });

  it('a pcapng block length that is not a multiple of 4, or not repeated at the end', () => {
    const odd = goodPcapng();
    new DataView(odd.buffer).setUint32(4, 30, true);
    expectFormatError(odd, 'bad-block-length');
    const mismatch = goodPcapng();
    mismatch[mismatch.length - 4]! ^= 4;
    expectFormatError(mismatch, 'block-length-mismatch');
  });

  it('a truncated pcapng block', () => {
    const good = goodPcapng();
    expectFormatError(good.subarray(0, good.length - 4), 'truncated');
    expectFormatError(good.subarray(0, good.length - 50), 'truncated');
  });

  it('a bad byte-order magic or an unknown major version', () => {
    const magic = shb();
    magic[8] = 0;
    expectFormatError(magic, 'bad-byte-order-magic');
    expectFormatError(shb(true, 2), 'bad-version');
  });

  it('a packet for an interface the section has not described', () => {
    expectFormatError(concat(shb(), idb(true, new Bytes()), epb(true, 1, 0, 0, packet(4))), 'unknown-interface');
  });

  it('packet data or an option that overruns its block', () => {
    const data = epb(true, 0, 0, 0, packet(4));
    new DataView(data.buffer).setUint32(20, 9, true); // captured length past the block body
    expectFormatError(concat(shb(), idb(true, new Bytes()), data), 'truncated');
    const option = new Bytes().u16(2).u16(40).u32(0);
    expectFormatError(concat(shb(), idb(true, option)), 'bad-option');
    const tsresol = new Bytes().u16(9).u16(2).u32(0);
    expectFormatError(concat(shb(), idb(true, tsresol)), 'bad-option');
  });

  it('never anything but CaptureFormatError for truncated or corrupted files (seeded fuzz)', () => {
    const random = new Random('pcap-reader-fuzz');
    for (const good of [goodPcap(), goodPcapng()]) {
      for (let i = 0; i < 2000; i++) {
        const bad = good.slice(0, random.int(good.length + 1));
        const flips = random.int(4);
        for (let f = 0; f < flips && bad.length > 0; f++) bad[random.int(bad.length)] = random.int(256);
        try {
          readCapture(bad);
        } catch (error) {
          if (!(error instanceof CaptureFormatError)) throw error;
        }
      }
    }
  });
});
