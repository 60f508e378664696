/**
 * `getsockopt(TCP_INFO)` for a program on the shim: Linux's `struct tcp_info`
 * (include/uapi/linux/tcp.h, up to `tcpi_snd_wnd`: 232 bytes, little-endian as on every
 * Linux the shim runs on) filled from a connection of the stack. Fields the stack does
 * not track are zero, as Linux leaves fields it does not know. `ss -i`-like tools and
 * iperf3's Retr/Cwnd columns read this.
 */

import type { TcpConnection } from '../tcp/connection';
import type { TcpState } from '../tcp/segment';

export const TCP_INFO_SIZE = 232;

/** Linux's TCP_* state numbers (include/net/tcp_states.h). */
const LINUX_STATE: Record<TcpState, number> = {
  ESTABLISHED: 1,
  'SYN-SENT': 2,
  'SYN-RECEIVED': 3,
  'FIN-WAIT-1': 4,
  'FIN-WAIT-2': 5,
  'TIME-WAIT': 6,
  CLOSED: 7,
  'CLOSE-WAIT': 8,
  'LAST-ACK': 9,
  LISTEN: 10,
  CLOSING: 11,
};

const TCPI_OPT_TIMESTAMPS = 1;
const TCPI_OPT_SACK = 2;
const TCPI_OPT_WSCALE = 4;
/** What Linux reports for an ssthresh not yet set (TCP_INFINITE_SSTHRESH). */
const INFINITE_SSTHRESH = 0x7fffffff;

/** The parts of TcpConnection read here (structural, so a test can pass a stand-in). */
export type TcpInfoSource = Pick<
  TcpConnection,
  | 'state'
  | 'rtt'
  | 'cwnd'
  | 'ssthresh'
  | 'stats'
  | 'timestampsEnabled'
  | 'sackEnabled'
  | 'windowScalingEnabled'
  | 'sndWscale'
  | 'rcvWscale'
  | 'sndUna'
  | 'sndMax'
  | 'sndWnd'
  | 'sendQueue'
  | 'announcedMss'
  | 'iss'
  | 'sendMss'
  | 'local'
>;

const u32 = (v: number): number => (Number.isFinite(v) && v > 0 ? Math.min(Math.round(v), 0xffffffff) : 0);
const us = (ms: number | undefined): number => (ms === undefined ? 0 : u32(ms * 1000));

/** A connection's struct tcp_info. */
export function tcpInfo(c: TcpInfoSource): Buffer {
  const b = Buffer.alloc(TCP_INFO_SIZE);
  // Linux's tcpi_snd_mss is the payload of a full segment after the options every segment carries (timestamps).
  const mss = Math.max(1, c.sendMss() - (c.timestampsEnabled ? 12 : 0));
  const inFlight = Math.max(0, (c.sndMax - c.sndUna) >>> 0);
  // The ISN and a FIN take one sequence number each; bytes_acked counts data only.
  const acked = Math.max(0, Math.min(c.stats.bytesSent, ((c.sndUna - c.iss) >>> 0) - 1));
  const retransSegs = Math.ceil(c.stats.bytesRetransmitted / mss);
  b.writeUInt8(LINUX_STATE[c.state] ?? 7, 0);
  b.writeUInt8(Math.min(255, c.rtt.backoffCount), 4); // tcpi_backoff
  b.writeUInt8(
    (c.timestampsEnabled ? TCPI_OPT_TIMESTAMPS : 0) |
      (c.sackEnabled ? TCPI_OPT_SACK : 0) |
      (c.windowScalingEnabled ? TCPI_OPT_WSCALE : 0),
    5,
  );
  if (c.windowScalingEnabled) b.writeUInt8((c.sndWscale & 0xf) | ((c.rcvWscale & 0xf) << 4), 6);
  b.writeUInt32LE(us(c.rtt.rtoMs), 8); // tcpi_rto
  b.writeUInt32LE(u32(mss), 16); // tcpi_snd_mss
  b.writeUInt32LE(u32(c.announcedMss), 20); // tcpi_rcv_mss (what we announced: the peer's full segments)
  b.writeUInt32LE(Math.ceil(inFlight / mss), 24); // tcpi_unacked, in segments
  b.writeUInt32LE(u32(mss + (c.local.address.length === 4 ? 40 : 60)), 60); // tcpi_pmtu (MSS + IP and TCP headers)
  b.writeUInt32LE(us(c.rtt.srttMs), 68); // tcpi_rtt
  b.writeUInt32LE(us(c.rtt.rttvarMs), 72); // tcpi_rttvar
  b.writeUInt32LE(
    Number.isFinite(c.ssthresh) ? u32(Math.ceil(c.ssthresh / mss)) : INFINITE_SSTHRESH,
    76, // tcpi_snd_ssthresh, in segments
  );
  b.writeUInt32LE(u32(Math.floor(c.cwnd / mss)), 80); // tcpi_snd_cwnd, in segments
  b.writeUInt32LE(u32(c.announcedMss), 84); // tcpi_advmss
  b.writeUInt32LE(3, 88); // tcpi_reordering: the stack's DupThresh
  b.writeUInt32LE(retransSegs, 100); // tcpi_total_retrans (segments, from the retransmitted bytes)
  b.writeBigUInt64LE(BigInt(acked), 120); // tcpi_bytes_acked
  b.writeBigUInt64LE(BigInt(c.stats.bytesReceived), 128); // tcpi_bytes_received
  b.writeUInt32LE(u32(c.stats.segmentsOut), 136);
  b.writeUInt32LE(u32(c.stats.segmentsIn), 140);
  b.writeUInt32LE(u32(c.sendQueue - inFlight), 144); // tcpi_notsent_bytes
  b.writeUInt32LE(us(c.rtt.minRttMs), 148); // tcpi_min_rtt
  b.writeBigUInt64LE(BigInt(c.stats.bytesSent + c.stats.bytesRetransmitted), 200); // tcpi_bytes_sent
  b.writeBigUInt64LE(BigInt(c.stats.bytesRetransmitted), 208); // tcpi_bytes_retrans
  b.writeUInt32LE(u32(c.sndWnd), 228); // tcpi_snd_wnd
  return b;
}

/** struct tcp_info of a socket without a stack connection: only the state (CLOSE, LISTEN). */
export function tcpInfoForState(state: TcpState): Buffer {
  const b = Buffer.alloc(TCP_INFO_SIZE);
  b.writeUInt8(LINUX_STATE[state], 0);
  return b;
}
