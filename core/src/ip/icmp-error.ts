import { type Icmpv4Repr, Icmpv4Type } from '../wire/icmpv4';
import { type Icmpv6Repr, Icmpv6Type } from '../wire/icmpv6';
import { Ipv4View } from '../wire/ipv4';
import { IPV6_HEADER_LEN, Ipv6View } from '../wire/ipv6';
import { ParseError } from '../wire/parse-error';

/** The errno names an ICMP error maps to (as Linux's icmp_err_convert and icmpv6_err_convert). */
export type IcmpErrno =
  | 'ENETUNREACH'
  | 'EHOSTUNREACH'
  | 'ENOPROTOOPT'
  | 'ECONNREFUSED'
  | 'EMSGSIZE'
  | 'EOPNOTSUPP'
  | 'EHOSTDOWN'
  | 'ENONET'
  | 'EACCES'
  | 'EPROTO';

export type IcmpErrorKind = 'destination-unreachable' | 'packet-too-big' | 'time-exceeded' | 'parameter-problem';

/**
 * An ICMP error about a packet we sent, decoded down to the transport: what the IP
 * layer hands to the error handler registered for the quoted packet's protocol.
 */
export interface IcmpErrorReport {
  readonly version: 4 | 6;
  readonly kind: IcmpErrorKind;
  /** The ICMP type and code as received. */
  readonly type: number;
  readonly code: number;
  readonly errno: IcmpErrno;
  /**
   * A hard error: the destination will not be reached by retrying (RFC 1122 §4.2.3.9
   * names protocol and port unreachable; the rest as Linux's "fatal" column).
   */
  readonly hard: boolean;
  /** Who sent the ICMP message (a router, or the destination itself). */
  readonly reporter: Uint8Array;
  /** The quoted packet's source (one of our addresses, checked by the IP layer) and destination. */
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  /** The quoted packet's protocol (IpProtocol). */
  readonly protocol: number;
  /** The quoted transport header's first two 16-bit fields: the ports, for TCP, UDP, SCTP and DCCP. */
  readonly srcPort: number;
  readonly dstPort: number;
  /** The first bytes of the quoted transport header: at least 8 (RFC 792; ports and, for TCP, the sequence number). */
  readonly transport: Uint8Array;
  /** Packet too big / fragmentation needed: the next-hop MTU reported (0 from a pre-RFC 1191 router). */
  readonly mtu: number;
  /** The quoted packet's own total length (IPv4) or 40 + payload length (IPv6), for RFC 1191 §5's plateau search. */
  readonly quotedLength: number;
}

/**
 * Linux's table for ICMPv4 destination unreachable codes 0–15 (RFC 792, RFC 1122
 * §3.2.2.1, RFC 1812 §5.2.7.1): the errno and whether the error is fatal (hard).
 */
const V4_UNREACHABLE: readonly [IcmpErrno, boolean][] = [
  ['ENETUNREACH', false], // 0 net unreachable
  ['EHOSTUNREACH', false], // 1 host unreachable
  ['ENOPROTOOPT', true], // 2 protocol unreachable
  ['ECONNREFUSED', true], // 3 port unreachable
  ['EMSGSIZE', false], // 4 fragmentation needed and DF set
  ['EOPNOTSUPP', false], // 5 source route failed
  ['ENETUNREACH', true], // 6 destination network unknown
  ['EHOSTDOWN', true], // 7 destination host unknown
  ['ENONET', true], // 8 source host isolated
  ['ENETUNREACH', true], // 9 network administratively prohibited
  ['EHOSTUNREACH', true], // 10 host administratively prohibited
  ['ENETUNREACH', false], // 11 network unreachable for TOS
  ['EHOSTUNREACH', false], // 12 host unreachable for TOS
  ['EHOSTUNREACH', true], // 13 communication administratively prohibited (RFC 1812)
  ['EHOSTUNREACH', true], // 14 host precedence violation
  ['EHOSTUNREACH', true], // 15 precedence cutoff in effect
];

/** RFC 4443 §3.1 destination unreachable codes 0–6, mapped as Linux does. */
const V6_UNREACHABLE: readonly [IcmpErrno, boolean][] = [
  ['ENETUNREACH', false], // 0 no route to destination
  ['EACCES', true], // 1 communication administratively prohibited
  ['EHOSTUNREACH', false], // 2 beyond scope of source address
  ['EHOSTUNREACH', false], // 3 address unreachable
  ['ECONNREFUSED', true], // 4 port unreachable
  ['EACCES', true], // 5 source address failed ingress/egress policy
  ['EACCES', true], // 6 reject route to destination
];

/** Why an ICMP error was not turned into a report; counted by the IP layer as `icmp-<cause>`. */
export type IcmpErrorRejection = 'unknown-code' | 'quoted-malformed' | 'quoted-truncated' | 'quoted-fragment';

export type IcmpErrorDecode = { report: IcmpErrorReport } | { rejected: IcmpErrorRejection } | undefined;

/** What an ICMP error says, before its quote is read: the kind, the errno and whether it is hard. */
interface Classified {
  kind: IcmpErrorKind;
  type: number;
  code: number;
  mapped: [IcmpErrno, boolean] | undefined;
  mtu: number;
}

/** The quoted packet's fields a report needs. */
interface Quote {
  src: Uint8Array;
  dst: Uint8Array;
  protocol: number;
  transport: Uint8Array;
  quotedLength: number;
}

/**
 * Decodes an ICMPv4 error (RFC 792) about one of our packets. Undefined for messages
 * that are not errors this stack reacts to (echo, redirect, source quench: RFC 6633
 * deprecates it, and Linux ignores it).
 */
export function decodeIcmpv4Error(repr: Icmpv4Repr, reporter: Uint8Array): IcmpErrorDecode {
  const c = classifyV4(repr);
  if (c === undefined) return undefined;
  return decodeQuote(4, c, reporter, () => {
    // The quote is the header as the router saw it (TTL already decremented), so its checksum is not checked.
    const quoted = Ipv4View.parse(invokingOf(repr), {
      allowTruncated: true,
      verifyChecksum: false,
    });
    return {
      // Only fragment 0 carries the transport header the error can be matched by.
      fragment: quoted.fragmentOffset !== 0,
      quote: {
        src: quoted.src,
        dst: quoted.dst,
        protocol: quoted.protocol,
        transport: quoted.payload,
        quotedLength: quoted.totalLen,
      },
    };
  });
}

/** Decodes an ICMPv6 error (RFC 4443 §3) about one of our packets; undefined for non-errors. */
export function decodeIcmpv6Error(repr: Icmpv6Repr, reporter: Uint8Array): IcmpErrorDecode {
  const c = classifyV6(repr);
  if (c === undefined) return undefined;
  return decodeQuote(6, c, reporter, () => {
    // RFC 4443 §2.4 (c): the quote is cut to fit the minimum MTU.
    const quoted = Ipv6View.parse(invokingOf(repr), { allowTruncated: true });
    return {
      fragment: quoted.fragmentOffset !== 0,
      quote: {
        src: quoted.src,
        dst: quoted.dst,
        protocol: quoted.upperProtocol,
        transport: quoted.upperPayload,
        quotedLength: IPV6_HEADER_LEN + quoted.payloadLen,
      },
    };
  });
}

/** The quoted ("invoking") packet of an error message; empty for anything else. */
function invokingOf(repr: Icmpv4Repr | Icmpv6Repr): Uint8Array {
  return 'invoking' in repr ? repr.invoking : new Uint8Array(0);
}

function classifyV4(repr: Icmpv4Repr): Classified | undefined {
  switch (repr.kind) {
    case 'destUnreachable':
      return c('destination-unreachable', Icmpv4Type.DEST_UNREACHABLE, repr.code, V4_UNREACHABLE[repr.code]);
    case 'fragmentationNeeded':
      return c('packet-too-big', Icmpv4Type.DEST_UNREACHABLE, 4, V4_UNREACHABLE[4], repr.nextHopMtu);
    case 'timeExceeded':
      return c('time-exceeded', Icmpv4Type.TIME_EXCEEDED, repr.code, ['EHOSTUNREACH', false]);
    case 'parameterProblem':
      return c('parameter-problem', Icmpv4Type.PARAMETER_PROBLEM, repr.code, ['EPROTO', true]);
    default:
      return undefined;
  }
}

function classifyV6(repr: Icmpv6Repr): Classified | undefined {
  switch (repr.kind) {
    case 'destUnreachable':
      return c('destination-unreachable', Icmpv6Type.DEST_UNREACHABLE, repr.code, V6_UNREACHABLE[repr.code]);
    case 'packetTooBig':
      return c('packet-too-big', Icmpv6Type.PACKET_TOO_BIG, 0, ['EMSGSIZE', false], repr.mtu);
    case 'timeExceeded':
      return c('time-exceeded', Icmpv6Type.TIME_EXCEEDED, repr.code, ['EHOSTUNREACH', false]);
    case 'parameterProblem':
      return c('parameter-problem', Icmpv6Type.PARAMETER_PROBLEM, repr.code, ['EPROTO', true]);
    default:
      return undefined;
  }
}

function c(
  kind: IcmpErrorKind,
  type: number,
  code: number,
  mapped: [IcmpErrno, boolean] | undefined,
  mtu = 0,
): Classified {
  return { kind, type, code, mapped, mtu };
}

/** Reads the quote (either family) and builds the report, or says why not. */
function decodeQuote(
  version: 4 | 6,
  c: Classified,
  reporter: Uint8Array,
  readQuote: () => { fragment: boolean; quote: Quote },
): IcmpErrorDecode {
  if (c.mapped === undefined) return { rejected: 'unknown-code' };
  let read: { fragment: boolean; quote: Quote };
  try {
    read = readQuote();
  } catch (e) {
    if (e instanceof ParseError) return { rejected: 'quoted-malformed' };
    throw e;
  }
  if (read.fragment) return { rejected: 'quoted-fragment' };
  const q = read.quote;
  // RFC 792 / RFC 4443: the quote holds at least the first 64 bits of the transport header.
  if (q.transport.length < 8) return { rejected: 'quoted-truncated' };
  return {
    report: {
      version,
      kind: c.kind,
      type: c.type,
      code: c.code,
      errno: c.mapped[0],
      hard: c.mapped[1],
      reporter: reporter.slice(),
      src: q.src.slice(),
      dst: q.dst.slice(),
      protocol: q.protocol,
      ...portsOf(q.transport),
      transport: q.transport.slice(),
      mtu: c.mtu,
      quotedLength: q.quotedLength,
    },
  };
}

function portsOf(transport: Uint8Array): { srcPort: number; dstPort: number } {
  return { srcPort: (transport[0]! << 8) | transport[1]!, dstPort: (transport[2]! << 8) | transport[3]! };
}
