import { TcpFlags, type TcpRepr } from '../wire/tcp';
import type { SackBlock, TcpOption } from '../wire/tcp-options';
import type { TcpConfig } from './config';
import type { CongestionControl, CongestionPhase, CongestionState } from './congestion';
import type { TcpOptionHost, TcpOptionRegistry } from './options';
import { Rack, type SentSegment, TransmitLog } from './rack';
import { ReceiveBuffer } from './reassembly';
import { RttEstimator } from './rtt';
import { SackScoreboard } from './sack-scoreboard';
import { type IncomingSegment, TcpError, type TcpErrorCode, type TcpState } from './segment';
import { SendBuffer } from './send-buffer';
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt, seqMax } from './seq';

// Module-level copies: under jest's vm sandbox each global lookup costs ~170 ns.
const { min, max, floor } = Math;

export interface Endpoint {
  /** 4 or 16 bytes. */
  address: Uint8Array;
  port: number;
}

/** What a connection tells its owner (the socket layer). All are called synchronously. */
export interface TcpConnectionEvents {
  /** The three-way handshake completed. */
  onEstablished?(): void;
  /** New in-order data can be read. */
  onReadable?(): void;
  /** Space was freed in the send buffer. */
  onWritable?(): void;
  /** The peer sent FIN and every byte before it has arrived: reads will reach EOF. */
  onRemoteEnd?(): void;
  /** The connection is gone (CLOSED), with the reason when it did not end normally. */
  onClosed?(error?: TcpError): void;
  /** The state changed (for observability and tests). */
  onStateChange?(from: TcpState, to: TcpState): void;
}

export interface TcpConnectionOptions {
  local: Endpoint;
  remote: Endpoint;
  config: TcpConfig;
  /** RFC 6528 initial send sequence number. */
  iss: number;
  /** MTU of the link to the peer; the announced MSS follows from it (RFC 9293 §3.7.1). */
  mtu: number;
  /** The path MTU known when the connection starts (RFC 1191, RFC 8201), when below `mtu`. */
  pathMtu?: number;
  options: TcpOptionRegistry;
  congestion: CongestionControl;
  events?: TcpConnectionEvents;
  /** RFC 7323 §5.4: a per-connection random offset for the timestamp clock. */
  tsOffset?: number;
  /** A stack-wide challenge-ACK budget (RFC 5961 §7), shared by every connection. */
  challengeAckBudget?: ChallengeAckBudget;
}

/**
 * RFC 5961 §7: challenge ACKs are throttled, per connection and across the stack, so an
 * attacker cannot turn them into an amplifier. One budget is shared by a TcpLayer.
 */
export class ChallengeAckBudget {
  private windowStart = Number.NEGATIVE_INFINITY;
  private used = 0;
  constructor(readonly perSecond = 1000) {}

  take(now: number): boolean {
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used >= this.perSecond) return false;
    this.used++;
    return true;
  }
}

/** Counters per connection, for TCP_INFO, `nuse ls` and tests. */
export interface TcpConnectionStats {
  segmentsIn: number;
  segmentsOut: number;
  bytesSent: number;
  bytesRetransmitted: number;
  bytesReceived: number;
  retransmitTimeouts: number;
  fastRetransmits: number;
  dupAcksIn: number;
  challengeAcks: number;
  pawsDrops: number;
  /**
   * Segments that failed PAWS but were accepted as reordered duplicate ACKs (pure ACKs
   * at RCV.NXT acknowledging SND.UNA, the window unchanged, TSval within an RTO of
   * TS.Recent), as Linux's tcp_disordered_ack; see processSynchronized.
   */
  disorderedAcksAccepted: number;
  /** Tail loss probes sent (RFC 8985 §7.3). */
  tlpProbes: number;
  /** Probes that repaired a loss, answered with a congestion response (RFC 8985 §7.4.2). */
  tlpLossRepairs: number;
  /** ACKs carrying a D-SACK block (RFC 2883). */
  dsacksIn: number;
  /** Window reductions undone because the retransmissions proved spurious (RFC 3708 D-SACK, RFC 3522 Eifel). */
  spuriousRecoveriesUndone: number;
  outOfWindowDrops: number;
  zeroWindowProbes: number;
  keepAliveProbes: number;
  /** ICMP errors accepted for this connection (RFC 1122 §4.2.3.9), path MTU reports included. */
  icmpErrors: number;
}

/** Sequence space a SYN or FIN takes (RFC 9293 §3.4). */
const CONTROL_LEN = 1;
/** RFC 9293 §3.7.1: the MSS to assume when the peer sends none. */
const DEFAULT_MSS_V4 = 536;
const DEFAULT_MSS_V6 = 1220;
/** RFC 7323 §5.5: TS.Recent older than 24 days is invalid. */
const PAWS_IDLE_MS = 24 * 24 * 3600 * 1000;
/** RFC 5681 §3.2: DupThresh. */
const DUP_THRESH = 3;
/** The smallest peer MSS honoured (Linux tcp_min_snd_mss is 48; room for 40 option bytes). */
const MIN_PEER_MSS = 88;
/** 68-byte IPv4 path MTU less the IPv4 and TCP headers: what path MTU discovery may leave (RFC 1191 §3). */
const MIN_PATH_MSS = 28;
/**
 * RFC 8985 §7.2: TLP.max_ack_delay, added to the PTO when one segment is in flight
 * (its ACK may wait for the peer's delayed-ACK timer): WCDelAckT, the worst case the
 * RFC assumes, 200 ms.
 */
const TLP_MAX_ACK_DELAY_MS = 200;
/**
 * A floor on the PTO: on sub-millisecond paths 2·SRTT is below what timers and the
 * peer's ACK processing resolve. 10 ms is the original TLP's floor
 * (draft-dukkipati-tcpm-tcp-loss-probe, "max(2*SRTT, 10ms)"); RFC 8985 §7.2 leaves it out.
 */
const TLP_MIN_PTO_MS = 10;
/** RFC 8985 §7.2: the PTO without an RTT sample. */
const TLP_PTO_WITHOUT_SRTT_MS = 1000;
/** Most retransmissions one undo episode tracks; past it, that episode is not undone. */
const MAX_UNDO_RETRANSMITS = 4096;
/** RFC 5961 §7: at most this many challenge ACKs per second per connection. */
const CHALLENGE_ACKS_PER_SECOND = 10;

/**
 * One TCP connection: the RFC 9293 state machine, sans I/O (smoltcp's shape). The
 * owner feeds it segments (`process`), the time (`onTimer` at `pollAt()`), and user
 * calls (`send`, `read`, `shutdown`, `close`, `abort`); it produces segments through
 * `dispatch(now, emit)`. It never reads a clock and never touches the network, so the
 * same code runs in virtual time and on real timers.
 */
export class TcpConnection implements TcpOptionHost {
  // RFC 9293 §3.3.1 send sequence variables.
  readonly iss: number;
  sndUna: number;
  sndNxt: number;
  /** The highest sequence number sent (after go-back-N retransmission sndNxt may be below it). */
  sndMax: number;
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  /** RFC 5961 §5.2 MAX.SND.WND: the largest window the peer has offered. */
  maxSndWnd = 0;
  // Receive sequence variables.
  irs = 0;
  /** The right edge of the window advertised so far; RFC 9293 §3.8.6.2.1 forbids moving it left. */
  private rcvAdvertisedEdge = 0;
  /** Whether rcvAdvertisedEdge holds an advertised edge yet (0 is a valid sequence number). */
  private rcvEdgeSet = false;
  private lastAckSent = 0;

  state: TcpState = 'CLOSED';
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly config: TcpConfig;
  readonly ext = new Map<string, unknown>();
  readonly stats: TcpConnectionStats = {
    segmentsIn: 0,
    segmentsOut: 0,
    bytesSent: 0,
    bytesRetransmitted: 0,
    bytesReceived: 0,
    retransmitTimeouts: 0,
    fastRetransmits: 0,
    dupAcksIn: 0,
    challengeAcks: 0,
    pawsDrops: 0,
    disorderedAcksAccepted: 0,
    tlpProbes: 0,
    tlpLossRepairs: 0,
    dsacksIn: 0,
    spuriousRecoveriesUndone: 0,
    outOfWindowDrops: 0,
    zeroWindowProbes: 0,
    keepAliveProbes: 0,
    icmpErrors: 0,
  };
  events: TcpConnectionEvents;
  /**
   * The last soft ICMP error (RFC 1122 §4.2.3.9: e.g. host unreachable while ESTABLISHED):
   * not fatal, but if the connection later times out it ends with this errno instead of
   * ETIMEDOUT, as Linux's sk_err_soft. Cleared when an ACK makes progress.
   */
  softError: TcpErrorCode | undefined;

  // Negotiated on the handshake.
  readonly announcedMss: number;
  /** The peer's MSS (RFC 9293 §3.7.1), the largest payload we send before options. */
  peerMss: number;
  /** The largest payload the path MTU allows (RFC 1191 §6.4, RFC 8201 §5.4): lowered by pathMtuChanged. */
  private pathMss: number;
  timestampsEnabled = false;
  sackEnabled = false;
  windowScalingEnabled = false;
  readonly rcvWscale: number;
  sndWscale = 0;
  readonly peerOffered = { timestamps: false, sack: false, wscale: false };
  tsRecent = 0;
  private tsRecentAge = 0;
  private readonly tsOffset: number;

  private readonly sendBuffer: SendBuffer;
  private readonly receiveBuffer: ReceiveBuffer;
  private readonly scoreboard = new SackScoreboard();
  readonly rtt: RttEstimator;
  /** The congestion control in use; `setCongestionControl` swaps it on a live connection. */
  congestion: CongestionControl;
  private readonly cc: CongestionState & { cwnd: number; ssthresh: number };
  private readonly optionRegistry: TcpOptionRegistry;

  // User-side state.
  /** The application will send no more (shutdown SHUT_WR or close): FIN after the data. */
  private finQueued = false;
  private finSent = false;
  /** Our FIN's sequence number, once fixed. */
  private finSeq = 0;
  /** The application will read no more (close): data that arrives is answered with RST. */
  private receiveClosed = false;
  /** The peer's FIN: its sequence number once seen, and whether it was reached in order. */
  private peerFinSeq: number | undefined;
  private peerFinReceived = false;
  private closedEmitted = false;
  private errorValue: TcpError | undefined;

  // Output requests.
  private ackNow = false;
  private delayedAckAt: number | undefined;
  private fullSegmentsUnacked = 0;
  private quickAcksLeft: number;
  private rstPending = false;
  private synPending = false;
  private probePending: 'zero-window' | 'keepalive' | undefined;
  private dsackBlock: SackBlock | undefined;

  // Timers (absolute times, undefined when off).
  private retransmitAt: number | undefined;
  private persistAt: number | undefined;
  private keepAliveAt: number | undefined;
  private timeWaitAt: number | undefined;
  private finWait2At: number | undefined;
  private retransmitCount = 0;
  private persistBackoff = 0;
  private keepAliveSent = 0;
  /** When the oldest unacknowledged data was first sent without progress since (user timeout). */
  private stalledSince: number | undefined;
  private lastReceiveAt = 0;

  // Loss recovery (RFC 5681, RFC 6582 NewReno, RFC 6675 SACK).
  private dupAcks = 0;
  private inRecovery = false;
  private recoveryPoint = 0;
  private phase: CongestionPhase = 'open';
  /** RFC 8985: per-segment transmit times and the RACK state (used when `rackActive`). */
  private readonly transmitLog = new TransmitLog();
  private readonly rack = new Rack();
  /** The RACK reordering timer (RFC 8985 §6.2 step 5). */
  private rackTimerAt: number | undefined;
  /** The transmit log's count when the current recovery began or last reacted to a loss. */
  private recoveryTransmissionMark = 0;
  /** RFC 8985 §7: the loss probe timer, and the probe episode (TLP.end_seq, TLP.is_retrans). */
  private tlpAt: number | undefined;
  private tlpProbePending = false;
  private tlpEndSeq: number | undefined;
  private tlpIsRetrans = false;
  /**
   * The last window reduction, for undoing it (RFC 3708, RFC 3522): SND.UNA when it
   * began (undefined: nothing to undo), the ranges retransmitted since (each cleared
   * by a D-SACK for it), where the first of them starts and its TSval, and whether
   * the Eifel test was made.
   */
  private undoMarker: number | undefined;
  private undoRetransmits: { start: number; end: number; dsacked: boolean }[] = [];
  private undoFirstRetransmitSeq = 0;
  private undoFirstRetransmitTs: number | undefined;
  private undoEifelChecked = false;
  /** RTT timing of one segment when timestamps are off (Karn's algorithm, RFC 6298 §3). */
  private rttTimedSeq: number | undefined;
  private rttTimedAt = 0;

  private readonly challengeAckBudget: ChallengeAckBudget | undefined;
  private challengeWindowStart = 0;
  private challengeCount = 0;
  private now = 0;
  /** When this side last sent a segment (restart after idle, RFC 5681 §4.1). */
  lastSendAt = 0;

  private constructor(opts: TcpConnectionOptions, now: number) {
    this.now = now;
    this.local = opts.local;
    this.remote = opts.remote;
    this.config = opts.config;
    this.events = opts.events ?? {};
    this.optionRegistry = opts.options;
    this.congestion = opts.congestion;
    this.iss = opts.iss >>> 0;
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.sndMax = this.iss;
    this.tsOffset = (opts.tsOffset ?? 0) >>> 0;
    this.challengeAckBudget = opts.challengeAckBudget;
    const v6 = opts.local.address.length === 16;
    const ipHeader = v6 ? 40 : 20;
    this.announcedMss = max(88, min(this.config.maxMss, opts.mtu - ipHeader - 20));
    this.pathMss = max(MIN_PATH_MSS, min(opts.mtu, opts.pathMtu ?? opts.mtu) - ipHeader - 20);
    this.peerMss = v6 ? DEFAULT_MSS_V6 : DEFAULT_MSS_V4;
    this.rcvWscale = this.config.windowScaling ? windowScaleFor(this.config.receiveBuffer) : 0;
    this.sendBuffer = new SendBuffer({ capacity: this.config.sendBuffer });
    this.receiveBuffer = new ReceiveBuffer({ capacity: this.config.receiveBuffer });
    this.rtt = new RttEstimator({
      initialRtoMs: this.config.initialRtoMs,
      minRtoMs: this.config.minRtoMs,
      maxRtoMs: this.config.maxRtoMs,
    });
    this.sendBuffer.start(seqAdd(this.iss, CONTROL_LEN));
    this.quickAcksLeft = this.config.quickAcks;
    const self = this;
    this.cc = {
      cwnd: 0,
      ssthresh: Number.POSITIVE_INFINITY,
      get mss() {
        return self.sendMss();
      },
      get bytesInFlight() {
        return self.bytesInFlight();
      },
      get now() {
        return self.now;
      },
      get srttMs() {
        return self.rtt.srttMs;
      },
      get minRttMs() {
        return self.rtt.minRttMs;
      },
      get phase() {
        return self.phase;
      },
      get appLimited() {
        return self.sendBuffer.length - seqDiff(self.sndNxt, self.sndUna) <= 0;
      },
    };
  }

  /** An active open (RFC 9293 §3.10.1): the connection starts in SYN-SENT. */
  static connect(opts: TcpConnectionOptions, now: number): TcpConnection {
    const c = new TcpConnection(opts, now);
    c.setState('SYN-SENT');
    c.synPending = true;
    c.lastReceiveAt = now;
    return c;
  }

  /**
   * A passive open: a listener got a SYN (RFC 9293 §3.10.7.2) and hands it here; the
   * connection starts in SYN-RECEIVED and answers with a SYN-ACK.
   */
  static accept(opts: TcpConnectionOptions, syn: IncomingSegment, now: number): TcpConnection {
    const c = new TcpConnection(opts, now);
    c.optionRegistry.read(c, syn);
    c.takeSynOptions(syn);
    c.irs = syn.seq;
    c.receiveBuffer.start(seqAdd(syn.seq, CONTROL_LEN));
    // RFC 7323 §2.2: the window in a SYN is never scaled.
    c.updateSendWindow(syn.window, syn.seq, 0, true);
    if (c.timestampsEnabled && syn.tsVal !== undefined) c.acceptTimestamp(syn.tsVal);
    c.setState('SYN-RECEIVED');
    c.synPending = true;
    c.lastReceiveAt = now;
    c.stats.segmentsIn++;
    return c;
  }

  // ---------------------------------------------------------------- user calls

  get error(): TcpError | undefined {
    return this.errorValue;
  }

  /** Bytes the application may still write before the send buffer is full. */
  get writable(): number {
    return this.canSend() ? this.sendBuffer.free : 0;
  }

  /** In-order bytes waiting to be read. */
  get readable(): number {
    return this.receiveBuffer.readable;
  }

  /** Unacknowledged plus unsent bytes (SIOCOUTQ). */
  get sendQueue(): number {
    return this.sendBuffer.length;
  }

  get rcvNxt(): number {
    return this.receiveBuffer.rcvNxt;
  }

  get cwnd(): number {
    return this.cc.cwnd;
  }

  get ssthresh(): number {
    return this.cc.ssthresh;
  }

  /** True once the peer's FIN was received and every byte before it read: EOF. */
  get atEof(): boolean {
    return this.peerFinReceived && this.receiveBuffer.readable === 0;
  }

  /** Queues data for sending; returns how many bytes fit in the send buffer. */
  send(data: Uint8Array): number {
    if (!this.canSend()) {
      throw new TcpError('EPIPE', 'the connection is closed for sending');
    }
    return this.sendBuffer.write(data);
  }

  /** Reads up to `maxBytes` of in-order data. */
  read(maxBytes?: number): Uint8Array {
    const before = this.receiveWindowNow();
    const data = this.receiveBuffer.read(maxBytes);
    if (data.length > 0) this.maybeWindowUpdate(before);
    return data;
  }

  /** shutdown(SHUT_WR): FIN once every queued byte is sent (RFC 9293 §3.10.4). */
  shutdownWrite(): void {
    switch (this.state) {
      case 'SYN-SENT':
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
      case 'CLOSE-WAIT':
        this.finQueued = true;
        break;
      default:
        break;
    }
  }

  /**
   * close(): no more sending or receiving. Queued data is still delivered, then FIN.
   * Unread received data means the application lost bytes: RST instead, as RFC 2525
   * §2.17 and Linux do.
   */
  close(): void {
    if (this.state === 'CLOSED' || this.state === 'TIME-WAIT') return;
    if (this.state === 'LISTEN' || this.state === 'SYN-SENT') {
      this.enterClosed(undefined);
      return;
    }
    if (this.receiveBuffer.readable > 0) {
      this.abort();
      return;
    }
    this.receiveClosed = true;
    this.shutdownWrite();
    // Orphaned in FIN-WAIT-2: bound the wait for the peer's FIN (Linux tcp_fin_timeout).
    if (this.state === 'FIN-WAIT-2' && this.finWait2At === undefined) {
      this.finWait2At = this.now + this.config.finWait2TimeoutMs;
    }
  }

  /** Aborts with RST (SO_LINGER {1, 0}; RFC 9293 §3.10.5). */
  abort(): void {
    switch (this.state) {
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
      case 'FIN-WAIT-1':
      case 'FIN-WAIT-2':
      case 'CLOSE-WAIT':
        this.rstPending = true;
        break;
      default:
        break;
    }
    if (!this.rstPending) this.enterClosed(undefined);
  }

  setNoDelay(on: boolean): void {
    this.config.noDelay = on;
  }

  setKeepAlive(on: boolean, idleMs?: number): void {
    this.config.keepAlive = on;
    if (idleMs !== undefined) this.config.keepAliveIdleMs = idleMs;
    this.keepAliveSent = 0;
    this.keepAliveAt = on && this.isSynchronized() ? this.now + this.config.keepAliveIdleMs : undefined;
  }

  /** SO_RCVBUF / SO_SNDBUF at run time. */
  setBufferSizes(receive?: number, send?: number): void {
    if (receive !== undefined) this.receiveBuffer.setCapacity(receive);
    if (send !== undefined) this.sendBuffer.setCapacity(send);
  }

  // ---------------------------------------------------------------- timers

  /** The next time `onTimer` must run, or undefined when no timer is armed. */
  pollAt(): number | undefined {
    // Called after every segment: compare inline rather than build an array.
    let t = this.userTimeoutAt();
    t = earlier(t, this.retransmitAt);
    t = earlier(t, this.tlpAt);
    t = earlier(t, this.rackTimerAt);
    t = earlier(t, this.delayedAckAt);
    t = earlier(t, this.persistAt);
    t = earlier(t, this.keepAliveAt);
    t = earlier(t, this.timeWaitAt);
    return earlier(t, this.finWait2At);
  }

  /** Whether `dispatch` has something to send right now. */
  get wantsToSend(): boolean {
    return (
      this.ackNow || this.rstPending || this.synPending || this.probePending !== undefined || this.hasDataOrFinToSend()
    );
  }

  /** RFC 9293 §3.8.3 / RFC 5482: when unacknowledged data has waited the user timeout. */
  private userTimeoutAt(): number | undefined {
    if (this.config.userTimeoutMs <= 0 || this.stalledSince === undefined || !seqGt(this.sndMax, this.sndUna))
      return undefined;
    return this.stalledSince + this.config.userTimeoutMs;
  }

  onTimer(now: number): void {
    this.now = now;
    const userDeadline = this.userTimeoutAt();
    if (userDeadline !== undefined && now >= userDeadline) {
      this.fail(this.timeoutError(), 'user timeout: data unacknowledged too long');
      return;
    }
    if (this.timeWaitAt !== undefined && now >= this.timeWaitAt) {
      this.timeWaitAt = undefined;
      this.enterClosed(undefined);
      return;
    }
    if (this.finWait2At !== undefined && now >= this.finWait2At) {
      this.finWait2At = undefined;
      this.enterClosed(undefined);
      return;
    }
    if (this.tlpAt !== undefined && now >= this.tlpAt) {
      // RFC 8985 §7.2: a PTO at or before the RTO expiry fires in its place; the RTO is
      // re-armed once the probe is out (§7.3).
      this.tlpAt = undefined;
      if (this.lossProbeAllowed()) {
        this.tlpProbePending = true;
        this.restartRetransmitTimer();
      }
    }
    if (this.retransmitAt !== undefined && now >= this.retransmitAt) {
      this.retransmitAt = undefined;
      this.onRetransmitTimeout();
      if (this.state === 'CLOSED') return;
    }
    if (this.rackTimerAt !== undefined && now >= this.rackTimerAt) {
      // RFC 8985 §6.2 step 5: the reordering window of a waiting segment has passed.
      this.rackTimerAt = undefined;
      this.rackDetectLoss();
    }
    if (this.delayedAckAt !== undefined && now >= this.delayedAckAt) {
      this.delayedAckAt = undefined;
      this.ackNow = true;
    }
    if (this.persistAt !== undefined && now >= this.persistAt) {
      this.persistAt = undefined;
      this.onPersistTimeout();
    }
    if (this.keepAliveAt !== undefined && now >= this.keepAliveAt) {
      this.keepAliveAt = undefined;
      this.onKeepAliveTimeout();
    }
  }

  private onRetransmitTimeout(): void {
    const limitReached =
      this.state === 'SYN-SENT'
        ? this.retransmitCount >= this.config.synRetries
        : this.state === 'SYN-RECEIVED'
          ? this.retransmitCount >= this.config.synAckRetries
          : this.retransmitCount >= this.config.maxRetransmits;
    const userTimeout =
      this.config.userTimeoutMs > 0 &&
      this.stalledSince !== undefined &&
      this.now - this.stalledSince >= this.config.userTimeoutMs;
    if (limitReached || userTimeout) {
      this.fail(
        this.timeoutError(),
        userTimeout ? 'user timeout: data unacknowledged too long' : 'retransmission limit reached',
      );
      return;
    }
    this.retransmitCount++;
    this.stats.retransmitTimeouts++;
    // RFC 6298 §5.5–5.6: back off and retransmit the earliest unacknowledged segment.
    this.rtt.backoff();
    this.rttTimedSeq = undefined;
    if (this.state === 'SYN-SENT' || this.state === 'SYN-RECEIVED' || !this.handshakeDone) {
      this.synPending = true;
      return;
    }
    // RFC 5681 §3.1: on timeout, ssthresh once per loss event (from FlightSize, so out
    // of recovery first), cwnd to the loss window.
    if (this.phase === 'open') this.beginUndoEpisode();
    // RFC 8985 §7: a timeout ends any probe episode; §6.3: what was in flight is
    // resent from SND.UNA below (go-back-N), so all of it counts as lost.
    this.tlpAt = undefined;
    this.tlpProbePending = false;
    this.tlpEndSeq = undefined;
    this.rackTimerAt = undefined;
    if (this.rackActive) this.transmitLog.markAllLost();
    this.inRecovery = false;
    if (this.phase !== 'loss') {
      this.phase = 'loss';
      this.congestion.onPhaseChange(this.cc, 'loss');
    } else {
      // A repeated timeout: the algorithm sees it too (Reno keeps ssthresh).
      this.congestion.onPhaseChange(this.cc, 'loss');
    }
    this.inRecovery = false;
    this.dupAcks = 0;
    this.recoveryPoint = this.sndMax;
    // Go back N: resend from snd.una; segments the peer SACKed are skipped.
    // Our FIN keeps its sequence number (RFC 9293 §3.10.7.4): it is resent when SND.NXT reaches it.
    this.sndNxt = this.sndUna;
    this.scoreboard.clearRetransmitted();
  }

  private onPersistTimeout(): void {
    if (this.sndWnd > 0 || !this.hasUnsentData()) return;
    // RFC 9293 §3.8.6.1: probe the zero window; back off like the RTO.
    this.probePending = 'zero-window';
    this.stats.zeroWindowProbes++;
    this.persistBackoff++;
    if (this.persistBackoff > this.config.maxRetransmits && this.now - this.lastReceiveAt > this.config.maxRtoMs) {
      this.fail(this.timeoutError(), 'zero-window probes unanswered');
      return;
    }
    this.persistAt = this.now + this.persistInterval();
  }

  private onKeepAliveTimeout(): void {
    if (!this.config.keepAlive || !this.isSynchronized()) return;
    // RFC 9293 §3.8.4 / RFC 1122 §4.2.3.6.
    if (this.keepAliveSent >= this.config.keepAliveProbes) {
      this.fail(this.timeoutError(), 'keepalive probes unanswered');
      return;
    }
    this.keepAliveSent++;
    this.stats.keepAliveProbes++;
    this.probePending = 'keepalive';
    this.keepAliveAt = this.now + this.config.keepAliveIntervalMs;
  }

  // ---------------------------------------------------------------- input

  /**
   * Processes one incoming segment for this connection (RFC 9293 §3.10.7), already
   * checksummed and demultiplexed. The caller then calls `dispatch`.
   */
  process(seg: IncomingSegment, now: number): void {
    this.now = now;
    this.stats.segmentsIn++;
    switch (this.state) {
      case 'CLOSED':
      case 'LISTEN':
        return;
      case 'SYN-SENT':
        this.optionRegistry.read(this, seg);
        this.processSynSent(seg);
        return;
      default:
        this.optionRegistry.read(this, seg);
        this.processSynchronized(seg);
    }
  }

  /** RFC 9293 §3.10.7.3: SYN-SENT. */
  private processSynSent(seg: IncomingSegment): void {
    const f = seg.flags;
    const hasAck = (f & TcpFlags.ACK) !== 0;
    // First: the ACK must cover our SYN exactly (ISS < SEG.ACK <= SND.NXT).
    if (hasAck && (seqLe(seg.ack, this.iss) || seqGt(seg.ack, this.sndMax))) {
      if (!(f & TcpFlags.RST)) this.queueReset(seg.ack, undefined);
      return;
    }
    // Second: RST. RFC 5961 §3.2 for SYN-SENT: only an acceptable ACK makes it valid.
    if (f & TcpFlags.RST) {
      if (hasAck) this.fail('ECONNREFUSED', 'connection refused by the peer (RST)');
      return;
    }
    // Fourth: SYN.
    if (!(f & TcpFlags.SYN)) return;
    this.takeSynOptions(seg);
    this.irs = seg.seq;
    this.receiveBuffer.start(seqAdd(seg.seq, CONTROL_LEN));
    // Our SYN announced its (unscaled, RFC 7323 §2.2) window before RCV.NXT was known:
    // anchor that right edge at IRS+1 now, or the first ACK's window (RFC 9293
    // §3.8.6.2.1: the edge never moves left) comes from an edge relative to nothing.
    this.rcvAdvertisedEdge = seqAdd(this.rcvNxt, min(this.receiveWindowNow(), 0xffff));
    if (this.timestampsEnabled && seg.tsVal !== undefined) this.acceptTimestamp(seg.tsVal);
    this.lastReceiveAt = this.now;
    if (hasAck) {
      // RFC 7323 §2.2: the window of a SYN segment is not scaled.
      this.completeHandshake(seg, true);
      this.ackNow = true;
      if (seg.payload.length > 0) this.acceptData(seqAdd(seg.seq, CONTROL_LEN), seg.payload);
    } else {
      // Simultaneous open (RFC 9293 §3.5, Figure 8): answer with SYN-ACK.
      this.setState('SYN-RECEIVED');
      this.updateSendWindow(seg.window, seg.seq, 0, true);
      this.synPending = true;
      this.sndNxt = this.iss;
    }
  }

  /** RFC 9293 §3.10.7.4: every state after SYN-SENT. */
  private processSynchronized(seg: IncomingSegment): void {
    const f = seg.flags;
    const segLen = seg.payload.length + (f & TcpFlags.SYN ? 1 : 0) + (f & TcpFlags.FIN ? 1 : 0);

    // RFC 7323 §5.3 PAWS, before the acceptability test.
    if (
      this.timestampsEnabled &&
      seg.tsVal !== undefined &&
      !(f & TcpFlags.RST) &&
      seqLt(seg.tsVal, this.tsRecent) &&
      this.now - this.tsRecentAge < PAWS_IDLE_MS
    ) {
      if (!this.isDisorderedDuplicateAck(seg, segLen)) {
        this.stats.pawsDrops++;
        this.ackNow = true;
        return;
      }
      this.stats.disorderedAcksAccepted++;
    }

    // The peer's SYN again in SYN-RECEIVED. It lies before RCV.NXT, so the acceptability
    // test below would only answer it with a bare ACK; look at it first.
    if (
      (this.state === 'SYN-RECEIVED' || !this.handshakeDone) &&
      f & TcpFlags.SYN &&
      !(f & TcpFlags.RST) &&
      seg.seq === this.irs
    ) {
      if (!(f & TcpFlags.ACK)) {
        // A retransmitted SYN: our SYN-ACK was lost. Answer it again (as Linux tcp_check_req).
        this.synPending = true;
        return;
      }
      if (seqGt(seg.ack, this.sndUna) && seqLe(seg.ack, this.sndMax)) {
        // Simultaneous open, RFC 9293 §3.5 Figure 8 line 6: the peer's SYN-ACK acknowledges
        // our SYN: ESTABLISHED (nothing to send; its SYN was acknowledged by our SYN-ACK).
        // RFC 7323 §2.2: the window of a SYN segment is not scaled.
        this.completeHandshake(seg, true);
        return;
      }
    }

    // First: sequence acceptability (RFC 9293 §3.10.7.4, the four cases).
    // Set when only the ACK of an unacceptable segment may be used (zero window, below).
    let ackOnly = false;
    if (!this.segmentAcceptable(seg.seq, segLen)) {
      this.stats.outOfWindowDrops++;
      if (!(f & TcpFlags.RST)) {
        // In TIME-WAIT a retransmitted FIN is answered and restarts the 2MSL wait.
        if (this.state === 'TIME-WAIT' && f & TcpFlags.FIN) this.timeWaitAt = this.now + 2 * this.config.mslMs;
        this.ackNow = true;
        // RFC 2883 §4: data received before (a spurious retransmission) is reported
        // with a D-SACK block, so the sender can tell and undo (RFC 3708).
        const end = seqAdd(seg.seq, seg.payload.length);
        if (this.sackEnabled && seg.payload.length > 0 && seqLe(end, this.rcvNxt)) {
          this.dsackBlock = { left: seg.seq, right: end };
        }
      }
      // RFC 9293 §3.10.7.4: "If the RCV.WND is zero, no segments are acceptable, but
      // special allowance should be made to accept valid ACKs": a segment at RCV.NXT (a
      // zero-window probe, or data sent as our window closed) still has its ACK processed;
      // its text and FIN are dropped.
      const zeroWindow = seqDiff(this.rcvAdvertisedEdge, this.ackNumber()) <= 0;
      ackOnly =
        zeroWindow &&
        this.isSynchronized() &&
        seg.seq === this.ackNumber() &&
        (f & (TcpFlags.ACK | TcpFlags.RST | TcpFlags.SYN)) === TcpFlags.ACK;
      if (!ackOnly) return;
    }

    // Second: RST (RFC 5961 §3.2: exact match resets, in-window gets a challenge ACK).
    if (f & TcpFlags.RST) {
      // RCV.NXT counts a received FIN (ackNumber), e.g. in TIME-WAIT or CLOSE-WAIT.
      if (seg.seq === this.ackNumber()) {
        if (this.state === 'SYN-RECEIVED' && this.isPassive) {
          // RFC 9293: a passive SYN-RECEIVED connection goes back to LISTEN; ours is discarded.
          this.enterClosed(undefined);
        } else if (this.state === 'CLOSING' || this.state === 'LAST-ACK' || this.state === 'TIME-WAIT') {
          this.enterClosed(undefined);
        } else {
          this.fail(this.state === 'SYN-RECEIVED' ? 'ECONNREFUSED' : 'ECONNRESET', 'connection reset by the peer');
        }
      } else {
        this.challengeAck();
      }
      return;
    }

    // Fourth: SYN in a synchronized state (RFC 5961 §4.2): challenge ACK, drop.
    if (f & TcpFlags.SYN) {
      this.challengeAck();
      return;
    }

    // Fifth: ACK. A segment without ACK is dropped.
    if (!(f & TcpFlags.ACK)) return;

    // RFC 7323 §4.3: update TS.Recent from segments covering Last.ACK.sent.
    if (this.timestampsEnabled && seg.tsVal !== undefined && seqLe(seg.seq, this.lastAckSent)) {
      if (seqGe(seg.tsVal, this.tsRecent)) this.acceptTimestamp(seg.tsVal);
    }
    this.lastReceiveAt = this.now;
    if (this.config.keepAlive) {
      this.keepAliveSent = 0;
      this.keepAliveAt = this.now + this.config.keepAliveIdleMs;
    }

    if (this.state === 'SYN-RECEIVED') {
      if (seqGt(seg.ack, this.sndUna) && seqLe(seg.ack, this.sndMax)) {
        this.completeHandshake(seg, false);
      } else {
        this.queueReset(seg.ack, undefined);
        return;
      }
    } else if (!this.handshakeDone) {
      // Closed in SYN-RECEIVED (FIN-WAIT-1 before ESTABLISHED): the ACK of our SYN ends
      // the handshake without a stop in ESTABLISHED.
      if (!(seqGt(seg.ack, this.sndUna) && seqLe(seg.ack, this.sndMax))) {
        this.queueReset(seg.ack, undefined);
        return;
      }
      this.sampleHandshakeRtt(seg);
      this.updateSendWindow(seg.window, seg.seq, seg.ack, false);
      this.handshakeDone = true;
      this.synPending = false;
      this.congestion.init(this.cc);
      if (!this.processAck(seg)) return;
    } else if (!this.processAck(seg)) {
      return;
    }
    if (this.state === 'CLOSED' || ackOnly) return;

    // Seventh: segment text.
    if (seg.payload.length > 0) {
      switch (this.state) {
        case 'ESTABLISHED':
        case 'FIN-WAIT-1':
        case 'FIN-WAIT-2':
          if (this.receiveClosed) {
            // Data for an application that closed: it can never be read (RFC 9293 §3.10.7.4; RFC 2525 §2.17).
            this.rstPending = true;
            return;
          }
          this.acceptData(seg.seq, seg.payload);
          break;
        default:
          // CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: the peer already sent FIN; ignore.
          break;
      }
    }

    // Eighth: FIN.
    if (f & TcpFlags.FIN) {
      const finSeq = seqAdd(seg.seq, seg.payload.length);
      if (this.peerFinSeq === undefined) this.peerFinSeq = finSeq;
      this.ackNow = true;
    }
    this.maybeReachPeerFin();
  }

  /**
   * A segment that failed PAWS only because ACKs were reordered on the way (Linux's
   * tcp_disordered_ack): a pure ACK at RCV.NXT that acknowledges exactly SND.UNA and
   * leaves the send window as it is, with a TSval at most one RTO older than
   * TS.Recent. RFC 7323 §5.3 R1 would drop it, but PAWS exists to keep old duplicate
   * *data* out of the stream (§5.1, §5.2); this segment carries none, changes no
   * sequence or window state, and TS.Recent does not move back (§4.3 takes only newer
   * values). What it does carry, a duplicate ACK and its SACK blocks, is what loss
   * recovery needs, so it is accepted. An RTO is the bound within which the peer could
   * have sent it before the newer segment; the peer's timestamp clock is taken to tick
   * in ms (RFC 7323 §5.4 allows 1 ms to 1 s; Linux uses 1 ms).
   */
  private isDisorderedDuplicateAck(seg: IncomingSegment, segLen: number): boolean {
    const f = seg.flags;
    if (segLen !== 0 || (f & (TcpFlags.ACK | TcpFlags.SYN | TcpFlags.FIN | TcpFlags.RST)) !== TcpFlags.ACK)
      return false;
    if (!this.handshakeDone || seg.seq !== this.ackNumber() || seg.ack !== this.sndUna) return false;
    if (seg.window * 2 ** this.sndWscale !== this.sndWnd) return false;
    return seqDiff(this.tsRecent, seg.tsVal!) <= this.rtt.rtoMs;
  }

  /**
   * RFC 9293 §3.10.7.4 fifth step for synchronized states, with RFC 5961 §5.2 ACK
   * validation and the loss-recovery bookkeeping. Returns false when the segment must
   * be dropped.
   */
  private processAck(seg: IncomingSegment): boolean {
    const ack = seg.ack;
    // RFC 5961 §5.2: acceptable when SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT.
    if (seqGt(ack, this.sndMax)) {
      this.challengeAck();
      return false;
    }
    if (seqLt(ack, seqAdd(this.sndUna, -max(this.maxSndWnd, 1)))) {
      this.challengeAck();
      return false;
    }

    let sackInfo = { newlySacked: 0, dsack: false };
    if (this.sackEnabled && seg.sackBlocks !== undefined && seg.sackBlocks.length > 0) {
      const r = this.scoreboard.update(seqMax(this.sndUna, ack), seg.sackBlocks, this.sndMax);
      sackInfo = { newlySacked: r.newlySacked, dsack: r.dsack };
    }
    if (sackInfo.dsack) this.onDsack(seg.sackBlocks![0]!);

    const advanced = seqGt(ack, this.sndUna);
    if (this.rackActive) this.rackOnDelivery(seg, ack, advanced, sackInfo.newlySacked > 0);
    const windowBefore = this.sndWnd;
    // RFC 9293 §3.10.7.4: update the send window from newer segments only.
    if (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLe(this.sndWl2, ack))) {
      if (seqGe(ack, this.sndUna)) this.updateSendWindow(seg.window, seg.seq, ack, false);
    }

    if (advanced) {
      this.onNewAck(seg, ack);
    } else if (
      ack === this.sndUna &&
      seg.payload.length === 0 &&
      !(seg.flags & (TcpFlags.SYN | TcpFlags.FIN)) &&
      this.sndWnd === windowBefore &&
      seqGt(this.sndMax, this.sndUna)
    ) {
      // RFC 5681 §2: a duplicate ACK (or RFC 6675: one carrying new SACK information).
      this.onDuplicateAck(sackInfo.newlySacked > 0);
    }
    if (this.state === 'CLOSED') return false;
    if (this.rackActive) {
      // RFC 8985 §6.2 step 4 (the D-SACK part of the reordering window), §7.4 (the ACK
      // of a loss probe), §6.2 step 5 (loss detection), §7.2 (re-arm the probe timer
      // on an ACK of new data).
      this.rack.onAckForReoWnd(sackInfo.dsack, this.sndUna, this.sndMax);
      this.tlpOnAck(seg, ack, advanced, sackInfo.dsack);
      this.rackDetectLoss();
      this.armLossProbe(advanced);
    }

    // State changes an ACK of our FIN brings (RFC 9293 §3.10.7.4 fifth step).
    const finAcked = this.finSent && seqGt(ack, this.finSeq);
    if (finAcked) {
      switch (this.state) {
        case 'FIN-WAIT-1':
          this.setState('FIN-WAIT-2');
          // Orphaned connections must not linger forever in FIN-WAIT-2 (Linux tcp_fin_timeout).
          if (this.receiveClosed) this.finWait2At = this.now + this.config.finWait2TimeoutMs;
          break;
        case 'CLOSING':
          this.enterTimeWait();
          return false;
        case 'LAST-ACK':
          this.enterClosed(undefined);
          return false;
        default:
          break;
      }
    }
    return true;
  }

  private onNewAck(seg: IncomingSegment, ack: number): void {
    const acked = seqDiff(ack, this.sndUna);
    let sampled = false;
    // RTT: RFC 7323 §4 from the echoed timestamp, else Karn's timed segment (RFC 6298 §3).
    if (this.timestampsEnabled && seg.tsEcr !== undefined && seg.tsEcr !== 0) {
      const sample = seqDiff(this.tsNow(), seg.tsEcr);
      if (sample >= 0) {
        this.takeRttSample(sample);
        sampled = true;
      }
    } else if (this.rttTimedSeq !== undefined && seqGt(ack, this.rttTimedSeq)) {
      this.takeRttSample(this.now - this.rttTimedAt);
      sampled = true;
      this.rttTimedSeq = undefined;
    }

    const dataAcked = this.ackAdvancesTo(ack);
    this.retransmitCount = 0;
    this.persistBackoff = 0;
    if (this.eifelDetectsSpuriousRetransmit(seg, ack)) this.firstRetransmitProvenSpurious();

    if (this.inRecovery) {
      if (seqGe(ack, this.recoveryPoint)) {
        // RFC 6582 §3.2 step 3 / RFC 6675 §5: full ACK ends recovery.
        this.inRecovery = false;
        this.dupAcks = 0;
        this.phase = 'open';
        this.rack.onRecoveryEnd();
        this.congestion.onPhaseChange(this.cc, 'open');
      } else if (!this.sackEnabled) {
        // RFC 6582 §3.2 step 4: partial ACK: retransmit the next hole, deflate cwnd.
        this.retransmitHole();
        this.cc.cwnd = max(this.cc.cwnd - acked + (acked >= this.sendMss() ? this.sendMss() : 0), this.sendMss());
        this.restartRetransmitTimer();
      }
    } else {
      this.dupAcks = 0;
      if (this.phase === 'loss' && seqGe(ack, this.recoveryPoint)) {
        this.phase = 'open';
        this.rack.onRecoveryEnd();
        this.congestion.onPhaseChange(this.cc, 'open');
      }
      this.congestion.onAck(this.cc, { ackedBytes: acked, rttMs: sampled ? this.rtt.latestRttMs : undefined });
    }

    // RFC 6298 §5.2–5.3: stop the timer when all is acknowledged, else restart it.
    if (seqGe(this.sndUna, this.sndMax)) {
      this.retransmitAt = undefined;
      this.stalledSince = undefined;
    } else {
      this.restartRetransmitTimer();
      this.stalledSince = this.now;
    }
    if (dataAcked > 0) this.events.onWritable?.();
  }

  private onDuplicateAck(newSack: boolean): void {
    this.stats.dupAcksIn++;
    this.dupAcks++;
    if (this.inRecovery) {
      // RFC 6582 §3.2 step 3 (without SACK): inflate cwnd for each segment that left the network.
      if (!this.sackEnabled) this.cc.cwnd += this.sendMss();
      return;
    }
    // RFC 8985 §2: with RACK, time (the reordering window) rather than the count of
    // duplicate ACKs decides what is lost; the DupThresh rule lives on in reo_wnd.
    if (this.rackActive) return;
    const lost =
      this.sackEnabled &&
      (newSack || this.dupAcks >= DUP_THRESH) &&
      this.scoreboard.isLost(this.sndUna, this.sendMss());
    if (this.dupAcks >= DUP_THRESH || lost) {
      // RFC 6582 §3.2 step 2: only if the ACK covers more than the last recovery point.
      if (seqLe(this.sndUna, this.recoveryPoint) && this.phase === 'loss') return;
      this.enterRecovery();
    }
  }

  private enterRecovery(): void {
    this.stats.fastRetransmits++;
    this.recoveryPoint = this.sndMax;
    this.recoveryTransmissionMark = this.transmitLog.transmissionCount;
    if (this.phase === 'open') this.beginUndoEpisode();
    this.tlpAt = undefined;
    this.phase = 'recovery';
    // RFC 6675 §5 (4.2): ssthresh from FlightSize, so the algorithm runs before
    // recovery switches bytesInFlight to the pipe estimate.
    this.congestion.onPhaseChange(this.cc, 'recovery');
    this.inRecovery = true;
    // RFC 6675 §5 step 3: HighRxt = HighACK.
    this.scoreboard.clearRetransmitted();
    if (!this.sackEnabled) {
      // RFC 5681 §3.2 step 3: cwnd = ssthresh + 3*SMSS.
      this.cc.cwnd = this.cc.ssthresh + DUP_THRESH * this.sendMss();
    }
    // RFC 6675 §5 step (4.3): the first segment presumed lost goes out at once; with
    // RACK that is the lowest one RACK marked (sendData picks it).
    this.retransmitHole();
    this.restartRetransmitTimer();
  }

  /** Marks the first unacknowledged segment for immediate retransmission. */
  private retransmitHole(): void {
    this.pendingRetransmit = this.sndUna;
  }

  private pendingRetransmit: number | undefined;

  // ---------------------------------------------------------------- RACK-TLP (RFC 8985) and undo

  /** RACK-TLP is the loss detection: configured, and the peer does SACK (RFC 8985 §2 needs it). */
  private get rackActive(): boolean {
    return this.sackEnabled && this.config.recovery === 'rack-tlp';
  }

  /** Our TSval for a moment on our clock (RFC 7323 §5.4), to compare with an echoed TSecr. */
  private tsValAt(ms: number): number {
    return (floor(ms) + this.tsOffset) >>> 0;
  }

  /**
   * RFC 8985 §6.2 steps 2 and 3 for the segments this ACK delivers: cumulatively
   * acknowledged, then newly SACKed, in sequence order.
   *
   * Step 2 tells which copy of a retransmitted segment arrived by the echoed
   * timestamp. That holds for the segment that moved the cumulative ACK (RFC 7323 §4.3:
   * TS.Recent comes from the segment at the left edge), not for one delivered above a
   * hole, whose ACK echoes the older TS.Recent whichever copy arrived; those are judged
   * by the min_RTT rule of the same step (as Linux's tcp_rack_advance does for all).
   */
  private rackOnDelivery(seg: IncomingSegment, ack: number, advanced: boolean, newlySacked: boolean): void {
    const tsEcr = this.timestampsEnabled && seg.tsEcr !== undefined && seg.tsEcr !== 0 ? seg.tsEcr : undefined;
    const minRtt = this.rtt.minRttMs;
    if (advanced) {
      this.transmitLog.ack(ack, (s) => {
        const echoedSentBefore = tsEcr === undefined ? undefined : seqLt(tsEcr, this.tsValAt(s.xmitAt));
        this.rack.onDelivered(s, this.now, minRtt, echoedSentBefore);
      });
    }
    if (newlySacked) {
      // SACK blocks cover data only (RFC 2018 §3): a segment carrying our FIN counts as
      // SACKed once its data is.
      const sackedUpTo = (q: number): number => {
        const upTo = this.scoreboard.nextUnsacked(q);
        return this.finSent && upTo === this.finSeq ? seqAdd(upTo, CONTROL_LEN) : upTo;
      };
      this.transmitLog.markSacked(sackedUpTo, (s) => this.rack.onDelivered(s, this.now, minRtt, undefined));
    }
  }

  /**
   * RFC 8985 §6.2 step 5, RACK_detect_loss_and_arm_timer(): marks what RACK finds
   * lost, arms the reordering timer for what may still arrive, and starts fast recovery
   * on a first loss. RFC 8985 detects losses only; the recovery around it is RFC 6675's
   * with IsLost() answered by RACK's marks, lost retransmissions included.
   * After an RTO, go-back-N resends everything anyway.
   */
  private rackDetectLoss(): void {
    this.rackTimerAt = undefined;
    const srtt = this.rtt.srttMs;
    if (!this.rackActive || this.phase === 'loss' || srtt === undefined) return;
    const reoWnd = this.rack.reoWnd(
      this.inRecovery,
      this.transmitLog.sackedSegments,
      this.scoreboard.dupThresh,
      this.rtt.minRttMs ?? srtt,
      srtt,
    );
    const { timeoutMs, lostBytes, latestLostOrder } = this.rack.detectLoss(this.transmitLog, this.now, reoWnd);
    if (timeoutMs > 0) this.rackTimerAt = this.now + timeoutMs;
    if (lostBytes === 0) return;
    if (!this.inRecovery) {
      this.enterRecovery();
    } else if (latestLostOrder > this.recoveryTransmissionMark) {
      this.reduceAgainInRecovery();
    }
  }

  /**
   * RFC 8985 §3.4, after RFC 5681: "the loss of a retransmission must be taken as two
   * indications of congestion", and so must losses in two successive windows. RACK
   * found lost something (re)sent since this recovery began: congestion control
   * reduces again, from what is in flight now (the pipe, never above cwnd, so this
   * cannot raise ssthresh), and the recovery runs until everything sent so far is
   * acknowledged. As on entry (RFC 6675 §5 (4.3)), the first lost segment goes out at once.
   */
  private reduceAgainInRecovery(): void {
    this.recoveryPoint = this.sndMax;
    this.recoveryTransmissionMark = this.transmitLog.transmissionCount;
    this.congestion.onPhaseChange(this.cc, 'recovery');
    this.retransmitHole();
  }

  /**
   * RFC 8985 §7.2: whether a loss probe may be scheduled or sent: data outstanding, not
   * in fast or RTO recovery, nothing SACKed (RACK then has ACKs to work with), and no
   * probe episode open (one probe at a time, §7.3).
   */
  private lossProbeAllowed(): boolean {
    return (
      this.rackActive &&
      this.handshakeDone &&
      this.isSynchronized() &&
      this.state !== 'TIME-WAIT' &&
      this.phase === 'open' &&
      this.tlpEndSeq === undefined &&
      seqGt(this.sndMax, this.sndUna) &&
      !this.scoreboard.hasSacked
    );
  }

  /**
   * RFC 8985 §7.2: (re)starts the probe timer after new data went out or an ACK of new
   * data arrived (`restart`); cancels it when a probe is no longer allowed. PTO =
   * 2·SRTT, plus TLP.max_ack_delay with one segment in flight, never after the RTO.
   */
  private armLossProbe(restart: boolean): void {
    if (!this.lossProbeAllowed()) {
      this.tlpAt = undefined;
      return;
    }
    if (!restart) return;
    const srtt = this.rtt.srttMs;
    let pto = TLP_PTO_WITHOUT_SRTT_MS;
    if (srtt !== undefined) {
      pto = 2 * srtt;
      if (seqDiff(this.sndMax, this.sndUna) <= this.sendMss()) pto += TLP_MAX_ACK_DELAY_MS;
      pto = max(pto, TLP_MIN_PTO_MS);
    }
    const at = this.now + pto;
    this.tlpAt = this.retransmitAt !== undefined && this.retransmitAt < at ? this.retransmitAt : at;
  }

  /**
   * RFC 8985 §7.3: the probe. New data if there is some and the peer's window takes
   * it (whatever cwnd says: one segment), else the highest-sequence segment again.
   * Starts the probe episode (TLP.end_seq, TLP.is_retrans); the RTO is re-armed.
   */
  private sendLossProbe(emit: (segment: TcpRepr) => void): boolean {
    this.tlpProbePending = false;
    if (!this.lossProbeAllowed()) return false;
    const mss = max(1, this.sendMss() - this.optionBytesEstimate());
    const unsent = this.unsentBytes();
    const windowRoom = seqDiff(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
    let sent = 0;
    if (unsent > 0 && windowRoom > 0 && this.sndNxt === this.sndMax) {
      sent = this.emitDataSegment(emit, this.sndNxt, min(unsent, mss, windowRoom), false);
      this.tlpIsRetrans = false;
    }
    if (sent === 0) {
      // The highest-sequence segment: its last SMSS of data (and the FIN with it, if any).
      const last = this.transmitLog.last;
      if (last === undefined) return false;
      const dataEnd = seqLt(last.end, this.sendBuffer.endSeq) ? last.end : this.sendBuffer.endSeq;
      const dataLen = max(0, seqDiff(dataEnd, last.start));
      this.emitDataSegment(emit, dataLen > mss ? seqAdd(dataEnd, -mss) : last.start, mss, true);
      this.tlpIsRetrans = true;
    }
    this.tlpEndSeq = this.sndMax;
    this.stats.tlpProbes++;
    this.restartRetransmitTimer();
    return true;
  }

  /**
   * RFC 8985 §7.4: what the ACK of a probe says. A probe of new data, or a retransmitted
   * one whose original arrived too (a D-SACK for it, or a duplicate ACK without SACK),
   * ends the episode; an ACK beyond the probe means the probe repaired a loss, which
   * calls for the congestion response of fast recovery (§7.4.2).
   */
  private tlpOnAck(seg: IncomingSegment, ack: number, advanced: boolean, dsack: boolean): void {
    const end = this.tlpEndSeq;
    if (end === undefined || seqLt(ack, end)) return;
    if (!this.tlpIsRetrans) {
      this.tlpEndSeq = undefined;
    } else if (dsack && seg.sackBlocks![0]!.right === end) {
      this.tlpEndSeq = undefined;
    } else if (seqGt(ack, end)) {
      this.tlpEndSeq = undefined;
      this.respondToRepairedTailLoss();
    } else if (!advanced && (seg.sackBlocks === undefined || seg.sackBlocks.length === 0)) {
      this.tlpEndSeq = undefined;
    }
  }

  /** RFC 8985 §7.4.2: a probe repaired a loss: reduce the window as a fast recovery would. */
  private respondToRepairedTailLoss(): void {
    this.stats.tlpLossRepairs++;
    if (this.phase !== 'open' || this.inRecovery) return;
    // A reduction of its own: an earlier episode can no longer be undone over it.
    this.undoMarker = undefined;
    this.phase = 'recovery';
    this.congestion.onPhaseChange(this.cc, 'recovery');
    this.phase = 'open';
    this.congestion.onPhaseChange(this.cc, 'open');
  }

  /** Retransmits (part of) a segment RACK marked lost; false when nothing could be sent. */
  private retransmitLostSegment(emit: (segment: TcpRepr) => void, s: SentSegment, mss: number): boolean {
    this.emitDataSegment(emit, s.start, min(mss, seqDiff(s.end, s.start)), true);
    return s.retransInFlight;
  }

  /**
   * The bytes in the network for deciding what may be sent: with RACK the RFC 6675
   * pipe at all times (SACKed and lost segments have left the network; this sends new
   * data on the first duplicate ACKs as RFC 6675 §5 and RFC 3042 intend, and keeps
   * sending while reordering is waited out), except after an RTO, where go-back-N
   * counts from SND.NXT. Otherwise `bytesInFlight`.
   */
  private bytesInFlightForSending(): number {
    if (this.rackActive && this.phase !== 'loss') return this.transmitLog.pipe;
    return this.bytesInFlight();
  }

  /**
   * RFC 3042 Limited Transmit (without RACK): on the first DupThresh − 1 duplicate ACKs
   * one new segment each may go out beyond cwnd, cwnd itself unchanged.
   */
  private limitedTransmitAllowance(): number {
    if (this.rackActive || this.phase !== 'open' || this.inRecovery || this.dupAcks === 0) return 0;
    return min(this.dupAcks, DUP_THRESH - 1) * this.sendMss();
  }

  /** A window reduction begins (fast recovery or an RTO from `open`): what undoing it needs. */
  private beginUndoEpisode(): void {
    this.undoMarker = this.sndUna;
    this.undoRetransmits = [];
    this.undoFirstRetransmitTs = undefined;
    this.undoEifelChecked = false;
  }

  /** A retransmission during recovery or loss: remembered until a D-SACK shows it was not needed. */
  private noteRetransmitForUndo(seq: number, end: number): void {
    if (this.undoMarker === undefined || this.phase === 'open') return;
    if (this.undoRetransmits.length >= MAX_UNDO_RETRANSMITS) {
      this.undoMarker = undefined;
      return;
    }
    this.undoRetransmits.push({ start: seq, end, dsacked: false });
    if (this.undoFirstRetransmitTs === undefined) {
      this.undoFirstRetransmitSeq = seq;
      this.undoFirstRetransmitTs = this.tsNow();
    }
  }

  /**
   * A D-SACK (RFC 2883 §4) for `block`. RFC 3708 §3: once every retransmission of the
   * episode is reported as a duplicate, none was needed: the reduction was spurious
   * (Linux's tcp_try_undo_dsack). Checked after the recovery ended too: a late
   * original fills the hole first, the D-SACK for the retransmission comes after.
   */
  private onDsack(block: SackBlock): void {
    this.stats.dsacksIn++;
    const rexmits = this.undoRetransmits;
    if (this.undoMarker === undefined || rexmits.length === 0) return;
    // RFC 3708 §3 counts: one D-SACK per retransmission. A range sent three times that
    // comes back as one duplicate accounts for one copy only (the others may have
    // repaired a real loss), so a block clears at most one record per distinct range.
    const clearedNow = new Set<string>();
    let all = true;
    for (const r of rexmits) {
      if (!r.dsacked && seqLt(block.left, r.end) && seqLt(r.start, block.right)) {
        const range = `${r.start}:${r.end}`;
        if (!clearedNow.has(range)) {
          clearedNow.add(range);
          r.dsacked = true;
        }
      }
      if (!r.dsacked) all = false;
    }
    if (all) this.undoSpuriousReduction();
  }

  /**
   * The Eifel detection (RFC 3522 §3.2): the first ACK to acknowledge the segment
   * retransmitted first in the episode echoes a timestamp older than that
   * retransmission: the original arrived, the retransmission was spurious.
   */
  private eifelDetectsSpuriousRetransmit(seg: IncomingSegment, ack: number): boolean {
    if (this.undoMarker === undefined || this.undoEifelChecked || this.undoFirstRetransmitTs === undefined)
      return false;
    if (!seqGt(ack, this.undoFirstRetransmitSeq)) return false;
    this.undoEifelChecked = true;
    if (!this.timestampsEnabled || seg.tsEcr === undefined || seg.tsEcr === 0) return false;
    return seqLt(seg.tsEcr, this.undoFirstRetransmitTs);
  }

  /**
   * The Eifel test speaks for the first retransmission only (RFC 3522 §3.2): it counts as
   * that copy's D-SACK. The reduction is undone once every other retransmission of the
   * episode is shown spurious too (by its D-SACK, now or later): another may have
   * repaired a real loss (Linux's tcp_try_undo_partial waits for no retransmission in
   * flight, for the same reason).
   */
  private firstRetransmitProvenSpurious(): void {
    const rexmits = this.undoRetransmits;
    if (rexmits.length === 0) return;
    rexmits[0]!.dsacked = true;
    if (rexmits.every((r) => r.dsacked)) this.undoSpuriousReduction();
  }

  /**
   * Undoes a spurious reduction (RFC 3708 §5 / RFC 3522 §2 response, as Linux's
   * tcp_undo_cwnd_reduction): congestion control restores cwnd and ssthresh, recovery
   * or loss ends, loss marks are forgotten, and after a spurious timeout sending
   * resumes with new data instead of going back N (RFC 4015 §3).
   */
  private undoSpuriousReduction(): void {
    this.undoMarker = undefined;
    this.undoRetransmits = [];
    if (this.congestion.undoCwnd === undefined) return;
    this.stats.spuriousRecoveriesUndone++;
    this.cc.cwnd = this.congestion.undoCwnd(this.cc);
    if (this.phase === 'loss') this.sndNxt = this.sndMax;
    if (this.phase !== 'open') {
      this.inRecovery = false;
      this.dupAcks = 0;
      this.pendingRetransmit = undefined;
      this.phase = 'open';
      this.congestion.onPhaseChange(this.cc, 'open');
    }
    this.transmitLog.clearLossMarks();
    this.scoreboard.clearRetransmitted();
  }

  /** SYN-RECEIVED → ESTABLISHED on an acceptable ACK of our SYN (RFC 9293 §3.10.7.4). */
  private completeHandshake(seg: IncomingSegment, segmentIsSyn: boolean): void {
    this.sampleHandshakeRtt(seg);
    this.updateSendWindow(seg.window, seg.seq, seg.ack, segmentIsSyn);
    this.ackAdvancesTo(seg.ack);
    this.synPending = false;
    this.establish();
  }

  /**
   * The handshake gives the first RTT sample (as Linux takes it): from the echoed
   * timestamp, or from our SYN's send time unless it was retransmitted (Karn). After a
   * retransmitted SYN without a sample, RFC 6298 §5.7 sets the RTO to 3 s.
   */
  private sampleHandshakeRtt(seg: IncomingSegment): void {
    if (this.timestampsEnabled && seg.tsEcr !== undefined && seg.tsEcr !== 0) {
      const sample = seqDiff(this.tsNow(), seg.tsEcr);
      if (sample >= 0) {
        this.takeRttSample(sample);
        return;
      }
    }
    if (this.retransmitCount === 0) this.takeRttSample(this.now - this.synSentAt);
    else this.rtt.handshakeTimedOut();
  }

  private synSentAt = 0;

  private takeRttSample(ms: number): void {
    this.rtt.sample(ms);
    // RFC 6298 §5.7 / Karn: a fresh sample ends the backoff.
    this.rtt.resetBackoff();
  }

  /** Moves SND.UNA forward, frees acknowledged data; returns the data bytes acknowledged. */
  private ackAdvancesTo(ack: number): number {
    if (!seqGt(ack, this.sndUna)) return 0;
    this.sndUna = ack;
    // Something got through: a soft error from before no longer says why the path fails (Linux tcp_ack).
    this.softError = undefined;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    if (this.sackEnabled) this.scoreboard.ack(ack);
    if (this.rackActive) this.transmitLog.ack(ack);
    // The send buffer works in sequence space: an ACK of only the SYN frees nothing,
    // and one covering the FIN is clamped to the end of the data.
    return this.sendBuffer.ack(ack);
  }

  private updateSendWindow(window: number, seq: number, ack: number, isSyn: boolean): void {
    const scaled = isSyn ? window : window * 2 ** this.sndWscale;
    this.sndWnd = scaled;
    this.sndWl1 = seq;
    this.sndWl2 = ack;
    if (scaled > this.maxSndWnd) this.maxSndWnd = scaled;
    if (scaled > 0) {
      this.persistAt = undefined;
      this.persistBackoff = 0;
    }
  }

  private acceptData(seq: number, payload: Uint8Array): void {
    const before = this.rcvNxt;
    const outOfOrderBefore = this.receiveBuffer.hasOutOfOrder;
    const { accepted, advanced } = this.receiveBuffer.insert(seq, payload);
    this.stats.bytesReceived += advanced;
    if (accepted === 0 && (seqLe(seqAdd(seq, payload.length), before) || seqGt(seq, before))) {
      // RFC 2883: report the duplicate with a D-SACK block.
      this.dsackBlock = { left: seq, right: seqAdd(seq, payload.length) };
      this.ackNow = true;
    } else if (advanced === 0 || this.receiveBuffer.hasOutOfOrder || outOfOrderBefore) {
      // RFC 5681 §4.2: out-of-order data, or data filling a gap, is acknowledged at once.
      this.ackNow = true;
    } else {
      this.scheduleAck(payload.length);
    }
    if (advanced > 0) this.events.onReadable?.();
  }

  /**
   * What the peer's full-sized segments are (Linux's tcp_measure_rcv_mss): the largest
   * seen, or a smaller size seen twice in a row, as after the peer's path MTU dropped
   * (RFC 1191). Without it, segments cut to a lower path MTU would never count as full
   * and only the delayed-ACK timer would acknowledge them (RFC 5681 §4.2: every second
   * full-sized segment is ACKed).
   */
  private measureReceiveMss(length: number): void {
    if (length >= this.rcvMss) this.rcvMss = min(length, this.announcedMss);
    else if (length === this.lastSegmentLength && length >= DEFAULT_MSS_V4 - 40) this.rcvMss = length;
    this.lastSegmentLength = length;
  }

  private rcvMss = 0;
  private lastSegmentLength = 0;

  /** RFC 9293 §3.8.6.3 / RFC 5681 §4.2: ACK every second full segment, or after the delay. */
  private scheduleAck(length: number): void {
    this.measureReceiveMss(length);
    if (this.quickAcksLeft > 0) {
      this.quickAcksLeft--;
      this.ackNow = true;
      return;
    }
    if (length >= min(this.announcedMss - 40, this.rcvMss)) this.fullSegmentsUnacked++;
    if (this.fullSegmentsUnacked >= 2) {
      this.ackNow = true;
      return;
    }
    if (this.delayedAckAt === undefined) this.delayedAckAt = this.now + this.config.delayedAckMs;
  }

  private maybeReachPeerFin(): void {
    if (this.peerFinReceived || this.peerFinSeq === undefined || this.rcvNxt !== this.peerFinSeq) return;
    this.peerFinReceived = true;
    this.rcvFinOffset = 1;
    this.ackNow = true;
    switch (this.state) {
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
        this.setState('CLOSE-WAIT');
        break;
      case 'FIN-WAIT-1':
        // Our FIN is not acknowledged yet: simultaneous close (RFC 9293 Figure 13).
        this.setState('CLOSING');
        break;
      case 'FIN-WAIT-2':
        this.finWait2At = undefined;
        this.enterTimeWait();
        break;
      default:
        break;
    }
    this.events.onRemoteEnd?.();
  }

  /** 1 once the peer's FIN is received: it takes one sequence number after the data. */
  private rcvFinOffset = 0;

  /** The acknowledgment number to send: RCV.NXT, plus one for a received FIN. */
  private ackNumber(): number {
    return seqAdd(this.rcvNxt, this.rcvFinOffset);
  }

  private segmentAcceptable(seq: number, segLen: number): boolean {
    const rcvNxt = this.ackNumber();
    const wnd = max(0, seqDiff(this.rcvAdvertisedEdge, rcvNxt));
    if (segLen === 0) {
      if (wnd === 0) return seq === rcvNxt;
      return seqLe(rcvNxt, seq) && seqLt(seq, seqAdd(rcvNxt, wnd));
    }
    if (wnd === 0) return false;
    const last = seqAdd(seq, segLen - 1);
    const end = seqAdd(rcvNxt, wnd);
    return (seqLe(rcvNxt, seq) && seqLt(seq, end)) || (seqLe(rcvNxt, last) && seqLt(last, end));
  }

  private challengeAck(): void {
    // RFC 5961 §7: rate-limit challenge ACKs.
    if (this.now - this.challengeWindowStart >= 1000) {
      this.challengeWindowStart = this.now;
      this.challengeCount = 0;
    }
    if (this.challengeCount >= CHALLENGE_ACKS_PER_SECOND) return;
    if (this.challengeAckBudget !== undefined && !this.challengeAckBudget.take(this.now)) return;
    this.challengeCount++;
    this.stats.challengeAcks++;
    this.ackNow = true;
  }

  private resetQueue: { seq: number; ack: number | undefined } | undefined;

  private queueReset(seq: number, ack: number | undefined): void {
    this.resetQueue = { seq, ack };
  }

  private takeSynOptions(seg: IncomingSegment): void {
    // A tiny MSS would make 1-byte segments (CVE-2019-11479): floor it as Linux does (tcp_min_snd_mss).
    if (seg.mss !== undefined && seg.mss > 0) this.peerMss = max(MIN_PEER_MSS, seg.mss);
    this.peerOffered.timestamps = seg.tsVal !== undefined;
    this.peerOffered.sack = seg.sackPermitted === true;
    this.peerOffered.wscale = seg.wscale !== undefined;
    // Each is in use only when both sides sent it on their SYNs.
    this.timestampsEnabled = this.config.timestamps && this.peerOffered.timestamps;
    this.sackEnabled = this.config.sack && this.peerOffered.sack;
    this.windowScalingEnabled = this.config.windowScaling && this.peerOffered.wscale;
    // RFC 7323 §2.3: a shift above 14 is treated as 14.
    this.sndWscale = this.windowScalingEnabled ? min(seg.wscale ?? 0, 14) : 0;
  }

  private acceptTimestamp(tsVal: number): void {
    this.tsRecent = tsVal;
    this.tsRecentAge = this.now;
  }

  // ---------------------------------------------------------------- output

  tsNow(): number {
    // RFC 7323 §5.4: a 1 ms clock with a random per-connection offset.
    return (floor(this.now) + this.tsOffset) >>> 0;
  }

  sackBlocksToSend(): SackBlock[] {
    // RFC 2018 §3: with timestamps only three blocks fit in 40 bytes.
    const room = this.timestampsEnabled ? 3 : 4;
    const blocks = this.receiveBuffer.sackBlocks(room);
    if (this.dsackBlock !== undefined) {
      // RFC 2883 §4: the D-SACK block first, then the usual blocks.
      return [this.dsackBlock, ...blocks].slice(0, room);
    }
    return blocks;
  }

  /** Produces every segment that is due now. */
  dispatch(now: number, emit: (segment: TcpRepr) => void): void {
    this.now = now;
    if (this.resetQueue !== undefined) {
      const r = this.resetQueue;
      this.resetQueue = undefined;
      this.emitControl(emit, r.seq, r.ack === undefined ? TcpFlags.RST : TcpFlags.RST | TcpFlags.ACK, r.ack ?? 0);
    }
    if (this.state === 'CLOSED') return;
    if (this.rstPending) {
      this.rstPending = false;
      // RFC 9293 §3.10.5: <SEQ=SND.NXT><CTL=RST>.
      this.emitControl(emit, this.sndNxt, TcpFlags.RST, 0);
      this.enterClosed(undefined, true);
      return;
    }
    if (this.synPending) {
      this.synPending = false;
      this.emitSyn(emit);
      // A FIN queued before the handshake completed goes right after the SYN-ACK.
      if (!this.handshakeDone && this.finSent) {
        this.emitSegment(emit, this.finSeq, TcpFlags.FIN | TcpFlags.ACK, EMPTY);
        this.sndNxt = seqAdd(this.finSeq, CONTROL_LEN);
      }
      return;
    }
    if (this.state === 'SYN-RECEIVED' && this.finQueued && !this.finSent && this.sendBuffer.length === 0) {
      // RFC 9293 §3.10.4: CLOSE in SYN-RECEIVED with nothing to send: FIN now, FIN-WAIT-1.
      this.finSeq = seqAdd(this.iss, CONTROL_LEN);
      this.finSent = true;
      this.emitSegment(emit, this.finSeq, TcpFlags.FIN | TcpFlags.ACK, EMPTY);
      this.sndNxt = seqAdd(this.finSeq, CONTROL_LEN);
      this.sndMax = seqMax(this.sndMax, this.sndNxt);
      this.afterFinSent();
      if (this.retransmitAt === undefined) this.retransmitAt = this.now + this.rtt.rtoMs;
      return;
    }
    let sentSomething = false;
    if (this.isSynchronized() && this.state !== 'TIME-WAIT') {
      if (this.tlpProbePending) sentSomething = this.sendLossProbe(emit);
      const sndMaxBefore = this.sndMax;
      sentSomething = this.sendData(emit) || sentSomething;
      // RFC 8985 §7.2: new data (not a probe) went out: restart the probe timer.
      if (seqGt(this.sndMax, sndMaxBefore)) this.armLossProbe(true);
    }
    if (this.probePending !== undefined) {
      // Zero-window and keepalive probes: a segment the peer must answer, carrying no data
      // (RFC 9293 §3.8.6.1; RFC 1122 §4.2.3.6): sequence number SND.UNA - 1.
      this.probePending = undefined;
      this.emitSegment(emit, seqAdd(this.sndUna, -1), TcpFlags.ACK, EMPTY);
      sentSomething = true;
    }
    if (!sentSomething && this.ackNow && this.state !== 'SYN-SENT') {
      // A pure ACK carries the highest sequence number sent (RFC 9293's SND.NXT), not the
      // go-back-N resend pointer: a sequence number below the peer's RCV.NXT would make
      // the segment unacceptable and its ACK ignored, and two such peers deadlock.
      this.emitSegment(emit, this.sndMax, TcpFlags.ACK, EMPTY);
    }
    this.armPersistTimer();
  }

  private emitSyn(emit: (segment: TcpRepr) => void): void {
    const flags = this.state === 'SYN-SENT' ? TcpFlags.SYN : TcpFlags.SYN | TcpFlags.ACK;
    if (this.retransmitCount === 0) this.synSentAt = this.now;
    this.emitSegment(emit, this.iss, flags, EMPTY);
    this.sndNxt = seqAdd(this.iss, CONTROL_LEN);
    this.sndMax = seqMax(this.sndMax, this.sndNxt);
    if (this.retransmitAt === undefined) this.retransmitAt = this.now + this.rtt.rtoMs;
  }

  /**
   * Sends new data and retransmissions while the windows allow (RFC 5681, RFC 6675
   * §5 for SACK recovery), with Nagle (RFC 9293 §3.7.4) and sender-side silly window
   * avoidance (§3.8.6.2.1). Returns whether a segment went out.
   */
  private sendData(emit: (segment: TcpRepr) => void): boolean {
    let sent = false;
    // The payload of a full-sized segment: the MSS less the options every segment carries.
    const mss = max(1, this.sendMss() - this.optionBytesEstimate());
    // A fast retransmission first (RFC 5681 §3.2 step 4; RFC 6582 partial ACKs; RFC 6675
    // §5 step (4.3), with RACK the lowest segment it marked lost).
    if (this.pendingRetransmit !== undefined) {
      const seq = this.pendingRetransmit;
      this.pendingRetransmit = undefined;
      const lost = this.rackActive && this.inRecovery ? this.transmitLog.nextLost() : undefined;
      if (lost !== undefined) {
        sent = this.retransmitLostSegment(emit, lost, mss);
      } else if (seqLt(seq, this.sndMax) && seqGe(seq, this.sndUna)) {
        this.emitDataSegment(emit, seq, mss, true);
        sent = true;
      }
    }
    for (let guard = 0; guard < 10_000; guard++) {
      const inFlight = this.bytesInFlightForSending();
      const cwndRoom = this.cc.cwnd - inFlight + this.limitedTransmitAllowance();
      if (cwndRoom < 1) break;
      // RFC 6675 §5 NextSeg(): first a lost hole, then new data. With RACK the holes
      // are the segments it marked lost, lost retransmissions included.
      if (this.inRecovery && this.rackActive) {
        const lost = this.transmitLog.nextLost();
        if (lost !== undefined) {
          if (!this.retransmitLostSegment(emit, lost, mss)) break;
          sent = true;
          continue;
        }
      } else if (this.inRecovery && this.sackEnabled) {
        const hole = this.scoreboard.nextLostHole(this.sndUna, this.sndMax, mss);
        if (hole !== undefined) {
          this.emitDataSegment(emit, hole.seq, min(mss, hole.len), true);
          sent = true;
          continue;
        }
      }
      const unsent = this.unsentBytes();
      const windowRoom = seqDiff(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
      const finDue =
        this.finQueued && unsent === 0 && this.canSendFinState() && (!this.finSent || this.sndNxt === this.finSeq);
      if (unsent === 0 && !finDue) break;
      if (unsent > 0) {
        let len = min(unsent, mss, cwndRoom, windowRoom);
        if (this.sackEnabled && seqLt(this.sndNxt, this.sndMax)) {
          // Going back N after a timeout: skip what the peer already SACKed.
          const next = this.scoreboard.nextUnsacked(this.sndNxt);
          if (next !== this.sndNxt) {
            this.sndNxt = seqLt(next, this.sndMax) ? next : this.sndMax;
            continue;
          }
          len = min(len, this.scoreboard.unsackedRun(this.sndNxt, len) || len);
        }
        if (len <= 0) break;
        // Nagle: no small segment while data is outstanding, unless TCP_NODELAY.
        // Neither rule applies to resending data already sent (going back N).
        const outstanding = seqGt(this.sndMax, this.sndUna) && !seqLt(this.sndNxt, this.sndMax);
        if (len < mss && len < unsent) {
          // Window- or cwnd-limited to a partial segment: silly window avoidance waits,
          // unless it is at least half the largest window ever offered.
          if (len < this.maxSndWnd / 2 && outstanding) break;
        }
        if (len < mss && len === unsent && outstanding && !this.config.noDelay && !this.finQueued) break;
        len = this.emitDataSegment(emit, this.sndNxt, len, false);
        if (len === 0) break;
        sent = true;
        continue;
      }
      // Only the FIN remains: its first transmission, or again after going back N.
      const again = this.finSent;
      if (!again) {
        this.finSeq = this.sndNxt;
        this.finSent = true;
      }
      this.emitSegment(emit, this.finSeq, TcpFlags.FIN | TcpFlags.ACK, EMPTY);
      if (this.rackActive) this.transmitLog.record(this.finSeq, CONTROL_LEN, this.now, again);
      this.sndNxt = seqAdd(this.finSeq, CONTROL_LEN);
      this.sndMax = seqMax(this.sndMax, this.sndNxt);
      if (!again) this.afterFinSent();
      if (this.retransmitAt === undefined) this.retransmitAt = this.now + this.rtt.rtoMs;
      sent = true;
      break;
    }
    return sent;
  }

  /**
   * Emits one data segment at `seq` of at most `maxLen` bytes (payload taken from the
   * send buffer, never across a metadata boundary), with FIN when it carries the last
   * byte and FIN is due. Returns the payload length.
   */
  private emitDataSegment(
    emit: (segment: TcpRepr) => void,
    seq: number,
    maxLen: number,
    retransmission: boolean,
  ): number {
    const offset = seqDiff(seq, this.dataStartSeq());
    if (offset < 0) return 0;
    const available = this.sendBuffer.length - offset;
    if (available <= 0) {
      // Nothing but the FIN lies here (a retransmission of it).
      if (this.finSent && seq === this.finSeq) {
        this.emitSegment(emit, seq, TcpFlags.FIN | TcpFlags.ACK, EMPTY);
        this.noteSent(seq, CONTROL_LEN, retransmission);
      }
      return 0;
    }
    // Options shrink the payload so the packet still fits the MTU (RFC 6691).
    const optionRoom = this.optionBytesEstimate();
    const payload = this.sendBuffer.read(
      seqAdd(this.sendBuffer.startSeq, offset),
      min(maxLen, available, max(1, this.sendMss() - optionRoom)),
    );
    if (payload.length === 0) return 0;
    let flags = TcpFlags.ACK;
    const end = seqAdd(seq, payload.length);
    const isLast = offset + payload.length === this.sendBuffer.length;
    if (isLast) flags |= TcpFlags.PSH;
    const withFin = isLast && this.finQueued && this.canSendFinState() && (!this.finSent || this.finSeq === end);
    if (withFin) flags |= TcpFlags.FIN;
    this.emitSegment(emit, seq, flags, payload);
    if (withFin) {
      this.finSeq = end;
      if (!this.finSent) {
        this.finSent = true;
        this.afterFinSent();
      }
    }
    const seqLen = payload.length + (withFin ? CONTROL_LEN : 0);
    this.noteSent(seq, seqLen, retransmission || seqLt(seq, this.sndMax));
    return payload.length;
  }

  private noteSent(seq: number, seqLen: number, retransmission: boolean): void {
    const end = seqAdd(seq, seqLen);
    const dataLen = seqLen;
    if (this.rackActive) this.transmitLog.record(seq, seqLen, this.now, retransmission);
    if (retransmission) {
      this.stats.bytesRetransmitted += dataLen;
      this.noteRetransmitForUndo(seq, end);
      if (this.sackEnabled) this.scoreboard.markRetransmitted(seq, seqLen);
      if (this.rttTimedSeq !== undefined && seqLe(seq, this.rttTimedSeq) && seqLt(this.rttTimedSeq, end)) {
        this.rttTimedSeq = undefined; // Karn: never time a retransmitted segment
      }
    } else {
      this.stats.bytesSent += dataLen;
      if (!this.timestampsEnabled && this.rttTimedSeq === undefined) {
        this.rttTimedSeq = seq;
        this.rttTimedAt = this.now;
      }
    }
    // A retransmitted hole below SND.NXT leaves it alone; sending at SND.NXT moves it on.
    if (seqLe(seq, this.sndNxt) && seqGt(end, this.sndNxt)) this.sndNxt = end;
    this.sndMax = seqMax(this.sndMax, end);
    if (this.retransmitAt === undefined) this.retransmitAt = this.now + this.rtt.rtoMs;
    if (this.stalledSince === undefined) this.stalledSince = this.now;
  }

  private emitSegment(emit: (segment: TcpRepr) => void, seq: number, flags: number, payload: Uint8Array): void {
    const options = this.optionRegistry.write(this, flags, seq, payload.length);
    const sendsAck = (flags & TcpFlags.ACK) !== 0;
    const ack = sendsAck ? this.ackNumber() : 0;
    const window = this.advertiseWindow(flags);
    emit({
      srcPort: this.local.port,
      dstPort: this.remote.port,
      seq,
      ack,
      flags,
      window,
      urgentPointer: 0,
      options,
      payload,
    });
    this.stats.segmentsOut++;
    this.lastSendAt = this.now;
    if (sendsAck) {
      this.lastAckSent = ack;
      this.ackNow = false;
      this.delayedAckAt = undefined;
      this.fullSegmentsUnacked = 0;
      this.dsackBlock = undefined;
    }
  }

  private emitControl(emit: (segment: TcpRepr) => void, seq: number, flags: number, ack: number): void {
    emit({
      srcPort: this.local.port,
      dstPort: this.remote.port,
      seq,
      ack,
      flags,
      window: 0,
      urgentPointer: 0,
      options: [] as TcpOption[],
      payload: EMPTY,
    });
    this.stats.segmentsOut++;
  }

  /**
   * The window field to send (RFC 7323 §2.3 scaled), with receiver-side silly window
   * avoidance (RFC 9293 §3.8.6.2.2) and never moving the right edge left (§3.8.6.2.1).
   */
  private advertiseWindow(flags: number): number {
    const rcvNxt = this.ackNumber();
    const free = this.receiveWindowNow();
    const current = max(0, seqDiff(this.rcvAdvertisedEdge, rcvNxt));
    let wnd = current;
    const threshold = min(this.config.receiveBuffer / 2, this.announcedMss);
    if (free >= current + threshold || (free > current && current === 0 && free >= threshold) || !this.rcvEdgeSet) {
      wnd = free;
    }
    if (flags & TcpFlags.SYN) {
      // RFC 7323 §2.2: the window of a SYN is not scaled.
      const field = min(wnd, 0xffff);
      this.rcvAdvertisedEdge = seqAdd(rcvNxt, field);
      this.rcvEdgeSet = true;
      return field;
    }
    const shift = this.windowScalingEnabled ? this.rcvWscale : 0;
    const field = min(0xffff, floor(wnd / 2 ** shift));
    const edge = seqAdd(rcvNxt, field * 2 ** shift);
    if (seqGt(edge, this.rcvAdvertisedEdge) || !this.rcvEdgeSet) this.rcvAdvertisedEdge = edge;
    this.rcvEdgeSet = true;
    return field;
  }

  private receiveWindowNow(): number {
    return this.receiveBuffer.window;
  }

  /** After the application read: send a window update when the window opened enough. */
  private maybeWindowUpdate(freeBefore: number): void {
    const free = this.receiveWindowNow();
    const advertised = max(0, seqDiff(this.rcvAdvertisedEdge, this.ackNumber()));
    if (
      free - advertised >= min(2 * this.announcedMss, this.config.receiveBuffer / 2) ||
      (advertised < this.announcedMss && free >= this.announcedMss && freeBefore < free)
    ) {
      if (this.isSynchronized()) this.ackNow = true;
    }
  }

  private armPersistTimer(): void {
    // RFC 9293 §3.8.6.1: data waits on a zero window with nothing in flight: probe later.
    // A window that shrank to zero under data in flight is probed too once no
    // retransmission is pending (RFC 9293 §3.8.6.2.1 robustness, RFC 1122 §4.2.2.17).
    if (this.sndWnd === 0 && this.hasUnsentData() && this.isSynchronized() && this.retransmitAt === undefined) {
      if (this.persistAt === undefined) this.persistAt = this.now + this.persistInterval();
    } else if (this.sndWnd > 0) {
      this.persistAt = undefined;
    }
  }

  private persistInterval(): number {
    return min(this.config.maxRtoMs, this.rtt.rtoMs * 2 ** min(this.persistBackoff, 16));
  }

  private restartRetransmitTimer(): void {
    this.retransmitAt = this.now + this.rtt.rtoMs;
  }

  /**
   * RFC 6191 §2 (and RFC 1122 §4.2.2.13 without timestamps): may a SYN reopen this
   * TIME-WAIT four-tuple? Yes when its timestamp is newer than TS.Recent, or, without
   * timestamps, when its sequence number is beyond RCV.NXT.
   */
  acceptsNewSyn(seg: IncomingSegment): boolean {
    if (this.state !== 'TIME-WAIT' || (seg.flags & (TcpFlags.SYN | TcpFlags.ACK | TcpFlags.RST)) !== TcpFlags.SYN)
      return false;
    if (this.timestampsEnabled) {
      const ts = seg.options.find((o) => o.kind === 'timestamps');
      if (ts !== undefined && ts.kind === 'timestamps' && seqGt(ts.tsVal, this.tsRecent)) return true;
    }
    // RFC 6528 ISNs grow with time for a given four-tuple, so a new incarnation's SYN
    // lies beyond the old one's sequence space (timestamp clocks have per-connection offsets).
    return seqGt(seg.seq, this.ackNumber());
  }

  /** Ends a TIME-WAIT connection whose four-tuple a new connection takes over. */
  releaseTimeWait(): void {
    if (this.state === 'TIME-WAIT') this.enterClosed(undefined);
  }

  // ---------------------------------------------------------------- state helpers

  /** Our SYN was acknowledged (the handshake is over, even if ESTABLISHED was skipped). */
  private handshakeDone = false;

  /**
   * Switches the congestion control of a live connection (setsockopt TCP_CONGESTION, as
   * Linux's tcp_reinit_congestion_control): the new algorithm starts from the current
   * window — its `init` runs (its own state), then cwnd and ssthresh are put back — and
   * in the current phase.
   */
  setCongestionControl(next: CongestionControl): void {
    if (next === this.congestion) return;
    this.congestion = next;
    if (!this.handshakeDone) return; // init runs when the handshake completes
    const { cwnd, ssthresh } = this.cc;
    next.init(this.cc);
    this.cc.cwnd = cwnd;
    this.cc.ssthresh = ssthresh;
  }

  /** Set by the listener for connections it accepted. */
  isPassive = false;

  private establish(): void {
    this.handshakeDone = true;
    this.setState('ESTABLISHED');
    this.retransmitAt = seqGt(this.sndMax, this.sndUna) ? this.now + this.rtt.rtoMs : undefined;
    this.retransmitCount = 0;
    this.stalledSince = undefined;
    this.congestion.init(this.cc);
    this.congestion.onEvent?.(this.cc, 'established');
    if (this.config.keepAlive) this.keepAliveAt = this.now + this.config.keepAliveIdleMs;
    this.events.onEstablished?.();
    if (this.sendBuffer.free > 0) this.events.onWritable?.();
  }

  private afterFinSent(): void {
    switch (this.state) {
      case 'ESTABLISHED':
      case 'SYN-RECEIVED':
        this.setState('FIN-WAIT-1');
        break;
      case 'CLOSE-WAIT':
        this.setState('LAST-ACK');
        break;
      default:
        break;
    }
  }

  private enterTimeWait(): void {
    this.setState('TIME-WAIT');
    this.retransmitAt = undefined;
    this.tlpAt = undefined;
    this.tlpProbePending = false;
    this.rackTimerAt = undefined;
    this.persistAt = undefined;
    this.keepAliveAt = undefined;
    this.finWait2At = undefined;
    // No ACK of its own: from FIN-WAIT-2 the peer's FIN already asked for one; from
    // CLOSING the trigger is a bare ACK of our FIN (RFC 9293 Figure 5: "rcv ACK of FIN / x").
    // A delayed ACK still owed goes out now instead of being lost.
    if (this.delayedAckAt !== undefined) this.ackNow = true;
    this.delayedAckAt = undefined;
    this.timeWaitAt = this.now + 2 * this.config.mslMs;
  }

  private fail(code: TcpErrorCode, message: string): void {
    this.errorValue = new TcpError(code, message);
    this.enterClosed(this.errorValue);
  }

  private enterClosed(error: TcpError | undefined, byAbort = false): void {
    if (byAbort && error === undefined) this.errorValue = undefined;
    this.setState('CLOSED');
    this.retransmitAt = undefined;
    this.tlpAt = undefined;
    this.tlpProbePending = false;
    this.rackTimerAt = undefined;
    this.delayedAckAt = undefined;
    this.persistAt = undefined;
    this.keepAliveAt = undefined;
    this.timeWaitAt = undefined;
    this.finWait2At = undefined;
    this.ackNow = false;
    this.synPending = false;
    this.probePending = undefined;
    if (!this.closedEmitted) {
      this.closedEmitted = true;
      this.congestion.release?.();
      this.events.onClosed?.(error);
    }
  }

  private setState(next: TcpState): void {
    const prev = this.state;
    if (prev === next) return;
    this.state = next;
    this.events.onStateChange?.(prev, next);
  }

  isSynchronized(): boolean {
    return (
      this.state !== 'CLOSED' && this.state !== 'LISTEN' && this.state !== 'SYN-SENT' && this.state !== 'SYN-RECEIVED'
    );
  }

  private canSend(): boolean {
    return (
      !this.finQueued &&
      (this.state === 'SYN-SENT' ||
        this.state === 'SYN-RECEIVED' ||
        this.state === 'ESTABLISHED' ||
        this.state === 'CLOSE-WAIT')
    );
  }

  private canSendFinState(): boolean {
    return (
      this.state === 'ESTABLISHED' ||
      this.state === 'CLOSE-WAIT' ||
      this.state === 'FIN-WAIT-1' ||
      this.state === 'CLOSING' ||
      this.state === 'LAST-ACK'
    );
  }

  /** The sequence number of the first byte in the send buffer. */
  private dataStartSeq(): number {
    return this.sendBuffer.startSeq;
  }

  private unsentBytes(): number {
    const sentData = seqDiff(this.sndNxt, this.dataStartSeq());
    // Past the data, SND.NXT may also cover our FIN: nothing is unsent then.
    return max(0, this.sendBuffer.length - max(0, sentData));
  }

  private hasUnsentData(): boolean {
    return this.unsentBytes() > 0;
  }

  private hasDataOrFinToSend(): boolean {
    if (!this.isSynchronized()) return false;
    return (
      this.pendingRetransmit !== undefined ||
      this.tlpProbePending ||
      this.hasUnsentData() ||
      (this.finQueued && (!this.finSent || this.sndNxt === this.finSeq))
    );
  }

  /** RFC 6675 pipe in SACK recovery; otherwise FlightSize (RFC 5681). */
  private bytesInFlight(): number {
    if (this.inRecovery && this.rackActive) return this.transmitLog.pipe;
    if (this.inRecovery && this.sackEnabled) {
      return this.scoreboard.setPipe(this.sndUna, this.sndMax, this.sendMss());
    }
    return max(0, seqDiff(this.sndNxt, this.sndUna));
  }

  /** The largest payload per segment, before options (RFC 9293 §3.7.1, RFC 6691), within the path MTU. */
  sendMss(): number {
    return max(1, min(this.peerMss, this.announcedMss, this.pathMss));
  }

  // ---------------------------------------------------------------- ICMP (driven by the TCP layer)

  /** The error a timeout ends the connection with: the last soft ICMP error, else ETIMEDOUT (as Linux). */
  private timeoutError(): TcpErrorCode {
    return this.softError ?? 'ETIMEDOUT';
  }

  /**
   * RFC 5927 §4.1: an ICMP error is believed only if the sequence number of the segment
   * it quotes is one we sent and is not yet acknowledged: SND.UNA ≤ SEG.SEQ ≤ SND.NXT
   * (the highest sent; inclusive, as Linux).
   */
  icmpSequenceAcceptable(seq: number): boolean {
    if (this.state === 'CLOSED' || this.state === 'LISTEN' || this.state === 'TIME-WAIT') return false;
    return seqGe(seq, this.sndUna) && seqLe(seq, this.sndMax);
  }

  /**
   * An ICMP error (not a path MTU report) about this connection, already validated.
   * RFC 1122 §4.2.3.9 and RFC 5461, as Linux does: while opening (SYN-SENT, or an active
   * SYN-RECEIVED) it aborts the connection with the mapped errno; a connection a listener
   * is opening is dropped on a hard error only; once synchronized every error is soft:
   * remembered, and reported only if the connection later times out.
   */
  icmpError(code: TcpErrorCode, hard: boolean, now: number): void {
    this.now = now;
    this.stats.icmpErrors++;
    if (this.state === 'SYN-SENT' || (this.state === 'SYN-RECEIVED' && !this.isPassive)) {
      this.fail(code, `ICMP error while connecting (${code})`);
      return;
    }
    if (this.state === 'SYN-RECEIVED' && hard) {
      this.fail(code, `ICMP error while accepting (${code})`);
      return;
    }
    this.softError = code;
  }

  /**
   * The path MTU to the peer dropped to `mtu` (RFC 1191 §6.4, RFC 8201 §5.4): segments
   * are cut to it from now on, and whatever is in flight is sent again at the new size
   * at once, without a congestion response (the loss was not congestion; Linux's
   * tcp_simple_retransmit). Returns whether the send MSS changed.
   */
  pathMtuChanged(mtu: number, now: number): boolean {
    this.now = now;
    const mss = max(MIN_PATH_MSS, mtu - (this.local.address.length === 16 ? 40 : 20) - 20);
    if (mss >= this.pathMss) return false;
    const before = this.sendMss();
    this.pathMss = mss;
    this.stats.icmpErrors++;
    if (this.sendMss() >= before || !this.isSynchronized() || !seqGt(this.sndMax, this.sndUna)) return true;
    if (this.inRecovery) {
      // Recovery resends the holes at the new size; the first one now.
      this.pendingRetransmit = this.sndUna;
    } else {
      // Go back N: everything in flight larger than the path allows was dropped on the way.
      this.sndNxt = this.sndUna;
      this.rttTimedSeq = undefined;
      this.scoreboard.clearRetransmitted();
      // What was sent at the old size is gone: out of the pipe until resent.
      if (this.rackActive) this.transmitLog.markAllLost();
    }
    return true;
  }

  /** Option bytes the next data segment carries, as the option handlers declare them (plugins included). */
  private optionBytesEstimate(): number {
    return this.optionRegistry.reservedBytes(this);
  }
}

const EMPTY = new Uint8Array(0);

function earlier(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  return b === undefined || a <= b ? a : b;
}

/** RFC 7323 §2.3: the smallest shift that lets the window cover the buffer, at most 14. */
function windowScaleFor(buffer: number): number {
  let shift = 0;
  while (shift < 14 && 0xffff * 2 ** shift < buffer) shift++;
  return shift;
}
