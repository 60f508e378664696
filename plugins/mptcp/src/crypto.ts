/**
 * MPTCP's cryptography, RFC 8684 v1 with HMAC-SHA256 (flag H, the only algorithm v1
 * defines): keys, tokens and initial data sequence numbers (§3.1, §2.2), the MP_JOIN
 * HMACs (§3.2), the ADD_ADDR HMAC (§3.4.1) and the DSS checksum (§3.3.1).
 *
 * Keys, tokens and HMAC inputs are big-endian on the wire, as everywhere in the RFC. A
 * key is a bigint of 64 bits, a token and a random number are 32-bit numbers.
 */

import { createHash, createHmac, randomBytes } from 'node:crypto';
import { finish, fold, sumBytes } from '@nuse/core';

function keyBytes(key: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, key));
  return b;
}

function u32Bytes(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b;
}

function keySha256(key: bigint): Buffer {
  return createHash('sha256').update(keyBytes(key)).digest();
}

/** RFC 8684 §3.1: the token is the most significant 32 bits of SHA-256 of the key. */
export function keyToken(key: bigint): number {
  return keySha256(key).readUInt32BE(0);
}

/** RFC 8684 §3.1: the IDSN is the least significant 64 bits of SHA-256 of the key. */
export function keyIdsn(key: bigint): bigint {
  return keySha256(key).readBigUInt64BE(24);
}

/** Both at once, with one hash. */
export function keyTokenAndIdsn(key: bigint): { token: number; idsn: bigint } {
  const digest = keySha256(key);
  return { token: digest.readUInt32BE(0), idsn: digest.readBigUInt64BE(24) };
}

/**
 * A fresh 64-bit key from the system's CSPRNG (RFC 8684 §3.1: "the key MUST be hard to
 * guess", see RFC 4086). The RFC also requires a host to keep keys, and so tokens,
 * unique among its connections, and to draw a new key when its token is already in use
 * (§3.1, §3.2 on the token as a connection identifier). So this draws again while
 * `tokenInUse(token)` says so. It also never returns 0: a zero key is what an
 * uninitialised field looks like, and some implementations treat it as "no key".
 * `random` is for tests only.
 */
export function generateKey(
  tokenInUse: (token: number) => boolean = () => false,
  random: (size: number) => Uint8Array = randomBytes,
): { key: bigint; token: number; idsn: bigint } {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const bytes = random(8);
    const key = Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64BE(0);
    if (key === 0n) continue;
    const { token, idsn } = keyTokenAndIdsn(key);
    if (!tokenInUse(token)) return { key, token, idsn };
  }
  // 2^32 tokens: a thousand collisions in a row means the caller's predicate is broken.
  throw new Error('MPTCP: no key with an unused token after 1000 attempts');
}

/** HMAC-SHA256 with the 128-bit key `keyFirst || keySecond` (RFC 8684 §3.2, Appendix D uses RFC 2104). */
export function hmacSha256(keyFirst: bigint, keySecond: bigint, message: Uint8Array): Buffer {
  return createHmac('sha256', Buffer.concat([keyBytes(keyFirst), keyBytes(keySecond)]))
    .update(message)
    .digest();
}

/**
 * The keys and random numbers of one MP_JOIN handshake (RFC 8684 §3.2). A is the host
 * that opens the subflow (the initiator of the SYN with MP_JOIN), B the responder; the
 * keys are the ones each exchanged in the connection's MP_CAPABLE.
 */
export interface MpJoinSecrets {
  readonly initiatorKey: bigint;
  readonly responderKey: bigint;
  /** R-A, from the SYN's MP_JOIN. */
  readonly initiatorRandom: number;
  /** R-B, from the SYN-ACK's MP_JOIN. */
  readonly responderRandom: number;
}

/**
 * RFC 8684 §3.2: what B sends in the SYN-ACK, the leftmost 64 bits of
 * HMAC(Key=(Key-B || Key-A), Msg=(R-B || R-A)). A checks B's value with the same call.
 */
export function mpJoinSynAckHmac(s: MpJoinSecrets): bigint {
  const message = Buffer.concat([u32Bytes(s.responderRandom), u32Bytes(s.initiatorRandom)]);
  return hmacSha256(s.responderKey, s.initiatorKey, message).readBigUInt64BE(0);
}

/**
 * RFC 8684 §3.2: what A sends in the third ACK, the leftmost 160 bits (20 bytes) of
 * HMAC(Key=(Key-A || Key-B), Msg=(R-A || R-B)). B checks A's value with the same call.
 */
export function mpJoinAckHmac(s: MpJoinSecrets): Uint8Array {
  const message = Buffer.concat([u32Bytes(s.initiatorRandom), u32Bytes(s.responderRandom)]);
  return new Uint8Array(hmacSha256(s.initiatorKey, s.responderKey, message).subarray(0, 20));
}

/**
 * RFC 8684 §3.4.1: the ADD_ADDR truncated HMAC, the *rightmost* 64 bits (MP_JOIN's
 * SYN-ACK takes the leftmost) of HMAC(Key=(Key-A || Key-B), Msg=(Address ID || IP
 * Address || Port)), where A is the sender of the ADD_ADDR. The port is two bytes, and
 * when the option carries none it counts as port 0, still two bytes. Both points are
 * what the Linux kernel sends and checks: the interop test (kernel-interop.test.ts)
 * recomputes captured ADD_ADDRs with and without a port, IPv4 and IPv6.
 */
export function addAddrHmac(
  senderKey: bigint,
  receiverKey: bigint,
  addressId: number,
  address: Uint8Array,
  port: number | undefined,
): bigint {
  if (address.length !== 4 && address.length !== 16) throw new Error(`address of ${address.length} bytes`);
  const message = new Uint8Array(1 + address.length + 2);
  message[0] = addressId;
  message.set(address, 1);
  const p = port ?? 0;
  message[1 + address.length] = p >>> 8;
  message[2 + address.length] = p & 0xff;
  return hmacSha256(senderKey, receiverKey, message).readBigUInt64BE(24);
}

/**
 * The partial ones'-complement sum of the DSS checksum's pseudo-header (RFC 8684
 * §3.3.1): the 64-bit DSN (always the full 64 bits, even when the option carries 32),
 * the 32-bit relative subflow sequence number, the 16-bit data-level length, and 16
 * zero bits where the checksum goes.
 */
function pseudoHeaderSum(dsn: bigint, ssn: number, dataLevelLength: number): number {
  const header = new Uint8Array(16);
  const view = new DataView(header.buffer);
  view.setBigUint64(0, BigInt.asUintN(64, dsn));
  view.setUint32(8, ssn >>> 0);
  view.setUint16(12, dataLevelLength & 0xffff);
  return sumBytes(header);
}

function payloadSum(payload: Uint8Array | readonly Uint8Array[], initial: number): number {
  if (payload instanceof Uint8Array) return sumBytes(payload, 0, payload.length, initial);
  // Chunks of odd length would pair the wrong bytes into words: join those.
  if (payload.slice(0, -1).some((chunk) => chunk.length % 2 !== 0)) {
    return sumBytes(Buffer.concat(payload), 0, undefined, initial);
  }
  let sum = initial;
  for (const chunk of payload) sum = fold(sumBytes(chunk, 0, chunk.length, sum));
  return sum;
}

/**
 * RFC 8684 §3.3.1: the DSS checksum of a mapping, the Internet checksum (RFC 1071) of
 * the pseudo-header followed by the mapping's payload (`dataLevelLength` bytes, given
 * whole or in order as chunks). `ssn` is relative to the subflow's initial sequence
 * number, as in the DSS option. For the data that MP_CAPABLE carries (§3.1), the
 * mapping is implicit: DSN = IDSN + 1, SSN = 1.
 */
export function dssChecksum(
  dsn: bigint,
  ssn: number,
  dataLevelLength: number,
  payload: Uint8Array | readonly Uint8Array[],
): number {
  return finish(payloadSum(payload, pseudoHeaderSum(dsn, ssn, dataLevelLength)));
}

/** RFC 8684 §3.3.1: true when `checksum` verifies (the sum over everything, checksum included, is all ones). */
export function verifyDssChecksum(
  dsn: bigint,
  ssn: number,
  dataLevelLength: number,
  checksum: number,
  payload: Uint8Array | readonly Uint8Array[],
): boolean {
  return fold(payloadSum(payload, pseudoHeaderSum(dsn, ssn, dataLevelLength) + (checksum & 0xffff))) === 0xffff;
}
