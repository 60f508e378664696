/**
 * Loss recovery between two stacks in virtual time: RACK-TLP (RFC 8985, the default)
 * against RFC 6675's DupThresh rules (`recovery: 'rfc6675'`) on the same paths and
 * seeds, and the undo of spurious reductions (RFC 3708, RFC 3522). Every transfer is
 * checked for length and sha256.
 */
import type { ShapeConfig } from '../link/shaper';
import type { SimPath } from '../link/sim-link';
import type { TcpConfig, TcpRecovery } from './config';
import type { TcpConnection } from './connection';
import { payload, pump, sha256, sink, twoStacks } from './test-harness';

const MB = 1_000_000;
/** Payload of a full segment with timestamps (1460 − 12 option bytes). */
const SEGMENT = 1448;

/**
 * Drops the first transmission of the data segments numbered in `indices` (0 = the
 * first segment of data) that host A sends on `path`; retransmissions pass.
 */
function dropFirstTransmissions(path: SimPath, indices: number[]): void {
  const send = path.a.send.bind(path.a);
  let highestEnd: number | undefined;
  let index = 0;
  path.a.send = (packet: Uint8Array): boolean => {
    const ihl = (packet[0]! & 0x0f) * 4;
    if (packet[0]! >> 4 === 4 && packet[9] === 6) {
      const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
      const seq = view.getUint32(ihl + 4);
      const length = view.getUint16(2) - ihl - (packet[ihl + 12]! >> 4) * 4;
      if (length > 0 && (highestEnd === undefined || ((seq - highestEnd) | 0) >= 0)) {
        highestEnd = (seq + length) >>> 0;
        if (indices.includes(index++)) return true;
      }
    }
    return send(packet);
  };
}

interface OneWay {
  ms: number;
  client: TcpConnection;
  /** The sender's cwnd, sampled every 5 ms while the transfer ran. */
  cwndSamples: number[];
}

/** A sends `size` bytes to B and half-closes; done when B sees the FIN. */
function oneWay(
  size: number,
  opts: {
    aToB?: ShapeConfig;
    bToA?: ShapeConfig;
    seed?: number;
    recovery: TcpRecovery;
    configB?: Partial<TcpConfig>;
    drop?: number[];
    /** Installs more filters on the path (after `drop`'s). */
    onPath?: (path: SimPath, now: () => number) => void;
  },
): OneWay {
  const env = twoStacks({
    aToB: opts.aToB ?? {},
    bToA: opts.bToA ?? {},
    seed: opts.seed ?? 1,
    configA: { recovery: opts.recovery },
    configB: opts.configB ?? {},
  });
  const { tcpA, tcpB, clock, addrB, path } = env;
  if (opts.drop !== undefined) dropFirstTransmissions(path, opts.drop);
  opts.onPath?.(path, () => clock.now());
  const data = payload(size, 4);
  const listener = tcpB.listen(80);
  let got: ReturnType<typeof sink> | undefined;
  let doneAt = 0;
  listener.onAcceptable = () => {
    const s = listener.accept()!;
    got = sink(s, () => tcpB.poke(s));
    s.events.onRemoteEnd = ((prev) => () => {
      prev?.();
      doneAt = clock.now();
    })(s.events.onRemoteEnd);
  };
  const client = tcpA.connect({ address: addrB, port: 80 });
  const cwndSamples: number[] = [];
  const sample = (): void => {
    if (doneAt > 0) return;
    if (client.state === 'ESTABLISHED') cwndSamples.push(client.cwnd);
    clock.setTimer(5, sample);
  };
  sample();
  const start = clock.now();
  pump(client, data, () => tcpA.poke(client));
  clock.runUntilIdle({ done: () => doneAt > 0 });
  expect(got!.bytes()).toBe(size);
  expect(sha256(got!.chunks)).toBe(sha256(data));
  return { ms: doneAt - start, client, cwndSamples };
}

const path20ms: ShapeConfig = { delayMs: 10 };

describe('RACK-TLP (RFC 8985) against DupThresh recovery (RFC 6675), virtual time', () => {
  test('a loss in a small window (one duplicate ACK) is repaired by RACK within a few RTTs, well under the 200 ms minimum RTO', () => {
    // Four segments, the second lost: only two duplicate ACKs can come, and there is no
    // new data for Limited Transmit to send.
    const opts = { aToB: path20ms, bToA: path20ms, drop: [1] };
    const rack = oneWay(4 * SEGMENT, { ...opts, recovery: 'rack-tlp' });
    const dupThresh = oneWay(4 * SEGMENT, { ...opts, recovery: 'rfc6675' });
    // Handshake, the flight, min_RTT/4 of reordering window, the retransmission: ~70 ms.
    expect(rack.ms).toBeLessThan(100);
    expect(rack.client.stats.retransmitTimeouts).toBe(0);
    expect(rack.client.stats.fastRetransmits).toBe(1);
    expect(dupThresh.client.stats.retransmitTimeouts).toBe(1);
    expect(dupThresh.ms).toBeGreaterThan(200);
  });

  test('the tail of a flight lost, the last segment included: a tail loss probe after 2·SRTT, then RACK', () => {
    const opts = { aToB: path20ms, bToA: path20ms, drop: [8, 9] };
    const rack = oneWay(10 * SEGMENT, { ...opts, recovery: 'rack-tlp' });
    const dupThresh = oneWay(10 * SEGMENT, { ...opts, recovery: 'rfc6675' });
    // Handshake (20), the flight (20), PTO = 2·SRTT (40), the probe's SACK (20), the repair (20).
    expect(rack.ms).toBeLessThan(140);
    expect(rack.client.stats.tlpProbes).toBe(1);
    expect(rack.client.stats.retransmitTimeouts).toBe(0);
    expect(dupThresh.client.stats.retransmitTimeouts).toBeGreaterThan(0);
    expect(dupThresh.ms).toBeGreaterThan(rack.ms + 100);
  });

  test('only the last segment lost, one segment in flight: the probe waits for a delayed ACK, then goes out in place of the RTO', () => {
    // RFC 8985 §7.2: PTO = 2·SRTT + TLP.max_ack_delay (200 ms), clamped to the RTO
    // expiry; the probe replaces the timeout, so cwnd is not reset to one segment.
    const r = oneWay(10 * SEGMENT, { aToB: path20ms, bToA: path20ms, drop: [9], recovery: 'rack-tlp' });
    expect(r.client.stats.tlpProbes).toBe(1);
    expect(r.client.stats.retransmitTimeouts).toBe(0);
    expect(r.client.cwnd).toBeGreaterThan(2 * SEGMENT);
    expect(r.ms).toBeLessThan(300);
  });

  test('5% loss each way on a 1 ms RTT path: RACK-TLP moves 3 MB at least twice as fast as RFC 6675 recovery', () => {
    const lossy: ShapeConfig = { delayMs: 0.5, loss: 0.05 };
    let rackMs = 0;
    let dupThreshMs = 0;
    let rackTimeouts = 0;
    let dupThreshTimeouts = 0;
    for (const seed of [1, 2, 3]) {
      const rack = oneWay(3 * MB, { aToB: lossy, bToA: lossy, seed, recovery: 'rack-tlp' });
      const dupThresh = oneWay(3 * MB, { aToB: lossy, bToA: lossy, seed, recovery: 'rfc6675' });
      rackMs += rack.ms;
      dupThreshMs += dupThresh.ms;
      rackTimeouts += rack.client.stats.retransmitTimeouts;
      dupThreshTimeouts += dupThresh.client.stats.retransmitTimeouts;
    }
    // Measured: 3 × 3 MB in 3.2 s with RACK-TLP (2 RTOs), 8.2 s with RFC 6675 (27 RTOs).
    expect(dupThreshMs / rackMs).toBeGreaterThanOrEqual(2);
    expect(rackTimeouts).toBeLessThan(dupThreshTimeouts / 4);
  });

  test.each<[string, ShapeConfig]>([
    ['5 ± 4 ms', { delayMs: 5, jitterMs: 4 }],
    ['10 ± 8 ms', { delayMs: 10, jitterMs: 8 }],
  ])(
    'jitter %s each way (packets overtake): spurious recoveries are undone, the window does not collapse',
    (_name, jitter) => {
      const rack = oneWay(3 * MB, { aToB: jitter, bToA: jitter, seed: 1, recovery: 'rack-tlp' });
      const dupThresh = oneWay(3 * MB, { aToB: jitter, bToA: jitter, seed: 1, recovery: 'rfc6675' });
      const s = rack.client.stats;
      expect(s.retransmitTimeouts).toBe(0);
      // Reordering, not loss: the reductions proved spurious (a D-SACK for every
      // retransmission, or Eifel for a lone one) are undone — most of them; a D-SACK
      // that rides on an ACK reordered below SND.UNA is dropped by PAWS, as in Linux.
      expect(s.fastRetransmits).toBeGreaterThan(0);
      expect(s.spuriousRecoveriesUndone).toBeGreaterThanOrEqual(s.fastRetransmits * 0.75);
      expect(s.dsacksIn).toBeGreaterThan(0);
      // ACKs that overtook each other were used, not dropped by PAWS.
      expect(s.disorderedAcksAccepted).toBeGreaterThan(0);
      // After slow start the window stays large: never below a quarter of its peak.
      const peak = Math.max(...rack.cwndSamples);
      const afterPeak = rack.cwndSamples.slice(rack.cwndSamples.indexOf(peak));
      expect(Math.min(...afterPeak)).toBeGreaterThanOrEqual(peak / 4);
      // And the adaptive reordering window makes far fewer spurious retransmissions than DupThresh.
      expect(s.fastRetransmits).toBeLessThan(dupThresh.client.stats.fastRetransmits / 3);
      expect(dupThresh.ms / rack.ms).toBeGreaterThanOrEqual(2);
    },
  );

  test('no undo after a real loss: one D-SACK does not clear two retransmissions of the same range (RFC 3708 §3)', () => {
    // Segment 10's first transmission is lost (a real loss). Its fast retransmission
    // arrives, but the ACKs for the next 150 ms are lost, so the RTO sends it once more;
    // that copy comes back as one D-SACK. The first retransmission was needed: the
    // reduction stays.
    const r = oneWay(400 * SEGMENT, {
      aToB: { delayMs: 10 },
      bToA: { delayMs: 10 },
      recovery: 'rack-tlp',
      drop: [100],
      onPath: (path, now) => {
        let firstSeqOf100: number | undefined;
        let index = 0;
        let highestEnd: number | undefined;
        let dropAcksUntil: number | undefined;
        const sendA = path.a.send.bind(path.a);
        path.a.send = (packet: Uint8Array): boolean => {
          const ihl = (packet[0]! & 0x0f) * 4;
          const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
          const seq = view.getUint32(ihl + 4);
          const length = view.getUint16(2) - ihl - (packet[ihl + 12]! >> 4) * 4;
          if (length > 0) {
            if (highestEnd === undefined || ((seq - highestEnd) | 0) >= 0) {
              highestEnd = (seq + length) >>> 0;
              if (index++ === 100) firstSeqOf100 = seq;
            } else if (seq === firstSeqOf100 && dropAcksUntil === undefined) {
              dropAcksUntil = now() + 150; // the first retransmission of segment 100
            }
          }
          return sendA(packet);
        };
        const sendB = path.b.send.bind(path.b);
        path.b.send = (packet: Uint8Array): boolean =>
          dropAcksUntil !== undefined && now() < dropAcksUntil ? true : sendB(packet);
      },
    });
    const s = r.client.stats;
    expect(s.retransmitTimeouts).toBeGreaterThanOrEqual(1);
    expect(s.dsacksIn).toBeGreaterThanOrEqual(1);
    expect(s.spuriousRecoveriesUndone).toBe(0);
  });
});

describe('setCongestionControl (TCP_CONGESTION on a live connection)', () => {
  test('the new algorithm takes over from the current window; the transfer stays intact', () => {
    const env = twoStacks({ aToB: { delayMs: 5, loss: 0.01 }, bToA: { delayMs: 5 }, seed: 3 });
    const { tcpA, tcpB, clock, addrB } = env;
    const data = payload(2 * MB, 8);
    const listener = tcpB.listen(80);
    let got: ReturnType<typeof sink> | undefined;
    let done = false;
    listener.onAcceptable = () => {
      const s = listener.accept()!;
      got = sink(s, () => tcpB.poke(s));
      s.events.onRemoteEnd = ((prev) => () => {
        prev?.();
        done = true;
      })(s.events.onRemoteEnd);
    };
    const client = tcpA.connect({ address: addrB, port: 80 });
    pump(client, data, () => tcpA.poke(client));
    clock.runUntilIdle({ until: clock.now() + 300 });
    expect(client.congestion.name).toBe('newreno');
    const cwnd = client.cwnd;
    client.setCongestionControl(tcpA.congestionControls.create('reno'));
    expect(client.congestion.name).toBe('reno');
    expect(client.cwnd).toBe(cwnd);
    clock.runUntilIdle({ done: () => done });
    expect(got!.bytes()).toBe(data.length);
    expect(sha256(got!.chunks)).toBe(sha256(data));
  });
});
