import { spawn as nodeSpawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Clock, TimerHandle } from '../../../common/clock.js';
import type { Logger } from '../../../common/log.js';
import { Backoff } from '../../../common/retry.js';

/** The part of a child process the supervisor needs; tests pass a fake. */
export interface Child {
  readonly pid: number | undefined;
  kill(signal: NodeJS.Signals): boolean;
  onExit(fn: (code: number | null, signal: NodeJS.Signals | null) => void): void;
  onLine(fn: (line: string) => void): void;
}

export type Spawner = (cmd: string, args: readonly string[]) => Child;

/**
 * Spawns a real process (no shell) as the leader of its own process group, reporting
 * stderr/stdout line by line. kamailio forks worker children that keep the SIP socket open if
 * only the master dies; signalling the whole group (-pid) makes a restart able to bind again.
 */
export const realSpawner: Spawner = (cmd, args) => {
  const cp: ChildProcess = nodeSpawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const group = (sig: NodeJS.Signals) => {
    try {
      if (cp.pid) process.kill(-cp.pid, sig);
      return true;
    } catch {
      return false;
    }
  };
  const exitFns: ((c: number | null, s: NodeJS.Signals | null) => void)[] = [];
  let exited = false;
  const fire = (c: number | null, s: NodeJS.Signals | null) => {
    if (exited) return;
    exited = true;
    for (const f of exitFns) f(c, s);
  };
  // The master is gone: reap any worker it left behind before anyone restarts it.
  cp.on('exit', (c, sig) => {
    group('SIGKILL');
    fire(c, sig);
  });
  cp.on('error', () => fire(127, null));
  return {
    get pid() {
      return cp.pid;
    },
    kill: (sig) => group(sig) || cp.kill(sig),
    onExit: (fn) => exitFns.push(fn),
    onLine: (fn) => {
      for (const s of [cp.stdout, cp.stderr]) if (s) createInterface({ input: s }).on('line', fn);
    },
  };
};

export interface SupervisorOptions {
  name: string;
  cmd: string;
  args: readonly string[];
  clock: Clock;
  log: Logger;
  spawner: Spawner;
  backoff: { initialMs: number; maxMs: number };
  /** A run that lasted this long resets the backoff (it was healthy, not crash-looping). */
  stableMs?: number;
  onLine?: (line: string) => void;
}

/**
 * Keeps one daemon running in the foreground (kamailio -DD): restarts it after any exit with a
 * jittered exponential backoff (core/retry.ts), so a crash-looping config does not spin the CPU
 * of a Pi, and a one-off crash is back within about a second.
 */
export class Supervisor {
  private child: Child | null = null;
  private timer: TimerHandle | undefined;
  private stopping = false;
  private readonly backoff: Backoff;
  private startedAt = 0;
  restarts = 0;
  lastExit: { code: number | null; signal: string | null; at: number } | null = null;

  constructor(private readonly o: SupervisorOptions) {
    this.backoff = new Backoff({ ...o.backoff, jitter: 0.3 });
  }

  get running(): boolean {
    return this.child !== null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    this.stopping = false;
    this.launch();
  }

  private launch(): void {
    this.timer = undefined;
    if (this.stopping) return;
    const child = this.o.spawner(this.o.cmd, this.o.args);
    this.child = child;
    this.startedAt = this.o.clock.monotonic();
    if (this.o.onLine) child.onLine(this.o.onLine);
    child.onExit((code, signal) => {
      if (this.child === child) this.child = null;
      this.lastExit = { code, signal, at: this.o.clock.now() };
      if (this.stopping) return;
      if (this.o.clock.monotonic() - this.startedAt >= (this.o.stableMs ?? 30_000)) this.backoff.reset();
      const delay = this.backoff.next();
      this.restarts++;
      this.o.log.warn(`${this.o.name} exited: restarting`, { code, signal, delayMs: delay, restarts: this.restarts });
      this.timer = this.o.clock.setTimeout(() => this.launch(), delay);
    });
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves when the process is gone. */
  async stop(graceMs = 3000): Promise<void> {
    this.stopping = true;
    this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const child = this.child;
    if (!child) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
      child.onExit(() => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
    this.child = null;
  }
}
