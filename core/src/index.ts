// @nuse/core public API.

export * from './ip/ip-layer';
export * from './link/decorator';
export * from './link/link';
export * from './link/pcap-reader';
export * from './link/pcap-tap';
export * from './link/pcap-writer';
export * from './link/shaper';
export * from './link/sim-link';
export * from './link/sim-network';
export * from './link/tun';
export type {
  Direction as RouterDirection,
  PortOptions,
  RouterOptions,
  RouterPortCounters,
  RouterStats,
  StripOptions,
} from './router/engine';
export { Router, RouterPort } from './router/engine';
export { optionKindSet, STRIP_MALFORMED, stripTcpOptions } from './router/option-stripper';
export { ForwardingTable } from './router/route-table';
export * from './socket/net';
export * from './socket/protocols';
export * from './socket/stack';
export * from './tcp/config';
export * from './tcp/congestion';
export * from './tcp/connection';
export * from './tcp/isn';
export * from './tcp/options';
export * from './tcp/reassembly';
export * from './tcp/reno';
export * from './tcp/rtt';
export * from './tcp/sack-scoreboard';
export * from './tcp/segment';
export * from './tcp/send-buffer';
export * from './tcp/seq';
export * from './tcp/tcp-layer';
export * from './testing/requirements';
export * from './time/index';
export * from './util/random';
export * from './wire/checksum';
export * from './wire/index';
export * from './wire/parse-error';
