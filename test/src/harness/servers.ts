/**
 * Kernel-side servers in namespace S: python3 http.server and one-shot socat senders,
 * started and waited for (listening), stopped with their process tree.
 */

import type { ChildProcess } from 'node:child_process';
import { ADDR, killTree, Topology, type TopologyOptions, waitForPort } from './netns';

export interface NsServer {
  child: ChildProcess;
  port: number;
  stop(): void;
}

/** Topology.create, named for the tests. */
export function createTopology(opts: TopologyOptions = {}): Topology {
  return Topology.create(opts);
}

async function started(t: Topology, child: ChildProcess, port: number, what: string): Promise<NsServer> {
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  child.stdout!.resume();
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) =>
      reject(new Error(`${what} exited (${code ?? signal}) before listening: ${stderr.trim()}`)),
    ),
  );
  exited.catch(() => undefined);
  try {
    await Promise.race([waitForPort(t.nsS, port), exited]);
  } catch (err) {
    killTree(child);
    throw err;
  }
  return { child, port, stop: () => killTree(child) };
}

/** `python3 -m http.server PORT --bind ADDR --directory DIR` in S. */
export function startHttpServer(t: Topology, dir: string, port: number, bind: string = ADDR.host): Promise<NsServer> {
  const child = t.spawnS('python3', ['-m', 'http.server', String(port), '--bind', bind, '--directory', dir]);
  return started(t, child, port, 'python3 http.server');
}

/** `socat -u FILE:path TCP-LISTEN:port` in S: sends the file to the first client, then exits. */
export function startSocatSender(t: Topology, file: string, port: number, v6 = false): Promise<NsServer> {
  const listen = `${v6 ? 'TCP6' : 'TCP'}-LISTEN:${port},reuseaddr`;
  const child = t.spawnS('socat', ['-u', `FILE:${file}`, listen]);
  return started(t, child, port, 'socat sender');
}
