/**
 * The nuse side of the interop transfers: an HTTP/1.1 GET client, a "read everything"
 * client, an uploader, an HTTP file server and an upload sink, all over the stack's
 * Node-`net`-like sockets; plus streaming hashes of a child process's stdout (curl,
 * socat in the kernel namespace).
 */

import type { ChildProcess } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import type { Stack, TcpServer, TcpSocket } from '@nuse/core';

export interface Received {
  length: number;
  sha256: string;
  /** Wall time from the connect call (or accept) to the end of the stream, ms. */
  ms: number;
}

function errorWith(err: Error, what: string): Error {
  const code = (err as { code?: string }).code;
  return Object.assign(new Error(`${what}: ${err.message}`), { code, cause: err });
}

/** Rejects if `p` has not settled after `ms`, with `what` and `detail()` in the message. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string, detail?: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no result after ${ms} ms${detail ? ` (${detail()})` : ''}`)),
      ms,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A human summary of a socket's connection for timeout messages: state, bytes, RTT. */
export function describeSocket(socket: TcpSocket | undefined): string {
  if (socket === undefined) return 'no socket';
  const conn = socket.connection as unknown as Record<string, unknown> | undefined;
  const state = conn?.state ?? '?';
  return `state ${String(state)}, ${socket.bytesRead} bytes read, ${socket.bytesWritten} bytes written`;
}

/**
 * `GET /path` over HTTP/1.1 from the stack; hashes the body. Checks the status is 200
 * and that the body length equals Content-Length.
 */
export function httpGet(
  stack: Stack,
  host: string,
  port: number,
  urlPath: string,
): { socket: TcpSocket; done: Promise<Received & { contentLength: number }> } {
  const t0 = performance.now();
  const socket = stack.connect({ host, port });
  const done = new Promise<Received & { contentLength: number }>((resolve, reject) => {
    let head = Buffer.alloc(0);
    let contentLength = -1;
    let body = 0;
    const hash = createHash('sha256');
    socket.on('connect', () => {
      socket.write(`GET ${urlPath} HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      if (contentLength < 0) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > 65536) reject(new Error('HTTP response head longer than 64 KiB'));
          return;
        }
        const text = head.subarray(0, end).toString('latin1');
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
        if (status?.[1] !== '200') {
          reject(new Error(`HTTP status line: ${text.split('\r\n')[0]}`));
          socket.destroy();
          return;
        }
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text);
        if (!cl) {
          reject(new Error(`no Content-Length in the response head:\n${text}`));
          socket.destroy();
          return;
        }
        contentLength = Number(cl[1]);
        chunk = head.subarray(end + 4);
      }
      body += chunk.length;
      hash.update(chunk);
    });
    socket.on('error', (err) => reject(errorWith(err, `GET http://${host}:${port}${urlPath}`)));
    socket.on('end', () => {
      const ms = performance.now() - t0;
      if (contentLength < 0) reject(new Error('the connection ended before the HTTP response head'));
      else if (body !== contentLength) reject(new Error(`body of ${body} bytes, Content-Length said ${contentLength}`));
      else resolve({ length: body, sha256: hash.digest('hex'), ms, contentLength });
    });
  });
  return { socket, done };
}

/** Hashes everything arriving on `socket` until its end. */
export function receiveAll(socket: TcpSocket, what: string, t0 = performance.now()): Promise<Received> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let length = 0;
    socket.on('data', (chunk: Buffer) => {
      length += chunk.length;
      hash.update(chunk);
    });
    socket.on('error', (err) => reject(errorWith(err, what)));
    socket.on('end', () => resolve({ length, sha256: hash.digest('hex'), ms: performance.now() - t0 }));
  });
}

/** Connects and reads everything the kernel server sends until its FIN. */
export function download(stack: Stack, host: string, port: number): { socket: TcpSocket; done: Promise<Received> } {
  const t0 = performance.now();
  const socket = stack.connect({ host, port });
  return { socket, done: receiveAll(socket, `download from ${host}:${port}`, t0) };
}

/** Writes `data` to `socket` with backpressure (64 KiB writes), then end(). Resolves at 'close'. */
export function sendAll(socket: TcpSocket, data: Uint8Array, what: string): Promise<{ ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    let offset = 0;
    const pump = (): void => {
      while (offset < data.length) {
        const end = Math.min(offset + 65536, data.length);
        const ok = socket.write(data.subarray(offset, end));
        offset = end;
        if (!ok) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end();
    };
    socket.on('error', (err) => reject(errorWith(err, what)));
    socket.on('close', (hadError: boolean) => {
      if (!hadError) resolve({ ms: performance.now() - t0 });
    });
    // Ignore anything the peer sends; keep the stream flowing so its FIN is seen.
    socket.on('data', () => undefined);
    if (socket.connecting) socket.once('connect', pump);
    else pump();
  });
}

/** Connects and uploads `data`, then closes. */
export function upload(
  stack: Stack,
  host: string,
  port: number,
  data: Uint8Array,
): { socket: TcpSocket; done: Promise<{ ms: number }> } {
  const socket = stack.connect({ host, port });
  return { socket, done: sendAll(socket, data, `upload to ${host}:${port}`) };
}

/**
 * A minimal HTTP/1.1 server on the stack: any request gets `200 OK` with `data` as the
 * body and `Connection: close`.
 */
export function serveHttp(stack: Stack, port: number, data: Uint8Array): { server: TcpServer; sockets: TcpSocket[] } {
  const sockets: TcpSocket[] = [];
  const server = stack.createServer((socket) => {
    sockets.push(socket);
    let head = '';
    let answered = false;
    socket.on('error', () => undefined); // a client that goes away mid-transfer is the test's business
    socket.on('data', (chunk: Buffer) => {
      if (answered) return;
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      answered = true;
      socket.write(
        `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${data.length}\r\nConnection: close\r\n\r\n`,
      );
      void sendAll(socket, data, 'HTTP response').catch(() => undefined);
    });
  });
  server.listen(port);
  return { server, sockets };
}

/** Accepts connections on `port` and hashes what each one uploads; `next()` gives the next connection's result. */
export function sink(stack: Stack, port: number): { server: TcpServer; next: () => Promise<Received> } {
  const results: Promise<Received>[] = [];
  const waiters: ((r: Promise<Received>) => void)[] = [];
  const server = stack.createServer((socket) => {
    const r = receiveAll(socket, `upload received on port ${port}`);
    r.catch(() => undefined); // reported to whoever calls next(); never an unhandled rejection
    const w = waiters.shift();
    if (w) w(r);
    else results.push(r);
  });
  server.listen(port);
  const next = (): Promise<Received> =>
    results.shift() ?? new Promise<Received>((resolve, reject) => waiters.push((r) => r.then(resolve, reject)));
  return { server, next };
}

/** Hashes a child process's stdout as it streams; resolves when it exits with 0. */
export function hashStdout(child: ChildProcess, what: string): Promise<Received & { stderr: string }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const hash: Hash = createHash('sha256');
    let length = 0;
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => {
      length += d.length;
      hash.update(d);
    });
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', (e) => reject(new Error(`${what}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve({ length, sha256: hash.digest('hex'), ms: performance.now() - t0, stderr });
      else reject(new Error(`${what} exited with ${code ?? signal}: ${stderr.trim() || '(no stderr)'}`));
    });
  });
}
