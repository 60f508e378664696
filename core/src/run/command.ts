/**
 * `nuse run [--mptcp] [--kernel PREFIX]... [--only PREFIX]... [--socket PATH] -- CMD ARGS...`:
 * runs CMD with the shim preloaded (ahead of any LD_PRELOAD the user had) and the daemon's
 * control socket in NUSE_SOCKET, so its TCP sockets go through the userspace stack. The
 * program's policy (core/src/ipc/policy.ts) goes in NUSE_KERNEL, NUSE_ONLY and NUSE_MPTCP. Exits with CMD's status (128 + N for
 * a signal). If no daemon answers on the socket, says so in one line and exits 1.
 */

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../cli/usage-error';
import { StartupError } from '../daemon/command';
import { SHIM_LIBRARY_PATH } from '../ipc/native';
import { defaultSocketPath } from '../ipc/paths';
import { MAX_PREFIXES, parsePrefix } from '../ipc/policy';
import { decodeReply, encodeFrame, PROTOCOL_VERSION } from '../ipc/protocol';

export interface RunFlags {
  mptcp?: boolean;
  socket?: string;
  kernel?: string[];
  only?: string[];
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerRunCommand(program: Command): void {
  // So that CMD's own options (`nuse run curl -s URL`) are CMD's, with or without "--".
  program.enablePositionalOptions();
  program
    .command('run')
    .description('run a program with its TCP sockets on the nuse daemon (LD_PRELOAD shim)')
    .usage('[--mptcp] [--kernel PREFIX]... [--only PREFIX]... [--socket PATH] -- CMD [ARGS...]')
    .option('--mptcp', 'upgrade plain TCP sockets to MPTCP (IPPROTO_MPTCP)')
    .option(
      '--kernel <prefix>',
      'destinations in PREFIX stay on the kernel (repeatable; loopback always does)',
      collect,
      [],
    )
    .option('--only <prefix>', 'only destinations in PREFIX go to the userspace stack (repeatable)', collect, [])
    .option('--socket <path>', "the daemon's control socket (default: $NUSE_SOCKET, else the daemon's default)")
    .argument('<cmd...>', 'the program and its arguments')
    .passThroughOptions()
    .action(async (cmd: string[], flags: RunFlags) => {
      const status = await runCommand(cmd, flags);
      process.exitCode = status;
    });
}

/** The program's policy as the shim reads it from the environment. */
export interface RunPolicy {
  mptcp: boolean;
  /** Prefixes, checked (parsePrefix). */
  kernel: string[];
  only: string[];
}

/** The environment CMD runs with. */
export function shimEnvironment(
  env: NodeJS.ProcessEnv,
  socketPath: string,
  policy: RunPolicy | boolean,
): NodeJS.ProcessEnv {
  const p: RunPolicy = typeof policy === 'boolean' ? { mptcp: policy, kernel: [], only: [] } : policy;
  const out: NodeJS.ProcessEnv = { ...env, NUSE_SOCKET: socketPath };
  const previous = (env.LD_PRELOAD ?? '').split(/[:\s]+/).filter((x) => x !== '' && x !== SHIM_LIBRARY_PATH);
  out.LD_PRELOAD = [SHIM_LIBRARY_PATH, ...previous].join(' ');
  // Each variable is this run's alone: a nested `nuse run` does not inherit the outer one's.
  if (p.mptcp) out.NUSE_MPTCP = '1';
  else delete out.NUSE_MPTCP;
  if (p.kernel.length > 0) out.NUSE_KERNEL = p.kernel.join(',');
  else delete out.NUSE_KERNEL;
  if (p.only.length > 0) out.NUSE_ONLY = p.only.join(',');
  else delete out.NUSE_ONLY;
  return out;
}

/** Checks the policy flags: a bad prefix is a usage error (exit 2). */
function runPolicy(flags: RunFlags): RunPolicy {
  const check = (list: string[] | undefined, what: string): string[] => {
    if ((list?.length ?? 0) > MAX_PREFIXES) throw new UsageError(`run ${what}: more than ${MAX_PREFIXES} prefixes`);
    return (list ?? []).map((p) => {
      try {
        return parsePrefix(p).toString();
      } catch (e) {
        throw new UsageError(`run ${what}: ${(e as Error).message}`);
      }
    });
  };
  return { mptcp: flags.mptcp === true, kernel: check(flags.kernel, '--kernel'), only: check(flags.only, '--only') };
}

export async function runCommand(cmd: string[], flags: RunFlags): Promise<number> {
  if (cmd.length === 0) throw new UsageError('run: no command given (nuse run -- CMD [ARGS...])');
  const policy = runPolicy(flags);
  if (!fs.existsSync(SHIM_LIBRARY_PATH)) {
    throw new StartupError(`the shim ${SHIM_LIBRARY_PATH} is not built (run "npm run build")`);
  }
  const socketPath = path.resolve(flags.socket ?? (process.env.NUSE_SOCKET || defaultSocketPath()));
  const problem = await checkDaemon(socketPath);
  if (problem !== undefined) throw new StartupError(`no nuse daemon at ${socketPath}: ${problem}`);

  const child = spawn(cmd[0]!, cmd.slice(1), {
    stdio: 'inherit',
    env: shimEnvironment(process.env, socketPath, policy),
  });
  // The terminal's signals (^C, ^\) reach the child directly, as it is in our process group:
  // we only survive them to report its status. Signals sent to us alone are passed on.
  const forward = (signal: NodeJS.Signals): void => {
    if (signal === 'SIGTERM' || signal === 'SIGHUP') child.kill(signal);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
  for (const s of signals) process.on(s, forward);
  return new Promise<number>((resolve, reject) => {
    child.once('error', (e: NodeJS.ErrnoException) => {
      for (const s of signals) process.off(s, forward);
      reject(new StartupError(`cannot run ${cmd[0]}: ${e.code === 'ENOENT' ? 'command not found' : e.message}`));
    });
    child.once('exit', (code, signal) => {
      for (const s of signals) process.off(s, forward);
      if (signal !== null) resolve(128 + (signalNumber(signal) ?? 1));
      else resolve(code ?? 1);
    });
  });
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  return (require('node:os') as typeof import('node:os')).constants.signals[signal];
}

/** Connects and says hello; undefined when a daemon of our protocol version answers, else why not. */
export function checkDaemon(socketPath: string, timeoutMs = 3000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    let got = Buffer.alloc(0);
    const finish = (problem: string | undefined): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(problem);
    };
    const timer = setTimeout(() => finish('it does not answer'), timeoutMs);
    s.once('connect', () => s.write(encodeFrame({ op: 'hello', id: 1, v: PROTOCOL_VERSION, pid: process.pid })));
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length < 4 || got.length < 4 + got.readUInt32BE(0)) return;
      const body = got.subarray(4, 4 + got.readUInt32BE(0));
      let reply: Record<string, unknown> | undefined;
      try {
        reply = decodeReply(body);
      } catch {
        reply = undefined;
      }
      finish(reply?.err === 0 ? undefined : 'it speaks another protocol version');
    });
    s.once('error', (e: NodeJS.ErrnoException) =>
      finish(
        e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
          ? 'it is not running (start it with "nuse daemon --tun ... --socket PATH")'
          : e.code === 'EACCES'
            ? 'permission denied (the socket belongs to another user)'
            : e.message,
      ),
    );
    s.once('end', () => finish('it closed the connection'));
  });
}
