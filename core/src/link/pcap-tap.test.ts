import type { Clock } from '../time/clock';
import { RealClock } from '../time/real-clock';
import { VirtualClock } from '../time/virtual-clock';
import { LinkBase } from './link';
import { readCapture } from './pcap-reader';
import { PcapTap, VIRTUAL_CAPTURE_EPOCH_MS } from './pcap-tap';
import { type CaptureWriter, MemorySink, PcapngWriter, PcapWriter } from './pcap-writer';

/**
 * One end of an in-memory wire: what one end transmits arrives at the other after
 * `delayMs` of clock time. Just enough link for these tests (the real sim link
 * lives in sim-link.ts).
 */
class WireEnd extends LinkBase {
  peer: WireEnd | undefined;
  constructor(
    name: string,
    private readonly clock: VirtualClock,
    private readonly delayMs: number,
    mtu = 1500,
  ) {
    super(name, mtu);
  }

  protected transmit(packet: Uint8Array): boolean {
    const peer = this.peer;
    if (peer === undefined) return false;
    this.clock.setTimer(this.delayMs, () => peer.deliver(packet));
    return true;
  }
}

function wire(clock: VirtualClock, names: [string, string], delayMs = 1.5): [WireEnd, WireEnd] {
  const a = new WireEnd(names[0], clock, delayMs);
  const b = new WireEnd(names[1], clock, delayMs);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

function packet(length: number, seed = 1): Uint8Array {
  const p = new Uint8Array(length);
  for (let i = 0; i < length; i++) p[i] = (seed * 17 + i) & 0xff;
  return p;
}

/** Virtual ms → the Unix ns the tap should record under the default virtual epoch. */
function unixNs(virtualMs: number): bigint {
  return BigInt(VIRTUAL_CAPTURE_EPOCH_MS) * 1_000_000n + BigInt(Math.round(virtualMs * 1_000_000));
}

describe('PcapTap', () => {
  let clock: VirtualClock;
  let sink: MemorySink;
  let writer: PcapngWriter;

  beforeEach(() => {
    clock = new VirtualClock();
    sink = new MemorySink();
    writer = new PcapngWriter(sink);
  });

  function records(w: CaptureWriter = writer, s: MemorySink = sink) {
    w.close();
    return readCapture(s.bytes());
  }

  it('records outgoing packets as outbound and incoming ones as inbound, with clock timestamps', () => {
    const [a, b] = wire(clock, ['a', 'b']);
    const tap = new PcapTap(a, writer, { clock });
    const seenByStack: Uint8Array[] = [];
    tap.onReceive((p) => seenByStack.push(p));
    b.onReceive((p) => b.send(packet(p.length + 10, p[0]!)));

    clock.advance(10);
    expect(tap.send(packet(40, 1))).toBe(true);
    clock.advance(0.25);
    expect(tap.send(packet(41, 2))).toBe(true);
    clock.runUntilIdle();

    const file = records();
    expect(file.interfaces.map((i) => i.name)).toEqual(['a']);
    expect(file.records.map((r) => [r.timestampNs, r.direction, r.originalLength, r.data])).toEqual([
      [unixNs(10), 'outbound', 40, packet(40, 1)],
      [unixNs(10.25), 'outbound', 41, packet(41, 2)],
      [unixNs(13), 'inbound', 50, packet(50, packet(40, 1)[0])],
      [unixNs(13.25), 'inbound', 51, packet(51, packet(41, 2)[0])],
    ]);
    // Packets still flow up unchanged, and the tap counts what passed through it.
    expect(seenByStack).toEqual([file.records[2]!.data, file.records[3]!.data]);
    expect(tap.counters).toMatchObject({ txPackets: 2, txBytes: 81, rxPackets: 2, rxBytes: 101 });
  });

  it('keeps sub-microsecond virtual time exactly', () => {
    const [a, b] = wire(clock, ['a', 'b'], 0.000_123);
    new PcapTap(a, writer, { clock });
    a.send(packet(20));
    const tap = new PcapTap(b, writer, { clock });
    expect(tap.interfaceId).toBe(1);
    clock.runUntilIdle();
    expect(records().records.map((r) => r.timestampNs - unixNs(0))).toEqual([123n]);
  });

  it('uses a configured epoch, carrying nanoseconds into seconds', () => {
    const [a] = wire(clock, ['a', 'b']);
    const tap = new PcapTap(a, writer, { clock, epochMs: 999.999_999 });
    clock.advance(0.000_001);
    tap.send(packet(20));
    expect(records().records[0]!.timestampNs).toBe(1_000_000_000n);
  });

  it('defaults to wall time for a real clock', () => {
    const realClock: Clock = new RealClock();
    const [a] = wire(clock, ['a', 'b']);
    const before = Date.now();
    const tap = new PcapTap(a, writer, { clock: realClock });
    tap.send(packet(20));
    const after = Date.now();
    const at = records().records[0]!.timestampMs;
    expect(at).toBeGreaterThanOrEqual(before - 1);
    expect(at).toBeLessThanOrEqual(after + 1);
  });

  it('truncates to the snaplen and still records the original length', () => {
    const [a, b] = wire(clock, ['a', 'b']);
    const tapA = new PcapTap(a, writer, { clock, snaplen: 20 });
    new PcapTap(b, writer, { clock, interfaceName: 'b-side' });
    tapA.send(packet(100, 3));
    clock.runUntilIdle();
    const file = records();
    expect(file.interfaces.map((i) => [i.name, i.snaplen])).toEqual([
      ['a', 20],
      ['b-side', 262_144],
    ]);
    expect(file.records.map((r) => [r.interfaceId, r.direction, r.originalLength, r.data])).toEqual([
      [0, 'outbound', 100, packet(100, 3).subarray(0, 20)],
      [1, 'inbound', 100, packet(100, 3)],
    ]);
    expect(writer.stats).toMatchObject({ packets: 2, truncated: 1, dropped: 0 });
  });

  it('does not record a packet the inner link refused (down, over the MTU)', () => {
    const [a] = wire(clock, ['a', 'b']);
    const tap = new PcapTap(a, writer, { clock });
    expect(tap.send(packet(1501))).toBe(false);
    tap.setUp(false);
    expect(tap.send(packet(20))).toBe(false);
    expect(a.counters.drops).toEqual({ mtu: 1, down: 1 });
    expect(tap.counters.txPackets).toBe(0);
    expect(records().records).toEqual([]);
  });

  it('puts several links in one pcapng file, one interface each (MPTCP paths)', () => {
    const [path0, peer0] = wire(clock, ['path0', 'peer0'], 10);
    const [path1, peer1] = wire(clock, ['path1', 'peer1'], 30);
    const tap0 = new PcapTap(path0, writer, { clock });
    const tap1 = new PcapTap(path1, writer, { clock });
    peer0.onReceive((p) => peer0.send(p));
    peer1.onReceive((p) => peer1.send(p));
    tap0.send(packet(30, 0));
    tap1.send(packet(31, 1));
    clock.advance(5);
    tap0.send(packet(32, 2));
    clock.runUntilIdle();
    const file = records();
    expect(file.interfaces.map((i) => [i.id, i.name])).toEqual([
      [0, 'path0'],
      [1, 'path1'],
    ]);
    expect(file.records.map((r) => [r.timestampMs - VIRTUAL_CAPTURE_EPOCH_MS, r.interfaceId, r.direction])).toEqual([
      [0, 0, 'outbound'],
      [0, 1, 'outbound'],
      [5, 0, 'outbound'],
      [20, 0, 'inbound'],
      [25, 0, 'inbound'],
      [60, 1, 'inbound'],
    ]);
  });

  it('writes classic pcap through the same tap: no direction, no interface id', () => {
    const pcapSink = new MemorySink();
    const pcap = new PcapWriter(pcapSink, { nanosecond: true });
    const [a, b] = wire(clock, ['a', 'b']);
    const tap = new PcapTap(a, pcap, { clock });
    b.onReceive((p) => b.send(p));
    tap.send(packet(28));
    clock.runUntilIdle();
    const file = records(pcap, pcapSink);
    expect(file.format).toBe('pcap');
    expect(file.records.map((r) => [r.timestampNs, r.interfaceId, r.direction, r.data])).toEqual([
      [unixNs(0), 0, undefined, packet(28)],
      [unixNs(3), 0, undefined, packet(28)],
    ]);
  });

  it('writes the same bytes for the same virtual run', () => {
    const run = (): string => {
      const c = new VirtualClock();
      const s = new MemorySink();
      const w = new PcapngWriter(s);
      const [a, b] = wire(c, ['a', 'b'], 0.7);
      const tap = new PcapTap(a, w, { clock: c });
      b.onReceive((p) => b.send(p));
      for (let i = 0; i < 20; i++) {
        tap.send(packet(20 + i, i));
        c.advance(0.3);
      }
      c.runUntilIdle();
      w.close();
      return Buffer.from(s.bytes()).toString('hex');
    };
    expect(run()).toBe(run());
  });

  it('detach() stops recording, flushes, and lets packets through', () => {
    const [a, b] = wire(clock, ['a', 'b']);
    const tap = new PcapTap(a, writer, { clock });
    const up: Uint8Array[] = [];
    tap.onReceive((p) => up.push(p));
    b.onReceive((p) => b.send(p));
    tap.send(packet(20));
    clock.runUntilIdle();
    tap.detach();
    expect(tap.isRecording).toBe(false);
    expect(sink.writes).toBe(1);
    expect(tap.send(packet(21))).toBe(true);
    clock.runUntilIdle();
    expect(up.map((p) => p.length)).toEqual([20, 21]);
    expect(records().records).toHaveLength(2);
  });

  it('close() closes the inner link, and the writer only when the tap owns it', () => {
    const [a] = wire(clock, ['a', 'b']);
    const shared = new PcapTap(a, writer, { clock });
    const closeInner = jest.spyOn(a, 'close');
    shared.close();
    shared.close();
    expect(closeInner).toHaveBeenCalled();
    expect(writer.isClosed).toBe(false);
    expect(sink.closed).toBe(false);

    const ownedSink = new MemorySink();
    const owned = new PcapngWriter(ownedSink);
    const [c] = wire(clock, ['c', 'd']);
    const tap = new PcapTap(c, owned, { clock, ownsWriter: true });
    tap.send(packet(20));
    tap.close();
    expect(owned.isClosed).toBe(true);
    expect(ownedSink.closed).toBe(true);
    expect(readCapture(ownedSink.bytes()).records).toHaveLength(1);
  });

  it('keeps the link working when the capture file fails', () => {
    const failing = new PcapngWriter(
      {
        write: () => {
          throw new Error('ENOSPC: no space left on device');
        },
        close: () => {},
      },
      { bufferSize: 256, onError: () => {} },
    );
    const [a, b] = wire(clock, ['a', 'b']);
    const tap = new PcapTap(a, failing, { clock });
    let received = 0;
    b.onReceive(() => received++);
    for (let i = 0; i < 20; i++) expect(tap.send(packet(100))).toBe(true);
    clock.runUntilIdle();
    expect(received).toBe(20);
    expect(failing.hasFailed).toBe(true);
    expect(failing.stats.writeErrors).toBe(1);
  });
});
