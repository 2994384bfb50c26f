/**
 * One logger: JSON lines with a namespace per capability. Patient data must never be passed
 * in `fields`; records code logs counts and ids of its own making only.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

export interface LogEntry {
  time: string;
  level: Exclude<LogLevel, 'silent'>;
  ns: string;
  msg: string;
  [k: string]: unknown;
}

export type LogSink = (entry: LogEntry) => void;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(ns: string): Logger;
}

export interface LoggerOptions {
  level: LogLevel;
  sink?: LogSink;
  /** Called with every entry regardless of level filter for `info` and above; feeds the recent-log ring. */
  tap?: LogSink;
  now?: () => Date;
}

export function stderrSink(entry: LogEntry): void {
  process.stderr.write(JSON.stringify(entry) + '\n');
}

/** Human-readable sink for the demo and interactive CLI use. */
export function prettySink(entry: LogEntry): void {
  const { time, level, ns, msg, ...rest } = entry;
  const extra = Object.keys(rest).length ? ' ' + JSON.stringify(rest) : '';
  process.stderr.write(`${time.slice(11, 19)} ${level.padEnd(5)} [${ns}] ${msg}${extra}\n`);
}

export function createLogger(opts: LoggerOptions, ns = 'agent'): Logger {
  const sink = opts.sink ?? stderrSink;
  const now = opts.now ?? (() => new Date());
  const min = order[opts.level];
  const emit = (level: Exclude<LogLevel, 'silent'>, msg: string, fields?: Record<string, unknown>) => {
    const entry: LogEntry = { time: now().toISOString(), level, ns, msg, ...fields };
    if (opts.tap && order[level] >= order.info) opts.tap(entry);
    if (order[level] >= min) sink(entry);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (child) => createLogger(opts, `${ns}.${child}`),
  };
}

/** A bounded in-memory ring of recent log entries, for the `logs` remote command and the status page. */
export class LogRing {
  private readonly entries: LogEntry[] = [];
  constructor(private readonly capacity = 500) {}
  push = (e: LogEntry): void => {
    this.entries.push(e);
    if (this.entries.length > this.capacity) this.entries.shift();
  };
  recent(limit = 100, minLevel: LogLevel = 'info'): LogEntry[] {
    return this.entries.filter((e) => order[e.level] >= order[minLevel]).slice(-limit);
  }
}
