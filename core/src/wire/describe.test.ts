import { parseIp } from './address';
import { describePacket } from './describe';
import { buildPacket } from './packet';
import { TcpFlags } from './tcp';

const V4A = parseIp('10.0.1.1');
const V4B = parseIp('10.0.1.2');
const V6A = parseIp('fd00::1');
const V6B = parseIp('fd00::2');

describe('buildPacket + describePacket', () => {
  test('ICMP echo over IPv4 and IPv6', () => {
    const data = new Uint8Array(56);
    expect(
      describePacket(
        buildPacket(
          { src: V4A, dst: V4B },
          { protocol: 'icmpv4', repr: { kind: 'echoRequest', identifier: 7, sequence: 3, data } },
        ),
      ),
    ).toBe('10.0.1.1 > 10.0.1.2: ICMP echo request id 7 seq 3, length 56');
    expect(
      describePacket(
        buildPacket(
          { src: V6B, dst: V6A },
          { protocol: 'icmpv6', repr: { kind: 'echoReply', identifier: 7, sequence: 3, data } },
        ),
      ),
    ).toBe('fd00::2 > fd00::1: ICMP6 echo reply id 7 seq 3, length 56');
  });

  test('UDP and a TCP SYN with options', () => {
    expect(
      describePacket(
        buildPacket(
          { src: V4A, dst: V4B },
          { protocol: 'udp', repr: { srcPort: 5000, dstPort: 7, payload: new Uint8Array(100) } },
        ),
      ),
    ).toBe('10.0.1.1 > 10.0.1.2: UDP 5000 > 7, length 100');
    const syn = buildPacket(
      { src: V6A, dst: V6B },
      {
        protocol: 'tcp',
        repr: {
          srcPort: 40000,
          dstPort: 80,
          seq: 1000,
          ack: 0,
          flags: TcpFlags.SYN,
          window: 65535,
          urgentPointer: 0,
          options: [
            { kind: 'mss', mss: 1440 },
            { kind: 'sack-permitted' },
            { kind: 'timestamps', tsVal: 1, tsEcr: 0 },
            { kind: 'nop' },
            { kind: 'wscale', shift: 7 },
            { kind: 'unknown', type: 30, data: new Uint8Array(10) },
          ],
          payload: new Uint8Array(0),
        },
      },
    );
    expect(describePacket(syn)).toBe(
      'fd00::1 > fd00::2: TCP 40000 > 80 [S] seq 1000 win 65535 <mss 1440,sackOK,TS val 1 ecr 0,wscale 7,opt-30 len 12>, length 0',
    );
  });

  test('bad input is described, never thrown', () => {
    expect(describePacket(new Uint8Array(0))).toBe('empty packet');
    expect(describePacket(Uint8Array.of(0x45, 0, 0))).toMatch(/^malformed \(ipv4: truncated/);
    expect(describePacket(Uint8Array.of(0x10, 1, 2))).toBe('not IP (version 1), 3 bytes');
    expect(() =>
      buildPacket(
        { src: V4A, dst: V6B },
        { protocol: 'udp', repr: { srcPort: 1, dstPort: 2, payload: new Uint8Array(0) } },
      ),
    ).toThrow(RangeError);
  });
});
