import { Random } from '@nuse/core';
import {
  addAddrHmac,
  dssChecksum,
  generateKey,
  keyIdsn,
  keyToken,
  keyTokenAndIdsn,
  mpJoinAckHmac,
  mpJoinSynAckHmac,
  verifyDssChecksum,
} from './crypto';

// RFC 8684 has no test vectors. These come from one connection between two Linux
// 6.18 kernels (net.mptcp.checksum_enabled=1), captured on the veths; tokens and IDSNs
// as tshark 4.0 computes them from the keys. kernel-interop.test.ts checks the same
// things on a fresh capture every run.
const SERVER_KEY = 329761651439065819n; // in the SYN-ACK's MP_CAPABLE
const CLIENT_KEY = 17996504985838370789n; // in the third ACK's MP_CAPABLE

function ipv4(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number));
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

describe('keys, tokens, IDSNs (RFC 8684 §3.1)', () => {
  test('token = most significant 32 bits of SHA-256(key), IDSN = least significant 64 (tshark agrees)', () => {
    expect(keyToken(SERVER_KEY)).toBe(254806442);
    expect(keyIdsn(SERVER_KEY)).toBe(18046627746746115589n);
    expect(keyToken(CLIENT_KEY)).toBe(3588116335);
    expect(keyIdsn(CLIENT_KEY)).toBe(15884863901720088248n);
    expect(keyTokenAndIdsn(CLIENT_KEY)).toEqual({ token: 3588116335, idsn: 15884863901720088248n });
  });

  test('generateKey: 64 random bits from the CSPRNG, never 0, never a token in use', () => {
    const seen = new Set<bigint>();
    for (let i = 0; i < 100; i++) {
      const { key, token, idsn } = generateKey();
      expect(key > 0n && key < 1n << 64n).toBe(true);
      expect(token).toBe(keyToken(key));
      expect(idsn).toBe(keyIdsn(key));
      seen.add(key);
    }
    expect(seen.size).toBe(100);
    // A source that yields 0, then a key whose token is "in use", then a fresh one.
    const draws = [Buffer.alloc(8), Buffer.from('0000000000000001', 'hex'), Buffer.from('0000000000000002', 'hex')];
    const inUse = new Set([keyToken(1n)]);
    const got = generateKey(
      (token) => inUse.has(token),
      () => draws.shift()!,
    );
    expect(got.key).toBe(2n);
    expect(() => generateKey(() => true)).toThrow('no key');
  });
});

describe('MP_JOIN HMACs (RFC 8684 §3.2), two joins from the kernel capture', () => {
  // The client opened both extra subflows: it is host A, the server host B.
  const joins = [
    {
      initiatorRandom: 2354633295,
      responderRandom: 4155154555,
      synAck: 230762480678725946n,
      ack: 'aab50845e69aa5202f1738f9a38c47c534f9a637',
    },
    {
      initiatorRandom: 1356768241,
      responderRandom: 1801394456,
      synAck: 12975888756677084516n,
      ack: '1e979cce77abc11c4b932850647fd9afe6cd13d9',
    },
  ];
  test.each(joins)('R-A $initiatorRandom, R-B $responderRandom', (join) => {
    const secrets = { initiatorKey: CLIENT_KEY, responderKey: SERVER_KEY, ...join };
    expect(mpJoinSynAckHmac(secrets)).toBe(join.synAck);
    expect(hex(mpJoinAckHmac(secrets))).toBe(join.ack);
    // The roles matter: swapping the keys gives other values.
    const swapped = { ...secrets, initiatorKey: SERVER_KEY, responderKey: CLIENT_KEY };
    expect(mpJoinSynAckHmac(swapped)).not.toBe(join.synAck);
  });
});

describe('ADD_ADDR HMAC (RFC 8684 §3.4.1), three ADD_ADDRs the server sent', () => {
  test('IPv4 with a port', () => {
    expect(addAddrHmac(SERVER_KEY, CLIENT_KEY, 2, ipv4('10.201.2.2'), 10300)).toBe(17656465150194838143n);
  });
  test('IPv4 without a port (the port counts as two zero bytes)', () => {
    expect(addAddrHmac(SERVER_KEY, CLIENT_KEY, 1, ipv4('10.201.2.2'), undefined)).toBe(1239069440690203792n);
    expect(addAddrHmac(SERVER_KEY, CLIENT_KEY, 1, ipv4('10.201.2.2'), 0)).toBe(1239069440690203792n);
  });
  test('IPv6 without a port', () => {
    const address = Buffer.from('fd000201000300000000000000000002', 'hex');
    expect(addAddrHmac(SERVER_KEY, CLIENT_KEY, 3, address, undefined)).toBe(4356103422163439013n);
  });
  test('an address of another size is refused', () => {
    expect(() => addAddrHmac(1n, 2n, 0, new Uint8Array(5), undefined)).toThrow('5 bytes');
  });
});

/** RFC 1071 word by word over the whole pseudo-header and payload: an independent reference. */
function naiveDssChecksum(dsn: bigint, ssn: number, length: number, payload: Uint8Array): number {
  const header = Buffer.alloc(16);
  header.writeBigUInt64BE(dsn);
  header.writeUInt32BE(ssn, 8);
  header.writeUInt16BE(length, 12);
  const bytes = Buffer.concat([header, payload]);
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += (bytes[i]! << 8) | (i + 1 < bytes.length ? bytes[i + 1]! : 0);
    if (sum > 0xffff) sum = (sum & 0xffff) + 1;
  }
  return ~sum & 0xffff;
}

describe('DSS checksum (RFC 8684 §3.3.1)', () => {
  test("the server's first data from the capture: DSN = its IDSN + 1, SSN 1, 9 bytes", () => {
    const dsn = keyIdsn(SERVER_KEY) + 1n;
    expect(dssChecksum(dsn, 1, 9, Buffer.from('ok 600000'))).toBe(0xb0a5);
    expect(verifyDssChecksum(dsn, 1, 9, 0xb0a5, Buffer.from('ok 600000'))).toBe(true);
    expect(verifyDssChecksum(dsn, 1, 9, 0xb0a6, Buffer.from('ok 600000'))).toBe(false);
    expect(verifyDssChecksum(dsn + 1n, 1, 9, 0xb0a5, Buffer.from('ok 600000'))).toBe(false);
  });

  test('random mappings, whole or in chunks of any size, match RFC 1071 computed naively (seed 0x5eed)', () => {
    const rng = new Random(0x5eed);
    for (let i = 0; i < 2_000; i++) {
      const payload = rng.fill(new Uint8Array(rng.int(rng.chance(0.5) ? 40 : 3000)));
      const dsn = (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
      const ssn = rng.u32();
      const expected = naiveDssChecksum(dsn, ssn, payload.length, payload);
      expect(dssChecksum(dsn, ssn, payload.length, payload)).toBe(expected);
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < payload.length; ) {
        const n = 1 + rng.int(payload.length - at);
        chunks.push(payload.subarray(at, at + n));
        at += n;
      }
      expect(dssChecksum(dsn, ssn, payload.length, chunks)).toBe(expected);
      expect(verifyDssChecksum(dsn, ssn, payload.length, expected, chunks)).toBe(true);
      expect(verifyDssChecksum(dsn, ssn, payload.length, expected ^ (1 << rng.int(16)), payload)).toBe(false);
    }
  });
});
