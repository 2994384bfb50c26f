import type { Clock, TimerHandle } from '../../common/clock.js';

interface Timer {
  id: number;
  at: number;
  fn: () => void;
  every?: number;
}

/** Deterministic clock: time moves only when a test calls advance(). */
export class FakeClock implements Clock {
  private t: number;
  private mono = 0;
  private nextId = 1;
  private timers: Timer[] = [];

  constructor(start = Date.parse('2026-11-27T09:00:00Z')) {
    this.t = start;
  }

  now = (): number => this.t;
  monotonic = (): number => this.mono;

  setTimeout = (fn: () => void, ms: number): TimerHandle => {
    const timer = { id: this.nextId++, at: this.mono + Math.max(0, ms), fn };
    this.timers.push(timer);
    return { id: timer.id };
  };

  setInterval = (fn: () => void, ms: number): TimerHandle => {
    const timer = { id: this.nextId++, at: this.mono + Math.max(1, ms), fn, every: Math.max(1, ms) };
    this.timers.push(timer);
    return { id: timer.id };
  };

  clearTimeout = (h: TimerHandle | undefined): void => {
    if (h && 'id' in h) this.timers = this.timers.filter((t) => t.id !== (h as { id: number }).id);
  };
  clearInterval = this.clearTimeout;

  sleep = (ms: number): Promise<void> => new Promise((r) => this.setTimeout(r, ms));

  /** Advance time, firing due timers in order, letting promise callbacks settle between them. */
  async advance(ms: number): Promise<void> {
    const end = this.mono + ms;
    for (;;) {
      await flush();
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.t += due.at - this.mono;
      this.mono = due.at;
      if (due.every) due.at += due.every;
      else this.timers = this.timers.filter((t) => t !== due);
      due.fn();
      await flush();
    }
    this.t += end - this.mono;
    this.mono = end;
    await flush();
  }

  get pending(): number {
    return this.timers.length;
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}
