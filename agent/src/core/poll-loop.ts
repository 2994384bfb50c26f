import type { Clock, TimerHandle } from '../../../common/clock.js';

/**
 * The self-rescheduling poll of the cellular and wifi capabilities: one poll at a time (a "poll now"
 * during a poll joins it), the next one after the delay the poll returns, a failed poll reported
 * and retried after `fallbackMs()`, nothing scheduled once stopped.
 */
export class PollLoop {
  private timer: TimerHandle | undefined;
  private inFlight: Promise<void> | null = null;
  private stopped = true;

  constructor(
    private readonly clock: Clock,
    private readonly poll: () => Promise<number>,
    private readonly onError: (e: unknown) => void,
    private readonly fallbackMs: () => number,
  ) {}

  get running(): boolean {
    return !this.stopped;
  }

  start(delayMs = 0): void {
    this.stopped = false;
    this.schedule(delayMs);
  }

  /** No further polls; resolves once a poll in progress has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    await this.inFlight;
  }

  /** Poll now instead of at the scheduled time (or join the poll in progress). */
  now(): Promise<void> {
    this.clock.clearTimeout(this.timer);
    return this.tick();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => void this.tick(), ms);
  }

  private tick(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    this.inFlight = (async () => {
      let next = this.fallbackMs();
      try {
        next = await this.poll();
      } catch (e) {
        this.onError(e);
      } finally {
        this.inFlight = null;
        this.schedule(next);
      }
    })();
    return this.inFlight;
  }
}
