import { formatIpv4, formatIpv6 } from './address';
import { Icmpv4Repr, Icmpv4View } from './icmpv4';
import { Icmpv6Repr, Icmpv6View } from './icmpv6';
import { IpProtocol } from './ip-protocol';
import { Ipv4View } from './ipv4';
import { Ipv6View } from './ipv6';
import { ParseError } from './parse-error';
import { TcpFlags, TcpHeaderView } from './tcp';
import { parseOptions, type TcpOption } from './tcp-options';
import { UdpView } from './udp';

/**
 * A one-line, tcpdump-like summary of a raw IP packet, for traces and logs:
 * "10.0.1.1 > 10.0.1.2: ICMP echo request id 1 seq 3, length 64". Never throws: a
 * packet that does not parse is described as malformed, with the reason.
 */
export function describePacket(packet: Uint8Array): string {
  try {
    if (packet.length === 0) return 'empty packet';
    const version = packet[0]! >> 4;
    if (version === 4) {
      const ip = Ipv4View.parse(packet);
      const where = `${formatIpv4(ip.src)} > ${formatIpv4(ip.dst)}`;
      if (ip.isFragment && ip.fragmentOffset !== 0) {
        return `${where}: IPv4 fragment id ${ip.identification} offset ${ip.fragmentOffset}, length ${ip.payload.length}`;
      }
      return `${where}: ${describeUpper(ip.protocol, ip.payload, 4)}`;
    }
    if (version === 6) {
      const ip = Ipv6View.parse(packet);
      const where = `${formatIpv6(ip.src)} > ${formatIpv6(ip.dst)}`;
      if (ip.isFragment) return `${where}: IPv6 fragment offset ${ip.fragmentOffset}, length ${ip.upperLen}`;
      if (ip.upperProtocol === IpProtocol.IPV6_ICMP) return `${where}: ${describeIcmpv6(ip.upperPayload, ip)}`;
      return `${where}: ${describeUpper(ip.upperProtocol, ip.upperPayload, 6)}`;
    }
    return `not IP (version ${version}), ${packet.length} bytes`;
  } catch (e) {
    if (e instanceof ParseError) return `malformed (${e.message}), ${packet.length} bytes`;
    throw e;
  }
}

function describeUpper(protocol: number, payload: Uint8Array, ipVersion: 4 | 6): string {
  switch (protocol) {
    case IpProtocol.TCP:
      return describeTcp(payload);
    case IpProtocol.UDP: {
      const udp = UdpView.parse(payload);
      return `UDP ${udp.srcPort} > ${udp.dstPort}, length ${udp.payload.length}`;
    }
    case IpProtocol.ICMP:
      if (ipVersion === 4) return describeIcmpv4(payload);
      break;
  }
  return `protocol ${protocol}, length ${payload.length}`;
}

const FLAG_LETTERS: [number, string][] = [
  [TcpFlags.SYN, 'S'],
  [TcpFlags.FIN, 'F'],
  [TcpFlags.RST, 'R'],
  [TcpFlags.PSH, 'P'],
  [TcpFlags.URG, 'U'],
  [TcpFlags.ECE, 'E'],
  [TcpFlags.CWR, 'W'],
];

function describeTcp(segment: Uint8Array): string {
  const tcp = TcpHeaderView.parse(segment);
  let flags = '';
  for (const [bit, letter] of FLAG_LETTERS) if (tcp.flags & bit) flags += letter;
  if (tcp.flags & TcpFlags.ACK) flags += '.';
  let text = `TCP ${tcp.srcPort} > ${tcp.dstPort} [${flags || 'none'}] seq ${tcp.seq}`;
  if (tcp.isAck) text += ` ack ${tcp.ack}`;
  text += ` win ${tcp.window}`;
  const options = parseOptions(tcp.optionBytes).filter((o) => o.kind !== 'nop' && o.kind !== 'eol');
  if (options.length > 0) text += ` <${options.map(describeOption).join(',')}>`;
  return `${text}, length ${tcp.payload.length}`;
}

function describeOption(o: TcpOption): string {
  switch (o.kind) {
    case 'mss':
      return `mss ${o.mss}`;
    case 'wscale':
      return `wscale ${o.shift}`;
    case 'sack-permitted':
      return 'sackOK';
    case 'sack':
      return `sack ${o.blocks.map((b) => `${b.left}:${b.right}`).join(' ')}`;
    case 'timestamps':
      return `TS val ${o.tsVal} ecr ${o.tsEcr}`;
    case 'unknown':
      return `opt-${o.type} len ${o.data.length + 2}`;
    default:
      return o.kind;
  }
}

function describeIcmpv4(message: Uint8Array): string {
  const icmp = Icmpv4Repr.parse(Icmpv4View.parse(message));
  switch (icmp.kind) {
    case 'echoRequest':
    case 'echoReply':
      return `ICMP echo ${icmp.kind === 'echoRequest' ? 'request' : 'reply'} id ${icmp.identifier} seq ${icmp.sequence}, length ${icmp.data.length}`;
    case 'fragmentationNeeded':
      return `ICMP fragmentation needed, next-hop MTU ${icmp.nextHopMtu}`;
    case 'destUnreachable':
      return `ICMP destination unreachable, code ${icmp.code}`;
    case 'timeExceeded':
      return `ICMP time exceeded, code ${icmp.code}`;
    case 'parameterProblem':
      return `ICMP parameter problem, pointer ${icmp.pointer}`;
    case 'raw':
      return `ICMP type ${icmp.type} code ${icmp.code}, length ${icmp.body.length}`;
  }
}

function describeIcmpv6(message: Uint8Array, ip: Ipv6View): string {
  const icmp = Icmpv6Repr.parse(Icmpv6View.parse(message), ip.src, ip.dst);
  switch (icmp.kind) {
    case 'echoRequest':
    case 'echoReply':
      return `ICMP6 echo ${icmp.kind === 'echoRequest' ? 'request' : 'reply'} id ${icmp.identifier} seq ${icmp.sequence}, length ${icmp.data.length}`;
    case 'packetTooBig':
      return `ICMP6 packet too big, MTU ${icmp.mtu}`;
    case 'destUnreachable':
      return `ICMP6 destination unreachable, code ${icmp.code}`;
    case 'timeExceeded':
      return `ICMP6 time exceeded, code ${icmp.code}`;
    case 'parameterProblem':
      return `ICMP6 parameter problem, pointer ${icmp.pointer}`;
    case 'raw':
      return `ICMP6 type ${icmp.type} code ${icmp.code}, length ${icmp.body.length}`;
  }
}
