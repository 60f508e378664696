/**
 * A link over a Linux tun device (IFF_TUN | IFF_NO_PI: raw IP packets, LINKTYPE_RAW),
 * through the project's own N-API addon (core/native/tun.c, built by `npm run build`
 * into core/build/Release/tun.node).
 *
 * The addon reads on the event loop (uv_poll, no thread pool) and hands over every
 * packet that was waiting in one batch per wake-up; writes go straight to the device and
 * are queued (bounded) when the device's queue is full.
 *
 * The interface exists while the link is open: closing the link closes the device's
 * file descriptor, and the kernel removes a non-persistent tun with its addresses.
 */

import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { countDrop, LinkBase } from './link';
import { SegmentCoalescer } from './segment-coalescer';

/** The addon's device object (see core/native/tun.c). */
interface NativeTunDevice {
  readonly name: string;
  readonly fd: number;
  start(callback: (err: NodeJS.ErrnoException | null, data?: Buffer, ends?: Uint32Array) => void): void;
  /**
   * 0 written, 1 queued, -1 dropped (queue full), -2 dropped (write error). With
   * `gsoSize` (a device opened with vnetHdr) the packet is a TCP super-segment the
   * kernel cuts into segments of that many payload bytes.
   */
  write(packet: Uint8Array, gsoSize?: number): number;
  stats(): TunDeviceStats;
  ref(): void;
  unref(): void;
  close(): void;
}

interface TunAddon {
  TunDevice: new (name: string, options?: { vnetHdr?: boolean; rxOffload?: boolean }) => NativeTunDevice;
}

/** The device's own counters, kept by the addon. */
export interface TunDeviceStats {
  rxPackets: number;
  rxBytes: number;
  /** Wake-ups that delivered packets: rxPackets / rxBatches is the mean batch size. */
  rxBatches: number;
  /** TCP super-packets the kernel handed over (receive offload), and the segments cut from them. */
  rxSuperPackets: number;
  rxCutSegments: number;
  /** Offloaded packets that could not be cut (dropped). */
  rxErrors: number;
  txPackets: number;
  txBytes: number;
  /** Packets that met a full device queue (EAGAIN) and waited in the addon's queue. */
  txQueued: number;
  txDroppedQueueFull: number;
  txErrors: number;
  queueLength: number;
  /** errno name of the last failed write, e.g. "EINVAL" for a packet that is not IP. */
  lastWriteError: string | null;
}

export interface TunOpenOptions {
  /** Interface name (at most 15 bytes; "nuse%d" lets the kernel number it). Default: kernel-chosen (tunN). */
  name?: string;
  /** MTU of the link and of the interface (default 1500, the kernel's default for tun). */
  mtu?: number;
  /**
   * The kernel side's address with its prefix, e.g. "198.18.7.1/30". When given, the
   * interface is configured (address, MTU, up) with iproute2: see `configureTun`.
   */
  address?: string;
  /** Point-to-point peer address for `ip addr add ADDR peer PEER` (usually the stack's address). */
  peer?: string;
  /**
   * Segmentation offload (default true): consecutive TCP segments the stack sends in one
   * turn of the event loop go to the kernel as one super-segment that it cuts back into
   * the same segments (IFF_VNET_HDR + GSO), one system call for up to 64 segments. The
   * wire sees exactly the segments the stack made. `NUSE_TUN_GSO=0` turns it off.
   */
  gso?: boolean;
  /**
   * Receive offload (default false): the kernel may hand over TCP super-packets and
   * partial checksums (TUNSETOFFLOAD), which the addon cuts into the segments they stand
   * for, with full checksums, before the stack sees them: fewer reads and less work in
   * the kernel. On the interop path it did not change kernel → nuse throughput (the
   * stack's own per-segment work bounds it), so it is off unless asked for.
   */
  rxOffload?: boolean;
  /**
   * A named network namespace (`ip netns add NAME`) to move the interface into before
   * configuring it. The link keeps working: the device's file descriptor stays with this
   * process, so the kernel side of the tun, its address and its routes live in NAME.
   */
  netns?: string;
}

export interface TunConfig {
  /** The kernel side's address with its prefix, e.g. "198.18.7.1/30" or "fd00::1/64". */
  address: string;
  /** Optional point-to-point peer (`ip addr add ADDR peer PEER`). */
  peer?: string;
  mtu: number;
  /** The named network namespace the interface is in (default: the current one). */
  netns?: string;
}

/** An Error with the errno name in `code`, as the addon throws them. */
export class TunError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'TunError';
  }
}

const DEFAULT_MTU = 1500;
const IFNAMSIZ = 16;

let addon: TunAddon | undefined;

/** The compiled addon: core/build/Release/tun.node (the same path from src/link and dist/link). */
export const TUN_ADDON_PATH = path.resolve(__dirname, '..', '..', 'build', 'Release', 'tun.node');

function loadAddon(): TunAddon {
  if (addon) return addon;
  try {
    addon = require(TUN_ADDON_PATH) as TunAddon;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'MODULE_NOT_FOUND') {
      throw new TunError(
        `the tun addon is not built (${TUN_ADDON_PATH} is missing): run "npm run build" at the repository root`,
        'ENOADDON',
      );
    }
    throw new TunError(`cannot load the tun addon ${TUN_ADDON_PATH}: ${e.message}`, 'ENOADDON');
  }
  return addon;
}

/** Rejects names the kernel would refuse, with a clearer message than its EINVAL. */
export function checkTunName(name: string): void {
  const bytes = Buffer.byteLength(name);
  if (bytes === 0 || bytes >= IFNAMSIZ) {
    throw new TunError(`bad tun interface name "${name}": it must be 1 to ${IFNAMSIZ - 1} bytes long`, 'EINVAL');
  }
  if (name === '.' || name === '..' || /[/:\s]/.test(name)) {
    throw new TunError(
      `bad tun interface name "${name}": it must not be "." or ".." or contain "/", ":" or whitespace`,
      'EINVAL',
    );
  }
}

/** Runs iproute2's `ip` with `args`; throws a TunError naming the command and ip's own message. */
export function runIp(args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; status?: number };
    if (e.code === 'ENOENT') {
      throw new TunError('cannot configure the tun interface: "ip" (iproute2) is not installed', 'ENOENT');
    }
    const reason = (e.stderr ?? '').trim() || e.message;
    throw new TunError(`ip ${args.join(' ')} failed (exit ${e.status ?? '?'}): ${reason}`, 'EIP');
  }
}

/**
 * Gives a tun interface its kernel-side address, MTU and up state with iproute2:
 * `ip addr add ADDR [peer PEER] dev NAME` and `ip link set NAME mtu M up`.
 * Throws a TunError naming the failed command and iproute2's message.
 */
export function configureTun(name: string, config: TunConfig): void {
  checkTunName(name);
  if (!/^[0-9a-fA-F.:]+\/\d{1,3}$/.test(config.address)) {
    throw new TunError(`bad address "${config.address}" for ${name}: expected ADDR/PREFIX`, 'EINVAL');
  }
  if (!Number.isInteger(config.mtu) || config.mtu < 68 || config.mtu > 65535) {
    throw new TunError(`bad MTU ${config.mtu} for ${name}: expected an integer from 68 to 65535`, 'EINVAL');
  }
  const ns = config.netns === undefined ? [] : ['-n', config.netns];
  const addr = [...ns, 'addr', 'add', config.address];
  if (config.peer !== undefined) addr.push('peer', config.peer);
  addr.push('dev', name);
  runIp(addr);
  runIp([...ns, 'link', 'set', name, 'mtu', String(config.mtu), 'up']);
}

/** Counters of the segmentation offload (see TunOpenOptions.gso). */
export interface TunGsoStats {
  /** Super-segments written. */
  superSegments: number;
  /** Segments they carried. */
  segments: number;
  /** Packets written as they were (not joinable, or alone). */
  single: number;
}

export class TunLink extends LinkBase {
  private closed = false;
  /** Packets waiting for the end of this turn of the event loop, to be joined (gso). */
  private coalescer: SegmentCoalescer | undefined;
  private flushScheduled = false;
  readonly gsoStats: TunGsoStats = { superSegments: 0, segments: 0, single: 0 };
  /** The read error that took the link down (the interface was deleted, ...), if any. */
  error: Error | undefined;

  private constructor(
    private readonly device: NativeTunDevice,
    mtu: number,
    private readonly gsoCapable: boolean,
  ) {
    super(device.name, mtu);
    if (gsoCapable) this.coalescer = new SegmentCoalescer();
    device.start((err, data, ends) => {
      if (err) {
        this.error = err;
        countDrop(this.counters, 'rx-error');
        this.setUp(false);
        return;
      }
      if (!data || !ends) return;
      let start = 0;
      for (const end of ends) {
        this.deliver(data.subarray(start, end));
        start = end;
      }
    });
  }

  /**
   * Creates (or attaches to) tun interface `name` in the current network namespace.
   * Throws a TunError with `code`: ENOENT (no /dev/net/tun), EPERM/EACCES (needs root or
   * CAP_NET_ADMIN), EBUSY (the name is taken), EINVAL (bad name), EIP (iproute2 failed),
   * ENOADDON (the addon is not built).
   */
  static open(options: TunOpenOptions = {}): TunLink {
    const mtu = options.mtu ?? DEFAULT_MTU;
    if (options.name !== undefined) checkTunName(options.name);
    const { TunDevice } = loadAddon();
    const gso = options.gso ?? process.env.NUSE_TUN_GSO !== '0';
    const device = new TunDevice(options.name ?? '', { vnetHdr: gso, rxOffload: options.rxOffload ?? false });
    try {
      if (options.netns !== undefined) runIp(['link', 'set', 'dev', device.name, 'netns', options.netns]);
      const ns = options.netns === undefined ? [] : ['-n', options.netns];
      if (options.address !== undefined) {
        configureTun(device.name, { address: options.address, peer: options.peer, mtu, netns: options.netns });
      } else if (mtu !== DEFAULT_MTU) {
        runIp([...ns, 'link', 'set', device.name, 'mtu', String(mtu)]);
      }
    } catch (err) {
      device.close();
      throw err;
    }
    return new TunLink(device, mtu, gso);
  }

  /**
   * Turns segmentation offload off or back on at run time (a device opened with `gso`):
   * e.g. while something on the path drops packets at random and must see each segment.
   */
  setGso(enabled: boolean): void {
    if (enabled && !this.gsoCapable) throw new Error(`tun ${this.name}: opened without gso, it cannot be turned on`);
    if (!enabled && this.flushScheduled) this.flush();
    this.coalescer = enabled ? (this.coalescer ?? new SegmentCoalescer()) : undefined;
  }

  /** The addon's counters (batches, queued writes, write errors). */
  get deviceStats(): TunDeviceStats {
    return this.device.stats();
  }

  get fd(): number {
    return this.device.fd;
  }

  /** Lets the process exit while the link is open (as `socket.unref()`). */
  unref(): void {
    this.device.unref();
  }

  ref(): void {
    this.device.ref();
  }

  protected transmit(packet: Uint8Array): boolean {
    if (this.closed) {
      countDrop(this.counters, 'closed');
      return false;
    }
    if (this.coalescer === undefined) return this.write(packet, 0, 1);
    // Held to the end of this turn: what the stack sends in one go leaves as one write.
    this.coalescer.add(packet);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flush);
    }
    return true;
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.coalescer === undefined || this.closed) return;
    for (const c of this.coalescer.take()) {
      if (c.gsoSize > 0) {
        this.gsoStats.superSegments++;
        this.gsoStats.segments += c.segments;
      } else {
        this.gsoStats.single++;
      }
      this.write(c.packet, c.gsoSize, c.segments);
    }
  };

  private write(packet: Uint8Array, gsoSize: number, segments: number): boolean {
    const result = gsoSize > 0 ? this.device.write(packet, gsoSize) : this.device.write(packet);
    if (result >= 0) return true;
    countDrop(this.counters, result === -1 ? 'queue' : 'error', segments);
    return false;
  }

  /** Closes the device; the kernel removes the interface and its addresses. Idempotent. */
  override close(): void {
    if (this.closed) return;
    if (this.flushScheduled) this.flush(); // what was accepted still leaves
    this.closed = true;
    this.device.close();
    super.close();
  }
}
