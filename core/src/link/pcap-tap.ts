import type { Clock } from '../time/clock';
import { VirtualClock } from '../time/virtual-clock';
import { LinkDecorator } from './decorator';
import type { Link } from './link';
import { type CaptureWriter, type PacketDirection, splitUnixMs } from './pcap-writer';

/**
 * Unix time (ms) that virtual time 0 maps to by default: a fixed date, so the same
 * simulated run writes the same file byte for byte. 2020-01-01T00:00:00Z.
 */
export const VIRTUAL_CAPTURE_EPOCH_MS = Date.UTC(2020, 0, 1);

/**
 * The default epoch of a capture: fixed for a virtual clock (reproducible files),
 * wall time for any other clock so that a live capture shows the real time of day.
 * Reading Date.now() here does not break decision 3 (no wall time in the stack):
 * it only labels the file and never feeds back into the stack's behaviour.
 */
export function defaultCaptureEpochMs(clock: Clock): number {
  return clock instanceof VirtualClock ? VIRTUAL_CAPTURE_EPOCH_MS : Date.now() - clock.now();
}

export interface PcapTapOptions {
  /** Timestamps come from this clock, shifted by `epochMs`. */
  clock: Clock;
  /** Unix time (ms) at clock time 0. Default: defaultCaptureEpochMs(clock). */
  epochMs?: number;
  /** Name recorded for this link's interface (pcapng if_name). Default: the inner link's name. */
  interfaceName?: string;
  /** Bytes kept of each packet; longer packets are truncated, their original length recorded. */
  snaplen?: number;
  /** Close the writer when this tap closes (set when the tap is the writer's only user). Default false. */
  ownsWriter?: boolean;
}

/**
 * Records every packet through a link into a capture writer, like smoltcp's
 * PcapWriter device: outgoing packets (outbound) once the inner link has accepted
 * them, incoming packets (inbound) before they are passed up. Several taps may share
 * one writer; each declares its own interface, so a pcapng file can hold every path
 * of an MPTCP connection.
 */
export class PcapTap extends LinkDecorator {
  readonly interfaceId: number;
  private readonly clock: Clock;
  private readonly epochSeconds: number;
  private readonly epochNanoseconds: number;
  private readonly ownsWriter: boolean;
  private recording = true;

  constructor(
    inner: Link,
    readonly writer: CaptureWriter,
    options: PcapTapOptions,
  ) {
    super(inner);
    this.clock = options.clock;
    const epoch = splitUnixMs(options.epochMs ?? defaultCaptureEpochMs(options.clock));
    this.epochSeconds = epoch.seconds;
    this.epochNanoseconds = epoch.nanoseconds;
    this.ownsWriter = options.ownsWriter ?? false;
    this.interfaceId = writer.addInterface({ name: options.interfaceName ?? inner.name, snaplen: options.snaplen });
  }

  /** True until detach() or close(). */
  get isRecording(): boolean {
    return this.recording;
  }

  override send(packet: Uint8Array): boolean {
    const accepted = super.send(packet);
    // A refused packet never reached the wire, so it is not in the capture (the
    // inner link counted the drop).
    if (accepted && this.recording) this.record(packet, 'outbound');
    return accepted;
  }

  protected override onInner(packet: Uint8Array): void {
    if (this.recording) this.record(packet, 'inbound');
    this.deliver(packet);
  }

  /**
   * Stops recording and flushes the writer; packets keep flowing through the tap.
   * The way to end a capture on a link the stack still uses.
   */
  detach(): void {
    if (!this.recording) return;
    this.recording = false;
    if (this.ownsWriter) this.writer.close();
    else this.writer.flush();
  }

  /** Stops recording, closes the inner link (Link contract) and, if owned, the writer. */
  override close(): void {
    this.detach();
    super.close();
  }

  private record(packet: Uint8Array, direction: PacketDirection): void {
    // Split clock time before adding the epoch: Unix time in ms as one double only
    // keeps ~0.25 µs, and virtual time has finer steps than that.
    const now = this.clock.now();
    let seconds = Math.floor(now / 1000);
    let nanoseconds = Math.round((now - seconds * 1000) * 1_000_000) + this.epochNanoseconds;
    seconds += this.epochSeconds;
    // Both parts are below 1e9 (rounding can reach exactly 1e9), so one carry is enough.
    if (nanoseconds >= 1_000_000_000) {
      nanoseconds -= 1_000_000_000;
      seconds++;
    }
    this.writer.writePacket(this.interfaceId, seconds, nanoseconds, packet, direction);
  }
}
