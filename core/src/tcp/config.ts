/**
 * TCP tunables, with the defaults a Linux user would expect. Every field can be
 * overridden per stack and most per connection (setsockopt-like). Times in ms,
 * sizes in bytes.
 */
export interface TcpConfig {
  /** Maximum segment lifetime; TIME-WAIT lasts 2*MSL (RFC 9293 §3.4.2; Linux uses 60 s for TIME-WAIT). */
  mslMs: number;
  /** RFC 6298 §2: initial RTO. */
  initialRtoMs: number;
  /** Lower bound of the RTO (RFC 6298 §2.4 says 1 s; Linux and most stacks use 200 ms). */
  minRtoMs: number;
  /** Upper bound of the RTO (RFC 6298 §2.5: at least 60 s). */
  maxRtoMs: number;
  /** SYN retransmissions before giving up with ETIMEDOUT (Linux tcp_syn_retries = 6). */
  synRetries: number;
  /** SYN-ACK retransmissions for a half-open connection (Linux tcp_synack_retries = 5). */
  synAckRetries: number;
  /** Data retransmissions before giving up (RFC 9293 §3.8.3 R2; Linux tcp_retries2 = 15). */
  maxRetransmits: number;
  /** RFC 5482 / RFC 9293 §3.8.3: abort when sent data stays unacknowledged this long; 0 = use maxRetransmits. */
  userTimeoutMs: number;
  /** Delayed ACK timeout (RFC 9293 §3.8.6.3: under 0.5 s; Linux uses 40 ms min). */
  delayedAckMs: number;
  /** Segments acknowledged at once at the start of a connection ("quick ACKs", as Linux). */
  quickAcks: number;
  /** Keepalive (RFC 9293 §3.8.4; RFC 1122 §4.2.3.6): off unless enabled per socket. */
  keepAlive: boolean;
  keepAliveIdleMs: number;
  keepAliveIntervalMs: number;
  keepAliveProbes: number;
  /** Disable Nagle's algorithm (TCP_NODELAY). */
  noDelay: boolean;
  /** Receive and send buffer sizes (SO_RCVBUF / SO_SNDBUF). */
  receiveBuffer: number;
  sendBuffer: number;
  /** Offer window scaling, timestamps and SACK on SYNs (RFC 7323, RFC 2018). */
  windowScaling: boolean;
  timestamps: boolean;
  sack: boolean;
  /** Congestion control algorithm by name (registered in a CongestionControlRegistry). */
  congestionControl: string;
  /**
   * Loss detection with a SACK peer: `rack-tlp` (RFC 8985: time-based RACK with a
   * reordering window, Tail Loss Probes; Linux's default) or `rfc6675` (DupThresh
   * duplicate ACKs and RFC 6675 IsLost). Without SACK both use NewReno (RFC 6582).
   */
  recovery: TcpRecovery;
  /** Largest MSS to announce; the route's MTU lowers it (RFC 9293 §3.7.1). */
  maxMss: number;
  /** Pending SYNs per listener (the SYN queue). */
  synQueueLength: number;
  /** Orphaned FIN-WAIT-2 lifetime (Linux tcp_fin_timeout). */
  finWait2TimeoutMs: number;
}

/** Loss-detection algorithms (see `TcpConfig.recovery`). */
export type TcpRecovery = 'rack-tlp' | 'rfc6675';
const RECOVERY_ALGORITHMS: readonly string[] = ['rack-tlp', 'rfc6675'];

export const DEFAULT_TCP_CONFIG: Readonly<TcpConfig> = Object.freeze({
  mslMs: 30_000,
  initialRtoMs: 1000,
  minRtoMs: 200,
  maxRtoMs: 120_000,
  synRetries: 6,
  synAckRetries: 5,
  maxRetransmits: 15,
  userTimeoutMs: 0,
  delayedAckMs: 40,
  quickAcks: 16,
  keepAlive: false,
  keepAliveIdleMs: 7_200_000,
  keepAliveIntervalMs: 75_000,
  keepAliveProbes: 9,
  noDelay: false,
  receiveBuffer: 256 * 1024,
  sendBuffer: 256 * 1024,
  windowScaling: true,
  timestamps: true,
  sack: true,
  congestionControl: 'newreno',
  recovery: 'rack-tlp',
  maxMss: 65_495,
  synQueueLength: 256,
  finWait2TimeoutMs: 60_000,
});

/** Validates a partial config; returns the merged config or throws an Error naming the bad field. */
export function resolveTcpConfig(base: Readonly<TcpConfig>, overrides: Partial<TcpConfig> = {}): TcpConfig {
  const merged: TcpConfig = { ...base, ...overrides };
  for (const [key, value] of Object.entries(merged) as [keyof TcpConfig, unknown][]) {
    const expected = typeof DEFAULT_TCP_CONFIG[key];
    if (expected === 'undefined') throw new Error(`TCP config: unknown setting "${key}"`);
    if (typeof value !== expected)
      throw new Error(`TCP config: ${key} must be a ${expected}, got ${JSON.stringify(value)}`);
    if (expected === 'number' && !(Number.isFinite(value as number) && (value as number) >= 0)) {
      throw new Error(`TCP config: ${key} must be a finite number ≥ 0, got ${value}`);
    }
  }
  if (!RECOVERY_ALGORITHMS.includes(merged.recovery))
    throw new Error(`TCP config: recovery must be one of ${RECOVERY_ALGORITHMS.join(', ')}, got ${merged.recovery}`);
  if (merged.minRtoMs > merged.maxRtoMs) throw new Error('TCP config: minRtoMs is above maxRtoMs');
  if (merged.maxMss < 88) throw new Error('TCP config: maxMss below 88 bytes is not usable');
  if (merged.receiveBuffer < 1024 || merged.sendBuffer < 1024)
    throw new Error('TCP config: buffers must be ≥ 1024 bytes');
  return merged;
}
