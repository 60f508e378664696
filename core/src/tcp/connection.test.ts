/**
 * Per-state unit tests of the sans-IO TCP connection, in the manner of smoltcp's socket
 * tests: segment templates with overrides, `send` (a segment arrives), `recv` (what the
 * connection emits), `recvNothing`, and `advance` (virtual time). Names read like the
 * RFC: "STATE: event → next state".
 *
 * Conventions: we are the local end (ISS = LOCAL_SEQ); the peer's ISS is REMOTE_SEQ.
 * LOCAL_SEQ sits just below 2^32 so sequence numbers wrap during the tests.
 */
import { TcpFlags, type TcpRepr } from '../wire/tcp';
import type { SackBlock, TcpOption } from '../wire/tcp-options';
import { DEFAULT_TCP_CONFIG, resolveTcpConfig, type TcpConfig } from './config';
import { defaultCongestionControls } from './congestion';
import { TcpConnection, type TcpConnectionOptions } from './connection';
import { TcpOptionRegistry } from './options';
import type { IncomingSegment, TcpError, TcpState } from './segment';
import { seqAdd } from './seq';

const { FIN, SYN, RST, PSH, ACK } = TcpFlags;

const LOCAL_V4 = new Uint8Array([10, 0, 0, 1]);
const REMOTE_V4 = new Uint8Array([10, 0, 0, 2]);
const LOCAL_V6 = new Uint8Array([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
const REMOTE_V6 = new Uint8Array([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
const LOCAL_PORT = 80;
const REMOTE_PORT = 49_500;
/** Our ISS: 256 below the wrap, so data we send crosses 2^32. */
const LOCAL_SEQ = 0xffff_ff00;
/** The peer's ISS. */
const REMOTE_SEQ = 0x1000_0000;
/** The window the peer advertises (unscaled unless a test negotiates scaling). */
const PEER_WINDOW = 8192;
/** Our receive buffer in the default fixture; without window scaling it is the window field. */
const RCV_BUF = 16_384;
const START = 10_000;
/** The fixtures' handshake takes this long; the RTT sample makes the RTO 3×RTT (RFC 6298 §2.2). */
const HANDSHAKE_RTT = 100;
const RTO = 300;
const EMPTY = new Uint8Array(0);

/** LOCAL_SEQ + n and REMOTE_SEQ + n, wrapped. */
const L = (n: number): number => seqAdd(LOCAL_SEQ, n);
const R = (n: number): number => seqAdd(REMOTE_SEQ, n);
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const filled = (n: number, v = 0x61): Uint8Array => new Uint8Array(n).fill(v);

// ------------------------------------------------------------------ option helpers

const MSS = (mss: number): TcpOption => ({ kind: 'mss', mss });
const WSCALE = (shift: number): TcpOption => ({ kind: 'wscale', shift });
const SACK_PERM: TcpOption = { kind: 'sack-permitted' };
const NOP: TcpOption = { kind: 'nop' };
const TS = (tsVal: number, tsEcr: number): TcpOption => ({ kind: 'timestamps', tsVal, tsEcr });
const SACK = (...blocks: SackBlock[]): TcpOption => ({ kind: 'sack', blocks });

// ------------------------------------------------------------------ templates

/** A segment from the peer in the synchronized states; tests override what matters. */
const SEND_TEMPL: IncomingSegment = {
  seq: R(1),
  ack: L(1),
  flags: ACK,
  window: PEER_WINDOW,
  payload: EMPTY,
  options: [],
};

/** A segment we emit in the synchronized states. */
const RECV_TEMPL: TcpRepr = {
  srcPort: LOCAL_PORT,
  dstPort: REMOTE_PORT,
  seq: L(1),
  ack: R(1),
  flags: ACK,
  window: RCV_BUF,
  urgentPointer: 0,
  options: [],
  payload: EMPTY,
};

/** The peer's SYN (a passive open), with an MSS option. */
const SYN_TEMPL: IncomingSegment = { ...SEND_TEMPL, seq: REMOTE_SEQ, ack: 0, flags: SYN, options: [MSS(1460)] };

/** Our RST: <SEQ=x><CTL=RST>, no window, no options. */
const RST_TEMPL: TcpRepr = { ...RECV_TEMPL, flags: RST, ack: 0, window: 0 };

// ------------------------------------------------------------------ harness

interface Socket {
  conn: TcpConnection;
  now: number;
  /** Set when onClosed fired: `{ error }` (error undefined for a normal close). */
  closed: { error: TcpError | undefined } | undefined;
  established: number;
  remoteEnd: number;
  states: TcpState[];
}

function config(overrides: Partial<TcpConfig> = {}): TcpConfig {
  // Options off by default so segments stay small; tests that need them turn them on.
  return resolveTcpConfig(DEFAULT_TCP_CONFIG, {
    windowScaling: false,
    timestamps: false,
    sack: false,
    receiveBuffer: RCV_BUF,
    ...overrides,
  });
}

interface FixtureOptions {
  config?: Partial<TcpConfig>;
  mtu?: number;
  v6?: boolean;
}

function connectionOptions(s: Socket, opts: FixtureOptions): TcpConnectionOptions {
  const cfg = config(opts.config);
  return {
    local: { address: opts.v6 ? LOCAL_V6 : LOCAL_V4, port: LOCAL_PORT },
    remote: { address: opts.v6 ? REMOTE_V6 : REMOTE_V4, port: REMOTE_PORT },
    config: cfg,
    iss: LOCAL_SEQ,
    mtu: opts.mtu ?? 1500,
    options: new TcpOptionRegistry(),
    congestion: defaultCongestionControls.create('newreno'),
    tsOffset: 0,
    events: {
      onClosed: (error) => {
        s.closed = { error };
      },
      onEstablished: () => {
        s.established++;
      },
      onRemoteEnd: () => {
        s.remoteEnd++;
      },
      onStateChange: (_from, to) => {
        s.states.push(to);
      },
    },
  };
}

function blankSocket(): Socket {
  return {
    conn: undefined as unknown as TcpConnection,
    now: START,
    closed: undefined,
    established: 0,
    remoteEnd: 0,
    states: [],
  };
}

/** An active open: CLOSED → SYN-SENT, the SYN not yet dispatched. */
function socketSynSent(opts: FixtureOptions = {}): Socket {
  const s = blankSocket();
  s.conn = TcpConnection.connect(connectionOptions(s, opts), s.now);
  return s;
}

/** A passive open: LISTEN got `syn` → SYN-RECEIVED, the SYN-ACK not yet dispatched. */
function socketSynReceived(opts: FixtureOptions = {}, syn: Partial<IncomingSegment> = {}): Socket {
  const s = blankSocket();
  s.conn = TcpConnection.accept(connectionOptions(s, opts), { ...SYN_TEMPL, ...syn }, s.now);
  s.conn.isPassive = true;
  return s;
}

/**
 * ESTABLISHED through a passive open: SYN in, SYN-ACK out, ACK in. `synOptions` are
 * the peer's SYN options; `ackOptions` those of its handshake ACK.
 */
function socketEstablished(
  opts: FixtureOptions = {},
  synOptions: TcpOption[] = [MSS(1460)],
  ackOptions: TcpOption[] = [],
): Socket {
  const s = socketSynReceived(opts, { options: synOptions });
  recv(s);
  advance(s, HANDSHAKE_RTT);
  send(s, { options: ackOptions });
  expect(s.conn.rtt.rtoMs).toBe(RTO);
  expect(s.conn.state).toBe('ESTABLISHED');
  recvNothing(s);
  return s;
}

/** ESTABLISHED, then close(): our FIN is out (FIN-WAIT-1). */
function socketFinWait1(opts: FixtureOptions = {}): Socket {
  const s = socketEstablished(opts);
  s.conn.close();
  expect(recv(s)).toEqual([out({ flags: FIN | ACK })]);
  expect(s.conn.state).toBe('FIN-WAIT-1');
  return s;
}

/** FIN-WAIT-1, then the peer ACKs our FIN (FIN-WAIT-2). */
function socketFinWait2(opts: FixtureOptions = {}): Socket {
  const s = socketFinWait1(opts);
  send(s, { ack: L(2) });
  expect(s.conn.state).toBe('FIN-WAIT-2');
  recvNothing(s);
  return s;
}

/** ESTABLISHED, then the peer's FIN (CLOSE-WAIT). */
function socketCloseWait(opts: FixtureOptions = {}): Socket {
  const s = socketEstablished(opts);
  send(s, { flags: FIN | ACK });
  expect(recv(s)).toEqual([out({ ack: R(2), window: RCV_BUF - 1 })]);
  expect(s.conn.state).toBe('CLOSE-WAIT');
  return s;
}

/** A segment from the peer arrives now. */
function send(s: Socket, seg: Partial<IncomingSegment> = {}): void {
  s.conn.process({ ...SEND_TEMPL, ...seg }, s.now);
}

/** The segments the connection emits now, with flags spelled out for readable diffs. */
function recv(s: Socket): ReturnType<typeof out>[] {
  const segs: TcpRepr[] = [];
  s.conn.dispatch(s.now, (seg) => segs.push(seg));
  return segs.map((seg) => ({ ...seg, flags: flagNames(seg.flags), payload: Array.from(seg.payload) }));
}

function recvNothing(s: Socket): void {
  expect(recv(s)).toEqual([]);
}

/** An expected segment: RECV_TEMPL with overrides, in the form `recv` returns. */
function out(o: Partial<TcpRepr> = {}) {
  const seg = { ...RECV_TEMPL, ...o };
  return { ...seg, flags: flagNames(seg.flags), payload: Array.from(seg.payload) };
}

function flagNames(flags: number): string {
  const names: string[] = [];
  for (const [name, bit] of [
    ['SYN', SYN],
    ['FIN', FIN],
    ['RST', RST],
    ['PSH', PSH],
    ['ACK', ACK],
  ] as const) {
    if (flags & bit) names.push(name);
  }
  return names.join('|') || '-';
}

/** Moves virtual time forward by `ms`, running `onTimer` at each `pollAt` deadline on the way. */
function advance(s: Socket, ms: number): void {
  const end = s.now + ms;
  for (let guard = 0; guard < 1000; guard++) {
    const at = s.conn.pollAt();
    if (at === undefined || at > end) break;
    s.now = Math.max(s.now, at);
    s.conn.onTimer(s.now);
    if (s.conn.pollAt() === at) break; // nothing more until the next dispatch
  }
  s.now = end;
}

// ================================================================== active open

describe('active open (SYN-SENT)', () => {
  test('CLOSED: connect → SYN-SENT, SYN sent', () => {
    const s = socketSynSent();
    expect(s.conn.state).toBe('SYN-SENT');
    expect(recv(s)).toEqual([out({ seq: LOCAL_SEQ, ack: 0, flags: SYN, options: [MSS(1460)] })]);
    recvNothing(s);
  });

  test('SYN-SENT: SYN-ACK → ESTABLISHED, ACK sent', () => {
    const s = socketSynSent();
    recv(s);
    send(s, { seq: REMOTE_SEQ, ack: L(1), flags: SYN | ACK, options: [MSS(1400)] });
    expect(s.conn.state).toBe('ESTABLISHED');
    expect(s.established).toBe(1);
    expect(recv(s)).toEqual([out()]);
    expect(s.conn.peerMss).toBe(1400);
    expect(s.conn.sndWnd).toBe(PEER_WINDOW);
  });

  test('SYN-SENT: the first ACK advertises the receive buffer whatever the IRS', () => {
    for (const irs of [1000, 0x9000_0000, 0xffff_fff0]) {
      const s = socketSynSent();
      recv(s);
      send(s, { seq: irs, ack: L(1), flags: SYN | ACK, options: [MSS(1460)] });
      expect(recv(s)).toEqual([out({ ack: seqAdd(irs, 1), window: RCV_BUF })]);
    }
  });

  test('SYN-SENT: data written before the handshake goes out with the first ACK', () => {
    const s = socketSynSent();
    recv(s);
    expect(s.conn.send(bytes('early'))).toBe(5);
    recvNothing(s);
    send(s, { seq: REMOTE_SEQ, ack: L(1), flags: SYN | ACK, options: [MSS(1460)] });
    expect(recv(s)).toEqual([out({ flags: PSH | ACK, payload: bytes('early') })]);
  });

  test('SYN-SENT: SYN-ACK with data → ESTABLISHED, data accepted', () => {
    const s = socketSynSent();
    recv(s);
    send(s, { seq: REMOTE_SEQ, ack: L(1), flags: SYN | ACK, options: [MSS(1460)], payload: bytes('hi') });
    expect(s.conn.state).toBe('ESTABLISHED');
    expect(recv(s)).toEqual([out({ ack: R(3), window: RCV_BUF - 2 })]);
    expect(s.conn.read()).toEqual(bytes('hi'));
  });

  test('SYN-SENT: ACK at or below ISS → RST <SEQ=SEG.ACK>, stays SYN-SENT', () => {
    const s = socketSynSent();
    recv(s);
    send(s, { seq: REMOTE_SEQ, ack: LOCAL_SEQ, flags: SYN | ACK });
    expect(recv(s)).toEqual([out({ ...RST_TEMPL, seq: LOCAL_SEQ })]);
    expect(s.conn.state).toBe('SYN-SENT');
  });

  test('SYN-SENT: ACK beyond SND.NXT → RST <SEQ=SEG.ACK>, stays SYN-SENT', () => {
    const s = socketSynSent();
    recv(s);
    send(s, { seq: REMOTE_SEQ, ack: L(100), flags: ACK });
    expect(recv(s)).toEqual([out({ ...RST_TEMPL, seq: L(100) })]);
    expect(s.conn.state).toBe('SYN-SENT');
    // The real SYN-ACK still completes the handshake.
    send(s, { seq: REMOTE_SEQ, ack: L(1), flags: SYN | ACK });
    expect(s.conn.state).toBe('ESTABLISHED');
  });

  test('SYN-SENT: RST with an unacceptable ACK → dropped', () => {
    const s = socketSynSent();
    recv(s);
    send(s, { seq: REMOTE_SEQ, ack: L(5), flags: RST | ACK });
    recvNothing(s);
    expect(s.conn.state).toBe('SYN-SENT');
  });

  test('SYN-SENT: RST with acceptable ACK → CLOSED (ECONNREFUSED)', () => {
    const s = socketSynSent();
    recv(s);
    send(s, { seq: 0, ack: L(1), flags: RST | ACK });
    expect(s.conn.state).toBe('CLOSED');
    expect(s.closed?.error?.code).toBe('ECONNREFUSED');
    recvNothing(s);
  });

  test('SYN-SENT: RST without ACK → dropped', () => {
    const s = socketSynSent();
    recv(s);
    send(s, { seq: REMOTE_SEQ, ack: 0, flags: RST });
    expect(s.conn.state).toBe('SYN-SENT');
    recvNothing(s);
  });

  test('SYN-SENT: acceptable ACK without SYN → dropped', () => {
    const s = socketSynSent();
    recv(s);
    send(s, { seq: REMOTE_SEQ, ack: L(1), flags: ACK });
    expect(s.conn.state).toBe('SYN-SENT');
    recvNothing(s);
  });

  test('SYN-SENT: CLOSE → CLOSED, nothing sent', () => {
    const s = socketSynSent();
    recv(s);
    s.conn.close();
    expect(s.conn.state).toBe('CLOSED');
    expect(s.closed).toEqual({ error: undefined });
    recvNothing(s);
    expect(s.conn.pollAt()).toBeUndefined();
  });

  test('SYN-SENT: SYN retransmitted with the RTO doubling (RFC 6298 §5.5)', () => {
    const s = socketSynSent();
    const syn = out({ seq: LOCAL_SEQ, ack: 0, flags: SYN, options: [MSS(1460)] });
    expect(recv(s)).toEqual([syn]);
    for (const rto of [1000, 2000, 4000]) {
      advance(s, rto - 1);
      recvNothing(s);
      advance(s, 1);
      expect(recv(s)).toEqual([syn]);
    }
    expect(s.conn.state).toBe('SYN-SENT');
  });

  test('SYN-SENT: no SYN-ACK after synRetries retransmissions → CLOSED (ETIMEDOUT)', () => {
    const s = socketSynSent({ config: { synRetries: 2 } });
    recv(s);
    advance(s, 1000);
    expect(recv(s)).toHaveLength(1);
    advance(s, 2000);
    expect(recv(s)).toHaveLength(1);
    advance(s, 3999);
    expect(s.conn.state).toBe('SYN-SENT');
    advance(s, 1);
    expect(s.conn.state).toBe('CLOSED');
    expect(s.closed?.error?.code).toBe('ETIMEDOUT');
    recvNothing(s);
  });

  test('SYN-SENT: after a SYN timeout the data RTO starts at 3 s (RFC 6298 §5.7)', () => {
    const s = socketSynSent();
    recv(s);
    advance(s, 1000);
    recv(s); // the retransmitted SYN; the RTO is now 2 s
    send(s, { seq: REMOTE_SEQ, ack: L(1), flags: SYN | ACK, options: [MSS(1460)] });
    recv(s);
    expect(s.conn.rtt.rtoMs).toBe(3000);
  });
});

// ================================================================== simultaneous open

describe('simultaneous open (RFC 9293 §3.5 Figure 8)', () => {
  function socketSimultaneous(): Socket {
    const s = socketSynSent();
    recv(s);
    send(s, { seq: REMOTE_SEQ, ack: 0, flags: SYN, options: [MSS(1460)] });
    expect(s.conn.state).toBe('SYN-RECEIVED');
    expect(recv(s)).toEqual([out({ seq: LOCAL_SEQ, flags: SYN | ACK, options: [MSS(1460)] })]);
    return s;
  }

  test('SYN-SENT: SYN → SYN-RECEIVED, SYN-ACK sent', () => {
    socketSimultaneous();
  });

  test('SYN-RECEIVED: SYN-ACK → ESTABLISHED', () => {
    const s = socketSimultaneous();
    send(s, { seq: REMOTE_SEQ, ack: L(1), flags: SYN | ACK, options: [MSS(1460)] });
    expect(s.conn.state).toBe('ESTABLISHED');
    expect(s.established).toBe(1);
    recvNothing(s);
  });

  test('SYN-RECEIVED: ACK → ESTABLISHED', () => {
    const s = socketSimultaneous();
    send(s, { ack: L(1) });
    expect(s.conn.state).toBe('ESTABLISHED');
    recvNothing(s);
  });

  test('SYN-RECEIVED (from SYN-SENT): RST → CLOSED (ECONNREFUSED)', () => {
    const s = socketSimultaneous();
    send(s, { flags: RST, ack: 0 });
    expect(s.conn.state).toBe('CLOSED');
    expect(s.closed?.error?.code).toBe('ECONNREFUSED');
  });
});

// ================================================================== passive open

describe('passive open (SYN-RECEIVED)', () => {
  const SYN_ACK = out({ seq: LOCAL_SEQ, flags: SYN | ACK, options: [MSS(1460)] });

  test('LISTEN: SYN → SYN-RECEIVED, SYN-ACK sent', () => {
    const s = socketSynReceived();
    expect(s.conn.state).toBe('SYN-RECEIVED');
    expect(recv(s)).toEqual([SYN_ACK]);
    recvNothing(s);
  });

  test('SYN-RECEIVED: ACK of SYN → ESTABLISHED', () => {
    const s = socketSynReceived();
    recv(s);
    send(s);
    expect(s.conn.state).toBe('ESTABLISHED');
    expect(s.established).toBe(1);
    expect(s.conn.sndUna).toBe(L(1));
    expect(s.conn.pollAt()).toBeUndefined();
    recvNothing(s);
  });

  test('SYN-RECEIVED: ACK with data → ESTABLISHED, data accepted', () => {
    const s = socketSynReceived();
    recv(s);
    send(s, { flags: PSH | ACK, payload: bytes('abc') });
    expect(s.conn.state).toBe('ESTABLISHED');
    expect(recv(s)).toEqual([out({ ack: R(4), window: RCV_BUF - 3 })]);
    expect(s.conn.read()).toEqual(bytes('abc'));
  });

  test('SYN-RECEIVED: ACK with FIN → ESTABLISHED → CLOSE-WAIT', () => {
    const s = socketSynReceived();
    recv(s);
    send(s, { flags: FIN | ACK });
    expect(s.conn.state).toBe('CLOSE-WAIT');
    expect(s.states).toEqual(['SYN-RECEIVED', 'ESTABLISHED', 'CLOSE-WAIT']);
    expect(recv(s)).toEqual([out({ ack: R(2), window: RCV_BUF - 1 })]);
  });

  test('SYN-RECEIVED: RST → LISTEN (this connection closed, no error)', () => {
    const s = socketSynReceived();
    recv(s);
    send(s, { flags: RST, ack: 0 });
    expect(s.conn.state).toBe('CLOSED');
    expect(s.closed).toEqual({ error: undefined });
    recvNothing(s);
  });

  test('SYN-RECEIVED: RST in window but not at RCV.NXT → challenge ACK (RFC 5961 §3.2)', () => {
    const s = socketSynReceived();
    recv(s);
    send(s, { seq: R(10), flags: RST, ack: 0 });
    expect(s.conn.state).toBe('SYN-RECEIVED');
    expect(recv(s)).toEqual([out()]);
  });

  test('SYN-RECEIVED: unacceptable ACK → RST <SEQ=SEG.ACK>', () => {
    const s = socketSynReceived();
    recv(s);
    send(s, { ack: L(50) });
    expect(recv(s)).toEqual([out({ ...RST_TEMPL, seq: L(50) })]);
    expect(s.conn.state).toBe('SYN-RECEIVED');
  });

  test('SYN-RECEIVED: segment without ACK → dropped', () => {
    const s = socketSynReceived();
    recv(s);
    send(s, { flags: PSH, ack: 0, payload: bytes('x') });
    expect(s.conn.state).toBe('SYN-RECEIVED');
    expect(s.conn.readable).toBe(0);
    recvNothing(s);
  });

  test('SYN-RECEIVED: retransmitted SYN (our SYN-ACK was lost) → SYN-ACK again', () => {
    const s = socketSynReceived();
    expect(recv(s)).toEqual([SYN_ACK]);
    send(s, SYN_TEMPL);
    expect(recv(s)).toEqual([SYN_ACK]);
    expect(s.conn.state).toBe('SYN-RECEIVED');
  });

  test('SYN-RECEIVED: SYN-ACK retransmitted on timeout, RTO doubling', () => {
    const s = socketSynReceived();
    expect(recv(s)).toEqual([SYN_ACK]);
    advance(s, 999);
    recvNothing(s);
    advance(s, 1);
    expect(recv(s)).toEqual([SYN_ACK]);
    advance(s, 1999);
    recvNothing(s);
    advance(s, 1);
    expect(recv(s)).toEqual([SYN_ACK]);
  });

  test('SYN-RECEIVED: after a SYN-ACK timeout the data RTO starts at 3 s (RFC 6298 §5.7)', () => {
    const s = socketSynReceived();
    recv(s);
    advance(s, 1000);
    expect(recv(s)).toEqual([SYN_ACK]);
    send(s);
    expect(s.conn.state).toBe('ESTABLISHED');
    expect(s.conn.rtt.rtoMs).toBe(3000);
  });

  test('SYN-RECEIVED: no ACK after synAckRetries retransmissions → CLOSED', () => {
    const s = socketSynReceived({ config: { synAckRetries: 2 } });
    recv(s);
    advance(s, 1000);
    expect(recv(s)).toEqual([SYN_ACK]);
    advance(s, 2000);
    expect(recv(s)).toEqual([SYN_ACK]);
    advance(s, 3999);
    expect(s.conn.state).toBe('SYN-RECEIVED');
    advance(s, 1);
    expect(s.conn.state).toBe('CLOSED');
    expect(s.closed?.error?.code).toBe('ETIMEDOUT');
  });

  test('SYN-RECEIVED: CLOSE with nothing to send → FIN at once → FIN-WAIT-1 (RFC 9293 §3.10.4)', () => {
    const s = socketSynReceived();
    recv(s);
    s.conn.close();
    expect(recv(s)).toEqual([out({ flags: FIN | ACK })]);
    expect(s.conn.state).toBe('FIN-WAIT-1');
    // The ACK of SYN and FIN ends the handshake and the close together.
    send(s, { ack: L(2) });
    expect(s.conn.state).toBe('FIN-WAIT-2');
    expect(s.established).toBe(0);
  });

  test('SYN-RECEIVED: CLOSE with data queued → data, then FIN, once ESTABLISHED', () => {
    const s = socketSynReceived();
    recv(s);
    s.conn.send(bytes('hi'));
    s.conn.close();
    recvNothing(s);
    send(s);
    expect(recv(s)).toEqual([out({ flags: FIN | PSH | ACK, payload: bytes('hi') })]);
    expect(s.conn.state).toBe('FIN-WAIT-1');
  });

  test('SYN-RECEIVED closed: a lost SYN-ACK and FIN are both resent on timeout', () => {
    const s = socketSynReceived();
    recv(s);
    s.conn.close();
    recv(s);
    advance(s, 1000);
    const again = recv(s);
    expect(again.map((x) => x.flags)).toEqual([flagNames(SYN | ACK), flagNames(FIN | ACK)]);
  });

  test('SYN-RECEIVED: ABORT → RST', () => {
    const s = socketSynReceived();
    recv(s);
    s.conn.abort();
    expect(recv(s)).toEqual([out({ ...RST_TEMPL, seq: L(1) })]);
    expect(s.conn.state).toBe('CLOSED');
  });
});

// ================================================================== ESTABLISHED

describe('ESTABLISHED', () => {
  test('ESTABLISHED: data → ACK, readable', () => {
    const s = socketEstablished();
    send(s, { flags: PSH | ACK, payload: bytes('abcdef') });
    expect(recv(s)).toEqual([out({ ack: R(7), window: RCV_BUF - 6 })]);
    expect(s.conn.readable).toBe(6);
    expect(s.conn.read()).toEqual(bytes('abcdef'));
  });

  test('ESTABLISHED: SEND → data segment with PSH; ACK frees it', () => {
    const s = socketEstablished();
    expect(s.conn.send(bytes('hello'))).toBe(5);
    expect(recv(s)).toEqual([out({ flags: PSH | ACK, payload: bytes('hello') })]);
    expect(s.conn.pollAt()).toBe(s.now + RTO);
    send(s, { ack: L(6) });
    expect(s.conn.sndUna).toBe(L(6));
    expect(s.conn.sendQueue).toBe(0);
    expect(s.conn.pollAt()).toBeUndefined();
    recvNothing(s);
  });

  test('ESTABLISHED: sequence numbers wrap past 2^32', () => {
    const s = socketEstablished();
    s.conn.send(filled(1000));
    const segs = recv(s);
    expect(segs.map((x) => x.seq)).toEqual([L(1)]);
    send(s, { ack: L(1001) });
    expect(s.conn.sndUna).toBe(L(1001));
    expect(L(1001)).toBeLessThan(LOCAL_SEQ); // it did wrap
    expect(s.conn.sendQueue).toBe(0);
  });

  test('ESTABLISHED: ACK of unsent data → ACK, segment dropped (RFC 9293 §3.10.7.4)', () => {
    const s = socketEstablished();
    send(s, { ack: L(100), flags: PSH | ACK, payload: bytes('abc') });
    expect(recv(s)).toEqual([out()]);
    expect(s.conn.readable).toBe(0);
    expect(s.conn.sndUna).toBe(L(1));
  });

  test('ESTABLISHED: duplicate data → ACK of RCV.NXT, not delivered twice', () => {
    const s = socketEstablished();
    send(s, { payload: bytes('abc') });
    expect(recv(s)).toEqual([out({ ack: R(4), window: RCV_BUF - 3 })]);
    send(s, { payload: bytes('abc') });
    expect(recv(s)).toEqual([out({ ack: R(4), window: RCV_BUF - 3 })]);
    expect(s.conn.readable).toBe(3);
  });

  test('ESTABLISHED: partly duplicate data → the new part is accepted', () => {
    const s = socketEstablished();
    send(s, { payload: bytes('abc') });
    recv(s);
    send(s, { payload: bytes('abcdef') });
    expect(recv(s)).toEqual([out({ ack: R(7), window: RCV_BUF - 6 })]);
    expect(s.conn.read()).toEqual(bytes('abcdef'));
  });

  test('ESTABLISHED: data beyond the window → ACK, dropped', () => {
    const s = socketEstablished();
    send(s, { seq: R(1 + RCV_BUF), payload: bytes('late') });
    expect(recv(s)).toEqual([out()]);
    expect(s.conn.stats.outOfWindowDrops).toBe(1);
    expect(s.conn.readable).toBe(0);
  });

  test('ESTABLISHED: empty segment before RCV.NXT → ACK, dropped', () => {
    const s = socketEstablished();
    send(s, { seq: R(0), ack: L(1) });
    expect(recv(s)).toEqual([out()]);
  });

  test('ESTABLISHED: out-of-order data → immediate ACK of RCV.NXT, delivered when the hole fills', () => {
    const s = socketEstablished();
    send(s, { seq: R(4), payload: bytes('def') });
    expect(recv(s)).toEqual([out()]);
    expect(s.conn.readable).toBe(0);
    send(s, { seq: R(1), payload: bytes('abc') });
    expect(recv(s)).toEqual([out({ ack: R(7), window: RCV_BUF - 6 })]);
    expect(s.conn.read()).toEqual(bytes('abcdef'));
  });

  test('ESTABLISHED: SEND after SHUTDOWN → EPIPE', () => {
    const s = socketEstablished();
    s.conn.shutdownWrite();
    expect(() => s.conn.send(bytes('x'))).toThrow(/EPIPE/);
  });

  test('ESTABLISHED: retransmitted SYN-ACK (our ACK was lost) → ACK again', () => {
    const s = socketSynSent();
    recv(s);
    const synAck: Partial<IncomingSegment> = { seq: REMOTE_SEQ, ack: L(1), flags: SYN | ACK, options: [MSS(1460)] };
    send(s, synAck);
    expect(recv(s)).toEqual([out()]);
    send(s, synAck);
    expect(recv(s)).toEqual([out()]);
    expect(s.conn.state).toBe('ESTABLISHED');
  });

  test('ESTABLISHED: FIN → CLOSE-WAIT, FIN acknowledged', () => {
    const s = socketEstablished();
    send(s, { flags: FIN | ACK, payload: bytes('bye') });
    expect(s.conn.state).toBe('CLOSE-WAIT');
    expect(s.remoteEnd).toBe(1);
    // The FIN takes an octet too: the right edge of the window stays put.
    expect(recv(s)).toEqual([out({ ack: R(5), window: RCV_BUF - 4 })]);
    expect(s.conn.read()).toEqual(bytes('bye'));
    expect(s.conn.atEof).toBe(true);
  });

  test('ESTABLISHED: out-of-order FIN → CLOSE-WAIT only once the data before it arrives', () => {
    const s = socketEstablished();
    send(s, { seq: R(4), flags: FIN | ACK, payload: bytes('def') });
    expect(s.conn.state).toBe('ESTABLISHED');
    expect(recv(s)).toEqual([out()]);
    send(s, { payload: bytes('abc') });
    expect(s.conn.state).toBe('CLOSE-WAIT');
    expect(recv(s)).toEqual([out({ ack: R(8), window: RCV_BUF - 7 })]);
  });

  test('ESTABLISHED: CLOSE → FIN-WAIT-1, FIN sent', () => {
    socketFinWait1();
  });

  test('ESTABLISHED: CLOSE with unsent data → the data, then FIN', () => {
    const s = socketEstablished();
    s.conn.send(bytes('hello'));
    s.conn.close();
    expect(recv(s)).toEqual([out({ flags: FIN | PSH | ACK, payload: bytes('hello') })]);
    expect(s.conn.state).toBe('FIN-WAIT-1');
    send(s, { ack: L(6) });
    expect(s.conn.state).toBe('FIN-WAIT-1');
    send(s, { ack: L(7) });
    expect(s.conn.state).toBe('FIN-WAIT-2');
  });

  test('ESTABLISHED: CLOSE with more unsent data than fits a segment → segments, FIN on the last', () => {
    const s = socketEstablished();
    s.conn.send(filled(2000));
    s.conn.close();
    const segs = recv(s);
    expect(segs.map((x) => [x.seq, x.payload.length, x.flags])).toEqual([
      [L(1), 1460, 'ACK'],
      [L(1461), 540, 'FIN|PSH|ACK'],
    ]);
  });

  test('ESTABLISHED: CLOSE with unread data → RST (RFC 2525 §2.17)', () => {
    const s = socketEstablished();
    send(s, { payload: bytes('unread') });
    recv(s);
    s.conn.close();
    expect(recv(s)).toEqual([out({ ...RST_TEMPL })]);
    expect(s.conn.state).toBe('CLOSED');
  });

  test('ESTABLISHED: ABORT → RST <SEQ=SND.NXT>, CLOSED', () => {
    const s = socketEstablished();
    s.conn.send(bytes('abc'));
    recv(s);
    s.conn.abort();
    expect(recv(s)).toEqual([out({ ...RST_TEMPL, seq: L(4) })]);
    expect(s.conn.state).toBe('CLOSED');
    expect(s.conn.pollAt()).toBeUndefined();
    recvNothing(s);
  });

  test('ESTABLISHED: shutdownWrite → FIN-WAIT-1, receiving continues', () => {
    const s = socketEstablished();
    s.conn.shutdownWrite();
    expect(recv(s)).toEqual([out({ flags: FIN | ACK })]);
    send(s, { ack: L(2), payload: bytes('more') });
    expect(s.conn.state).toBe('FIN-WAIT-2');
    expect(recv(s)).toEqual([out({ seq: L(2), ack: R(5), window: RCV_BUF - 4 })]);
    expect(s.conn.read()).toEqual(bytes('more'));
  });
});

// ================================================================== acceptability (RFC 9293 §3.10.7.4)

describe('segment acceptability: the four cases', () => {
  /** ESTABLISHED with our receive buffer full (RCV.WND = 0) and 5 bytes of ours in flight. */
  function socketZeroWindow(): Socket {
    const s = socketEstablished();
    s.conn.send(bytes('hello'));
    recv(s);
    send(s, { payload: filled(RCV_BUF) });
    expect(recv(s)).toEqual([out({ seq: L(6), ack: R(1 + RCV_BUF), window: 0 })]);
    return s;
  }

  test('RCV.WND = 0, length 0: acceptable at RCV.NXT (its ACK is processed)', () => {
    const s = socketZeroWindow();
    send(s, { seq: R(1 + RCV_BUF), ack: L(6) });
    expect(s.conn.sndUna).toBe(L(6));
    recvNothing(s);
  });

  test('RCV.WND = 0, length 0: not acceptable elsewhere → ACK', () => {
    const s = socketZeroWindow();
    send(s, { seq: R(2 + RCV_BUF), ack: L(6) });
    expect(s.conn.sndUna).toBe(L(1));
    expect(recv(s)).toEqual([out({ seq: L(6), ack: R(1 + RCV_BUF), window: 0 })]);
  });

  test('RCV.WND = 0, length > 0: not acceptable → ACK; a valid ACK in it is still used', () => {
    const s = socketZeroWindow();
    send(s, { seq: R(1 + RCV_BUF), ack: L(6), payload: bytes('x') });
    expect(recv(s)).toEqual([out({ seq: L(6), ack: R(1 + RCV_BUF), window: 0 })]);
    expect(s.conn.readable).toBe(RCV_BUF);
    // RFC 9293 §3.10.7.4: "special allowance should be made to accept valid ACKs".
    expect(s.conn.sndUna).toBe(L(6));
  });

  test('RCV.WND > 0, length 0: acceptable iff RCV.NXT ≤ SEG.SEQ < RCV.NXT+RCV.WND', () => {
    const s = socketEstablished();
    s.conn.send(bytes('hello'));
    recv(s);
    // Last octet of the window: acceptable (the ACK is processed, nothing sent).
    send(s, { seq: R(RCV_BUF), ack: L(3) });
    expect(s.conn.sndUna).toBe(L(3));
    recvNothing(s);
    // Just past the window: not acceptable.
    send(s, { seq: R(1 + RCV_BUF), ack: L(6) });
    expect(s.conn.sndUna).toBe(L(3));
    expect(recv(s)).toEqual([out({ seq: L(6) })]);
  });

  test('RCV.WND > 0, length > 0: acceptable if either end is in the window', () => {
    const s = socketEstablished();
    // Starts before RCV.NXT, ends inside: the new part is kept.
    send(s, { seq: R(0), payload: bytes('xab') });
    expect(s.conn.readable).toBe(2);
    recv(s);
    // Starts inside at the last octet, ends beyond: the in-window octet is kept.
    const s2 = socketEstablished();
    send(s2, { seq: R(RCV_BUF), payload: bytes('zz') });
    expect(s2.conn.stats.outOfWindowDrops).toBe(0);
    // Entirely beyond: not acceptable.
    const s3 = socketEstablished();
    send(s3, { seq: R(1 + RCV_BUF), payload: bytes('zz') });
    expect(s3.conn.stats.outOfWindowDrops).toBe(1);
    expect(recv(s3)).toEqual([out()]);
  });
});

// ================================================================== closing

describe('closing', () => {
  test('FIN-WAIT-1: ACK of FIN → FIN-WAIT-2', () => {
    socketFinWait2();
  });

  test('FIN-WAIT-1: FIN → CLOSING, ACK sent (simultaneous close)', () => {
    const s = socketFinWait1();
    send(s, { flags: FIN | ACK, ack: L(1) });
    expect(s.conn.state).toBe('CLOSING');
    expect(recv(s)).toEqual([out({ seq: L(2), ack: R(2), window: RCV_BUF - 1 })]);
  });

  test('CLOSING: ACK of FIN → TIME-WAIT, nothing sent', () => {
    const s = socketFinWait1();
    send(s, { flags: FIN | ACK, ack: L(1) });
    recv(s);
    send(s, { seq: R(2), ack: L(2) });
    expect(s.conn.state).toBe('TIME-WAIT');
    recvNothing(s);
  });

  test('CLOSING: retransmitted FIN → ACK again', () => {
    const s = socketFinWait1();
    send(s, { flags: FIN | ACK, ack: L(1) });
    recv(s);
    send(s, { flags: FIN | ACK, ack: L(1) });
    expect(recv(s)).toEqual([out({ seq: L(2), ack: R(2), window: RCV_BUF - 1 })]);
    expect(s.conn.state).toBe('CLOSING');
  });

  test('CLOSING: RST → CLOSED without error', () => {
    const s = socketFinWait1();
    send(s, { flags: FIN | ACK, ack: L(1) });
    recv(s);
    send(s, { seq: R(2), flags: RST, ack: 0 });
    expect(s.conn.state).toBe('CLOSED');
    expect(s.closed).toEqual({ error: undefined });
  });

  test('FIN-WAIT-1: FIN with ACK of our FIN → TIME-WAIT', () => {
    const s = socketFinWait1();
    send(s, { flags: FIN | ACK, ack: L(2) });
    expect(s.conn.state).toBe('TIME-WAIT');
    expect(recv(s)).toEqual([out({ seq: L(2), ack: R(2), window: RCV_BUF - 1 })]);
  });

  test('FIN-WAIT-1: FIN retransmitted on timeout', () => {
    const s = socketFinWait1();
    advance(s, RTO);
    expect(recv(s)).toEqual([out({ flags: FIN | ACK })]);
    expect(s.conn.state).toBe('FIN-WAIT-1');
    send(s, { ack: L(2) });
    expect(s.conn.state).toBe('FIN-WAIT-2');
  });

  test('FIN-WAIT-1: data after CLOSE → RST', () => {
    const s = socketFinWait1();
    send(s, { payload: bytes('late') });
    expect(recv(s)).toEqual([out({ ...RST_TEMPL, seq: L(2) })]);
    expect(s.conn.state).toBe('CLOSED');
  });

  test('FIN-WAIT-2: FIN → TIME-WAIT, ACK sent', () => {
    const s = socketFinWait2();
    send(s, { flags: FIN | ACK, ack: L(2) });
    expect(s.conn.state).toBe('TIME-WAIT');
    expect(recv(s)).toEqual([out({ seq: L(2), ack: R(2), window: RCV_BUF - 1 })]);
  });

  test('FIN-WAIT-2: data after CLOSE → RST', () => {
    const s = socketFinWait2();
    send(s, { ack: L(2), payload: bytes('late') });
    expect(recv(s)).toEqual([out({ ...RST_TEMPL, seq: L(2) })]);
    expect(s.conn.state).toBe('CLOSED');
  });

  test('FIN-WAIT-2: orphaned by CLOSE → CLOSED after finWait2TimeoutMs', () => {
    const s = socketFinWait2({ config: { finWait2TimeoutMs: 5000 } });
    advance(s, 4999);
    expect(s.conn.state).toBe('FIN-WAIT-2');
    advance(s, 1);
    expect(s.conn.state).toBe('CLOSED');
  });

  test('TIME-WAIT: 2*MSL → CLOSED', () => {
    const s = socketFinWait2({ config: { mslMs: 1000 } });
    send(s, { flags: FIN | ACK, ack: L(2) });
    recv(s);
    advance(s, 1999);
    expect(s.conn.state).toBe('TIME-WAIT');
    advance(s, 1);
    expect(s.conn.state).toBe('CLOSED');
    expect(s.closed).toEqual({ error: undefined });
    recvNothing(s);
  });

  test('TIME-WAIT: retransmitted FIN → ACK again, 2*MSL restarted', () => {
    const s = socketFinWait2({ config: { mslMs: 1000 } });
    send(s, { flags: FIN | ACK, ack: L(2) });
    recv(s);
    advance(s, 1500);
    send(s, { flags: FIN | ACK, ack: L(2) });
    expect(recv(s)).toEqual([out({ seq: L(2), ack: R(2), window: RCV_BUF - 1 })]);
    advance(s, 1999);
    expect(s.conn.state).toBe('TIME-WAIT');
    advance(s, 1);
    expect(s.conn.state).toBe('CLOSED');
  });

  test('TIME-WAIT: CLOSE is a no-op', () => {
    const s = socketFinWait2();
    send(s, { flags: FIN | ACK, ack: L(2) });
    recv(s);
    s.conn.close();
    expect(s.conn.state).toBe('TIME-WAIT');
    recvNothing(s);
  });

  test('CLOSE-WAIT: data can still be sent', () => {
    const s = socketCloseWait();
    s.conn.send(bytes('reply'));
    expect(recv(s)).toEqual([out({ ack: R(2), window: RCV_BUF - 1, flags: PSH | ACK, payload: bytes('reply') })]);
  });

  test('CLOSE-WAIT: CLOSE → LAST-ACK, FIN sent', () => {
    const s = socketCloseWait();
    s.conn.close();
    expect(recv(s)).toEqual([out({ ack: R(2), window: RCV_BUF - 1, flags: FIN | ACK })]);
    expect(s.conn.state).toBe('LAST-ACK');
  });

  test('CLOSE-WAIT: RST at RCV.NXT → CLOSED (ECONNRESET)', () => {
    const s = socketCloseWait();
    send(s, { seq: R(2), flags: RST, ack: 0 });
    expect(s.conn.state).toBe('CLOSED');
    expect(s.closed?.error?.code).toBe('ECONNRESET');
  });

  test('LAST-ACK: ACK of FIN → CLOSED', () => {
    const s = socketCloseWait();
    s.conn.close();
    recv(s);
    send(s, { seq: R(2), ack: L(2) });
    expect(s.conn.state).toBe('CLOSED');
    expect(s.closed).toEqual({ error: undefined });
    recvNothing(s);
  });

  test('LAST-ACK: RST at RCV.NXT → CLOSED without error', () => {
    const s = socketCloseWait();
    s.conn.close();
    recv(s);
    send(s, { seq: R(2), flags: RST, ack: 0 });
    expect(s.conn.state).toBe('CLOSED');
    expect(s.closed).toEqual({ error: undefined });
  });

  test('TIME-WAIT: RST at RCV.NXT → CLOSED without error', () => {
    const s = socketFinWait2();
    send(s, { flags: FIN | ACK, ack: L(2) });
    recv(s);
    send(s, { seq: R(2), flags: RST, ack: 0 });
    expect(s.conn.state).toBe('CLOSED');
    expect(s.closed).toEqual({ error: undefined });
  });

  test("TIME-WAIT: segment text after the peer's FIN is ignored (RFC 9293 §3.10.7.4 seventh)", () => {
    const s = socketFinWait2();
    send(s, { flags: FIN | ACK, ack: L(2) });
    recv(s);
    send(s, { seq: R(2), ack: L(2), payload: bytes('x') });
    expect(s.conn.readable).toBe(0);
    expect(s.conn.rcvNxt).toBe(R(1));
    expect(s.conn.state).toBe('TIME-WAIT');
  });

  test('LAST-ACK: FIN retransmitted on timeout', () => {
    const s = socketCloseWait();
    s.conn.close();
    recv(s);
    advance(s, RTO);
    expect(recv(s)).toEqual([out({ ack: R(2), window: RCV_BUF - 1, flags: FIN | ACK })]);
    expect(s.conn.state).toBe('LAST-ACK');
  });
});

// ================================================================== RFC 5961

describe('RFC 5961 blind-attack mitigations', () => {
  test('ESTABLISHED: RST at RCV.NXT → CLOSED (ECONNRESET)', () => {
    const s = socketEstablished();
    send(s, { flags: RST, ack: 0 });
    expect(s.conn.state).toBe('CLOSED');
    expect(s.closed?.error?.code).toBe('ECONNRESET');
    recvNothing(s);
  });

  test('ESTABLISHED: RST in the window but not at RCV.NXT → challenge ACK (§3.2)', () => {
    const s = socketEstablished();
    send(s, { seq: R(100), flags: RST, ack: 0 });
    expect(s.conn.state).toBe('ESTABLISHED');
    expect(recv(s)).toEqual([out()]);
    expect(s.conn.stats.challengeAcks).toBe(1);
  });

  test('ESTABLISHED: RST outside the window → dropped silently', () => {
    const s = socketEstablished();
    send(s, { seq: R(1 + RCV_BUF), flags: RST, ack: 0 });
    send(s, { seq: R(0), flags: RST, ack: 0 });
    expect(s.conn.state).toBe('ESTABLISHED');
    recvNothing(s);
  });

  test('FIN-WAIT-2: RST at RCV.NXT → CLOSED (ECONNRESET)', () => {
    const s = socketFinWait2();
    send(s, { flags: RST, ack: 0 });
    expect(s.conn.state).toBe('CLOSED');
    expect(s.closed?.error?.code).toBe('ECONNRESET');
  });

  test('ESTABLISHED: SYN in window → challenge ACK, connection unchanged (§4.2)', () => {
    const s = socketEstablished();
    send(s, { seq: R(5), ack: 0, flags: SYN, options: [MSS(1460)] });
    expect(s.conn.state).toBe('ESTABLISHED');
    expect(recv(s)).toEqual([out()]);
  });

  test('ESTABLISHED: SYN at RCV.NXT → challenge ACK, not a reset', () => {
    const s = socketEstablished();
    send(s, { seq: R(1), flags: SYN | ACK });
    expect(s.conn.state).toBe('ESTABLISHED');
    expect(recv(s)).toEqual([out()]);
  });

  test('ESTABLISHED: ACK older than SND.UNA − MAX.SND.WND → challenge ACK, data dropped (§5.2)', () => {
    const s = socketEstablished();
    send(s, { ack: L(1 - PEER_WINDOW - 1), payload: bytes('abc') });
    expect(recv(s)).toEqual([out()]);
    expect(s.conn.readable).toBe(0);
    expect(s.conn.stats.challengeAcks).toBe(1);
  });

  test('ESTABLISHED: old ACK within MAX.SND.WND → ignored, data accepted', () => {
    const s = socketEstablished();
    send(s, { ack: L(1 - PEER_WINDOW), payload: bytes('abc') });
    expect(recv(s)).toEqual([out({ ack: R(4), window: RCV_BUF - 3 })]);
    expect(s.conn.readable).toBe(3);
    expect(s.conn.sndUna).toBe(L(1));
  });

  test('ESTABLISHED: challenge ACKs limited to 10 a second (§7)', () => {
    const s = socketEstablished();
    for (let i = 0; i < 10; i++) {
      send(s, { seq: R(100 + i), flags: RST, ack: 0 });
      expect(recv(s)).toEqual([out()]);
    }
    send(s, { seq: R(200), flags: RST, ack: 0 });
    recvNothing(s);
    send(s, { seq: R(5), ack: 0, flags: SYN });
    recvNothing(s);
    advance(s, 1000);
    send(s, { seq: R(201), flags: RST, ack: 0 });
    expect(recv(s)).toEqual([out()]);
    expect(s.conn.state).toBe('ESTABLISHED');
  });
});

// ================================================================== options

describe('MSS (RFC 9293 §3.7.1)', () => {
  test('SYN announces MTU − 40 on IPv4', () => {
    const s = socketSynSent({ mtu: 1400 });
    expect(recv(s)[0]!.options).toEqual([MSS(1360)]);
  });

  test('SYN announces MTU − 60 on IPv6', () => {
    const s = socketSynSent({ mtu: 1500, v6: true });
    expect(recv(s)[0]!.options).toEqual([MSS(1440)]);
  });

  test('maxMss caps the announced MSS', () => {
    const s = socketSynReceived({ config: { maxMss: 1000 } });
    expect(recv(s)[0]!.options).toEqual([MSS(1000)]);
  });

  test('peer MSS defaults to 536 on IPv4 without the option', () => {
    const s = socketEstablished({ config: { noDelay: true } }, []);
    expect(s.conn.peerMss).toBe(536);
    s.conn.send(filled(1000));
    expect(recv(s).map((x) => x.payload.length)).toEqual([536, 464]);
  });

  test('peer MSS defaults to 1220 on IPv6 without the option', () => {
    const s = socketEstablished({ v6: true }, []);
    expect(s.conn.peerMss).toBe(1220);
  });

  test('segments are sized by the smaller of both MSS values', () => {
    const s = socketEstablished({ config: { noDelay: true } }, [MSS(1000)]);
    s.conn.send(filled(1500));
    expect(recv(s).map((x) => x.payload.length)).toEqual([1000, 500]);
  });
});

describe('window scale (RFC 7323 §2)', () => {
  test('passive: negotiated when both offer; the SYN window is never scaled', () => {
    const s = socketSynReceived(
      { config: { windowScaling: true, receiveBuffer: 256 * 1024 } },
      {
        options: [MSS(1460), WSCALE(2)],
        window: 1000,
      },
    );
    expect(s.conn.sndWnd).toBe(1000);
    expect(recv(s)).toEqual([
      out({ seq: LOCAL_SEQ, flags: SYN | ACK, window: 0xffff, options: [MSS(1460), NOP, WSCALE(3)] }),
    ]);
    send(s, { window: 1000 });
    expect(s.conn.windowScalingEnabled).toBe(true);
    expect(s.conn.sndWnd).toBe(4000);
    send(s, { payload: bytes('abc') });
    expect(recv(s)).toEqual([out({ ack: R(4), window: Math.floor((256 * 1024 - 3) / 8) })]);
  });

  test('passive: not offered by the peer → not in the SYN-ACK, no scaling either way', () => {
    const s = socketSynReceived({ config: { windowScaling: true, receiveBuffer: 256 * 1024 } }, { window: 1000 });
    expect(recv(s)).toEqual([out({ seq: LOCAL_SEQ, flags: SYN | ACK, window: 0xffff, options: [MSS(1460)] })]);
    send(s, { window: 1000 });
    expect(s.conn.windowScalingEnabled).toBe(false);
    expect(s.conn.sndWnd).toBe(1000);
    send(s, { payload: bytes('abc') });
    expect(recv(s)).toEqual([out({ ack: R(4), window: 0xffff })]);
  });

  test('active: offered on the SYN; a SYN-ACK without it disables scaling', () => {
    const s = socketSynSent({ config: { windowScaling: true, receiveBuffer: 256 * 1024 } });
    expect(recv(s)).toEqual([
      out({ seq: LOCAL_SEQ, ack: 0, flags: SYN, window: 0xffff, options: [MSS(1460), NOP, WSCALE(3)] }),
    ]);
    send(s, { seq: REMOTE_SEQ, flags: SYN | ACK, window: 1000, options: [MSS(1460)] });
    expect(recv(s)).toEqual([out({ window: 0xffff })]);
    send(s, { window: 1000 });
    expect(s.conn.sndWnd).toBe(1000);
  });

  test('active: shift above 14 is treated as 14 (§2.3)', () => {
    const s = socketSynSent({ config: { windowScaling: true } });
    recv(s);
    send(s, { seq: REMOTE_SEQ, flags: SYN | ACK, window: 1, options: [MSS(1460), WSCALE(15)] });
    expect(s.conn.sndWscale).toBe(14);
    expect(s.conn.sndWnd).toBe(1);
    send(s, { window: 1 });
    expect(s.conn.sndWnd).toBe(1 << 14);
  });
});

describe('SACK (RFC 2018)', () => {
  test('passive: SACK-permitted answered only when the peer offers it', () => {
    const yes = socketSynReceived({ config: { sack: true } }, { options: [MSS(1460), SACK_PERM] });
    expect(recv(yes)[0]!.options).toEqual([MSS(1460), SACK_PERM]);
    expect(yes.conn.sackEnabled).toBe(true);
    const no = socketSynReceived({ config: { sack: true } });
    expect(recv(no)[0]!.options).toEqual([MSS(1460)]);
    expect(no.conn.sackEnabled).toBe(false);
    const off = socketSynReceived({ config: { sack: false } }, { options: [MSS(1460), SACK_PERM] });
    expect(recv(off)[0]!.options).toEqual([MSS(1460)]);
    expect(off.conn.sackEnabled).toBe(false);
  });

  test('active: offered on the SYN, enabled only if the SYN-ACK has it', () => {
    const s = socketSynSent({ config: { sack: true } });
    expect(recv(s)[0]!.options).toEqual([MSS(1460), SACK_PERM]);
    send(s, { seq: REMOTE_SEQ, flags: SYN | ACK, options: [MSS(1460)] });
    expect(s.conn.sackEnabled).toBe(false);
  });

  test('ESTABLISHED: out-of-order data → SACK blocks, most recent first (§4)', () => {
    const s = socketEstablished({ config: { sack: true } }, [MSS(1460), SACK_PERM]);
    const block = (a: number, b: number): SackBlock => ({ left: R(a), right: R(b) });
    send(s, { seq: R(101), payload: filled(100) });
    expect(recv(s)).toEqual([out({ options: [NOP, NOP, SACK(block(101, 201))] })]);
    send(s, { seq: R(301), payload: filled(100) });
    expect(recv(s)).toEqual([out({ options: [NOP, NOP, SACK(block(301, 401), block(101, 201))] })]);
    send(s, { seq: R(501), payload: filled(100) });
    expect(recv(s)).toEqual([out({ options: [NOP, NOP, SACK(block(501, 601), block(301, 401), block(101, 201))] })]);
    // Extending an older block makes it the first one again.
    send(s, { seq: R(401), payload: filled(50) });
    expect(recv(s)).toEqual([out({ options: [NOP, NOP, SACK(block(301, 451), block(501, 601), block(101, 201))] })]);
    // Filling the first hole: the ACK moves and the block it joined is gone.
    send(s, { seq: R(1), payload: filled(100) });
    expect(recv(s)).toEqual([
      out({ ack: R(201), window: RCV_BUF - 200, options: [NOP, NOP, SACK(block(301, 451), block(501, 601))] }),
    ]);
  });
});

describe('timestamps (RFC 7323 §3–5)', () => {
  const PEER_TS = 5000;
  /** ESTABLISHED with timestamps: the peer's clock at PEER_TS (+1 on its ACK). Ours is `now`. */
  function socketTs(opts: FixtureOptions = {}): Socket {
    return socketEstablished(
      { ...opts, config: { timestamps: true, ...opts.config } },
      [MSS(1460), TS(PEER_TS, 0)],
      [TS(PEER_TS + 1, START)],
    );
  }

  test('passive: SYN-ACK echoes the SYN timestamp; later segments carry NOP NOP TS', () => {
    const s = socketSynReceived({ config: { timestamps: true } }, { options: [MSS(1460), TS(PEER_TS, 0)] });
    expect(recv(s)).toEqual([out({ seq: LOCAL_SEQ, flags: SYN | ACK, options: [MSS(1460), TS(START, PEER_TS)] })]);
    send(s, { options: [TS(PEER_TS + 1, START)] });
    expect(s.conn.timestampsEnabled).toBe(true);
    s.conn.send(bytes('x'));
    expect(recv(s)).toEqual([
      out({ flags: PSH | ACK, payload: bytes('x'), options: [NOP, NOP, TS(START, PEER_TS + 1)] }),
    ]);
  });

  test('passive: not negotiated when the peer does not offer it', () => {
    const s = socketSynReceived({ config: { timestamps: true } });
    expect(recv(s)[0]!.options).toEqual([MSS(1460)]);
    send(s);
    s.conn.send(bytes('x'));
    expect(recv(s)[0]!.options).toEqual([]);
  });

  test('active: SYN carries TSval with TSecr 0', () => {
    const s = socketSynSent({ config: { timestamps: true } });
    expect(recv(s)[0]!.options).toEqual([MSS(1460), TS(START, 0)]);
  });

  test('PAWS: a segment with an older TSval is dropped and ACKed (§5.3)', () => {
    const s = socketTs();
    send(s, { payload: bytes('old'), options: [TS(PEER_TS - 1, START)] });
    expect(s.conn.readable).toBe(0);
    expect(s.conn.stats.pawsDrops).toBe(1);
    expect(recv(s)).toEqual([out({ options: [NOP, NOP, TS(s.now, PEER_TS + 1)] })]);
  });

  test('PAWS: an RST is not subject to it', () => {
    const s = socketTs();
    send(s, { flags: RST, ack: 0, options: [TS(PEER_TS - 1, START)] });
    expect(s.conn.state).toBe('CLOSED');
  });

  test('TS.Recent is updated only from segments covering Last.ACK.sent (§4.3)', () => {
    const s = socketTs();
    // Out of order (beyond Last.ACK.sent): TS.Recent stays.
    send(s, { seq: R(11), payload: filled(10), options: [TS(PEER_TS + 50, START)] });
    expect(recv(s)).toEqual([out({ options: [NOP, NOP, TS(s.now, PEER_TS + 1)] })]);
    // In order: TS.Recent takes its TSval.
    send(s, { seq: R(1), payload: filled(10), options: [TS(PEER_TS + 60, START)] });
    expect(recv(s)).toEqual([out({ ack: R(21), window: RCV_BUF - 20, options: [NOP, NOP, TS(s.now, PEER_TS + 60)] })]);
  });

  test('RTT is measured from TSecr (§4.1)', () => {
    const s = socketTs();
    // The handshake ACK echoed the SYN-ACK's TSval: the first sample.
    expect(s.conn.rtt.latestRttMs).toBe(HANDSHAKE_RTT);
    const sentAt = s.now;
    s.conn.send(bytes('ping'));
    expect(recv(s)[0]!.options).toEqual([NOP, NOP, TS(sentAt, PEER_TS + 1)]);
    advance(s, 50);
    // The peer delays its ACK and echoes its TS.Recent, older than our segment: RTT = now − TSecr.
    send(s, { ack: L(5), options: [TS(PEER_TS + 2, sentAt - 20)] });
    expect(s.conn.rtt.latestRttMs).toBe(70);
  });

  test('data payload shrinks by the 12 option bytes', () => {
    const s = socketTs({ config: { noDelay: true } });
    s.conn.send(filled(2000));
    expect(recv(s).map((x) => x.payload.length)).toEqual([1448, 552]);
  });
});

// ================================================================== retransmission and timers

describe('retransmission (RFC 6298)', () => {
  test('ESTABLISHED: unacknowledged data retransmitted on RTO, RTO doubling', () => {
    const s = socketEstablished();
    s.conn.send(bytes('hello'));
    const seg = out({ flags: PSH | ACK, payload: bytes('hello') });
    expect(recv(s)).toEqual([seg]);
    for (const rto of [RTO, 2 * RTO, 4 * RTO]) {
      advance(s, rto - 1);
      recvNothing(s);
      advance(s, 1);
      expect(recv(s)).toEqual([seg]);
    }
    send(s, { ack: L(6) });
    expect(s.conn.pollAt()).toBeUndefined();
  });

  test('ESTABLISHED: gives up after maxRetransmits → CLOSED (ETIMEDOUT)', () => {
    const s = socketEstablished({ config: { maxRetransmits: 2 } });
    s.conn.send(bytes('hello'));
    recv(s);
    advance(s, RTO);
    expect(recv(s)).toHaveLength(1);
    advance(s, 2 * RTO);
    expect(recv(s)).toHaveLength(1);
    advance(s, 4 * RTO - 1);
    expect(s.conn.state).toBe('ESTABLISHED');
    advance(s, 1);
    expect(s.conn.state).toBe('CLOSED');
    expect(s.closed?.error?.code).toBe('ETIMEDOUT');
  });

  test('ESTABLISHED: user timeout aborts when data stays unacknowledged that long (RFC 5482)', () => {
    const s = socketEstablished({ config: { userTimeoutMs: 1000 } });
    s.conn.send(bytes('hello'));
    recv(s);
    advance(s, RTO);
    expect(recv(s)).toHaveLength(1);
    advance(s, 2 * RTO);
    expect(recv(s)).toHaveLength(1);
    // The next RTO would expire at 7*RTO = 2100 ms; the user timeout comes first.
    advance(s, 1000 - 3 * RTO - 1);
    expect(s.conn.state).toBe('ESTABLISHED');
    advance(s, 1);
    expect(s.conn.state).toBe('CLOSED');
    expect(s.closed?.error?.code).toBe('ETIMEDOUT');
  });

  test('ESTABLISHED: three duplicate ACKs → fast retransmit (RFC 5681 §3.2)', () => {
    const s = socketEstablished();
    s.conn.send(filled(4 * 1460));
    expect(recv(s).map((x) => x.seq)).toEqual([L(1), L(1461), L(2921), L(4381)]);
    send(s);
    recvNothing(s);
    send(s);
    recvNothing(s);
    send(s);
    const segs = recv(s);
    expect(segs).toEqual([out({ payload: filled(1460) })]);
    expect(s.conn.stats.fastRetransmits).toBe(1);
    expect(s.conn.stats.dupAcksIn).toBe(3);
  });

  test('ESTABLISHED: ACKs that change the window are not duplicates', () => {
    const s = socketEstablished();
    s.conn.send(filled(4 * 1460));
    recv(s);
    send(s, { window: PEER_WINDOW + 1 });
    send(s, { window: PEER_WINDOW + 2 });
    send(s, { window: PEER_WINDOW + 3 });
    recvNothing(s);
    expect(s.conn.stats.fastRetransmits).toBe(0);
  });
});

describe('zero window (RFC 9293 §3.8.6.1)', () => {
  test('ESTABLISHED: data waits on a zero window; probes back off; window opens → data', () => {
    const s = socketSynReceived();
    recv(s);
    advance(s, HANDSHAKE_RTT);
    send(s, { window: 0 });
    s.conn.send(bytes('hello'));
    recvNothing(s);
    const probe = out({ seq: LOCAL_SEQ });
    advance(s, RTO - 1);
    recvNothing(s);
    advance(s, 1);
    expect(recv(s)).toEqual([probe]);
    // The peer answers: still zero.
    send(s, { window: 0 });
    recvNothing(s);
    advance(s, 2 * RTO - 1);
    recvNothing(s);
    advance(s, 1);
    expect(recv(s)).toEqual([probe]);
    expect(s.conn.stats.zeroWindowProbes).toBe(2);
    send(s, { window: PEER_WINDOW });
    expect(recv(s)).toEqual([out({ flags: PSH | ACK, payload: bytes('hello') })]);
  });

  test('ESTABLISHED: the window sent shrinks to zero as our buffer fills and reopens on read', () => {
    const s = socketEstablished();
    send(s, { payload: filled(RCV_BUF) });
    expect(recv(s)).toEqual([out({ ack: R(1 + RCV_BUF), window: 0 })]);
    s.conn.read();
    expect(recv(s)).toEqual([out({ ack: R(1 + RCV_BUF), window: RCV_BUF })]);
  });
});

describe('keepalive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6)', () => {
  const KA = { keepAlive: true, keepAliveIdleMs: 10_000, keepAliveIntervalMs: 1000, keepAliveProbes: 3 };

  test('ESTABLISHED: idle → probe <SEQ=SND.NXT−1>; an answer restarts the idle timer', () => {
    const s = socketEstablished({ config: KA });
    advance(s, 9999);
    recvNothing(s);
    advance(s, 1);
    expect(recv(s)).toEqual([out({ seq: LOCAL_SEQ })]);
    send(s);
    recvNothing(s);
    advance(s, 9999);
    recvNothing(s);
    advance(s, 1);
    expect(recv(s)).toEqual([out({ seq: LOCAL_SEQ })]);
    expect(s.conn.stats.keepAliveProbes).toBe(2);
  });

  test('ESTABLISHED: keepAliveProbes unanswered → CLOSED (ETIMEDOUT)', () => {
    const s = socketEstablished({ config: KA });
    advance(s, 10_000);
    expect(recv(s)).toHaveLength(1);
    advance(s, 1000);
    expect(recv(s)).toHaveLength(1);
    advance(s, 1000);
    expect(recv(s)).toHaveLength(1);
    advance(s, 999);
    expect(s.conn.state).toBe('ESTABLISHED');
    advance(s, 1);
    expect(s.conn.state).toBe('CLOSED');
    expect(s.closed?.error?.code).toBe('ETIMEDOUT');
  });

  test('ESTABLISHED: no probes unless enabled', () => {
    const s = socketEstablished();
    expect(s.conn.pollAt()).toBeUndefined();
  });
});

describe('delayed ACK (RFC 9293 §3.8.6.3, RFC 5681 §4.2)', () => {
  test('quick ACKs first, then ACK after delayedAckMs', () => {
    const s = socketEstablished({ config: { quickAcks: 1, delayedAckMs: 40 } });
    send(s, { payload: bytes('a') });
    expect(recv(s)).toEqual([out({ ack: R(2), window: RCV_BUF - 1 })]);
    send(s, { seq: R(2), payload: bytes('b') });
    recvNothing(s);
    advance(s, 39);
    recvNothing(s);
    advance(s, 1);
    expect(recv(s)).toEqual([out({ ack: R(3), window: RCV_BUF - 2 })]);
  });

  test('out-of-order data is ACKed at once (RFC 5681 §4.2)', () => {
    const s = socketEstablished({ config: { quickAcks: 0 } });
    send(s, { seq: R(2), payload: bytes('b') });
    expect(recv(s)).toEqual([out()]);
    // The segment that fills the hole is ACKed at once too.
    send(s, { seq: R(1), payload: bytes('a') });
    expect(recv(s)).toEqual([out({ ack: R(3), window: RCV_BUF - 2 })]);
  });

  test('every second full-sized segment is ACKed at once', () => {
    const s = socketEstablished({ config: { quickAcks: 0, receiveBuffer: 64 * 1024 - 1 } });
    const w = 64 * 1024 - 1;
    send(s, { payload: filled(1460) });
    recvNothing(s);
    send(s, { seq: R(1461), payload: filled(1460) });
    expect(recv(s)).toEqual([out({ ack: R(2921), window: w - 2920 })]);
    send(s, { seq: R(2921), payload: filled(1460) });
    recvNothing(s);
  });

  test('an ACK carried on data cancels the delayed ACK', () => {
    const s = socketEstablished({ config: { quickAcks: 0 } });
    send(s, { payload: bytes('q') });
    recvNothing(s);
    s.conn.send(bytes('r'));
    expect(recv(s)).toEqual([out({ ack: R(2), window: RCV_BUF - 1, flags: PSH | ACK, payload: bytes('r') })]);
    advance(s, 40);
    recvNothing(s);
  });
});

describe("Nagle's algorithm (RFC 9293 §3.7.4)", () => {
  test('a small segment waits while data is outstanding', () => {
    const s = socketEstablished();
    s.conn.send(bytes('a'));
    expect(recv(s)).toEqual([out({ flags: PSH | ACK, payload: bytes('a') })]);
    s.conn.send(bytes('b'));
    recvNothing(s);
    s.conn.send(bytes('c'));
    recvNothing(s);
    send(s, { ack: L(2) });
    expect(recv(s)).toEqual([out({ seq: L(2), flags: PSH | ACK, payload: bytes('bc') })]);
  });

  test('TCP_NODELAY sends at once', () => {
    const s = socketEstablished({ config: { noDelay: true } });
    s.conn.send(bytes('a'));
    expect(recv(s)).toEqual([out({ flags: PSH | ACK, payload: bytes('a') })]);
    s.conn.send(bytes('b'));
    expect(recv(s)).toEqual([out({ seq: L(2), flags: PSH | ACK, payload: bytes('b') })]);
  });

  test('a full-sized segment is not held', () => {
    const s = socketEstablished();
    s.conn.send(bytes('a'));
    recv(s);
    s.conn.send(filled(1460));
    expect(recv(s).map((x) => [x.seq, x.payload.length])).toEqual([[L(2), 1460]]);
  });
});

describe('regressions found in review', () => {
  test('FIN-WAIT-1: a FIN resent after a timeout keeps its sequence number and its ACK ends FIN-WAIT-1', () => {
    const s = socketEstablished();
    s.conn.send(filled(4000));
    s.conn.close();
    const first = recv(s);
    const fin = first[first.length - 1]!;
    expect(String(fin.flags)).toContain('FIN');
    expect(seqAdd(fin.seq, fin.payload.length)).toBe(L(4001));
    // Every ACK is lost: the timer fires and only the first segment goes again (cwnd 1 MSS).
    advance(s, RTO);
    const again = recv(s);
    expect(again).toHaveLength(1);
    expect(again[0]!.seq).toBe(L(1));
    // The peer had everything: its cumulative ACK covers the data and the FIN.
    send(s, { ack: L(4002) });
    expect(s.conn.state).toBe('FIN-WAIT-2');
    for (const seg of recv(s)) expect(seg.seq).not.toBe(L(4002));
  });

  test('ESTABLISHED: a window that shrinks to zero under data in flight is still probed after a timeout', () => {
    const s = socketEstablished();
    s.conn.send(filled(3000));
    recv(s);
    // A partial ACK closes the window (the receiver's application stopped reading).
    send(s, { ack: L(1001), window: 0 });
    advance(s, RTO);
    recv(s);
    // Some timer must stay armed: a lost window update must not hang the connection.
    expect(s.conn.pollAt()).toBeDefined();
  });

  test('FIN-WAIT-2: close() bounds the wait for the peer FIN (finWait2TimeoutMs)', () => {
    const s = socketFinWait2({ config: { finWait2TimeoutMs: 5000 } });
    s.conn.close();
    expect(s.conn.pollAt()).toBeDefined();
    advance(s, 5000);
    expect(s.conn.state).toBe('CLOSED');
  });

  test('SYN-RECEIVED: a tiny peer MSS is raised to a floor instead of producing 1-byte segments', () => {
    const s = socketEstablished({}, [MSS(8), TS(1, 0)], [TS(2, 1)]);
    s.conn.send(filled(1000));
    const segs = recv(s);
    expect(segs.length).toBeGreaterThan(0);
    expect(segs.length).toBeLessThanOrEqual(20);
  });
});

// ================================================================== loss recovery

describe('loss recovery: RACK-TLP (RFC 8985), Limited Transmit (RFC 3042), undo (RFC 3708, RFC 3522)', () => {
  /** ESTABLISHED with SACK (and TCP_NODELAY, so every segment goes out at once). SRTT = min_RTT = 100 ms, RTO 300 ms. */
  function socketSack(cfg: Partial<TcpConfig> = {}): Socket {
    return socketEstablished({ config: { sack: true, noDelay: true, ...cfg } }, [MSS(1460), SACK_PERM]);
  }
  const sacked = (from: number, to: number): TcpOption => SACK({ left: L(from), right: L(to) });
  /** The i-th full segment (0-based) as sent: 1460 bytes from L(1 + 1460·i). */
  const segAt = (i: number): number => L(1 + 1460 * i);

  test('RACK: a hole below a SACKed segment is resent after RACK.rtt + min_RTT/4, not after three duplicate ACKs or the RTO', () => {
    const s = socketSack();
    s.conn.send(filled(3 * 1460));
    expect(recv(s).map((x) => x.seq)).toEqual([segAt(0), segAt(1), segAt(2)]);
    advance(s, 100);
    // Segment 2 arrived, segment 1 did not: a single duplicate ACK with a SACK block.
    send(s, { options: [sacked(1461, 2921)] });
    recvNothing(s);
    // §6.2 step 4: no reordering seen, fewer than DupThresh segments SACKed: reo_wnd = min_RTT/4 = 25 ms.
    advance(s, 24);
    recvNothing(s);
    advance(s, 1);
    expect(recv(s)).toEqual([out({ payload: filled(1460) })]);
    expect(s.conn.stats.fastRetransmits).toBe(1);
    expect(s.conn.stats.retransmitTimeouts).toBe(0);
  });

  test("recovery: 'rfc6675' keeps DupThresh: one duplicate ACK waits for the RTO", () => {
    const s = socketSack({ recovery: 'rfc6675' });
    s.conn.send(filled(3 * 1460));
    recv(s);
    advance(s, 100);
    send(s, { options: [sacked(1461, 2921)] });
    advance(s, 199);
    recvNothing(s);
    advance(s, 1);
    expect(recv(s)[0]!.seq).toBe(segAt(0));
    expect(s.conn.stats.retransmitTimeouts).toBe(1);
    expect(s.conn.stats.tlpProbes).toBe(0);
  });

  test('TLP: the tail of a flight lost → a probe resends the last segment after 2·SRTT; its SACK lets RACK repair the rest', () => {
    const s = socketSack();
    s.conn.send(filled(3 * 1460));
    recv(s);
    advance(s, 100);
    send(s, { ack: segAt(1) }); // the first segment arrived; the other two were lost
    recvNothing(s);
    // §7.2: PTO = 2·SRTT (two segments in flight), before the RTO (250 ms after this ACK).
    advance(s, 199);
    recvNothing(s);
    advance(s, 1);
    expect(recv(s)).toEqual([out({ seq: segAt(2), flags: PSH | ACK, payload: filled(1460) })]);
    expect(s.conn.stats.tlpProbes).toBe(1);
    advance(s, 100);
    // The probe is SACKed: the segment sent before it is lost (§7.4.1): fast recovery at once.
    send(s, { ack: segAt(1), options: [sacked(2921, 4381)] });
    expect(recv(s)).toEqual([out({ seq: segAt(1), payload: filled(1460) })]);
    send(s, { ack: segAt(3) });
    expect(s.conn.stats.fastRetransmits).toBe(1);
    expect(s.conn.stats.retransmitTimeouts).toBe(0);
    expect(s.conn.pollAt()).toBeUndefined();
  });

  test('TLP: with unsent data the window allows, the probe is new data, and its ACK ends the episode without a reduction', () => {
    const s = socketSack();
    // The peer's window (8192) takes five full segments and 892 bytes more.
    s.conn.send(filled(10 * 1460));
    expect(recv(s)).toHaveLength(5);
    const cwnd = s.conn.cwnd;
    advance(s, 200);
    expect(recv(s)).toEqual([out({ seq: segAt(5), payload: filled(892) })]);
    expect(s.conn.stats.tlpProbes).toBe(1);
    send(s, { ack: L(8193) });
    expect(s.conn.cwnd).toBeGreaterThanOrEqual(cwnd);
    expect(s.conn.stats.tlpLossRepairs).toBe(0);
    expect(s.conn.stats.retransmitTimeouts).toBe(0);
  });

  test('undo (RFC 3708): a D-SACK for the only retransmission restores cwnd and ssthresh', () => {
    const s = socketSack();
    s.conn.send(filled(3 * 1460));
    recv(s);
    const before = { cwnd: s.conn.cwnd, ssthresh: s.conn.ssthresh };
    advance(s, 100);
    send(s, { options: [sacked(1461, 2921)] });
    advance(s, 25);
    expect(recv(s)).toHaveLength(1); // RACK's retransmission of segment 1
    expect(s.conn.cwnd).toBeLessThan(before.cwnd);
    // Segment 1 was only late: everything is acknowledged, then its retransmission is reported as a duplicate.
    send(s, { ack: segAt(3) });
    send(s, { ack: segAt(3), options: [sacked(1, 1461)] });
    expect(s.conn.stats.dsacksIn).toBe(1);
    expect(s.conn.stats.spuriousRecoveriesUndone).toBe(1);
    expect({ cwnd: s.conn.cwnd, ssthresh: s.conn.ssthresh }).toEqual(before);
  });

  test('undo (RFC 3522 Eifel): the ACK of the resent segment echoes the original’s timestamp → undone at once', () => {
    const s = socketEstablished(
      { config: { sack: true, noDelay: true, timestamps: true } },
      [MSS(1460), SACK_PERM, TS(5000, 0)],
      [TS(5001, START)],
    );
    s.conn.send(filled(3 * 1448));
    recv(s);
    const sentAt = s.now;
    const before = s.conn.cwnd;
    advance(s, 100);
    send(s, { options: [SACK({ left: L(1449), right: L(2897) }), TS(5002, sentAt)] });
    advance(s, 25);
    expect(recv(s)).toHaveLength(1);
    expect(s.conn.cwnd).toBeLessThan(before);
    // The original first segment arrives (TSecr = its TSval, older than the retransmission's).
    send(s, { ack: L(4345), options: [TS(5003, sentAt)] });
    expect(s.conn.stats.spuriousRecoveriesUndone).toBe(1);
    expect(s.conn.cwnd).toBe(before);
  });

  test('RACK: a lost retransmission is detected and resent, and counts as a second congestion signal (RFC 8985 §3.4)', () => {
    const s = socketSack();
    send(s, { window: 65_535 });
    s.conn.send(filled(14 * 1460));
    expect(recv(s)).toHaveLength(10);
    advance(s, 100);
    // Segments 2–4 SACKed: DupThresh segments, no reordering seen: reo_wnd = 0, segment 1 is lost at once.
    send(s, { window: 65_535, options: [sacked(1461, 5841)] });
    expect(recv(s).map((x) => x.seq)).toEqual([segAt(0)]);
    const afterFirst = { cwnd: s.conn.cwnd, ssthresh: s.conn.ssthresh };
    expect(afterFirst.ssthresh).toBe(5 * 1460);
    // Segments 5–8 SACKed: the pipe drops below cwnd and two new segments go out.
    send(s, { window: 65_535, options: [sacked(1461, 11_681)] });
    expect(recv(s).map((x) => x.seq)).toEqual([segAt(10), segAt(11)]);
    advance(s, 100);
    // Segment 11, sent after the retransmission, is SACKed; the retransmission is not: lost too.
    const block = (from: number, to: number): SackBlock => ({ left: L(from), right: L(to) });
    send(s, { window: 65_535, options: [SACK(block(14_601, 16_061), block(1461, 11_681))] });
    expect(recv(s).map((x) => x.seq)).toEqual([segAt(0)]);
    expect(s.conn.ssthresh).toBeLessThan(afterFirst.ssthresh);
    expect(s.conn.stats.fastRetransmits).toBe(1);
    expect(s.conn.stats.retransmitTimeouts).toBe(0);
  });

  test('Limited Transmit (RFC 3042), no SACK: each of the first two duplicate ACKs sends one new segment', () => {
    const s = socketEstablished({ config: { noDelay: true } });
    send(s, { window: 65_535 });
    s.conn.send(filled(14 * 1460));
    expect(recv(s)).toHaveLength(10); // RFC 6928: IW = 10 segments
    send(s, { window: 65_535 });
    expect(recv(s).map((x) => x.seq)).toEqual([segAt(10)]);
    send(s, { window: 65_535 });
    expect(recv(s).map((x) => x.seq)).toEqual([segAt(11)]);
    send(s, { window: 65_535 });
    expect(recv(s).map((x) => x.seq)).toEqual([segAt(0)]);
    expect(s.conn.stats.fastRetransmits).toBe(1);
  });

  describe('PAWS and reordered ACKs (RFC 7323 §5.3; Linux tcp_disordered_ack)', () => {
    const PEER_TS = 5000;
    function socketTsSack(): Socket {
      const s = socketEstablished(
        { config: { sack: true, timestamps: true, noDelay: true } },
        [MSS(1460), SACK_PERM, TS(PEER_TS, 0)],
        [TS(PEER_TS + 1, START)],
      );
      s.conn.send(filled(4 * 1448));
      expect(recv(s)).toHaveLength(4);
      advance(s, 50);
      // A newer duplicate ACK overtook an older one.
      send(s, { options: [SACK({ left: L(2897), right: L(4345) }), TS(PEER_TS + 10, START + HANDSHAKE_RTT)] });
      return s;
    }

    test('a pure duplicate ACK with an older TSval is accepted: its SACK block is used, TS.Recent stays', () => {
      const s = socketTsSack();
      send(s, { options: [SACK({ left: L(1449), right: L(4345) }), TS(PEER_TS + 5, START + HANDSHAKE_RTT)] });
      expect(s.conn.stats.disorderedAcksAccepted).toBe(1);
      expect(s.conn.stats.pawsDrops).toBe(0);
      expect(s.conn.stats.dupAcksIn).toBe(2);
      expect(s.conn.tsRecent).toBe(PEER_TS + 10);
      // Its SACK information counts: both SACKed segments are out of the pipe, so RACK's
      // DupThresh-free window applies to the hole at segment 1 (25 ms).
      recvNothing(s);
      advance(s, 25);
      expect(recv(s)[0]!.seq).toBe(L(1));
    });

    test('data, a window change, or a TSval more than an RTO old still fail PAWS (dropped, ACKed)', () => {
      const s = socketTsSack();
      send(s, { payload: bytes('x'), options: [TS(PEER_TS + 5, START)] });
      send(s, { window: PEER_WINDOW + 1, options: [TS(PEER_TS + 5, START)] });
      send(s, { options: [TS(PEER_TS + 10 - 2000, START)] });
      expect(s.conn.stats.pawsDrops).toBe(3);
      expect(s.conn.stats.disorderedAcksAccepted).toBe(0);
      expect(s.conn.readable).toBe(0);
    });
  });
});
