import type { Clock, TimerHandle } from '../time/clock';
import { Random } from '../util/random';
import { LinkDecorator } from './decorator';
import { countDrop, type Link, type LinkCounters } from './link';

/**
 * Impairments for one direction of a link, in the manner of Linux netem (which this
 * machine's kernel lacks). Every field is optional; an empty config passes packets
 * through untouched and synchronously.
 */
export interface ShapeConfig {
  /** Fixed one-way delay in ms. */
  delayMs?: number;
  /** Jitter in ms: each packet's delay varies uniformly within ±jitterMs (or normally, see jitterDistribution). */
  jitterMs?: number;
  jitterDistribution?: 'uniform' | 'normal';
  /**
   * With jitter, may a later packet overtake an earlier one? netem's default is yes.
   * When false, a packet never leaves before the one sent ahead of it (a FIFO path whose
   * latency varies).
   */
  jitterReorders?: boolean;
  /** netem's `reorder`: this fraction of packets skips the delay and jumps the queue. */
  reorder?: number;
  /** Random loss probability per packet, 0..1. */
  loss?: number;
  /** Bursty loss (Gilbert–Elliott); used instead of `loss` when set. */
  lossBurst?: GilbertElliott;
  /** Probability that a packet is sent twice. */
  duplicate?: number;
  /** Probability that one random bit of a packet is flipped. */
  corrupt?: number;
  /** Bottleneck rate in bytes per second; packets are serialised one after another. */
  rateBytesPerSec?: number;
  /** Queue in front of the bottleneck, in bytes; a packet that does not fit is dropped (tail drop). */
  queueBytes?: number;
  /** Queue limit in packets (netem's `limit`), checked together with queueBytes. */
  queuePackets?: number;
  /** Packets larger than this are dropped (counted as "mtu"). */
  mtu?: number;
}

/**
 * Gilbert–Elliott two-state loss model (netem `loss gemodel p r 1-h 1-k`): a good
 * state and a bad (burst) state with per-packet transition probabilities.
 * Mean loss = (r·lossInGood + p·lossInBad) / (p + r).
 */
export interface GilbertElliott {
  /** Probability of moving from good to bad, per packet. */
  pGoodToBad: number;
  /** Probability of moving from bad to good, per packet. */
  pBadToGood: number;
  /** Loss probability in the good state (default 0). */
  lossInGood?: number;
  /** Loss probability in the bad state (default 1). */
  lossInBad?: number;
}

export interface ShaperOptions {
  clock: Clock;
  /** Applied to packets the stack sends. */
  tx?: ShapeConfig;
  /** Applied to packets arriving from the far side. */
  rx?: ShapeConfig;
  /** Seed for this shaper's randomness (each direction gets its own stream). */
  seed?: number | string;
}

// A module-level copy: under jest's vm sandbox a global lookup costs ~170 ns per packet.
const { max } = Math;

/** Default bottleneck queue when a rate is set without a queue size: 100 packets of 1500 bytes. */
const DEFAULT_QUEUE_BYTES = 150_000;

/**
 * One direction's impairment pipeline. Order per packet (as netem): duplicate →
 * loss → MTU → corrupt → bottleneck queue (tail drop) → serialisation at the rate →
 * delay and jitter → out.
 */
class Impairment {
  private readonly rng: Random;
  private geBad = false;
  /** When the bottleneck finishes sending what is queued (ms). */
  private busyUntil = 0;
  /** Departure times and sizes of packets still in the bottleneck queue. */
  private readonly queued: { departs: number; len: number }[] = [];
  private queuedHead = 0;
  private queuedBytes = 0;
  /** Latest scheduled exit, for order-keeping jitter. */
  private lastExit = 0;
  private readonly inFlight = new Map<number, TimerHandle>();
  private nextFlightId = 1;

  constructor(
    private cfg: ShapeConfig,
    private readonly clock: Clock,
    rng: Random,
    private readonly counters: LinkCounters,
    private readonly effects: Record<string, number>,
    private readonly prefix: string,
    private readonly out: (packet: Uint8Array) => void,
  ) {
    this.rng = rng;
  }

  configure(cfg: ShapeConfig): void {
    this.cfg = cfg;
  }

  get config(): ShapeConfig {
    return this.cfg;
  }

  /** Packets accepted but not yet delivered (queued or propagating). */
  get pending(): number {
    return this.inFlight.size;
  }

  /** Takes a packet; returns false if it was dropped at once (loss, queue, MTU). */
  push(packet: Uint8Array): boolean {
    const copies = this.cfg.duplicate !== undefined && this.rng.chance(this.cfg.duplicate) ? 2 : 1;
    if (copies === 2) this.effect('duplicated');
    if (copies === 1) return this.admit(packet);
    // The duplicate is a copy of its own, taken before either goes on: whoever receives a
    // copy owns it and may change it in place (a router decrements the TTL).
    const duplicate = packet.slice();
    const first = this.admit(packet);
    return this.admit(duplicate) || first;
  }

  /** Drops everything queued or in flight (the link went down). */
  flush(): void {
    for (const t of this.inFlight.values()) this.clock.cancelTimer(t);
    if (this.inFlight.size > 0) countDrop(this.counters, `${this.prefix}down`, this.inFlight.size);
    this.inFlight.clear();
    this.queued.length = 0;
    this.queuedHead = 0;
    this.queuedBytes = 0;
    this.busyUntil = 0;
    this.lastExit = 0;
  }

  private effect(what: string): void {
    const key = `${this.prefix}${what}`;
    this.effects[key] = (this.effects[key] ?? 0) + 1;
  }

  private admit(packet: Uint8Array): boolean {
    const cfg = this.cfg;
    if (this.lost()) {
      countDrop(this.counters, `${this.prefix}loss`);
      return false;
    }
    if (cfg.mtu !== undefined && packet.length > cfg.mtu) {
      countDrop(this.counters, `${this.prefix}mtu`);
      return false;
    }
    if (cfg.corrupt !== undefined && packet.length > 0 && this.rng.chance(cfg.corrupt)) {
      // Corrupt a copy: the sender (or the duplicate) may still hold the original.
      const copy = packet.slice();
      const bit = this.rng.int(copy.length * 8);
      copy[bit >> 3]! ^= 1 << (bit & 7);
      packet = copy;
      this.effect('corrupted');
    }

    const now = this.clock.now();
    let departs = now;
    if (cfg.rateBytesPerSec !== undefined && cfg.rateBytesPerSec > 0) {
      this.drainQueue(now);
      const limitBytes = cfg.queueBytes ?? DEFAULT_QUEUE_BYTES;
      const queuedPackets = this.queued.length - this.queuedHead;
      if (
        (queuedPackets > 0 && this.queuedBytes + packet.length > limitBytes) ||
        (cfg.queuePackets !== undefined && queuedPackets >= cfg.queuePackets)
      ) {
        countDrop(this.counters, `${this.prefix}queue`);
        return false;
      }
      // Serialisation: the packet starts when the bottleneck is free, and takes len/rate.
      const start = max(now, this.busyUntil);
      departs = start + (packet.length * 1000) / cfg.rateBytesPerSec;
      this.busyUntil = departs;
      this.queued.push({ departs, len: packet.length });
      this.queuedBytes += packet.length;
    }

    let exit = departs;
    const reordered = cfg.reorder !== undefined && this.rng.chance(cfg.reorder);
    if (reordered) this.effect('reordered');
    else {
      exit += max(0, (cfg.delayMs ?? 0) + this.jitter());
      if (cfg.jitterMs !== undefined && cfg.jitterMs > 0 && cfg.jitterReorders === false) {
        exit = max(exit, this.lastExit);
      }
    }
    if (exit > this.lastExit) this.lastExit = exit;

    if (exit <= now) {
      this.out(packet);
      return true;
    }
    const id = this.nextFlightId++;
    const handle = this.clock.setTimer(exit - now, () => {
      this.inFlight.delete(id);
      this.out(packet);
    });
    this.inFlight.set(id, handle);
    return true;
  }

  private lost(): boolean {
    const ge = this.cfg.lossBurst;
    if (ge !== undefined) {
      // netem's loss_gilb_ell: transition first, then lose according to the new state.
      if (this.geBad) {
        if (this.rng.chance(ge.pBadToGood)) this.geBad = false;
      } else if (this.rng.chance(ge.pGoodToBad)) {
        this.geBad = true;
      }
      const p = this.geBad ? (ge.lossInBad ?? 1) : (ge.lossInGood ?? 0);
      return this.rng.chance(p);
    }
    return this.cfg.loss !== undefined && this.rng.chance(this.cfg.loss);
  }

  private jitter(): number {
    const j = this.cfg.jitterMs;
    if (j === undefined || j <= 0) return 0;
    if (this.cfg.jitterDistribution === 'normal') return this.rng.normal(0, j);
    return (this.rng.float() * 2 - 1) * j;
  }

  private drainQueue(now: number): void {
    while (this.queuedHead < this.queued.length && this.queued[this.queuedHead]!.departs <= now) {
      this.queuedBytes -= this.queued[this.queuedHead]!.len;
      this.queuedHead++;
    }
    if (this.queuedHead > 1024 && this.queuedHead * 2 > this.queued.length) {
      this.queued.splice(0, this.queuedHead);
      this.queuedHead = 0;
    }
  }
}

/**
 * A decorator that impairs any link per direction: delay, jitter, reordering, loss
 * (random or bursty), rate with a bounded tail-drop queue, duplication, corruption,
 * MTU, and its own up/down switch. It is what impairs simulated paths and, in later
 * issues, real tun paths and `nuse router`.
 *
 * Its counters' `drops` record what it did, per direction: "tx-loss", "rx-queue",
 * "tx-duplicated", "rx-corrupted", "tx-down", ...
 */
export class Shaper extends LinkDecorator {
  /** What the shaper did besides dropping, per direction: "tx-duplicated", "rx-corrupted", "tx-reordered". */
  readonly effects: Record<string, number> = {};
  private readonly txPipe: Impairment;
  private readonly rxPipe: Impairment;
  private adminUp = true;
  private readonly stateHandlers = new Set<(up: boolean) => void>();
  private readonly unsubscribeState: () => void;

  constructor(inner: Link, opts: ShaperOptions) {
    super(inner);
    const rng = new Random(opts.seed ?? `shaper:${inner.name}`);
    this.txPipe = new Impairment(opts.tx ?? {}, opts.clock, rng.fork('tx'), this.counters, this.effects, 'tx-', (p) =>
      this.sendOut(p),
    );
    this.rxPipe = new Impairment(opts.rx ?? {}, opts.clock, rng.fork('rx'), this.counters, this.effects, 'rx-', (p) =>
      this.deliver(p),
    );
    this.unsubscribeState = inner.onStateChange((innerUp) => {
      if (!innerUp) this.flush();
      if (this.adminUp) this.notify(innerUp);
    });
  }

  override get mtu(): number {
    const own = this.txPipe.config.mtu;
    return own === undefined ? this.inner.mtu : Math.min(own, this.inner.mtu);
  }

  override get isUp(): boolean {
    return this.adminUp && this.inner.isUp;
  }

  /** Changes the impairments at run time; packets already in flight keep their schedule. */
  configure(cfg: { tx?: ShapeConfig; rx?: ShapeConfig }): void {
    if (cfg.tx !== undefined) this.txPipe.configure(cfg.tx);
    if (cfg.rx !== undefined) this.rxPipe.configure(cfg.rx);
  }

  get config(): { tx: ShapeConfig; rx: ShapeConfig } {
    return { tx: this.txPipe.config, rx: this.rxPipe.config };
  }

  /** Packets held by the shaper (queued or delayed) in each direction. */
  get pending(): { tx: number; rx: number } {
    return { tx: this.txPipe.pending, rx: this.rxPipe.pending };
  }

  override send(packet: Uint8Array): boolean {
    if (!this.isUp) {
      countDrop(this.counters, 'tx-down');
      return false;
    }
    if (packet.length > this.inner.mtu) {
      countDrop(this.counters, 'tx-mtu');
      return false;
    }
    this.counters.txPackets++;
    this.counters.txBytes += packet.length;
    return this.txPipe.push(packet);
  }

  override onStateChange(handler: (up: boolean) => void): () => void {
    this.stateHandlers.add(handler);
    return () => this.stateHandlers.delete(handler);
  }

  /**
   * Takes this shaped path up or down without touching the inner link (so a real
   * interface stays configured). Going down drops everything queued or in flight.
   */
  override setUp(up: boolean): void {
    if (up === this.adminUp) return;
    const before = this.isUp;
    this.adminUp = up;
    if (!up) this.flush();
    if (this.isUp !== before) this.notify(this.isUp);
  }

  override close(): void {
    this.flush();
    this.unsubscribeState();
    this.stateHandlers.clear();
    super.close();
  }

  protected override onInner(packet: Uint8Array): void {
    if (!this.isUp) {
      countDrop(this.counters, 'rx-down');
      return;
    }
    this.rxPipe.push(packet);
  }

  private sendOut(packet: Uint8Array): void {
    // The inner link counts its own refusals (down, mtu); nothing more to do here.
    this.inner.send(packet);
  }

  private flush(): void {
    this.txPipe.flush();
    this.rxPipe.flush();
  }

  private notify(up: boolean): void {
    for (const h of [...this.stateHandlers]) h(up);
  }
}
