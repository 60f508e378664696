#!/usr/bin/env node
/**
 * The `nuse` executable: `nuse daemon`, `nuse run`, `nuse router` (`npx nuse --help`).
 * Mistakes in the arguments exit with status 2 and one line on standard error; a
 * command that cannot start (no permission, a name taken) exits with status 1.
 */

import { Command, CommanderError } from 'commander';
import { registerDaemonCommand, StartupError } from '../daemon/command';
import { registerRouterCommand } from '../router/command';
import { registerRunCommand } from '../run/command';
import { UsageError } from './usage-error';

const VERSION: string = (require('../../package.json') as { version: string }).version;

export function buildProgram(): Command {
  const program = new Command('nuse')
    .description('nuse: a userspace TCP/IP stack with run-time protocol plugins (MPTCP first)')
    .version(VERSION)
    .exitOverride();
  registerDaemonCommand(program);
  registerRunCommand(program);
  registerRouterCommand(program);
  // One line per mistake, in the same form as the CLI's own usage errors.
  const output = {
    outputError: (text: string, write: (s: string) => void) =>
      write(`nuse: ${text.replace(/^error: /, '').trimEnd()} (see "nuse --help")\n`),
  };
  program.configureOutput(output);
  for (const c of program.commands) c.exitOverride().configureOutput(output);
  return program;
}

/** Runs the CLI; resolves with the exit status. */
export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    // A command that sets its own status (nuse run: the program's) leaves it in process.exitCode.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander has printed the message (and help or version) already.
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`nuse: ${e.message}\n`);
      return 2;
    }
    if (e instanceof StartupError) {
      process.stderr.write(`nuse: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`nuse: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return 70; // EX_SOFTWARE
  }
}

if (require.main === module) {
  main().then((status) => {
    process.exit(status);
  });
}
