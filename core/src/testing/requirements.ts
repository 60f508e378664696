/**
 * What the root tests (tun devices, namespaces, kernel peers) need, and one way to say
 * it is missing. They FAIL, never skip, when something is missing: CI runs them as
 * root, where a missing piece is a defect (the developers' guide).
 */

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { TUN_ADDON_PATH } from '../link/tun';

/** Debian package of each tool the tests may use, for the error message. */
const PACKAGES: Record<string, string> = {
  ip: 'iproute2',
  ss: 'iproute2',
  tc: 'iproute2',
  nstat: 'iproute2',
  ping: 'iputils-ping',
  python3: 'python3',
  curl: 'curl',
  socat: 'socat',
  iperf3: 'iperf3',
  tshark: 'tshark',
  iptables: 'iptables',
  sha256sum: 'coreutils',
  gcc: 'build-essential',
};

export function commandExists(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface RootRequirementOptions {
  /** The suite opens tun devices: /dev/net/tun and the built addon are needed too (default true). */
  tun?: boolean;
}

/**
 * Every reason the environment cannot run a root suite, empty when it can: root,
 * iproute2, each of `tools`, and (unless `tun: false`) /dev/net/tun and the built tun addon.
 */
export function missingRootRequirements(tools: readonly string[] = [], opts: RootRequirementOptions = {}): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) {
    missing.push('root (CAP_NET_ADMIN, CAP_SYS_ADMIN) for tun devices and network namespaces');
  }
  if (opts.tun !== false) {
    if (!fs.existsSync('/dev/net/tun'))
      missing.push('/dev/net/tun (modprobe tun; in a container --device /dev/net/tun)');
    if (!fs.existsSync(TUN_ADDON_PATH)) missing.push(`the built tun addon ${TUN_ADDON_PATH} (run "npm run build")`);
  }
  for (const tool of new Set(['ip', ...tools])) {
    if (!commandExists(tool)) missing.push(`${tool} (Debian package ${PACKAGES[tool] ?? tool})`);
  }
  return missing;
}

/** Throws, naming everything missing, when a root suite cannot run here. */
export function assertRootRequirements(
  suite: string,
  tools: readonly string[] = [],
  opts: RootRequirementOptions = {},
): void {
  const missing = missingRootRequirements(tools, opts);
  if (missing.length === 0) return;
  throw new Error(
    `${suite} cannot run without: ${missing.join('; ')}. They are not skipped: run them as root (CI: .ci/run as root)` +
      (process.env.CI === 'true' ? ' — this is CI, where they must run' : ''),
  );
}
