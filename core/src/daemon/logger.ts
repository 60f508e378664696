/**
 * The daemon's logger: pino, writing JSON lines (one object per event, for log
 * collectors) or, by default on a terminal, short readable lines:
 *
 *   12:04:05.123 INFO  interface up name=wifi address=10.1.0.2/24 peer=10.1.0.1
 */

import pino, { type Logger } from 'pino';
import { UsageError } from '../cli/usage-error';

export type LogFormat = 'json' | 'text';
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  level?: LogLevel;
  /** Default: text on a terminal, JSON otherwise. */
  format?: LogFormat;
  /** Where lines go (default: standard error, keeping standard output for the program's own output). */
  destination?: NodeJS.WritableStream;
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const RESERVED = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

export function checkLogLevel(text: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(text)) {
    throw new UsageError(`bad log level "${text}" (one of ${LOG_LEVELS.join(', ')})`);
  }
  return text as LogLevel;
}

export function checkLogFormat(text: string): LogFormat {
  if (text !== 'json' && text !== 'text') throw new UsageError(`bad log format "${text}" (json or text)`);
  return text;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const destination = opts.destination ?? process.stderr;
  const format = opts.format ?? ((destination as { isTTY?: boolean }).isTTY ? 'text' : 'json');
  const stream = format === 'json' ? destination : textStream(destination);
  return pino(
    { level: opts.level ?? 'info', base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    stream,
  );
}

/** A pino destination that turns each JSON line into "HH:MM:SS.mmm LEVEL msg key=value ...". */
function textStream(out: NodeJS.WritableStream): { write(line: string): void } {
  return {
    write(line: string): void {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      const time = typeof entry.time === 'string' ? entry.time.slice(11, 23) : '';
      const level = (LEVEL_NAMES[entry.level as number] ?? String(entry.level)).padEnd(5);
      const fields = Object.entries(entry)
        .filter(([k]) => !RESERVED.has(k))
        .map(([k, v]) => `${k}=${formatValue(v)}`);
      out.write(`${time} ${level} ${String(entry.msg ?? '')}${fields.length ? ` ${fields.join(' ')}` : ''}\n`);
    },
  };
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (v !== null && typeof v === 'object') {
    const err = v as { message?: unknown; type?: unknown };
    if (typeof err.message === 'string' && typeof err.type === 'string') return JSON.stringify(err.message);
    return JSON.stringify(v);
  }
  return String(v);
}
