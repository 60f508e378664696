import { Icmpv4Repr, Icmpv4TimeExceededCode, Icmpv4View } from '../wire/icmpv4';
import { Icmpv6Repr, Icmpv6TimeExceededCode, Icmpv6View } from '../wire/icmpv6';
import { IpProtocol } from '../wire/ip-protocol';
import { Ipv6View } from '../wire/ipv6';
import type { UpperRepr } from '../wire/packet';
import { ParseError } from '../wire/parse-error';
import { decodeIcmpv4Error, decodeIcmpv6Error, type IcmpErrorDecode, type IcmpErrorReport } from './icmp-error';
import type { IcmpRateLimiter } from './icmp-rate-limit';
import { isUnicast } from './martian';

/** What the ICMP endpoint needs from the IP layer. */
export interface IcmpHost {
  now(): number;
  /** Sends from one of our addresses; `dontFragment: false` lets a large reply go in fragments (IPv4 and IPv6). */
  send(src: Uint8Array, dst: Uint8Array, upper: UpperRepr, opts: { dontFragment: boolean }): boolean;
  /** Validates an error report and hands it to the transport it concerns. */
  deliverError(report: IcmpErrorReport): void;
  count(cause: string): void;
}

/** An ICMP message that arrived for one of our addresses. */
export interface IcmpIn {
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly payload: Uint8Array;
}

/** RFC 1812 §4.3.2.3: an ICMPv4 error should quote as much as fits in 576 bytes. */
const ICMPV4_ERROR_QUOTE = 576 - 20 - 8;

/**
 * The stack's ICMP endpoint, both families: answers echo requests to our addresses
 * (RFC 792, RFC 1122 §3.2.2.6; RFC 4443 §4.2), turns errors about our packets into
 * reports for the IP layer to route to a transport (RFC 1122 §3.2.2, RFC 4443 §3), and
 * sends the errors the host itself originates (reassembly time exceeded), rate-limited.
 */
export class IcmpEndpoint {
  readonly counters = { echoRequestsIn: 0, echoRepliesOut: 0, errorsIn: 0, errorsOut: 0, errorsRateLimited: 0 };

  constructor(
    private readonly host: IcmpHost,
    private readonly limiter: IcmpRateLimiter,
  ) {}

  inputV4(p: IcmpIn): void {
    let repr: Icmpv4Repr;
    try {
      repr = Icmpv4Repr.parse(Icmpv4View.parse(p.payload));
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      this.host.count(`malformed-${e.layer}`);
      return;
    }
    if (repr.kind === 'echoRequest') {
      // RFC 792 / RFC 1122 §3.2.2.6: the reply swaps the addresses and returns identifier, sequence and data.
      this.counters.echoRequestsIn++;
      if (!isUnicast(p.src)) {
        this.host.count('icmp-echo-bad-source'); // never reflect towards a broadcast or multicast source
        return;
      }
      const reply: UpperRepr = {
        protocol: 'icmpv4',
        repr: { kind: 'echoReply', identifier: repr.identifier, sequence: repr.sequence, data: repr.data },
      };
      // As Linux, the reply may be fragmented: a fragmented request gets a reply of the same size.
      if (this.host.send(p.dst, p.src, reply, { dontFragment: false })) this.counters.echoRepliesOut++;
      return;
    }
    this.deliver(decodeIcmpv4Error(repr, p.src));
  }

  inputV6(p: IcmpIn): void {
    let repr: Icmpv6Repr;
    try {
      repr = Icmpv6Repr.parse(Icmpv6View.parse(p.payload), p.src, p.dst);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      this.host.count(`malformed-${e.layer}`);
      return;
    }
    if (repr.kind === 'echoRequest') {
      // RFC 4443 §4.2: identifier, sequence number and data come back unchanged.
      this.counters.echoRequestsIn++;
      if (!isUnicast(p.src)) {
        this.host.count('icmp-echo-bad-source');
        return;
      }
      const reply: UpperRepr = {
        protocol: 'icmpv6',
        repr: { kind: 'echoReply', identifier: repr.identifier, sequence: repr.sequence, data: repr.data },
      };
      // RFC 4443 §4.2: the data comes back entire; one over the path MTU goes in fragments.
      if (this.host.send(p.dst, p.src, reply, { dontFragment: false })) this.counters.echoRepliesOut++;
      return;
    }
    this.deliver(decodeIcmpv6Error(repr, p.src));
  }

  /**
   * RFC 792 (type 11 code 1) / RFC 8200 §4.5 (type 3 code 1): a datagram's reassembly
   * timed out with its first fragment in hand. `quoted` is that fragment's start.
   */
  sendReassemblyTimeExceeded(ourAddress: Uint8Array, peer: Uint8Array, quoted: Uint8Array): void {
    if (!this.mayAnswerWithError(quoted, peer)) return;
    const upper: UpperRepr =
      peer.length === 4
        ? {
            protocol: 'icmpv4',
            repr: {
              kind: 'timeExceeded',
              code: Icmpv4TimeExceededCode.REASSEMBLY_TIME_EXCEEDED,
              invoking: quoted.subarray(0, ICMPV4_ERROR_QUOTE),
            },
          }
        : {
            protocol: 'icmpv6',
            repr: { kind: 'timeExceeded', code: Icmpv6TimeExceededCode.REASSEMBLY_TIME_EXCEEDED, invoking: quoted },
          };
    if (this.host.send(ourAddress, peer, upper, { dontFragment: true })) this.counters.errorsOut++;
  }

  private deliver(decoded: IcmpErrorDecode): void {
    if (decoded === undefined) return; // echo replies, redirects, ND and the like: not ours to act on
    this.counters.errorsIn++;
    if ('rejected' in decoded) this.host.count(`icmp-${decoded.rejected}`);
    else this.host.deliverError(decoded.report);
  }

  /**
   * RFC 1122 §3.2.2 / RFC 4443 §2.4 (e): never an error about an ICMP error, nor to a
   * source that is not unicast; and at most the rate limiter's share (§2.4 (f)).
   */
  private mayAnswerWithError(quoted: Uint8Array, peer: Uint8Array): boolean {
    if (!isUnicast(peer) || quotesIcmpError(quoted)) return false;
    if (!this.limiter.take(this.host.now())) {
      this.counters.errorsRateLimited++;
      return false;
    }
    return true;
  }
}

/** Whether a quoted packet (its start) is itself an ICMP error message. */
function quotesIcmpError(quoted: Uint8Array): boolean {
  if (quoted.length < 1) return true;
  if (quoted[0]! >> 4 === 4) {
    const headerLen = (quoted[0]! & 0x0f) * 4;
    if (quoted.length < 20 || quoted[9] !== IpProtocol.ICMP) return false;
    const type = quoted[headerLen];
    // RFC 792 informational types: echo reply 0, echo 8, timestamp 13/14, information 15/16.
    return type === undefined || ![0, 8, 13, 14, 15, 16].includes(type);
  }
  // The quote may carry extension headers (a first fragment quotes its Fragment header):
  // walk them to the upper-layer header. What cannot be read is treated as an error
  // message, so nothing is sent about it (RFC 4443 §2.4 (e) errs on the side of silence).
  let ip: Ipv6View;
  try {
    ip = Ipv6View.parse(quoted, { allowTruncated: true });
  } catch (e) {
    if (e instanceof ParseError) return true;
    throw e;
  }
  if (ip.upperProtocol !== IpProtocol.IPV6_ICMP) return false;
  const type = ip.upperPayload[0];
  // RFC 4443 §2.1: types below 128 are errors.
  return type === undefined || type < 128;
}
