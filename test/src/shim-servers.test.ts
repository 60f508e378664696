/**
 * Real server programs (and iperf3 and asyncio in both roles) through the shim, against
 * kernel peers in a namespace (harness/shim.ts). Test names are "<program> as <role>:
 * ...": scripts/program-table.js turns jest's results into the README's table.
 * Every transfer checks its length, and its sha256 where the program lets us.
 *
 * Needs root and nginx, redis-server, redis-cli, redis-benchmark, iperf3, curl, python3:
 * without them the suite FAILS with the reason (never skipped).
 */

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { collect, missingShimRequirements, ShimTopology, sha256 } from './harness/shim';

jest.setTimeout(60_000);

let t: ShimTopology;

beforeAll(async () => {
  const missing = missingShimRequirements([
    ['nginx', 'nginx-light'],
    ['redis-server', 'redis-server'],
    ['redis-cli', 'redis-tools'],
    ['redis-benchmark', 'redis-tools'],
    ['iperf3', 'iperf3'],
    ['curl', 'curl'],
    ['python3', 'python3'],
  ]);
  if (missing.length > 0) {
    throw new Error(`the shim tests need: ${missing.join('; ')}. They are not skipped: run them as root (CI: .ci/run)`);
  }
  t = await ShimTopology.start({ tag: 'srv', subnet: 82 });
});

afterAll(async () => {
  await t?.stop();
});

describe('servers through the shim', () => {
  test('nginx as server: a master and 2 workers share the listener; 20 MB to curl in the namespace, 4 requests in parallel', async () => {
    const www = path.join(t.dir, 'www');
    fs.mkdirSync(www);
    const body = randomBytes(20 << 20);
    fs.writeFileSync(path.join(www, 'big.bin'), body);
    const conf = path.join(t.dir, 'nginx.conf');
    const port = 9280;
    fs.writeFileSync(
      conf,
      `# Workers stay root: the daemon's socket is 0600 (a worker of another uid could not reach it).
user root root;
worker_processes 2;
daemon off;
master_process on;
pid ${t.dir}/nginx.pid;
error_log ${t.dir}/nginx-error.log info;
events { worker_connections 64; }
http {
  access_log ${t.dir}/nginx-access.log;
  client_body_temp_path ${t.dir}/nginx-body;
  proxy_temp_path ${t.dir}/nginx-proxy;
  fastcgi_temp_path ${t.dir}/nginx-fastcgi;
  uwsgi_temp_path ${t.dir}/nginx-uwsgi;
  scgi_temp_path ${t.dir}/nginx-scgi;
  sendfile on;
  server { listen ${port}; root ${www}; }
}
`,
    );
    const nginx = t.procs.start(t.nuse(['nginx', '-c', conf, '-p', t.dir, '-e', `${t.dir}/nginx-error.log`]));
    const log = collect(nginx);
    const errorLog = (): string => {
      try {
        return fs.readFileSync(`${t.dir}/nginx-error.log`, 'utf8');
      } catch {
        return '';
      }
    };
    try {
      // Two workers up ("start worker process" in the error log, at level info).
      const started = Date.now();
      while ((errorLog().match(/start worker process/g) ?? []).length < 2) {
        if (Date.now() - started > 10_000) throw new Error(`nginx did not start: ${errorLog()} ${log.text()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const results = await Promise.all(
        [0, 1, 2, 3].map(() =>
          t.procs.run(t.inNs(['curl', '-sS', '--fail', `http://${t.stack}:${port}/big.bin`]), { timeoutMs: 40_000 }),
        ),
      );
      for (const r of results) {
        expect(r.stderr).toBe('');
        expect(r.stdout.length).toBe(body.length);
        expect(sha256(r.stdout)).toBe(sha256(body));
      }
      const access = fs.readFileSync(`${t.dir}/nginx-access.log`, 'utf8').trim().split('\n');
      expect(access).toHaveLength(4);
      for (const line of access)
        expect(line).toMatch(new RegExp(`^${t.kernel.replace(/\./g, '\\.')} .* 200 ${body.length} `));
    } finally {
      t.procs.kill(nginx, 'SIGTERM');
    }
  });

  test('redis-server as server: redis-cli SET/GET of a 1 MB value (sha256), redis-benchmark from the namespace', async () => {
    const port = 9379;
    const redis = t.procs.start(
      t.nuse([
        'redis-server',
        '--port',
        String(port),
        '--bind',
        '0.0.0.0',
        '--protected-mode',
        'no',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        t.dir,
      ]),
    );
    const out = collect(redis);
    try {
      await out.waitFor(/Ready to accept connections/);
      // A printable 1 MB value (redis-cli prints values as text).
      const value = randomBytes(512 << 10).toString('hex');
      const cli = (args: string[], input?: string) =>
        t.procs.run(t.inNs(['redis-cli', '-h', t.stack, '-p', String(port), ...args]), { input });
      const set = await cli(['-x', 'SET', 'big'], value);
      expect(set.stdout.toString().trim()).toBe('OK');
      const get = await cli(['GET', 'big']);
      const got = get.stdout.toString().replace(/\n$/, '');
      expect(got.length).toBe(value.length);
      expect(sha256(Buffer.from(got))).toBe(sha256(Buffer.from(value)));
      expect((await cli(['STRLEN', 'big'])).stdout.toString().trim()).toBe(String(value.length));

      const bench = await t.procs.run(
        t.inNs(['redis-benchmark', '-h', t.stack, '-p', String(port), '-n', '2000', '-c', '10', '-t', 'set,get', '-q']),
        { timeoutMs: 40_000 },
      );
      const text = bench.stdout.toString().replace(/\r/g, '\n');
      const rates = [...text.matchAll(/^(SET|GET): ([\d.]+) requests per second/gm)].map((m) => [m[1], Number(m[2])]);
      expect(rates.map((r) => r[0])).toEqual(['SET', 'GET']);
      for (const [, rate] of rates) expect(rate).toBeGreaterThan(100);
      // For the README's table and the log of the run.
      console.log(`redis-benchmark through the shim: ${rates.map(([k, v]) => `${k} ${v} requests/s`).join(', ')}`);
    } finally {
      t.procs.kill(redis, 'SIGTERM');
    }
  });
});

describe('clients through the shim', () => {
  test('redis-cli as client: SET/GET of a 1 MB value (sha256) against a kernel redis-server', async () => {
    const port = 9380;
    const redis = t.procs.start(
      t.inNs([
        'redis-server',
        '--port',
        String(port),
        '--bind',
        t.kernel,
        '--protected-mode',
        'no',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        t.dir,
      ]),
    );
    const out = collect(redis);
    try {
      await out.waitFor(/Ready to accept connections/);
      const value = randomBytes(512 << 10).toString('hex');
      const cli = (args: string[], input?: string) =>
        t.procs.run(t.nuse(['redis-cli', '-h', t.kernel, '-p', String(port), ...args]), { input });
      expect((await cli(['-x', 'SET', 'big'], value)).stdout.toString().trim()).toBe('OK');
      const get = await cli(['GET', 'big']);
      expect(get.stderr).toBe('');
      const got = get.stdout.toString().replace(/\n$/, '');
      expect(got.length).toBe(value.length);
      expect(sha256(Buffer.from(got))).toBe(sha256(Buffer.from(value)));
      // The server saw the stack's address.
      const clients = await cli(['CLIENT', 'LIST']);
      expect(clients.stdout.toString()).toContain(`addr=${t.stack}:`);
    } finally {
      t.procs.kill(redis, 'SIGTERM');
    }
  });
});

interface IperfResult {
  start: { connected: { local_host: string; remote_host: string }[] };
  intervals: { streams: { snd_cwnd?: number; rtt?: number; retransmits?: number }[] }[];
  end: {
    sum_sent: { bytes: number; retransmits?: number };
    sum_received: { bytes: number };
  };
}

/**
 * iperf3 counts what the sender wrote and what the receiver read before the end of the
 * test; bytes still in buffers then (the stack's, the unix stream's) are not counted
 * as received. So: something sent, nothing received that was not sent, and not much left behind.
 */
function expectCounts(j: IperfResult): void {
  const { sum_sent: sent, sum_received: received } = j.end;
  expect(received.bytes).toBeGreaterThan(1_000_000);
  expect(received.bytes).toBeLessThanOrEqual(sent.bytes);
  expect(received.bytes).toBeGreaterThan(sent.bytes * 0.9);
}

describe('iperf3 through the shim', () => {
  test('iperf3 as client: 2 s to a kernel iperf3 -s; byte counts agree; Retr and cwnd from TCP_INFO', async () => {
    const port = 9201;
    const server = t.procs.start(t.inNs(['iperf3', '-s', '-1', '-p', String(port), '-B', t.kernel]));
    server.stdout!.resume();
    server.stderr!.resume();
    const deadline = Date.now() + 10_000;
    while (!t.listening(port, true)) {
      if (Date.now() > deadline) throw new Error('iperf3 -s did not listen');
      await new Promise((r) => setTimeout(r, 25));
    }
    const r = await t.procs.run(t.nuse(['iperf3', '-c', t.kernel, '-p', String(port), '-t', '2', '-J']), {
      timeoutMs: 30_000,
    });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout.toString()) as IperfResult;
    expect(j.start.connected[0]!.local_host).toBe(t.stack);
    expectCounts(j);
    // iperf3 fills these only when TCP_INFO answers.
    expect(typeof j.end.sum_sent.retransmits).toBe('number');
    const s = j.intervals[0]!.streams[0]!;
    expect(s.snd_cwnd).toBeGreaterThan(0);
    expect(s.rtt).toBeGreaterThan(0);
  });

  test('iperf3 as server: a kernel iperf3 -c sends for 2 s, and -R receives; byte counts agree', async () => {
    for (const reverse of [false, true]) {
      const port = reverse ? 9203 : 9202;
      const server = t.procs.start(t.nuse(['iperf3', '-s', '-1', '--forceflush', '-p', String(port)]));
      const out = collect(server);
      await out.waitFor(/Server listening/);
      const r = await t.procs.run(
        t.inNs(['iperf3', '-c', t.stack, '-p', String(port), '-t', '2', '-J', ...(reverse ? ['-R'] : [])]),
        { timeoutMs: 30_000 },
      );
      expect(r.code).toBe(0);
      const j = JSON.parse(r.stdout.toString()) as IperfResult;
      expect(j.start.connected[0]!.remote_host).toBe(t.stack);
      expectCounts(j);
    }
  });
});

describe('python3 asyncio through the shim', () => {
  const ECHO_HASH = String.raw`
import asyncio, hashlib, sys
async def handle(r, w):
    h = hashlib.sha256(); n = 0
    while True:
        d = await r.read(65536)
        if not d: break
        h.update(d); n += len(d)
    w.write(f'{n} {h.hexdigest()} {w.get_extra_info("peername")[0]}\n'.encode()); await w.drain(); w.close()
async def main():
    s = await asyncio.start_server(handle, sys.argv[1], int(sys.argv[2]))
    print('ready', flush=True)
    async with s: await s.serve_forever()
asyncio.run(main())
`;
  const CLIENT = `
import asyncio, sys
async def main():
    data = sys.stdin.buffer.read()
    r, w = await asyncio.open_connection(sys.argv[1], int(sys.argv[2]))
    w.write(data); await w.drain(); w.write_eof()
    print((await r.read()).decode().strip())
asyncio.run(main())
`;

  test('python3 asyncio as server: start_server, 3 kernel clients at once, 8 MB each (sha256)', async () => {
    const port = 9400;
    const server = t.procs.start(t.nuse(['python3', '-u', '-c', ECHO_HASH, '0.0.0.0', String(port)]));
    await collect(server).waitFor(/ready/);
    const data = randomBytes(8 << 20);
    const results = await Promise.all(
      [0, 1, 2].map(() => t.procs.run(t.inNs(['python3', '-c', CLIENT, t.stack, String(port)]), { input: data })),
    );
    for (const r of results) {
      expect(r.stderr).toBe('');
      expect(r.stdout.toString().trim()).toBe(`${data.length} ${sha256(data)} ${t.kernel}`);
    }
    t.procs.kill(server, 'SIGTERM');
  });

  test('python3 asyncio as client: open_connection to a kernel asyncio server, 8 MB (sha256)', async () => {
    const port = 9401;
    const server = t.procs.start(t.inNs(['python3', '-u', '-c', ECHO_HASH, t.kernel, String(port)]));
    await collect(server).waitFor(/ready/);
    const data = randomBytes(8 << 20);
    const r = await t.procs.run(t.nuse(['python3', '-c', CLIENT, t.kernel, String(port)]), { input: data });
    expect(r.stderr).toBe('');
    expect(r.stdout.toString().trim()).toBe(`${data.length} ${sha256(data)} ${t.stack}`);
    t.procs.kill(server, 'SIGTERM');
  });
});
