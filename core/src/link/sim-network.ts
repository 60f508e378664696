import type { Clock } from '../time/clock';
import { RealClock } from '../time/real-clock';
import { VirtualClock } from '../time/virtual-clock';
import { Random } from '../util/random';
import type { Link } from './link';
import { SimPath, type SimPathOptions } from './sim-link';

/** An interface of a simulated host: a link and the address the host owns on it. */
export interface SimInterface {
  readonly name: string;
  readonly link: Link;
  /** Address in text form ("10.0.1.1" or "fd00::1"). */
  readonly address: string;
  readonly prefixLength: number;
}

/** A simulated host: a name and its interfaces. A stack (a later layer) attaches to its links. */
export class SimHost {
  readonly interfaces: SimInterface[] = [];
  constructor(readonly name: string) {}

  /** The interface that owns `address`. */
  interfaceFor(address: string): SimInterface | undefined {
    return this.interfaces.find((i) => i.address === address);
  }
}

export interface ConnectOptions extends Omit<SimPathOptions, 'clock' | 'names' | 'seed'> {
  /** Host A's address on this path, "ADDR/PREFIX". */
  a: string;
  /** Host B's address on this path, "ADDR/PREFIX". */
  b: string;
}

export interface SimNetworkOptions {
  /** Seed for every random choice in the network (default 1). */
  seed?: number | string;
  /** Virtual time (default: jumps from event to event) or real time. */
  time?: 'virtual' | 'real';
}

export interface RunOptions {
  /** Stop when this returns true. */
  done?: () => boolean;
  /** Stop at this clock time (ms), virtual or real. */
  until?: number;
  /** Virtual time only: fail if more events than this run (a livelock guard). */
  maxEvents?: number;
}

/**
 * Builds hosts and the paths between them. Several `connect` calls between the same
 * two hosts make several paths (as MPTCP needs). Runs in virtual time, where a 30 s
 * transfer takes well under a second of CPU and is identical for the same seed, or in
 * real time.
 */
export class SimNetwork {
  readonly clock: Clock;
  readonly hosts: SimHost[] = [];
  readonly paths: SimPath[] = [];
  private readonly rng: Random;

  constructor(opts: SimNetworkOptions = {}) {
    this.clock = opts.time === 'real' ? new RealClock() : new VirtualClock();
    this.rng = new Random(opts.seed ?? 1);
  }

  get isVirtual(): boolean {
    return this.clock instanceof VirtualClock;
  }

  addHost(name: string): SimHost {
    if (this.hosts.some((h) => h.name === name)) throw new Error(`SimNetwork: host "${name}" already exists`);
    const host = new SimHost(name);
    this.hosts.push(host);
    return host;
  }

  /** Adds a path between two hosts, with the given impairments per direction. */
  connect(hostA: SimHost, hostB: SimHost, opts: ConnectOptions): SimPath {
    const [addrA, prefixA] = splitPrefix(opts.a);
    const [addrB, prefixB] = splitPrefix(opts.b);
    const nameA = `eth${hostA.interfaces.length}`;
    const nameB = `eth${hostB.interfaces.length}`;
    const path = new SimPath({
      ...opts,
      clock: this.clock,
      names: [`${hostA.name}:${nameA}`, `${hostB.name}:${nameB}`],
      seed: this.rng.u32(),
    });
    hostA.interfaces.push({ name: nameA, link: path.a, address: addrA, prefixLength: prefixA });
    hostB.interfaces.push({ name: nameB, link: path.b, address: addrB, prefixLength: prefixB });
    this.paths.push(path);
    return path;
  }

  /**
   * Runs the network until `done()`, the time `until`, or (virtual time) nothing is left
   * to do. In virtual time this runs to completion synchronously before the promise resolves.
   */
  async run(opts: RunOptions = {}): Promise<void> {
    const clock = this.clock;
    if (clock instanceof VirtualClock) {
      clock.runUntilIdle({ ...opts });
      return;
    }
    const deadline = opts.until;
    await new Promise<void>((resolve) => {
      const poll = (): void => {
        if ((opts.done?.() ?? false) || (deadline !== undefined && clock.now() >= deadline)) resolve();
        else setTimeout(poll, 1);
      };
      poll();
    });
  }

  close(): void {
    for (const p of this.paths) p.close();
  }
}

function splitPrefix(text: string): [string, number] {
  const slash = text.indexOf('/');
  if (slash < 0) throw new Error(`SimNetwork: "${text}" needs a prefix length (ADDR/PREFIX)`);
  const addr = text.slice(0, slash);
  const len = Number(text.slice(slash + 1));
  const max = addr.includes(':') ? 128 : 32;
  if (!Number.isInteger(len) || len < 0 || len > max) throw new Error(`SimNetwork: bad prefix length in "${text}"`);
  return [addr, len];
}
