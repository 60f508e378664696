/**
 * Property tests for the IP-layer codecs, from one fixed seed (change SEED to explore;
 * a failure names the seed, the case and its bytes, so it replays exactly).
 *
 * 1. Any bytes: every parser either succeeds or throws ParseError, never anything else,
 *    and after a success no accessor throws. Inputs: random byte arrays, every
 *    truncation of valid packets, and random byte/bit mutations of valid packets.
 * 2. Lossless: whatever parses emits again byte for byte (the header it covers).
 * 3. Round trip: for random valid reprs, emit → parse → emit is byte-identical and
 *    parse(emit(repr)) deep-equals repr.
 */

import { isDeepStrictEqual } from 'node:util';
import { Random } from '../util/random';
import { pseudoHeaderSumV4, pseudoHeaderSumV6 } from './checksum';
import { Icmpv4Repr, Icmpv4View } from './icmpv4';
import { Icmpv6Repr, Icmpv6View } from './icmpv6';
import { IpProtocol } from './ip-protocol';
import { Ipv4Repr, Ipv4View } from './ipv4';
import { type Ipv6ExtensionHeader, Ipv6Repr, Ipv6View } from './ipv6';
import { ParseError } from './parse-error';
import { UdpRepr, UdpView } from './udp';

const SEED = 0x6e757365;
const SEED_TEXT = `0x${SEED.toString(16)}`;

const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** Calls every getter of a view's class, so a getter that can throw is found. */
const gettersByClass = new Map<object, Array<() => unknown>>();
function touchAccessors(view: object): void {
  const prototype = Object.getPrototypeOf(view) as object;
  let getters = gettersByClass.get(prototype);
  if (getters === undefined) {
    getters = Object.values(Object.getOwnPropertyDescriptors(prototype)).flatMap((descriptor) =>
      descriptor.get === undefined ? [] : [descriptor.get],
    );
    gettersByClass.set(prototype, getters);
  }
  for (const getter of getters) getter.call(view);
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`property violated: ${what}`);
}

/**
 * Byte-identical, except that when the covered data sums to ones'-complement zero both
 * 0x0000 and 0xffff verify (RFC 1624 §3), and emit writes the one RFC 1071 computes.
 */
function checkLossless(emitted: Uint8Array, original: Uint8Array, checksumAt: number, what: string): void {
  check(emitted.length === original.length, `${what}: re-emitted length ${emitted.length} ≠ ${original.length}`);
  for (let i = 0; i < emitted.length; i++) {
    if (emitted[i] === original[i]) continue;
    if (i === checksumAt || i === checksumAt + 1) {
      const a = (emitted[checksumAt]! << 8) | emitted[checksumAt + 1]!;
      const b = (original[checksumAt]! << 8) | original[checksumAt + 1]!;
      if ((a | b) === 0xffff && (a & b) === 0) continue;
    }
    throw new Error(`property violated: ${what}: re-emitted ${toHex(emitted)} ≠ parsed ${toHex(original)}`);
  }
}

const HOST_A = Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? 0x20 : i === 15 ? 1 : 0));
const HOST_B = Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? 0x20 : i === 15 ? 2 : 0));

/** Counts outcomes, so the test can show the fuzzer got past the first checks. */
const parsed: Record<string, number> = {};
const refused: Record<string, number> = {};

/** Runs one parse attempt: success or ParseError are fine; anything else is the bug we look for. */
function attempt(label: string, parse: () => void): void {
  try {
    parse();
    parsed[label] = (parsed[label] ?? 0) + 1;
  } catch (error) {
    if (!(error instanceof ParseError)) throw error;
    refused[label] = (refused[label] ?? 0) + 1;
  }
}

/**
 * `flags` is one random number per case that picks the parse options (verify checksums
 * three times in four, allow truncation half the time), so options vary without costing
 * a generator call each.
 */
function exerciseIpv4(bytes: Uint8Array, flags: number): void {
  const verifyChecksum = (flags & 0x3) !== 0;
  const view = Ipv4View.parse(bytes, { verifyChecksum, allowTruncated: (flags & 0x4) !== 0 });
  touchAccessors(view);
  check(view.headerLen >= 20 && view.bytes.length <= bytes.length, 'ipv4 lengths');
  check(view.payload.length === Math.min(view.totalLen, bytes.length) - view.headerLen, 'ipv4 payload length');
  check(view.options.length === view.headerLen - 20, 'ipv4 options length');
  const repr = Ipv4Repr.parse(view);
  if (verifyChecksum && !view.reservedFlag) {
    const buf = new Uint8Array(Ipv4Repr.bufferLen(repr));
    Ipv4Repr.emit(repr, buf);
    checkLossless(buf, view.bytes.subarray(0, view.headerLen), 10, 'ipv4');
  }
  if (view.protocol === IpProtocol.ICMP) attempt('icmpv4 in ipv4', () => exerciseIcmpv4(view.payload, flags >>> 8));
  if (view.protocol === IpProtocol.UDP) {
    attempt('udp in ipv4', () =>
      exerciseUdp(view.payload, flags >>> 8, (length) => pseudoHeaderSumV4(view.src, view.dst, IpProtocol.UDP, length)),
    );
  }
}

function exerciseIpv6(bytes: Uint8Array, flags: number): void {
  const view = Ipv6View.parse(bytes, { allowTruncated: (flags & 0x4) !== 0 });
  touchAccessors(view);
  check(view.upperOffset >= 40 && view.upperOffset <= view.bytes.length, 'ipv6 upper offset');
  check(view.fragmentHeaderOffset < view.upperOffset, 'ipv6 fragment header offset');
  const repr = Ipv6Repr.parse(view);
  const buf = new Uint8Array(Ipv6Repr.bufferLen(repr));
  Ipv6Repr.emit(repr, buf);
  checkLossless(buf, view.bytes.subarray(0, view.upperOffset), -1, 'ipv6');
  if (view.isFragment) return;
  if (view.upperProtocol === IpProtocol.IPV6_ICMP) {
    attempt('icmpv6 in ipv6', () => exerciseIcmpv6(view.upperPayload, flags >>> 8, view.src, view.dst));
  }
  if (view.upperProtocol === IpProtocol.UDP) {
    attempt('udp in ipv6', () =>
      exerciseUdp(view.upperPayload, flags >>> 8, (length) =>
        pseudoHeaderSumV6(view.src, view.dst, IpProtocol.UDP, length),
      ),
    );
  }
}

function exerciseIcmpv4(bytes: Uint8Array, flags: number): void {
  const verifyChecksum = (flags & 0x3) !== 0;
  const view = Icmpv4View.parse(bytes, { verifyChecksum });
  touchAccessors(view);
  check(view.body.length === view.bytes.length - 8, 'icmpv4 body length');
  const repr = Icmpv4Repr.parse(view);
  if (verifyChecksum) {
    const buf = new Uint8Array(Icmpv4Repr.bufferLen(repr));
    Icmpv4Repr.emit(repr, buf);
    checkLossless(buf, view.bytes, 2, `icmpv4 ${repr.kind}`);
  }
}

function exerciseIcmpv6(bytes: Uint8Array, flags: number, src: Uint8Array, dst: Uint8Array): void {
  const view = Icmpv6View.parse(bytes);
  touchAccessors(view);
  check(view.body.length === view.bytes.length - 8, 'icmpv6 body length');
  view.checksumValid(src, dst);
  const verifyChecksum = (flags & 0x3) !== 0;
  const repr = Icmpv6Repr.parse(view, src, dst, { verifyChecksum });
  if (verifyChecksum) {
    const buf = new Uint8Array(Icmpv6Repr.bufferLen(repr));
    Icmpv6Repr.emit(repr, buf, 0, src, dst);
    checkLossless(buf, view.bytes, 2, `icmpv6 ${repr.kind}`);
  }
}

function exerciseUdp(bytes: Uint8Array, flags: number, pseudoFor: (length: number) => number): void {
  const view = UdpView.parse(bytes);
  touchAccessors(view);
  check(view.payload.length === view.length - 8, 'udp payload length');
  const pseudoSum = pseudoFor(view.length);
  view.checksumValid(pseudoSum);
  const verifyChecksum = (flags & 0x3) !== 0;
  const repr = UdpRepr.parse(view, pseudoSum, { allowZeroChecksum: (flags & 0x4) !== 0, verifyChecksum });
  if (verifyChecksum && view.hasChecksum) {
    const buf = new Uint8Array(UdpRepr.bufferLen(repr));
    UdpRepr.emit(repr, buf, 0, pseudoSum);
    checkLossless(buf, view.bytes, 6, 'udp');
  }
}

/** Feeds one byte array to every parser. */
function exercise(bytes: Uint8Array, flags: number): void {
  attempt('ipv4', () => exerciseIpv4(bytes, flags));
  attempt('ipv6', () => exerciseIpv6(bytes, flags >>> 3));
  attempt('icmpv4', () => exerciseIcmpv4(bytes, flags >>> 6));
  attempt('icmpv6', () => exerciseIcmpv6(bytes, flags >>> 9, HOST_A, HOST_B));
  attempt('udp', () =>
    exerciseUdp(bytes, flags >>> 12, (length) => pseudoHeaderSumV6(HOST_A, HOST_B, IpProtocol.UDP, length)),
  );
}

// ---- random valid reprs ----

/**
 * Random.fill, four bytes per draw without a per-byte Math.min: under jest every global
 * lookup (Math, Number) is a slow trip through the vm context, and bytes are most of
 * what this test draws.
 */
function fill(random: Random, bytes: Uint8Array): Uint8Array {
  for (let i = 0; i < bytes.length; i += 4) {
    const word = random.u32();
    bytes[i] = word;
    bytes[i + 1] = word >>> 8;
    bytes[i + 2] = word >>> 16;
    bytes[i + 3] = word >>> 24;
  }
  return bytes;
}

function randomBytes(random: Random, maxLength: number): Uint8Array {
  return fill(random, new Uint8Array(random.int(maxLength + 1)));
}

function randomIpv4Repr(random: Random, payloadLen: number): Ipv4Repr {
  return {
    src: fill(random, new Uint8Array(4)),
    dst: fill(random, new Uint8Array(4)),
    protocol: random.int(256),
    payloadLen,
    ttl: random.int(256),
    dscp: random.int(64),
    ecn: random.int(4),
    identification: random.int(0x10000),
    dontFragment: random.chance(0.5),
    moreFragments: random.chance(0.2),
    fragmentOffset: random.chance(0.2) ? 8 * random.int(0x2000) : 0,
    options: random.chance(0.3) ? fill(random, new Uint8Array(4 * (1 + random.int(10)))) : new Uint8Array(0),
  };
}

const WALKED = new Set<number>([0, 43, 44, 51, 60]);

function randomExtensionHeader(random: Random, type: number, realFragment = false): Ipv6ExtensionHeader {
  let bytes: Uint8Array;
  if (type === IpProtocol.IPV6_FRAGMENT) {
    bytes = fill(random, new Uint8Array(8));
    // Offset and M both zero makes an atomic fragment; the two reserved bits stay random.
    if (realFragment) {
      if ((((bytes[2]! << 8) | bytes[3]!) & 0xfff9) === 0) bytes[3] |= 1;
    } else {
      bytes[2] = 0;
      bytes[3]! &= 0x06;
    }
  } else if (type === IpProtocol.AH) {
    const lengthField = random.int(6);
    bytes = fill(random, new Uint8Array((lengthField + 2) * 4));
    bytes[1] = lengthField;
  } else {
    const lengthField = random.int(4);
    bytes = fill(random, new Uint8Array((lengthField + 1) * 8));
    bytes[1] = lengthField;
  }
  return { type, bytes };
}

function randomIpv6Repr(random: Random, payloadLen: number, protocol?: number): Ipv6Repr {
  const headers: Ipv6ExtensionHeader[] = [];
  if (random.chance(0.2)) headers.push(randomExtensionHeader(random, IpProtocol.IPV6_HOP_BY_HOP));
  const middle = random.chance(0.5) ? 0 : random.int(4);
  for (let i = 0; i < middle; i++) {
    const types = [
      IpProtocol.IPV6_ROUTING,
      IpProtocol.IPV6_DESTINATION_OPTIONS,
      IpProtocol.AH,
      IpProtocol.IPV6_FRAGMENT,
    ];
    headers.push(randomExtensionHeader(random, types[random.int(types.length)]!));
  }
  const realFragment = protocol === undefined && random.chance(0.15);
  if (realFragment) headers.push(randomExtensionHeader(random, IpProtocol.IPV6_FRAGMENT, true));
  let upper = protocol ?? random.int(256);
  while (!realFragment && WALKED.has(upper)) upper = random.int(256);
  // Parse reads the chain back with each Next Header naming the following header.
  for (let i = 0; i < headers.length; i++) headers[i]!.bytes[0] = i + 1 < headers.length ? headers[i + 1]!.type : upper;
  return {
    src: fill(random, new Uint8Array(16)),
    dst: fill(random, new Uint8Array(16)),
    protocol: upper,
    payloadLen,
    hopLimit: random.int(256),
    trafficClass: random.int(256),
    flowLabel: random.int(0x100000),
    extensionHeaders: headers,
  };
}

const ICMPV4_STRUCTURED_TYPES = new Set([0, 3, 8, 11, 12]);
const ICMPV6_STRUCTURED_TYPES = new Set([1, 2, 3, 4, 128, 129]);

function randomRawType(random: Random, structured: Set<number>): number {
  let type = random.int(256);
  while (structured.has(type)) type = random.int(256);
  return type;
}

function randomIcmpv4Repr(random: Random): Icmpv4Repr {
  const body = randomBytes(random, 64);
  switch (random.int(7)) {
    case 0:
    case 1:
      return {
        kind: random.chance(0.5) ? 'echoRequest' : 'echoReply',
        identifier: random.int(0x10000),
        sequence: random.int(0x10000),
        data: body,
      };
    case 2: {
      let code = random.int(256);
      while (code === 4) code = random.int(256);
      return { kind: 'destUnreachable', code, invoking: body };
    }
    case 3:
      return { kind: 'fragmentationNeeded', nextHopMtu: random.int(0x10000), invoking: body };
    case 4:
      return { kind: 'timeExceeded', code: random.int(256), invoking: body };
    case 5:
      return { kind: 'parameterProblem', code: random.int(256), pointer: random.int(256), invoking: body };
    default:
      return {
        kind: 'raw',
        type: randomRawType(random, ICMPV4_STRUCTURED_TYPES),
        code: random.int(256),
        restOfHeader: random.u32(),
        body,
      };
  }
}

function randomIcmpv6Repr(random: Random): Icmpv6Repr {
  const body = randomBytes(random, 64);
  switch (random.int(7)) {
    case 0:
    case 1:
      return {
        kind: random.chance(0.5) ? 'echoRequest' : 'echoReply',
        identifier: random.int(0x10000),
        sequence: random.int(0x10000),
        data: body,
      };
    case 2:
      return { kind: 'destUnreachable', code: random.int(256), invoking: body };
    case 3:
      return { kind: 'packetTooBig', mtu: random.u32(), invoking: body };
    case 4:
      return { kind: 'timeExceeded', code: random.int(256), invoking: body };
    case 5:
      return { kind: 'parameterProblem', code: random.int(256), pointer: random.u32(), invoking: body };
    default:
      return {
        kind: 'raw',
        type: randomRawType(random, ICMPV6_STRUCTURED_TYPES),
        code: random.int(256),
        restOfHeader: random.u32(),
        body,
      };
  }
}

function randomUdpRepr(random: Random): UdpRepr {
  return { srcPort: random.int(0x10000), dstPort: random.int(0x10000), payload: randomBytes(random, 64) };
}

/** A whole valid packet: IPv4 or IPv6 carrying UDP, ICMP, or opaque bytes. */
function randomPacket(random: Random): Uint8Array {
  const v6 = random.chance(0.5);
  const src = fill(random, new Uint8Array(v6 ? 16 : 4));
  const dst = fill(random, new Uint8Array(v6 ? 16 : 4));
  let upper: Uint8Array;
  let protocol: number | undefined;
  switch (random.int(3)) {
    case 0: {
      const udp = randomUdpRepr(random);
      upper = new Uint8Array(UdpRepr.bufferLen(udp));
      const pseudo = v6
        ? pseudoHeaderSumV6(src, dst, IpProtocol.UDP, upper.length)
        : pseudoHeaderSumV4(src, dst, IpProtocol.UDP, upper.length);
      UdpRepr.emit(udp, upper, 0, pseudo);
      protocol = IpProtocol.UDP;
      break;
    }
    case 1:
      if (v6) {
        const icmp = randomIcmpv6Repr(random);
        upper = new Uint8Array(Icmpv6Repr.bufferLen(icmp));
        Icmpv6Repr.emit(icmp, upper, 0, src, dst);
        protocol = IpProtocol.IPV6_ICMP;
      } else {
        const icmp = randomIcmpv4Repr(random);
        upper = new Uint8Array(Icmpv4Repr.bufferLen(icmp));
        Icmpv4Repr.emit(icmp, upper);
        protocol = IpProtocol.ICMP;
      }
      break;
    default:
      upper = randomBytes(random, 64);
  }
  const ip = v6 ? randomIpv6Repr(random, upper.length, protocol) : randomIpv4Repr(random, upper.length);
  ip.src = src;
  ip.dst = dst;
  if (!v6 && protocol !== undefined) ip.protocol = protocol;
  const headerLen = v6 ? Ipv6Repr.bufferLen(ip as Ipv6Repr) : Ipv4Repr.bufferLen(ip as Ipv4Repr);
  const packet = new Uint8Array(headerLen + upper.length);
  if (v6) Ipv6Repr.emit(ip as Ipv6Repr, packet);
  else Ipv4Repr.emit(ip as Ipv4Repr, packet);
  packet.set(upper, headerLen);
  return packet;
}

function mutate(packet: Uint8Array, random: Random): Uint8Array {
  const copy = packet.slice();
  const count = 1 + random.int(4);
  for (let i = 0; i < count && copy.length > 0; i++) {
    const at = random.int(copy.length);
    switch (random.int(4)) {
      case 0:
        copy[at] ^= 1 << random.int(8);
        break;
      case 1:
        copy[at] = random.int(256);
        break;
      case 2:
        copy[at] = random.chance(0.5) ? 0x00 : 0xff;
        break;
      default:
        copy[at] = copy[at]! + (random.chance(0.5) ? 1 : -1);
    }
  }
  return copy;
}

/** Runs `exercise` and turns an unexpected exception into a reproducible report. */
function runCase(label: string, index: number, bytes: Uint8Array, random: Random): void {
  const flags = random.u32();
  try {
    exercise(bytes, flags);
  } catch (error) {
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
    throw new Error(`seed ${SEED_TEXT}, ${label} case ${index}, flags ${flags}, bytes ${toHex(bytes)}:\n${detail}`);
  }
}

describe(`wire fuzz, seed ${SEED_TEXT}`, () => {
  test('parsers return or throw ParseError, accessors never throw, and what parses re-emits byte for byte', () => {
    const random = new Random(SEED).fork('any-bytes');
    let cases = 0;

    // Random bytes, half of them with a plausible version nibble to get past the first check.
    for (let n = 0; n < 15_000; n++) {
      const bytes = randomBytes(random, 120);
      if (bytes.length > 0 && random.chance(0.5)) bytes[0] = (random.chance(0.5) ? 0x40 : 0x60) | (bytes[0]! & 0x0f);
      runCase('random', n, bytes, random);
      cases++;
    }

    for (let n = 0; n < 1_000; n++) {
      const packet = randomPacket(random);
      // A generated packet must parse: otherwise the generator, not the parser, is broken.
      if (packet[0]! >> 4 === 4) Ipv4View.parse(packet);
      else Ipv6View.parse(packet);
      runCase('valid', n, packet, random);
      cases++;
      for (let length = 0; length < packet.length; length++) {
        runCase(`truncation to ${length} of valid`, n, packet.subarray(0, length), random);
        cases++;
      }
      for (let m = 0; m < 20; m++) {
        runCase(`mutation ${m} of valid`, n, mutate(packet, random), random);
        cases++;
      }
    }

    expect(cases).toBeGreaterThanOrEqual(100_000);
    // The fuzzer got past the first checks of every layer, both through IP and directly.
    const labels = [
      'ipv4',
      'ipv6',
      'icmpv4',
      'icmpv6',
      'udp',
      'icmpv4 in ipv4',
      'udp in ipv4',
      'icmpv6 in ipv6',
      'udp in ipv6',
    ];
    expect(labels.filter((label) => (parsed[label] ?? 0) < 200)).toEqual([]);
  });

  test('random reprs: emit → parse → emit is byte-identical, and parse(emit(repr)) equals repr', () => {
    const random = new Random(SEED).fork('round-trip');
    const big = new Uint8Array(40 + 0x10000);
    const failures: string[] = [];
    const compare = (what: string, n: number, first: Uint8Array, second: Uint8Array, repr: unknown, back: unknown) => {
      if (toHex(first) !== toHex(second)) failures.push(`${what} ${n}: re-emit ${toHex(second)} ≠ ${toHex(first)}`);
      else if (!isDeepStrictEqual(repr, back)) failures.push(`${what} ${n}: ${JSON.stringify(back)}`);
    };

    for (let n = 0; n < 5_000; n++) {
      // Mostly small payloads; sometimes the largest the length field allows.
      const ipv4 = randomIpv4Repr(random, 0);
      const maxV4 = 0xffff - Ipv4Repr.bufferLen(ipv4);
      ipv4.payloadLen = random.chance(0.02) ? maxV4 : random.int(100);
      const v4Len = Ipv4Repr.emit(ipv4, big);
      const v4First = big.slice(0, v4Len);
      const v4Back = Ipv4Repr.parse(Ipv4View.parse(big.subarray(0, v4Len + ipv4.payloadLen)));
      const v4Second = new Uint8Array(v4Len);
      Ipv4Repr.emit(v4Back, v4Second);
      compare('ipv4', n, v4First, v4Second, ipv4, v4Back);

      const ipv6 = randomIpv6Repr(random, 0);
      const maxV6 = 0xffff - (Ipv6Repr.bufferLen(ipv6) - 40);
      ipv6.payloadLen = random.chance(0.02) ? maxV6 : random.int(100);
      const v6Len = Ipv6Repr.emit(ipv6, big);
      const v6First = big.slice(0, v6Len);
      const v6Back = Ipv6Repr.parse(Ipv6View.parse(big.subarray(0, v6Len + ipv6.payloadLen)));
      const v6Second = new Uint8Array(v6Len);
      Ipv6Repr.emit(v6Back, v6Second);
      compare('ipv6', n, v6First, v6Second, ipv6, v6Back);

      const icmpv4 = randomIcmpv4Repr(random);
      const icmpv4First = new Uint8Array(Icmpv4Repr.bufferLen(icmpv4));
      Icmpv4Repr.emit(icmpv4, icmpv4First);
      const icmpv4Back = Icmpv4Repr.parse(Icmpv4View.parse(icmpv4First));
      const icmpv4Second = new Uint8Array(Icmpv4Repr.bufferLen(icmpv4Back));
      Icmpv4Repr.emit(icmpv4Back, icmpv4Second);
      compare('icmpv4', n, icmpv4First, icmpv4Second, icmpv4, icmpv4Back);

      const icmpv6 = randomIcmpv6Repr(random);
      const src = fill(random, new Uint8Array(16));
      const dst = fill(random, new Uint8Array(16));
      const icmpv6First = new Uint8Array(Icmpv6Repr.bufferLen(icmpv6));
      Icmpv6Repr.emit(icmpv6, icmpv6First, 0, src, dst);
      const icmpv6Back = Icmpv6Repr.parse(Icmpv6View.parse(icmpv6First), src, dst);
      const icmpv6Second = new Uint8Array(Icmpv6Repr.bufferLen(icmpv6Back));
      Icmpv6Repr.emit(icmpv6Back, icmpv6Second, 0, src, dst);
      compare('icmpv6', n, icmpv6First, icmpv6Second, icmpv6, icmpv6Back);

      const udp = randomUdpRepr(random);
      const udpLen = UdpRepr.bufferLen(udp);
      const pseudo = random.chance(0.5)
        ? pseudoHeaderSumV4(src.subarray(0, 4), dst.subarray(0, 4), IpProtocol.UDP, udpLen)
        : pseudoHeaderSumV6(src, dst, IpProtocol.UDP, udpLen);
      const udpFirst = new Uint8Array(udpLen);
      UdpRepr.emit(udp, udpFirst, 0, pseudo);
      const udpBack = UdpRepr.parse(UdpView.parse(udpFirst), pseudo);
      const udpSecond = new Uint8Array(udpLen);
      UdpRepr.emit(udpBack, udpSecond, 0, pseudo);
      compare('udp', n, udpFirst, udpSecond, udp, udpBack);

      if (failures.length > 10) break;
    }
    expect(failures).toEqual([]);
  });
});
