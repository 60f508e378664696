import { type TcpInfoSource, tcpInfo } from './tcp-info';

describe('struct tcp_info from a connection', () => {
  test('fields at the offsets of linux/tcp.h, in the units Linux uses', () => {
    const conn = {
      state: 'ESTABLISHED',
      rtt: { rtoMs: 204, srttMs: 1.5, rttvarMs: 0.25, minRttMs: 1.25, backoffCount: 0 },
      cwnd: 14_600,
      ssthresh: Number.POSITIVE_INFINITY,
      stats: { bytesSent: 10_000, bytesRetransmitted: 2_896, bytesReceived: 777, segmentsOut: 12, segmentsIn: 9 },
      timestampsEnabled: true,
      sackEnabled: true,
      windowScalingEnabled: true,
      sndWscale: 7,
      rcvWscale: 3,
      iss: 0xfffffff0,
      sndUna: (0xfffffff0 + 1 + 8_000) >>> 0, // 8000 bytes acknowledged, across the wrap
      sndMax: (0xfffffff0 + 1 + 10_000) >>> 0,
      sndWnd: 65_000,
      sendQueue: 5_000,
      announcedMss: 1460,
      sendMss: () => 1460,
      local: { address: new Uint8Array(4), port: 1 },
    } as unknown as TcpInfoSource;
    const b = tcpInfo(conn);
    expect(b.length).toBe(232);
    expect(b[0]).toBe(1); // TCP_ESTABLISHED
    expect(b[5]).toBe(7); // timestamps | SACK | window scaling
    expect(b[6]).toBe(7 | (3 << 4));
    expect(b.readUInt32LE(8)).toBe(204_000); // rto, µs
    expect(b.readUInt32LE(16)).toBe(1448); // snd_mss: less the timestamp option
    expect(b.readUInt32LE(24)).toBe(2); // unacked: 2000 bytes in flight
    expect(b.readUInt32LE(68)).toBe(1500); // rtt, µs
    expect(b.readUInt32LE(72)).toBe(250); // rttvar, µs
    expect(b.readUInt32LE(76)).toBe(0x7fffffff); // ssthresh not set yet
    expect(b.readUInt32LE(80)).toBe(10); // cwnd, segments
    expect(b.readUInt32LE(100)).toBe(2); // total_retrans, segments
    expect(b.readBigUInt64LE(120)).toBe(8000n); // bytes_acked
    expect(b.readBigUInt64LE(128)).toBe(777n); // bytes_received
    expect(b.readUInt32LE(136)).toBe(12);
    expect(b.readUInt32LE(140)).toBe(9);
    expect(b.readUInt32LE(144)).toBe(3000); // notsent_bytes
    expect(b.readUInt32LE(148)).toBe(1250); // min_rtt, µs
    expect(b.readBigUInt64LE(200)).toBe(12_896n); // bytes_sent, retransmissions included
    expect(b.readBigUInt64LE(208)).toBe(2896n);
    expect(b.readUInt32LE(228)).toBe(65_000); // snd_wnd
  });
});
