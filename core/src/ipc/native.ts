/**
 * The daemon's few native socket calls (shim/native/ipc_addon.c, built with the shim):
 * SO_PEERCRED, the peer's abstract name, a unix connect from a bound abstract name, and
 * whether a stream's peer closed it (POLLHUP).
 */

import * as fs from 'node:fs';
import * as path from 'node:path';

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

export interface IpcNative {
  peerCred(fd: number): PeerCred;
  /** The peer's abstract name (without the leading NUL), or null for a path or an unbound peer. */
  peerName(fd: number): string | null;
  /** A new non-blocking unix stream fd bound to abstract `from`, connected to abstract `to`. Throws with `code`. */
  connectAbstract(from: string, to: string): number;
  /** Whether the peer of a unix stream closed it (POLLHUP), rather than only shutting down its writing side. */
  hungUp(fd: number): boolean;
  /**
   * Whether the peer of a unix stream was released (its last fd closed), also after it shut
   * down both directions, which hungUp cannot tell from a close (sock_diag). Optional: without
   * it, hungUp decides.
   */
  peerClosed?(fd: number): boolean;
}

/** Where the shim package builds its files (the same from core/src and core/dist). */
export const SHIM_DIR = path.resolve(__dirname, '..', '..', '..', 'shim');
export const IPC_ADDON_PATH = path.join(SHIM_DIR, 'build', 'Release', 'nuse_ipc.node');
export const SHIM_LIBRARY_PATH = path.join(SHIM_DIR, 'build', 'libnuse.so');

let loaded: IpcNative | undefined;

export function loadIpcNative(): IpcNative {
  if (loaded !== undefined) return loaded;
  if (!fs.existsSync(IPC_ADDON_PATH)) {
    throw Object.assign(new Error(`the IPC addon ${IPC_ADDON_PATH} is not built (run "npm run build")`), {
      code: 'ENOENT',
    });
  }
  loaded = require(IPC_ADDON_PATH) as IpcNative;
  return loaded;
}
