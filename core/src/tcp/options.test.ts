import { OptionSpace, TcpOptionKind } from '../wire/tcp-options';
import type { TcpConnection } from './connection';
import { CORE_OPTION_HANDLERS, type TcpOptionHandler, TcpOptionRegistry } from './options';
import { payload, pump, sha256, sink, twoStacks } from './test-harness';

/** A stand-in for a plugin option (experimental kind 253, RFC 6994 style): 8 bytes on every data segment. */
function experimentalOption(seen: number[]): TcpOptionHandler {
  return {
    name: 'exp-test',
    kinds: [253],
    order: 50,
    reserve: () => 8,
    read: (_ctx, o) => {
      if (o.kind === 'unknown') seen.push(o.data.length);
    },
    write: (ctx) => {
      if (ctx.payloadLen === 0) return;
      const o = { kind: 'unknown' as const, type: 253, data: new Uint8Array(6) };
      // Kind, length and 6 bytes: 8 bytes, 32-bit aligned, as reserved.
      if (ctx.space.tryReserve(8)) ctx.options.push(o);
    },
  };
}

describe('TCP option registry', () => {
  test('the core options are its first entries', () => {
    expect(new TcpOptionRegistry().names()).toEqual(CORE_OPTION_HANDLERS.map((h) => h.name));
  });

  test('registration is validated: names, kinds, and kinds already claimed', () => {
    const r = new TcpOptionRegistry();
    expect(() => r.register({ name: 'Bad Name', kinds: [253], order: 1 })).toThrow(/bad name/);
    expect(() => r.register({ name: 'dup', kinds: [TcpOptionKind.MSS], order: 1 })).toThrow(/already handled by "mss"/);
    expect(() => r.register({ name: 'mss', kinds: [254], order: 1 })).toThrow(/already registered/);
    expect(() => r.register({ name: 'eol', kinds: [0], order: 1 })).toThrow(/bad kind/);
    r.register({ name: 'mptcp', kinds: [TcpOptionKind.MPTCP], order: 50 });
    expect(r.unregister('mptcp')).toBe(true);
    expect(r.unregister('mptcp')).toBe(false);
  });

  test('a plugin option that reserves space on data segments: segments still fit the MTU, data intact', () => {
    const seen: number[] = [];
    const optionsA = new TcpOptionRegistry();
    optionsA.register(experimentalOption([]));
    const optionsB = new TcpOptionRegistry();
    optionsB.register(experimentalOption(seen));
    const { tcpA, tcpB, clock, addrB, ipA } = twoStacks({
      aToB: { delayMs: 5, loss: 0.02 },
      bToA: { delayMs: 5 },
      optionsA,
      optionsB,
      seed: 4,
    });
    const listener = tcpB.listen(80);
    let got: ReturnType<typeof sink> | undefined;
    listener.onAcceptable = () => {
      const s: TcpConnection = listener.accept()!;
      got = sink(s, () => tcpB.poke(s));
    };
    const data = payload(500_000, 9);
    const client = tcpA.connect({ address: addrB, port: 80 });
    pump(client, data, () => tcpA.poke(client));
    clock.runUntilIdle();
    expect(sha256(got!.chunks)).toBe(sha256(data));
    expect(ipA.drops['tx-too-big']).toBeUndefined();
    // Every data segment carried the plugin's option and the server's handler decoded it.
    expect(seen.length).toBeGreaterThan(300);
    expect(new Set(seen)).toEqual(new Set([6]));
  });

  test('reservedBytes sums what the handlers declare (timestamps: 12 bytes)', () => {
    const r = new TcpOptionRegistry();
    expect(r.reservedBytes({ timestampsEnabled: false, sackEnabled: false } as never)).toBe(0);
    r.register(experimentalOption([]));
    expect(r.reservedBytes({ timestampsEnabled: true, sackEnabled: false } as never)).toBe(20);
    expect(new OptionSpace().remaining).toBe(40);
    expect(new TcpOptionRegistry().reservedBytes({ timestampsEnabled: true, sackEnabled: false } as never)).toBe(12);
  });
});
