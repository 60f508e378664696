/**
 * A link carries raw IP packets (no link-layer header: LINKTYPE_RAW) between the
 * stack and something else: another simulated host, a kernel tun device, a UDP
 * tunnel. Decorators (the shaper, the pcap tap) wrap any link and are links
 * themselves, so they compose: `new PcapTap(new Shaper(tun, cfg), file)`.
 *
 * Ownership: `send` takes the packet; the caller must not modify it afterwards.
 * A receive handler owns the packet it is given.
 */
export interface Link {
  readonly name: string;
  /** Largest IP packet, in bytes, that `send` accepts. */
  readonly mtu: number;
  readonly isUp: boolean;
  readonly counters: Readonly<LinkCounters>;

  /**
   * Hands a packet to the link. Returns false when the link refused it at once
   * (down, larger than the MTU, queue full); the reason is counted. A packet the link
   * accepted may still be lost later (shaper loss), which is counted too.
   */
  send(packet: Uint8Array): boolean;

  /** Registers a handler for packets arriving from the far side. Returns an unsubscribe function. */
  onReceive(handler: (packet: Uint8Array) => void): () => void;

  /** Registers a handler for up/down changes. Returns an unsubscribe function. */
  onStateChange(handler: (up: boolean) => void): () => void;

  /** Brings the link administratively up or down. A down link drops what it is given. */
  setUp(up: boolean): void;

  /** Releases the link's resources (timers, devices, files). Idempotent. */
  close(): void;
}

/** Packet and byte counters, and drops counted by cause. */
export interface LinkCounters {
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  /** Packets dropped, by cause ("down", "mtu", "loss", "queue", ...). */
  drops: Record<string, number>;
}

export function newCounters(): LinkCounters {
  return { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, drops: {} };
}

export function countDrop(c: LinkCounters, cause: string, n = 1): void {
  c.drops[cause] = (c.drops[cause] ?? 0) + n;
}

/**
 * Listener bookkeeping, counters and up/down state shared by link implementations.
 * Subclasses call `deliver` for received packets and implement `transmit`.
 */
export abstract class LinkBase implements Link {
  readonly counters: LinkCounters = newCounters();
  private readonly rxHandlers = new Set<(packet: Uint8Array) => void>();
  private readonly stateHandlers = new Set<(up: boolean) => void>();
  private up = true;

  constructor(
    readonly name: string,
    readonly mtu: number,
  ) {}

  get isUp(): boolean {
    return this.up;
  }

  send(packet: Uint8Array): boolean {
    if (!this.up) {
      countDrop(this.counters, 'down');
      return false;
    }
    if (packet.length > this.mtu) {
      countDrop(this.counters, 'mtu');
      return false;
    }
    if (!this.transmit(packet)) return false;
    this.counters.txPackets++;
    this.counters.txBytes += packet.length;
    return true;
  }

  onReceive(handler: (packet: Uint8Array) => void): () => void {
    this.rxHandlers.add(handler);
    return () => this.rxHandlers.delete(handler);
  }

  onStateChange(handler: (up: boolean) => void): () => void {
    this.stateHandlers.add(handler);
    return () => this.stateHandlers.delete(handler);
  }

  setUp(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    for (const h of [...this.stateHandlers]) h(up);
  }

  close(): void {
    this.rxHandlers.clear();
    this.stateHandlers.clear();
  }

  /** Puts an accepted packet on the wire; returns false if it was dropped (and counted). */
  protected abstract transmit(packet: Uint8Array): boolean;

  /** Hands a packet that arrived from the far side to the receive handlers. */
  protected deliver(packet: Uint8Array): void {
    if (!this.up) {
      countDrop(this.counters, 'rx-down');
      return;
    }
    this.counters.rxPackets++;
    this.counters.rxBytes += packet.length;
    for (const h of this.rxHandlers) h(packet);
  }
}
