/**
 * The daemon without root: its links are simulated paths to a second stack (the "kernel
 * side"), in virtual time. The real thing (tun devices, signals, the CLI) is tested in
 * daemon-cli.test.ts.
 */

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { parseTunSpec } from '../cli/link-spec';
import { UsageError } from '../cli/usage-error';
import type { Link } from '../link/link';
import { readCaptureFile } from '../link/pcap-reader';
import { SimPath } from '../link/sim-link';
import { runUntil, Stack } from '../socket/stack';
import { payload, sha256 } from '../tcp/test-harness';
import { VirtualClock } from '../time/virtual-clock';
import { formatIp } from '../wire/address';
import { parseConfigObject, readConfigFile, resolveDaemonConfig } from './config';
import { Daemon } from './daemon';
import { createLogger } from './logger';

function memoryLog(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const logger = createLogger({ format: 'json', destination });
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** A daemon whose "tun devices" are simulated paths; the far ends are returned for a peer stack. */
function simDaemon(args: { tun: string[]; route?: string[]; pcap?: string }) {
  const clock = new VirtualClock();
  const far = new Map<string, { link: Link; address: string }>();
  const devices: Link[] = [];
  const closed = new Set<Link>();
  const log = memoryLog();
  const config = resolveDaemonConfig({ tun: args.tun, route: args.route, pcap: args.pcap });
  const daemon = Daemon.start(config, {
    logger: log.logger,
    clock,
    seed: 1,
    openDevice: (o) => {
      const p = new SimPath({ clock, names: [o.name, `${o.name}-kernel`] });
      devices.push(p.a);
      const close = p.a.close.bind(p.a);
      p.a.close = () => {
        closed.add(p.a);
        close();
      };
      far.set(o.name, { link: p.b, address: o.address });
      return p.a;
    },
  });
  return { clock, daemon, far, devices, closed, log };
}

describe('Daemon', () => {
  test('opens each link with the peer on the kernel side, adds default routes per family, logs it', () => {
    const { daemon, far, log } = simDaemon({
      tun: ['wifi,10.1.0.2/24,delay=5ms', 'lte,10.2.0.2/24,peer=10.2.0.77', 'v6,fd00:3::2/64'],
    });
    expect(far.get('wifi')!.address).toBe('10.1.0.1/24');
    expect(far.get('lte')!.address).toBe('10.2.0.77/24');
    expect(far.get('v6')!.address).toBe('fd00:3::1/64');
    expect(daemon.links.map((l) => l.spec.name)).toEqual(['wifi', 'lte', 'v6']);
    // The shaped link is a Shaper over the device; the others are the device itself.
    expect(daemon.links[0]!.link).not.toBe(daemon.links[0]!.device);
    expect(daemon.links[1]!.link).toBe(daemon.links[1]!.device);
    // Default routes: IPv4 through the first IPv4 link, IPv6 through the IPv6 one.
    const route = (dst: string) => daemon.stack.ip.route(new Uint8Array(Buffer.from(dst.split('.').map(Number))));
    expect(route('8.8.8.8')?.iface.name).toBe('wifi');
    expect(route('10.2.0.9')?.iface.name).toBe('lte');
    const lines = log.lines();
    expect(lines.filter((l) => l.msg === 'link up').map((l) => l.name)).toEqual(['wifi', 'lte', 'v6']);
    expect(lines.find((l) => l.msg === 'link up' && l.name === 'wifi')).toMatchObject({ shaping: 'delayMs=5' });
    expect(lines.filter((l) => l.msg === 'route (default)').map((l) => l.prefix)).toEqual(['0.0.0.0/0', '::/0']);
  });

  test('--route via picks the link whose prefix holds the gateway; an own default replaces the implicit one', () => {
    const { daemon, log } = simDaemon({
      tun: ['wifi,10.1.0.2/24', 'lte,10.2.0.2/24'],
      route: ['default,via=10.2.0.1', '192.0.2.0/24,dev=wifi'],
    });
    const ip4 = (s: string) => new Uint8Array(s.split('.').map(Number));
    expect(daemon.stack.ip.route(ip4('8.8.8.8'))?.iface.name).toBe('lte');
    expect(daemon.stack.ip.route(ip4('192.0.2.5'))?.iface.name).toBe('wifi');
    expect(log.lines().some((l) => l.msg === 'route (default)')).toBe(false);
  });

  test('a route through a gateway on no link fails the start and closes what was opened', () => {
    const clock = new VirtualClock();
    const opened: Link[] = [];
    const closed: Link[] = [];
    // A config that skipped the flag checks (which would refuse it up front).
    const config = {
      ...resolveDaemonConfig({ tun: ['wifi,10.1.0.2/24'] }),
      routes: [{ prefix: 'default', via: '10.9.0.1' }],
    };
    expect(() =>
      Daemon.start(config, {
        logger: memoryLog().logger,
        clock,
        openDevice: (o) => {
          const p = new SimPath({ clock, names: [o.name, 'k'] });
          const close = p.a.close.bind(p.a);
          p.a.close = () => {
            if (!closed.includes(p.a)) closed.push(p.a);
            close();
          };
          opened.push(p.a);
          return p.a;
        },
      }),
    ).toThrow(/10\.9\.0\.1 is not on any link's prefix/);
    expect(opened).toHaveLength(1);
    expect(closed).toEqual([opened[0]]);
  });

  test('carries TCP to the kernel side (here a second stack) with the bytes intact; stop resets connections and closes links', async () => {
    const { clock, daemon, far, devices, closed, log } = simDaemon({ tun: ['wifi,10.1.0.2/24,delay=5ms,loss=1%'] });
    const kernel = new Stack({ clock, seed: 2 });
    kernel.addInterface(far.get('wifi')!.link, far.get('wifi')!.address, 'k');
    const data = payload(1_000_000, 3);
    const received: Buffer[] = [];
    let ended = false;
    kernel
      .createServer((s) => {
        s.on('data', (d: Buffer) => received.push(d));
        s.on('end', () => {
          ended = true;
          s.end();
        });
      })
      .listen(5001);
    const client = daemon.stack.connect(5001, '10.1.0.1');
    client.end(data);
    await runUntil(clock, () => ended);
    const got = Buffer.concat(received);
    expect(got.length).toBe(data.length);
    expect(sha256(got)).toBe(sha256(data));

    const idle = daemon.stack.connect(5001, '10.1.0.1');
    await runUntil(clock, () => idle.readyState === 'open');
    daemon.stop('test');
    daemon.stop('again'); // idempotent
    expect(closed.has(devices[0]!)).toBe(true);
    const stopped = log.lines().find((l) => l.msg === 'stopped');
    expect(stopped).toMatchObject({ reason: 'test' });
    expect(stopped!.connectionsReset).toBeGreaterThanOrEqual(1);
    expect(log.lines().filter((l) => l.msg === 'stopped')).toHaveLength(1);
    expect(formatIp(daemon.links[0]!.iface.address)).toBe('10.1.0.2');
  });
});

describe('Daemon --pcap', () => {
  test('captures what the stack sent and received on every link, one pcapng interface per link', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nuse-pcap-')), 'd.pcapng');
    const { clock, daemon, far, log } = simDaemon({ tun: ['wifi,10.1.0.2/24', 'lte,10.2.0.2/24'], pcap: file });
    const kernel = new Stack({ clock, seed: 2 });
    kernel.addInterface(far.get('lte')!.link, far.get('lte')!.address, 'k');
    let got = '';
    kernel.createServer((s) => s.on('data', (d: Buffer) => (got += String(d)))).listen(7);
    daemon.stack.connect({ port: 7, host: '10.2.0.1' }).end('hello');
    await runUntil(clock, () => got === 'hello');
    daemon.stop('test');
    const capture = readCaptureFile(file);
    expect(capture.interfaces.map((i) => i.name)).toEqual(['wifi', 'lte']);
    const lte = capture.records.filter((r) => r.interfaceId === 1);
    expect(lte.length).toBeGreaterThanOrEqual(4); // SYN, SYN-ACK, ACK, data ...
    expect(lte.some((r) => r.direction === 'inbound') && lte.some((r) => r.direction === 'outbound')).toBe(true);
    expect(log.lines().find((l) => l.msg === 'capture written')).toMatchObject({
      file,
      packets: capture.records.length,
    });
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });

  test('an unwritable capture file fails the start with the cause', () => {
    expect(() => simDaemon({ tun: ['wifi,10.1.0.2/24'], pcap: '/nonexistent-dir/x.pcapng' })).toThrow(
      /cannot write the capture \/nonexistent-dir\/x\.pcapng: ENOENT/,
    );
  });
});

describe('daemon config', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nuse-config-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };

  test('a file with strings and objects, merged with flags (flags add links; a flag log setting wins)', () => {
    const file = write(
      'ok.json',
      JSON.stringify({
        tun: ['wifi,10.1.0.2/24,delay=10ms', { name: 'lte', address: '10.2.0.2/24', loss: '1%', mtu: 1400 }],
        route: ['default,via=10.1.0.1'],
        log: { level: 'debug', format: 'json' },
        tcp: { congestionControl: 'reno', minRtoMs: 100 },
      }),
    );
    const config = resolveDaemonConfig({ config: file, tun: ['eth,10.3.0.2/24'], logLevel: 'warn' });
    expect(config.tuns.map((t) => t.name)).toEqual(['wifi', 'lte', 'eth']);
    expect(config.tuns[1]).toEqual(parseTunSpec('lte,10.2.0.2/24,loss=1%,mtu=1400'));
    expect(config.routes).toEqual([{ prefix: 'default', via: '10.1.0.1' }]);
    expect(config.logLevel).toBe('warn');
    expect(config.logFormat).toBe('json');
    expect(config.tcp).toEqual({ congestionControl: 'reno', minRtoMs: 100 });
  });

  test.each([
    ['[]', /the top level must be an object/],
    ['{"tun": "x"}', /"tun" must be an array/],
    ['{"tun": [42]}', /tun\[0\] must be a string or an object/],
    ['{"tun": [{"name": "a"}]}', /tun\[0\] needs "name" and "address"/],
    ['{"tun": [{"name": "a", "address": "10.0.0.2/24", "delay": "x"}]}', /bad duration "x"/],
    ['{"tun": [{"name": "a", "address": "10.0.0.2/24", "delay": "1ms,loss=1"}]}', /must not contain a comma/],
    ['{"tuns": []}', /unknown key "tuns" in the top level/],
    ['{"log": {"level": "loud"}}', /bad log level "loud"/],
    ['{"log": {"colour": true}}', /unknown key "colour" in "log"/],
    ['{"tcp": {"minRtoMs": "fast"}}', /minRtoMs must be a number/],
    ['{"tcp": {"warpDrive": 1}}', /unknown setting "warpDrive"/],
    ['{"tcp": {"congestionControl": "nope"}}', /no congestion control named "nope" \(known: .*newreno/],
    ['{"tcp": {"keepAliveIdleMs": 3000000000}}', /keepAliveIdleMs 3000000000 is more than/],
    ['{"log": {"level": {"toString": null}}}', /"log.level" must be a string/],
    ['{"route": [{"via": "1.2.3.4"}]}', /route\[0\] must be a string/],
    ['{"policy": {"kernel": ["10.0.0.0/33"]}}', /policy\.kernel\[0\]: "10\.0\.0\.0\/33" is not a prefix/],
    ['{"policy": {"kernel": "10.0.0.0/8"}}', /"policy\.kernel" must be an array of prefixes/],
    ['{"policy": {"only": ["nope"]}}', /policy\.only\[0\]: "nope" is not a prefix/],
    ['{"policy": {"mptcp": "yes"}}', /"policy\.mptcp" must be true or false/],
    ['{"policy": {"udp": true}}', /unknown key "udp" in "policy"/],
  ])('rejects %s', (text, message) => {
    expect(() => parseConfigObject(JSON.parse(text))).toThrow(UsageError);
    expect(() => parseConfigObject(JSON.parse(text))).toThrow(message);
  });

  test('file errors name the file', () => {
    expect(() => readConfigFile(path.join(dir, 'missing.json'))).toThrow(
      /cannot read config .*missing\.json: no such file/,
    );
    expect(() => readConfigFile(write('bad.json', '{ nope'))).toThrow(/bad\.json is not valid JSON/);
    expect(() => readConfigFile(write('bad2.json', '{"tun": 1}'))).toThrow(/bad2\.json: "tun" must be an array/);
  });

  test('policy: from the file and the flags (--kernel, --only, --mptcp add to it); a bare address is a host prefix', () => {
    const file = write(
      'policy.json',
      JSON.stringify({ tun: ['a,10.0.0.2/24'], policy: { kernel: ['10.0.0.0/8', 'fd00::/8'], mptcp: false } }),
    );
    const config = resolveDaemonConfig({ config: file, kernel: ['192.0.2.7'], only: ['198.51.100.0/24'], mptcp: true });
    expect(config.policy.kernel.map(String)).toEqual(['10.0.0.0/8', 'fd00::/8', '192.0.2.7/32']);
    expect(config.policy.only?.map(String)).toEqual(['198.51.100.0/24']);
    expect(config.policy.mptcp).toBe(true);
    expect(resolveDaemonConfig({ tun: ['a,10.0.0.2/24'] }).policy).toEqual({
      kernel: [],
      only: undefined,
      mptcp: false,
    });
    expect(() => resolveDaemonConfig({ tun: ['a,10.0.0.2/24'], kernel: ['10.0.0.0/40'] })).toThrow(
      /--kernel: "10\.0\.0\.0\/40" is not a prefix/,
    );
  });

  test('flag-level checks: no links, duplicate names or addresses, a route to an unknown link', () => {
    expect(() => resolveDaemonConfig({})).toThrow(/no links/);
    expect(() => resolveDaemonConfig({ tun: ['a,10.0.0.2/24', 'a,10.1.0.2/24'] })).toThrow(/--tun a is given twice/);
    expect(() => resolveDaemonConfig({ tun: ['a,10.0.0.2/24', 'b,10.0.0.2/16'] })).toThrow(
      /10\.0\.0\.2 is on two links/,
    );
    expect(() => resolveDaemonConfig({ tun: ['a,10.0.0.2/24'], route: ['default,dev=b'] })).toThrow(
      /no link named "b"/,
    );
    expect(() => resolveDaemonConfig({ tun: ['a,10.0.0.2/24'], logFormat: 'xml' })).toThrow(/bad log format/);
  });
});

describe('text log format', () => {
  test('one readable line per event with key=value fields', () => {
    const chunks: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, cb) {
        chunks.push(String(chunk));
        cb();
      },
    });
    const logger = createLogger({ format: 'text', destination });
    logger.info({ name: 'wifi', address: '10.1.0.2/24', note: 'two words' }, 'link up');
    logger.debug('hidden at info');
    expect(chunks.join('')).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}link up name=wifi address=10\.1\.0\.2\/24 note="two words"\n$/,
    );
  });
});
