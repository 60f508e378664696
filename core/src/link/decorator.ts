import { type Link, type LinkCounters, newCounters } from './link';

/**
 * Base for a link that wraps another (smoltcp's device decorators): by default every
 * call passes straight through. Subclasses override `send` (outgoing) and
 * `onInner` (incoming) to observe or alter packets. Its counters count what this
 * layer itself did (its own drops); the inner link keeps its own.
 */
export abstract class LinkDecorator implements Link {
  readonly counters: LinkCounters = newCounters();
  private readonly rxHandlers = new Set<(packet: Uint8Array) => void>();
  private readonly unsubscribe: () => void;

  constructor(protected readonly inner: Link) {
    this.unsubscribe = inner.onReceive((p) => this.onInner(p));
  }

  get name(): string {
    return this.inner.name;
  }

  get mtu(): number {
    return this.inner.mtu;
  }

  get isUp(): boolean {
    return this.inner.isUp;
  }

  send(packet: Uint8Array): boolean {
    const ok = this.inner.send(packet);
    if (ok) {
      this.counters.txPackets++;
      this.counters.txBytes += packet.length;
    }
    return ok;
  }

  onReceive(handler: (packet: Uint8Array) => void): () => void {
    this.rxHandlers.add(handler);
    return () => this.rxHandlers.delete(handler);
  }

  onStateChange(handler: (up: boolean) => void): () => void {
    return this.inner.onStateChange(handler);
  }

  setUp(up: boolean): void {
    this.inner.setUp(up);
  }

  close(): void {
    this.unsubscribe();
    this.rxHandlers.clear();
    this.inner.close();
  }

  /** A packet arrived from the inner link; by default it is passed up unchanged. */
  protected onInner(packet: Uint8Array): void {
    this.deliver(packet);
  }

  /** Hands a packet to this layer's receive handlers. */
  protected deliver(packet: Uint8Array): void {
    this.counters.rxPackets++;
    this.counters.rxBytes += packet.length;
    for (const h of this.rxHandlers) h(packet);
  }
}
