import { createHmac } from 'node:crypto';

/**
 * Initial sequence numbers per RFC 6528 §3: ISN = M + F(localip, localport, remoteip,
 * remoteport, secretkey), where M is a timer ticking every 4 µs and F a keyed hash
 * (HMAC-SHA-256 here). Off-path attackers cannot guess it; a new incarnation of the
 * same four-tuple starts ahead of the old one's sequence space, as RFC 9293 §3.4.1
 * intends.
 *
 * The time comes from the stack's Clock and the key from the caller, so a virtual-time
 * run with a fixed key is reproducible.
 */
export class IsnGenerator {
  constructor(private readonly secret: Uint8Array) {
    if (secret.length < 16) throw new Error('ISN secret must be at least 16 bytes (RFC 6528 §3)');
  }

  generate(nowMs: number, local: Uint8Array, localPort: number, remote: Uint8Array, remotePort: number): number {
    const h = createHmac('sha256', this.secret);
    const ports = Buffer.allocUnsafe(4);
    ports.writeUInt16BE(localPort, 0);
    ports.writeUInt16BE(remotePort, 2);
    h.update(local);
    h.update(remote);
    h.update(ports);
    const f = h.digest().readUInt32BE(0);
    // RFC 6528 §3: M, a 4 µs timer.
    const m = Math.floor(nowMs * 250) >>> 0;
    return (m + f) >>> 0;
  }
}
