import type { Clock } from '../time/clock';
import { LinkBase } from './link';
import { type ShapeConfig, Shaper } from './shaper';

/**
 * One end of an ideal in-memory wire. A packet sent on one end arrives at the other
 * on the next clock turn (never synchronously, so a reply cannot re-enter the
 * sender's call stack). Both ends share one carrier: taking either end down takes
 * the wire down, and both ends see it, as with a pulled cable.
 */
export class WireEnd extends LinkBase {
  peer!: WireEnd;
  private carrier: { up: boolean; ends: WireEnd[] } = { up: true, ends: [] };

  constructor(
    name: string,
    mtu: number,
    private readonly clock: Clock,
  ) {
    super(name, mtu);
  }

  /** Makes two connected ends. */
  static pair(clock: Clock, mtu: number, names: [string, string]): [WireEnd, WireEnd] {
    const a = new WireEnd(names[0], mtu, clock);
    const b = new WireEnd(names[1], mtu, clock);
    a.peer = b;
    b.peer = a;
    const carrier = { up: true, ends: [a, b] };
    a.carrier = carrier;
    b.carrier = carrier;
    return [a, b];
  }

  override setUp(up: boolean): void {
    if (this.carrier.up === up) return;
    this.carrier.up = up;
    for (const end of this.carrier.ends) end.applyCarrier(up);
  }

  protected transmit(packet: Uint8Array): boolean {
    const peer = this.peer;
    this.clock.setTimer(0, () => peer.receiveFromWire(packet));
    return true;
  }

  private receiveFromWire(packet: Uint8Array): void {
    this.deliver(packet);
  }

  private applyCarrier(up: boolean): void {
    super.setUp(up);
  }
}

export interface SimPathOptions {
  clock: Clock;
  /** Impairments from end A to end B. */
  aToB?: ShapeConfig;
  /** Impairments from end B to end A. */
  bToA?: ShapeConfig;
  /** MTU of the wire (default 1500). */
  mtu?: number;
  /** Seed for the path's randomness. */
  seed?: number | string;
  /** Interface names at each end (default "simA"/"simB"). */
  names?: [string, string];
}

/**
 * A simulated path: a wire whose two directions are each impaired by a Shaper on the
 * sending side. `a` and `b` are the links the two hosts use.
 */
export class SimPath {
  readonly a: Shaper;
  readonly b: Shaper;
  private readonly wire: [WireEnd, WireEnd];

  constructor(opts: SimPathOptions) {
    const names = opts.names ?? ['simA', 'simB'];
    this.wire = WireEnd.pair(opts.clock, opts.mtu ?? 1500, names);
    const seed = opts.seed ?? `${names[0]}<->${names[1]}`;
    this.a = new Shaper(this.wire[0], { clock: opts.clock, tx: opts.aToB ?? {}, seed: `${seed}/a` });
    this.b = new Shaper(this.wire[1], { clock: opts.clock, tx: opts.bToA ?? {}, seed: `${seed}/b` });
  }

  get isUp(): boolean {
    return this.wire[0].isUp;
  }

  /** Takes the whole path (both ends) up or down. */
  setUp(up: boolean): void {
    this.wire[0].setUp(up);
  }

  /** Changes the impairments of one or both directions at run time. */
  configure(cfg: { aToB?: ShapeConfig; bToA?: ShapeConfig }): void {
    if (cfg.aToB !== undefined) this.a.configure({ tx: cfg.aToB });
    if (cfg.bToA !== undefined) this.b.configure({ tx: cfg.bToA });
  }

  close(): void {
    this.a.close();
    this.b.close();
  }
}
