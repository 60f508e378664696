/**
 * Capture file writers: classic pcap and pcapng, both with LINKTYPE_RAW (a link
 * carries bare IP packets, see link.ts).
 *
 * References:
 * - classic pcap: draft-gharris-opsawg-pcap (§4 file header, §5 packet record).
 * - pcapng: draft-ietf-opsawg-pcapng (§3.1 general block structure, §3.5 options,
 *   §4.1 Section Header Block, §4.2 Interface Description Block, §4.3 Enhanced
 *   Packet Block, §4.3.1 its flags word).
 *
 * Records are serialised straight into one reusable buffer and handed to a sink in
 * chunks, so the per-packet path allocates nothing (a snaplen-truncated packet costs
 * one subarray view). Sink errors never escape: the first is reported through
 * `onError`, all are counted, and the writer stops writing (a file with a hole in
 * the middle is worse than a file that ends early).
 */
import * as fs from 'node:fs';
import { types } from 'node:util';

/** LINKTYPE_RAW: the packet starts with an IPv4 or IPv6 header (tcpdump.org link-layer types). */
export const LINKTYPE_RAW = 101;

/** tcpdump's default snapshot length: large enough for any IP packet, GSO aside. */
export const DEFAULT_SNAPLEN = 262_144;

/** Which way a packet went, seen from the stack. */
export type PacketDirection = 'inbound' | 'outbound';

/** Where the bytes of a capture go. */
export interface CaptureSink {
  /**
   * Takes a chunk of file bytes. The chunk is only valid during the call (the writer
   * reuses its buffer), so a sink that keeps data must copy it. May throw: the writer
   * catches, counts and reports.
   */
  write(chunk: Uint8Array): void;
  /** Releases the sink. Called once, by the writer's close(). May throw. */
  close(): void;
}

/** Writes a capture to a file with synchronous writes of whole chunks. */
export class FileSink implements CaptureSink {
  private fd: number | undefined;

  /** Opens (creates or truncates) `path`. Throws if the file cannot be opened: that is a setup error. */
  constructor(readonly path: string) {
    this.fd = fs.openSync(path, 'w');
  }

  write(chunk: Uint8Array): void {
    if (this.fd === undefined) throw new Error(`FileSink: ${this.path} is closed`);
    // writeSync may write less than asked (a regular file near ENOSPC); loop until done or it throws.
    let offset = 0;
    while (offset < chunk.length) offset += fs.writeSync(this.fd, chunk, offset, chunk.length - offset);
  }

  close(): void {
    const fd = this.fd;
    if (fd === undefined) return;
    this.fd = undefined;
    fs.closeSync(fd);
  }
}

/** Keeps a capture in memory: for tests, and for tools that post-process a capture. */
export class MemorySink implements CaptureSink {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;
  closed = false;

  write(chunk: Uint8Array): void {
    this.chunks.push(chunk.slice());
    this.length += chunk.length;
  }

  close(): void {
    this.closed = true;
  }

  /** Number of write calls received: lets tests see the chunking. */
  get writes(): number {
    return this.chunks.length;
  }

  /** Everything written so far, as one array. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const c of this.chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  }
}

export interface CaptureWriterOptions {
  /** Byte order of the file. Readers (ours, libpcap, Wireshark) accept both. Default: little-endian. */
  littleEndian?: boolean;
  /** Bytes buffered before they are handed to the sink. Default 64 KiB. */
  bufferSize?: number;
  /**
   * Called once, with the first error the sink throws (disk full, bad fd); later
   * errors are only counted. Default: one process warning.
   */
  onError?: (error: Error) => void;
}

export interface CaptureInterfaceOptions {
  /** Interface name (pcapng if_name); classic pcap has nowhere to put it. */
  name: string;
  /** Bytes kept of each packet; the original length is still recorded. Default DEFAULT_SNAPLEN. */
  snaplen?: number;
}

export interface CaptureWriterStats {
  /** Packet records handed to the sink or buffered for it (a failed write moves its records to `dropped`). */
  packets: number;
  /** Packet bytes captured, after snaplen truncation. */
  capturedBytes: number;
  /** Packets cut short by a snaplen. */
  truncated: number;
  /** Packets not recorded: lost in a failed write, or offered after a failure or close. */
  dropped: number;
  /** Sink errors (the first is also reported through onError). */
  writeErrors: number;
}

const DEFAULT_BUFFER_SIZE = 64 * 1024;
const NS_PER_SECOND = 1_000_000_000;
const TWO_POW_32 = 0x1_0000_0000;

/**
 * What PcapWriter and PcapngWriter share: the interface table, the chunk buffer,
 * the sink and the error policy. Timestamps are Unix time split into whole seconds
 * and nanoseconds, so that no precision is lost to a 2^53 double (Unix time in ns
 * does not fit one).
 */
export abstract class CaptureWriter {
  readonly stats: CaptureWriterStats = { packets: 0, capturedBytes: 0, truncated: 0, dropped: 0, writeErrors: 0 };
  protected readonly littleEndian: boolean;
  protected buffer: Uint8Array;
  protected view: DataView;
  /** Bytes of `buffer` in use. */
  protected used = 0;
  protected readonly snaplens: number[] = [];
  /** Records in the buffer since the last flush: lost if the sink fails on them. */
  private bufferedPackets = 0;
  private readonly onError: (error: Error) => void;
  private failed = false;
  private closed = false;

  constructor(
    protected readonly sink: CaptureSink,
    options: CaptureWriterOptions = {},
  ) {
    this.littleEndian = options.littleEndian ?? true;
    const size = options.bufferSize ?? DEFAULT_BUFFER_SIZE;
    if (!Number.isInteger(size) || size < 64) throw new RangeError(`CaptureWriter: bufferSize ${size} is too small`);
    this.buffer = new Uint8Array(size);
    this.view = new DataView(this.buffer.buffer);
    this.onError =
      options.onError ??
      ((error) => process.emitWarning(`capture writer failed, capture stopped: ${error.message}`, 'CaptureWriter'));
  }

  /** The file format, for messages and tools. */
  abstract readonly format: 'pcap' | 'pcapng';

  /** True once a sink error stopped the capture. */
  get hasFailed(): boolean {
    return this.failed;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Declares an interface (one per link) and returns the id to pass to writePacket.
   * pcapng writes an Interface Description Block; classic pcap has a single link
   * type and no interface ids, so its interfaces only differ in snaplen.
   */
  addInterface(options: CaptureInterfaceOptions): number {
    const snaplen = options.snaplen ?? DEFAULT_SNAPLEN;
    if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > 0xffffffff) {
      throw new RangeError(`CaptureWriter: snaplen ${snaplen} is not a positive 32-bit integer`);
    }
    const kept = this.limitSnaplen(snaplen);
    this.describeInterface(options.name, kept);
    this.snaplens.push(kept);
    return this.snaplens.length - 1;
  }

  /**
   * Records one packet seen at Unix time `seconds` + `nanoseconds` (0 ≤ ns < 1e9).
   * Only the interface's snaplen bytes are kept; the original length is recorded.
   * Never throws for sink trouble.
   */
  writePacket(
    interfaceId: number,
    seconds: number,
    nanoseconds: number,
    packet: Uint8Array,
    direction?: PacketDirection,
  ): void {
    const snaplen = this.snaplens[interfaceId];
    if (snaplen === undefined) throw new RangeError(`CaptureWriter: unknown interface id ${interfaceId}`);
    if (this.failed || this.closed) {
      this.stats.dropped++;
      return;
    }
    const captured = Math.min(packet.length, snaplen);
    if (!this.reserve(this.recordLength(captured, direction))) {
      this.stats.dropped++;
      return;
    }
    this.emitRecord(interfaceId, seconds, nanoseconds, packet, captured, direction);
    this.stats.packets++;
    this.bufferedPackets++;
    this.stats.capturedBytes += captured;
    if (captured < packet.length) this.stats.truncated++;
  }

  /** Hands everything buffered to the sink. */
  flush(): void {
    if (this.used === 0 || this.failed) return;
    const chunk = this.buffer.subarray(0, this.used);
    this.used = 0;
    const packets = this.bufferedPackets;
    this.bufferedPackets = 0;
    try {
      this.sink.write(chunk);
    } catch (error) {
      this.stats.packets -= packets;
      this.stats.dropped += packets;
      this.fail(error);
    }
  }

  /** Flushes and closes the sink. Idempotent; never throws for sink trouble. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    try {
      this.sink.close();
    } catch (error) {
      this.fail(error);
    }
  }

  /** Bytes of one packet record carrying `captured` packet bytes. */
  protected abstract recordLength(captured: number, direction: PacketDirection | undefined): number;

  /** Serialises one packet record at `this.used`, which reserve() made room for. */
  protected abstract emitRecord(
    interfaceId: number,
    seconds: number,
    nanoseconds: number,
    packet: Uint8Array,
    captured: number,
    direction: PacketDirection | undefined,
  ): void;

  /** The snaplen an interface actually gets; a format with a file-wide limit lowers it. */
  protected limitSnaplen(snaplen: number): number {
    return snaplen;
  }

  /** Writes whatever the format needs when an interface is added. */
  protected abstract describeInterface(name: string, snaplen: number): void;

  /**
   * Makes room for `length` more bytes: flushes when the buffer cannot take them, and
   * grows it for a record larger than the whole buffer. False if the sink failed.
   */
  protected reserve(length: number): boolean {
    if (this.used + length <= this.buffer.length) return true;
    this.flush();
    if (this.failed) return false;
    if (length > this.buffer.length) {
      let size = this.buffer.length;
      while (size < length) size *= 2;
      this.buffer = new Uint8Array(size);
      this.view = new DataView(this.buffer.buffer);
    }
    return true;
  }

  /** Copies the kept part of a packet; a subarray view is made only when truncating. */
  protected copyPacket(packet: Uint8Array, captured: number): void {
    this.buffer.set(captured === packet.length ? packet : packet.subarray(0, captured), this.used);
    this.used += captured;
  }

  protected u16(value: number): void {
    this.view.setUint16(this.used, value, this.littleEndian);
    this.used += 2;
  }

  protected u32(value: number): void {
    this.view.setUint32(this.used, value, this.littleEndian);
    this.used += 4;
  }

  /** Zero bytes up to the next multiple of 4 (pcapng §3.6.2: padding MUST be zero). */
  protected pad32(): void {
    while ((this.used & 3) !== 0) this.buffer[this.used++] = 0;
  }

  private fail(error: unknown): void {
    this.stats.writeErrors++;
    if (this.failed) return;
    this.failed = true;
    this.used = 0;
    try {
      // isNativeError, not instanceof: fs errors come from another realm under jest's vm.
      this.onError(types.isNativeError(error) ? error : new Error(String(error)));
    } catch {
      // A throwing error handler must not take the stack down either.
    }
  }
}

export interface PcapWriterOptions extends CaptureWriterOptions {
  /** Nanosecond timestamps (magic 0xa1b23c4d) instead of microseconds (0xa1b2c3d4). Default false. */
  nanosecond?: boolean;
  /** Snaplen in the file header. Default: DEFAULT_SNAPLEN. Interfaces may truncate more. */
  snaplen?: number;
}

/** pcap magic numbers (draft-gharris-opsawg-pcap §4): the value tells resolution and byte order. */
export const PCAP_MAGIC_MICROSECONDS = 0xa1b2c3d4;
export const PCAP_MAGIC_NANOSECONDS = 0xa1b23c4d;
const PCAP_RECORD_HEADER_LENGTH = 16;

/**
 * Classic pcap (libpcap's savefile): one link type for the whole file, no interface
 * ids, no direction. Several links may still share one file; their packets are
 * simply interleaved.
 */
export class PcapWriter extends CaptureWriter {
  readonly format = 'pcap';
  private readonly nanosecond: boolean;
  private readonly fileSnaplen: number;

  constructor(sink: CaptureSink, options: PcapWriterOptions = {}) {
    super(sink, options);
    this.nanosecond = options.nanosecond ?? false;
    this.fileSnaplen = options.snaplen ?? DEFAULT_SNAPLEN;
    // §4 File Header: magic, version 2.4, two reserved words (ex thiszone/sigfigs,
    // MUST be 0), snaplen, then LinkType with FCS bits clear.
    this.u32(this.nanosecond ? PCAP_MAGIC_NANOSECONDS : PCAP_MAGIC_MICROSECONDS);
    this.u16(2);
    this.u16(4);
    this.u32(0);
    this.u32(0);
    this.u32(this.fileSnaplen);
    this.u32(LINKTYPE_RAW);
  }

  /** No record may exceed the header's snaplen (§4), whatever the interface asked for. */
  protected override limitSnaplen(snaplen: number): number {
    return Math.min(snaplen, this.fileSnaplen);
  }

  protected describeInterface(): void {
    // Classic pcap has no per-interface metadata.
  }

  protected recordLength(captured: number): number {
    return PCAP_RECORD_HEADER_LENGTH + captured;
  }

  protected emitRecord(
    _interfaceId: number,
    seconds: number,
    nanoseconds: number,
    packet: Uint8Array,
    captured: number,
  ): void {
    // §5 Packet Record: seconds, then µs or ns (per the magic), captured length, original length.
    this.u32(seconds);
    this.u32(this.nanosecond ? nanoseconds : Math.floor(nanoseconds / 1000));
    this.u32(captured);
    this.u32(packet.length);
    this.copyPacket(packet, captured);
  }
}

export interface PcapngWriterOptions extends CaptureWriterOptions {
  /** Timestamp unit of every interface (if_tsresol). Default 'ns': virtual time has sub-µs steps. */
  timestampResolution?: 'us' | 'ns';
  /** shb_userappl: the application that wrote the section. Default "nuse". */
  application?: string;
}

// pcapng block types (§11.1) and the option codes used here (§3.5, §4.1, §4.2, §4.3).
export const PCAPNG_SECTION_HEADER = 0x0a0d0d0a;
export const PCAPNG_INTERFACE_DESCRIPTION = 0x00000001;
export const PCAPNG_ENHANCED_PACKET = 0x00000006;
export const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const OPT_ENDOFOPT = 0;
const SHB_USERAPPL = 4;
const IF_NAME = 2;
const IF_TSRESOL = 9;
const EPB_FLAGS = 2;
/** §4.3.1: flags word bits 0-1, the inbound/outbound direction. */
export const EPB_FLAGS_INBOUND = 0b01;
export const EPB_FLAGS_OUTBOUND = 0b10;
/** Block type, total length, interface id, two timestamp words, two lengths, trailing total length. */
const EPB_FIXED_LENGTH = 32;
/** epb_flags option (4 header + 4 value) and opt_endofopt (4). */
const EPB_FLAGS_OPTION_LENGTH = 12;

const utf8 = new TextEncoder();

/**
 * pcapng: one section, one Interface Description Block per link (so one file can
 * hold every path of an MPTCP connection), Enhanced Packet Blocks carrying the
 * interface id and the direction.
 */
export class PcapngWriter extends CaptureWriter {
  readonly format = 'pcapng';
  private readonly nanosecondUnits: boolean;

  constructor(sink: CaptureSink, options: PcapngWriterOptions = {}) {
    super(sink, options);
    this.nanosecondUnits = (options.timestampResolution ?? 'ns') === 'ns';
    const application = encodeOptionString(options.application ?? 'nuse', 'application');
    // §4.1: byte-order magic, version 1.0, section length -1 ("not specified": we stream).
    const length = 24 + optionLength(application.length) + 4 + 4;
    this.reserve(length);
    this.u32(PCAPNG_SECTION_HEADER);
    this.u32(length);
    this.u32(PCAPNG_BYTE_ORDER_MAGIC);
    this.u16(1);
    this.u16(0);
    this.u32(0xffffffff);
    this.u32(0xffffffff);
    this.option(SHB_USERAPPL, application);
    this.u32(OPT_ENDOFOPT);
    this.u32(length);
  }

  protected describeInterface(name: string, snaplen: number): void {
    const nameBytes = encodeOptionString(name, 'interface name');
    // §4.2: LinkType, reserved, SnapLen, then if_name, if_tsresol (1 byte: MSB clear
    // means a power of ten, so 9 is nanoseconds and 6 microseconds) and opt_endofopt.
    const length = 16 + optionLength(nameBytes.length) + optionLength(1) + 4 + 4;
    if (!this.reserve(length)) return;
    this.u32(PCAPNG_INTERFACE_DESCRIPTION);
    this.u32(length);
    this.u16(LINKTYPE_RAW);
    this.u16(0);
    this.u32(snaplen);
    this.option(IF_NAME, nameBytes);
    this.u16(IF_TSRESOL);
    this.u16(1);
    this.buffer[this.used++] = this.nanosecondUnits ? 9 : 6;
    this.pad32();
    this.u32(OPT_ENDOFOPT);
    this.u32(length);
  }

  protected recordLength(captured: number, direction: PacketDirection | undefined): number {
    return EPB_FIXED_LENGTH + ((captured + 3) & ~3) + (direction === undefined ? 0 : EPB_FLAGS_OPTION_LENGTH);
  }

  protected emitRecord(
    interfaceId: number,
    seconds: number,
    nanoseconds: number,
    packet: Uint8Array,
    captured: number,
    direction: PacketDirection | undefined,
  ): void {
    const length = this.recordLength(captured, direction);
    this.u32(PCAPNG_ENHANCED_PACKET);
    this.u32(length);
    this.u32(interfaceId);
    // §4.3: one 64-bit count of if_tsresol units since 1970, high word first.
    if (this.nanosecondUnits) this.timestampNanoseconds(seconds, nanoseconds);
    else this.timestampUnits(seconds * 1_000_000 + Math.floor(nanoseconds / 1000));
    this.u32(captured);
    this.u32(packet.length);
    this.copyPacket(packet, captured);
    this.pad32();
    if (direction !== undefined) {
      this.u16(EPB_FLAGS);
      this.u16(4);
      this.u32(direction === 'inbound' ? EPB_FLAGS_INBOUND : EPB_FLAGS_OUTBOUND);
      this.u32(OPT_ENDOFOPT);
    }
    this.u32(length);
  }

  /** A timestamp below 2^53 units (µs since 1970 are, until the year 2255) as high and low words. */
  private timestampUnits(units: number): void {
    const high = Math.floor(units / TWO_POW_32);
    this.u32(high);
    this.u32(units - high * TWO_POW_32);
  }

  /**
   * seconds·1e9 + ns as high and low words, exactly. The product reaches 2^61, past
   * exact doubles, so the seconds are split in 16-bit halves: every partial stays
   * below 2^47.
   */
  private timestampNanoseconds(seconds: number, nanoseconds: number): void {
    const secondsHigh = Math.floor(seconds / 0x10000);
    const secondsLow = seconds - secondsHigh * 0x10000;
    const upper = secondsHigh * NS_PER_SECOND; // to be scaled by 2^16
    const upperHigh = Math.floor(upper / 0x10000);
    const low = (upper - upperHigh * 0x10000) * 0x10000 + secondsLow * NS_PER_SECOND + nanoseconds;
    const carry = Math.floor(low / TWO_POW_32);
    this.u32(upperHigh + carry);
    this.u32(low - carry * TWO_POW_32);
  }

  /** One option (§3.5): code, value length, value, zero padding to 32 bits. */
  private option(code: number, value: Uint8Array): void {
    this.u16(code);
    this.u16(value.length);
    this.buffer.set(value, this.used);
    this.used += value.length;
    this.pad32();
  }
}

/** A UTF-8 option value (not NUL-terminated, §3.5); its length must fit the 16-bit Option Length. */
function encodeOptionString(value: string, what: string): Uint8Array {
  const bytes = utf8.encode(value);
  if (bytes.length > 0xffff) throw new RangeError(`PcapngWriter: ${what} is longer than an option can hold`);
  return bytes;
}

/** Bytes taken by an option with a `valueLength`-byte value: header plus padded value. */
function optionLength(valueLength: number): number {
  return 4 + ((valueLength + 3) & ~3);
}

/**
 * Unix time in ms (a double) split into whole seconds and nanoseconds, rounding to
 * the nearest nanosecond. For tools and tests; the tap splits clock time itself.
 */
export function splitUnixMs(unixMs: number): { seconds: number; nanoseconds: number } {
  let seconds = Math.floor(unixMs / 1000);
  let nanoseconds = Math.round((unixMs - seconds * 1000) * 1_000_000);
  if (nanoseconds >= NS_PER_SECOND) {
    seconds++;
    nanoseconds -= NS_PER_SECOND;
  }
  return { seconds, nanoseconds };
}

/**
 * A pcapng writer on a new file, for `--pcap FILE` options. A file that cannot be
 * created throws an Error saying which capture failed and why, with the errno in `code`.
 */
export function openPcapngFile(path: string, application: string): PcapngWriter {
  let sink: FileSink;
  try {
    sink = new FileSink(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw Object.assign(new Error(`cannot write the capture ${path}: ${err.message}`), { code: err.code });
  }
  return new PcapngWriter(sink, { application });
}
