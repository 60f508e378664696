import type { IcmpErrno } from '../ip/icmp-error';
import type { SackBlock, TcpOption } from '../wire/tcp-options';

/**
 * An incoming segment as the state machine sees it: the header fields, the payload,
 * and what the option handlers decoded (RFC 9293 §3.10.7). Plugin handlers keep their
 * own decoded state in `ext`.
 */
export interface IncomingSegment {
  seq: number;
  ack: number;
  flags: number;
  /** The window field as received (not yet scaled). */
  window: number;
  payload: Uint8Array;
  options: TcpOption[];
  /** Decoded by the core option handlers. */
  mss?: number;
  wscale?: number;
  sackPermitted?: boolean;
  tsVal?: number;
  tsEcr?: number;
  sackBlocks?: readonly SackBlock[];
  /** Per-segment data that plugin option handlers decoded, by handler name. */
  ext?: Map<string, unknown>;
}

/** RFC 9293 §3.3.2 states. */
export type TcpState =
  | 'CLOSED'
  | 'LISTEN'
  | 'SYN-SENT'
  | 'SYN-RECEIVED'
  | 'ESTABLISHED'
  | 'FIN-WAIT-1'
  | 'FIN-WAIT-2'
  | 'CLOSE-WAIT'
  | 'CLOSING'
  | 'LAST-ACK'
  | 'TIME-WAIT';

/**
 * Errors a connection ends with, named by the errno a socket user expects; those an ICMP
 * error maps to (IcmpErrno: EHOSTUNREACH, ENETUNREACH, EACCES, EPROTO, ...) included.
 */
export type TcpErrorCode = 'ECONNREFUSED' | 'ECONNRESET' | 'ETIMEDOUT' | 'ECONNABORTED' | 'EPIPE' | IcmpErrno;

export class TcpError extends Error {
  override readonly name = 'TcpError';
  constructor(
    readonly code: TcpErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}
