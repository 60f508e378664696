/**
 * A small reader for the capture files pcap-writer.ts writes, and for those other
 * tools write: classic pcap in either byte order and either timestamp resolution,
 * and pcapng (SHB, IDB, EPB; other blocks are skipped, as §3.1 of
 * draft-ietf-opsawg-pcapng allows). For tests and offline tools, not a hot path.
 * Any malformed input throws CaptureFormatError and nothing else.
 */
import * as fs from 'node:fs';
import type { PacketDirection } from './pcap-writer';

/** The only error the reader throws. `reason` is short and machine-readable; `offset` is where in the file. */
export class CaptureFormatError extends Error {
  override readonly name = 'CaptureFormatError';
  constructor(
    readonly reason: string,
    readonly offset: number,
    detail?: string,
  ) {
    super(`capture file: ${reason} at offset ${offset}${detail === undefined ? '' : ` (${detail})`}`);
  }
}

export interface CaptureInterface {
  /** Index in CaptureFile.interfaces; what CaptureRecord.interfaceId refers to. */
  id: number;
  linkType: number;
  /** 0 means no limit (pcapng §4.2). */
  snaplen: number;
  /** if_name, when the file has one. */
  name?: string;
  /** Timestamp units per second (if_tsresol; 1e6 when absent). */
  unitsPerSecond: bigint;
}

export interface CaptureRecord {
  /** Unix time in milliseconds (a double: about 0.25 µs precision today). */
  timestampMs: number;
  /** Unix time in nanoseconds, exact when the file's resolution allows. */
  timestampNs: bigint;
  interfaceId: number;
  /** From epb_flags (pcapng §4.3.1); absent when the file does not say. */
  direction?: PacketDirection;
  /** Length of the packet on the wire; data may be shorter (snaplen). */
  originalLength: number;
  /** Captured bytes: a view into the input buffer. */
  data: Uint8Array;
}

export interface CaptureFile {
  format: 'pcap' | 'pcapng';
  /** Byte order of the (first) section. */
  littleEndian: boolean;
  /** Classic pcap: one interface, from the file header. pcapng: every IDB of every section, in order. */
  interfaces: CaptureInterface[];
  records: CaptureRecord[];
}

const PCAP_MAGIC_MICROSECONDS = 0xa1b2c3d4;
const PCAP_MAGIC_NANOSECONDS = 0xa1b23c4d;
const PCAPNG_SECTION_HEADER = 0x0a0d0d0a;
const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const BLOCK_INTERFACE_DESCRIPTION = 1;
const BLOCK_ENHANCED_PACKET = 6;
const OPT_ENDOFOPT = 0;
const IF_NAME = 2;
const IF_TSRESOL = 9;
const IF_TSOFFSET = 14;
const EPB_FLAGS = 2;
const NS_PER_SECOND = 1_000_000_000n;

/** Parses a whole capture file held in memory. */
export function readCapture(bytes: Uint8Array): CaptureFile {
  if (bytes.length < 4) throw new CaptureFormatError('truncated', 0, 'shorter than a magic number');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const first = view.getUint32(0, false);
  if (first === PCAPNG_SECTION_HEADER) return readPcapng(bytes, view);
  for (const magic of [PCAP_MAGIC_MICROSECONDS, PCAP_MAGIC_NANOSECONDS]) {
    if (first === magic) return readPcap(bytes, view, false, magic === PCAP_MAGIC_NANOSECONDS);
    if (view.getUint32(0, true) === magic) return readPcap(bytes, view, true, magic === PCAP_MAGIC_NANOSECONDS);
  }
  throw new CaptureFormatError('bad-magic', 0, `0x${first.toString(16).padStart(8, '0')}`);
}

/** Reads and parses a capture file. File-system errors are thrown as they are; format errors as CaptureFormatError. */
export function readCaptureFile(path: string): CaptureFile {
  return readCapture(new Uint8Array(fs.readFileSync(path)));
}

/** draft-gharris-opsawg-pcap §4 (file header) and §5 (packet records). */
function readPcap(bytes: Uint8Array, view: DataView, le: boolean, nanosecond: boolean): CaptureFile {
  if (bytes.length < 24) throw new CaptureFormatError('truncated', 0, 'pcap file header');
  const major = view.getUint16(4, le);
  if (major !== 2) throw new CaptureFormatError('bad-version', 4, `pcap ${major}.${view.getUint16(6, le)}`);
  const unitsPerSecond = nanosecond ? 1_000_000_000n : 1_000_000n;
  // The low 16 bits are the link type; the upper ones carry FCS information (§4).
  const iface: CaptureInterface = {
    id: 0,
    linkType: view.getUint32(20, le) & 0xffff,
    snaplen: view.getUint32(16, le),
    unitsPerSecond,
  };
  const records: CaptureRecord[] = [];
  let offset = 24;
  while (offset < bytes.length) {
    if (offset + 16 > bytes.length) throw new CaptureFormatError('truncated', offset, 'pcap record header');
    const seconds = view.getUint32(offset, le);
    const fraction = view.getUint32(offset + 4, le);
    const captured = view.getUint32(offset + 8, le);
    const originalLength = view.getUint32(offset + 12, le);
    if (BigInt(fraction) >= unitsPerSecond) throw new CaptureFormatError('bad-timestamp', offset + 4);
    if (offset + 16 + captured > bytes.length) throw new CaptureFormatError('truncated', offset, 'pcap packet data');
    const timestampNs = BigInt(seconds) * NS_PER_SECOND + (BigInt(fraction) * NS_PER_SECOND) / unitsPerSecond;
    records.push({
      timestampMs: nsToMs(timestampNs),
      timestampNs,
      interfaceId: 0,
      originalLength,
      data: bytes.subarray(offset + 16, offset + 16 + captured),
    });
    offset += 16 + captured;
  }
  return { format: 'pcap', littleEndian: le, interfaces: [iface], records };
}

/** Per-interface state needed to decode its packets. */
interface SectionInterface {
  globalId: number;
  unitsPerSecond: bigint;
  offsetSeconds: bigint;
}

/** draft-ietf-opsawg-pcapng §3 (blocks, options) and §4.1-4.3 (SHB, IDB, EPB). */
function readPcapng(bytes: Uint8Array, view: DataView): CaptureFile {
  const interfaces: CaptureInterface[] = [];
  const records: CaptureRecord[] = [];
  let sectionInterfaces: SectionInterface[] = [];
  let le = true;
  let firstSectionLe: boolean | undefined;
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + 12 > bytes.length) throw new CaptureFormatError('truncated', offset, 'block header');
    const type = view.getUint32(offset, le);
    if (type === PCAPNG_SECTION_HEADER) {
      if (offset + 28 > bytes.length) throw new CaptureFormatError('truncated', offset, 'section header block');
      // §4.1: the byte-order magic, 8 bytes in, tells the endianness of this whole section.
      const magicLe = view.getUint32(offset + 8, true);
      if (magicLe === PCAPNG_BYTE_ORDER_MAGIC) le = true;
      else if (view.getUint32(offset + 8, false) === PCAPNG_BYTE_ORDER_MAGIC) le = false;
      else throw new CaptureFormatError('bad-byte-order-magic', offset + 8);
      firstSectionLe ??= le;
      const major = view.getUint16(offset + 12, le);
      if (major !== 1) throw new CaptureFormatError('bad-version', offset + 12, `pcapng ${major}`);
      sectionInterfaces = [];
    } else if (firstSectionLe === undefined) {
      throw new CaptureFormatError('missing-section-header', offset);
    }
    const length = view.getUint32(offset + 4, le);
    if (length < 12 || length % 4 !== 0) throw new CaptureFormatError('bad-block-length', offset + 4, `${length}`);
    if (offset + length > bytes.length) throw new CaptureFormatError('truncated', offset, `block of ${length} bytes`);
    // §3.1: the total length is repeated at the end of every block.
    if (view.getUint32(offset + length - 4, le) !== length) {
      throw new CaptureFormatError('block-length-mismatch', offset + length - 4);
    }
    const bodyStart = offset + 8;
    const bodyEnd = offset + length - 4;
    if (type === PCAPNG_SECTION_HEADER) {
      if (length < 28) throw new CaptureFormatError('bad-block-length', offset + 4, 'section header block');
    } else if (type === BLOCK_INTERFACE_DESCRIPTION) {
      const iface = readInterfaceDescription(bytes, view, le, bodyStart, bodyEnd, interfaces.length);
      interfaces.push(iface.description);
      sectionInterfaces.push(iface.section);
    } else if (type === BLOCK_ENHANCED_PACKET) {
      records.push(readEnhancedPacket(bytes, view, le, bodyStart, bodyEnd, sectionInterfaces));
    }
    // Any other block type is skipped whole (§3.1: "a parser that does not understand them can simply ignore").
    offset += length;
  }
  return { format: 'pcapng', littleEndian: firstSectionLe ?? true, interfaces, records };
}

function readInterfaceDescription(
  bytes: Uint8Array,
  view: DataView,
  le: boolean,
  start: number,
  end: number,
  globalId: number,
): { description: CaptureInterface; section: SectionInterface } {
  if (end - start < 8) throw new CaptureFormatError('truncated', start, 'interface description block');
  const description: CaptureInterface = {
    id: globalId,
    linkType: view.getUint16(start, le),
    snaplen: view.getUint32(start + 4, le),
    unitsPerSecond: 1_000_000n,
  };
  const section: SectionInterface = { globalId, unitsPerSecond: 1_000_000n, offsetSeconds: 0n };
  forEachOption(view, le, start + 8, end, (code, valueStart, valueLength) => {
    if (code === IF_NAME) {
      description.name = new TextDecoder().decode(bytes.subarray(valueStart, valueStart + valueLength));
    } else if (code === IF_TSRESOL) {
      if (valueLength !== 1) throw new CaptureFormatError('bad-option', valueStart, 'if_tsresol length');
      // §4.2: MSB clear → 10^-n seconds, MSB set → 2^-n seconds.
      const tsresol = bytes[valueStart]!;
      const exponent = BigInt(tsresol & 0x7f);
      section.unitsPerSecond = (tsresol & 0x80) === 0 ? 10n ** exponent : 2n ** exponent;
      if (section.unitsPerSecond === 0n) throw new CaptureFormatError('bad-option', valueStart, 'if_tsresol');
      description.unitsPerSecond = section.unitsPerSecond;
    } else if (code === IF_TSOFFSET) {
      if (valueLength !== 8) throw new CaptureFormatError('bad-option', valueStart, 'if_tsoffset length');
      section.offsetSeconds = view.getBigInt64(valueStart, le);
    }
  });
  return { description, section };
}

function readEnhancedPacket(
  bytes: Uint8Array,
  view: DataView,
  le: boolean,
  start: number,
  end: number,
  sectionInterfaces: SectionInterface[],
): CaptureRecord {
  if (end - start < 20) throw new CaptureFormatError('truncated', start, 'enhanced packet block');
  const localId = view.getUint32(start, le);
  const iface = sectionInterfaces[localId];
  if (iface === undefined) throw new CaptureFormatError('unknown-interface', start, `interface ${localId}`);
  const units = (BigInt(view.getUint32(start + 4, le)) << 32n) | BigInt(view.getUint32(start + 8, le));
  const captured = view.getUint32(start + 12, le);
  const originalLength = view.getUint32(start + 16, le);
  const dataStart = start + 20;
  // Not `(captured + 3) & ~3`: a corrupt length past 2^31 would turn negative.
  const paddedEnd = dataStart + captured + ((4 - (captured % 4)) % 4);
  if (paddedEnd > end) throw new CaptureFormatError('truncated', dataStart, 'packet data past the block end');
  const timestampNs =
    iface.offsetSeconds * NS_PER_SECOND +
    (units / iface.unitsPerSecond) * NS_PER_SECOND +
    ((units % iface.unitsPerSecond) * NS_PER_SECOND) / iface.unitsPerSecond;
  const record: CaptureRecord = {
    timestampMs: nsToMs(timestampNs),
    timestampNs,
    interfaceId: iface.globalId,
    originalLength,
    data: bytes.subarray(dataStart, dataStart + captured),
  };
  forEachOption(view, le, paddedEnd, end, (code, valueStart, valueLength) => {
    if (code !== EPB_FLAGS) return;
    if (valueLength !== 4) throw new CaptureFormatError('bad-option', valueStart, 'epb_flags length');
    // §4.3.1: bits 0-1, 01 inbound, 10 outbound, 00 unknown.
    const bits = view.getUint32(valueStart, le) & 0b11;
    if (bits === 0b01) record.direction = 'inbound';
    else if (bits === 0b10) record.direction = 'outbound';
  });
  return record;
}

/**
 * Walks an options list (§3.5) from `start` to `end`: each option is code, length,
 * value padded to 32 bits; opt_endofopt or the end of the block ends the list.
 */
function forEachOption(
  view: DataView,
  le: boolean,
  start: number,
  end: number,
  visit: (code: number, valueStart: number, valueLength: number) => void,
): void {
  let offset = start;
  while (offset + 4 <= end) {
    const code = view.getUint16(offset, le);
    const length = view.getUint16(offset + 2, le);
    if (code === OPT_ENDOFOPT) return;
    const valueStart = offset + 4;
    if (valueStart + length > end)
      throw new CaptureFormatError('bad-option', offset, `option ${code} overruns its block`);
    visit(code, valueStart, length);
    offset = valueStart + ((length + 3) & ~3);
  }
}

function nsToMs(ns: bigint): number {
  const ms = ns / 1_000_000n;
  return Number(ms) + Number(ns - ms * 1_000_000n) / 1_000_000;
}
