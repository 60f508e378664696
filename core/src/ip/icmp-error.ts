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

/**
 * Decodes an ICMPv4 error (RFC 792) about one of our packets. Undefined for messages
 * that are not errors this stack reacts to (echo, redirect, source quench: RFC 6633
 * deprecates it, and Linux ignores it).
 */
export function decodeIcmpv4Error(repr: Icmpv4Repr, reporter: Uint8Array): IcmpErrorDecode {
  let kind: IcmpErrorKind;
  let type: number;
  let code: number;
  let mapped: [IcmpErrno, boolean] | undefined;
  let mtu = 0;
  switch (repr.kind) {
    case 'destUnreachable':
      kind = 'destination-unreachable';
      type = Icmpv4Type.DEST_UNREACHABLE;
      code = repr.code;
      mapped = V4_UNREACHABLE[code];
      break;
    case 'fragmentationNeeded':
      kind = 'packet-too-big';
      type = Icmpv4Type.DEST_UNREACHABLE;
      code = 4;
      mtu = repr.nextHopMtu;
      mapped = V4_UNREACHABLE[4];
      break;
    case 'timeExceeded':
      kind = 'time-exceeded';
      type = Icmpv4Type.TIME_EXCEEDED;
      code = repr.code;
      mapped = ['EHOSTUNREACH', false];
      break;
    case 'parameterProblem':
      kind = 'parameter-problem';
      type = Icmpv4Type.PARAMETER_PROBLEM;
      code = repr.code;
      mapped = ['EPROTO', true];
      break;
    default:
      return undefined;
  }
  if (mapped === undefined) return { rejected: 'unknown-code' };
  let quoted: Ipv4View;
  try {
    // The quote is the header as the router saw it (TTL already decremented), so its checksum is not checked.
    quoted = Ipv4View.parse(repr.invoking, { allowTruncated: true, verifyChecksum: false });
  } catch (e) {
    if (e instanceof ParseError) return { rejected: 'quoted-malformed' };
    throw e;
  }
  // Only fragment 0 carries the transport header the error can be matched by.
  if (quoted.fragmentOffset !== 0) return { rejected: 'quoted-fragment' };
  // RFC 792: the quote holds the header and the first 64 bits of the data.
  if (quoted.payload.length < 8) return { rejected: 'quoted-truncated' };
  return {
    report: {
      version: 4,
      kind,
      type,
      code,
      errno: mapped[0],
      hard: mapped[1],
      reporter: reporter.slice(),
      src: quoted.src.slice(),
      dst: quoted.dst.slice(),
      protocol: quoted.protocol,
      ...portsOf(quoted.payload),
      transport: quoted.payload.slice(),
      mtu,
      quotedLength: quoted.totalLen,
    },
  };
}

/** Decodes an ICMPv6 error (RFC 4443 §3) about one of our packets; undefined for non-errors. */
export function decodeIcmpv6Error(repr: Icmpv6Repr, reporter: Uint8Array): IcmpErrorDecode {
  let kind: IcmpErrorKind;
  let type: number;
  let code: number;
  let mapped: [IcmpErrno, boolean] | undefined;
  let mtu = 0;
  switch (repr.kind) {
    case 'destUnreachable':
      kind = 'destination-unreachable';
      type = Icmpv6Type.DEST_UNREACHABLE;
      code = repr.code;
      mapped = V6_UNREACHABLE[code];
      break;
    case 'packetTooBig':
      kind = 'packet-too-big';
      type = Icmpv6Type.PACKET_TOO_BIG;
      code = 0;
      mtu = repr.mtu;
      mapped = ['EMSGSIZE', false];
      break;
    case 'timeExceeded':
      kind = 'time-exceeded';
      type = Icmpv6Type.TIME_EXCEEDED;
      code = repr.code;
      mapped = ['EHOSTUNREACH', false];
      break;
    case 'parameterProblem':
      kind = 'parameter-problem';
      type = Icmpv6Type.PARAMETER_PROBLEM;
      code = repr.code;
      mapped = ['EPROTO', true];
      break;
    default:
      return undefined;
  }
  if (mapped === undefined) return { rejected: 'unknown-code' };
  let quoted: Ipv6View;
  try {
    // RFC 4443 §2.4 (c): the quote is cut to fit the minimum MTU.
    quoted = Ipv6View.parse(repr.invoking, { allowTruncated: true });
  } catch (e) {
    if (e instanceof ParseError) return { rejected: 'quoted-malformed' };
    throw e;
  }
  if (quoted.fragmentOffset !== 0) return { rejected: 'quoted-fragment' };
  if (quoted.upperPayload.length < 8) return { rejected: 'quoted-truncated' };
  return {
    report: {
      version: 6,
      kind,
      type,
      code,
      errno: mapped[0],
      hard: mapped[1],
      reporter: reporter.slice(),
      src: quoted.src.slice(),
      dst: quoted.dst.slice(),
      protocol: quoted.upperProtocol,
      ...portsOf(quoted.upperPayload),
      transport: quoted.upperPayload.slice(),
      mtu,
      quotedLength: IPV6_HEADER_LEN + quoted.payloadLen,
    },
  };
}

function portsOf(transport: Uint8Array): { srcPort: number; dstPort: number } {
  return { srcPort: (transport[0]! << 8) | transport[1]!, dstPort: (transport[2]! << 8) | transport[3]! };
}
