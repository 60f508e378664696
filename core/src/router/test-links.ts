/**
 * In-memory links for the router's unit tests: `inject` plays a packet arriving from
 * the far side, `sent` records what the router wrote.
 */

import { LinkBase } from '../link/link';

export class MemoryLink extends LinkBase {
  readonly sent: Uint8Array[] = [];
  /** When false, send() refuses everything (a full queue), counted as "queue". */
  accept = true;

  constructor(name: string, mtu = 1500) {
    super(name, mtu);
  }

  /** Delivers `packet` to the receive handlers, as if it came from the far side. */
  inject(packet: Uint8Array): void {
    this.deliver(packet);
  }

  /** Removes and returns everything sent so far. */
  take(): Uint8Array[] {
    return this.sent.splice(0);
  }

  protected transmit(packet: Uint8Array): boolean {
    if (!this.accept) {
      this.counters.drops.queue = (this.counters.drops.queue ?? 0) + 1;
      return false;
    }
    this.sent.push(packet);
    return true;
  }
}
