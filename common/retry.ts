import type { Clock } from './clock.js';

/**
 * One jittered exponential backoff for every retry in the agent. "Full jitter"
 * (AWS architecture blog, "Exponential Backoff And Jitter") spreads a fleet of 200 appliances
 * reconnecting after a broker restart instead of having them arrive in lock-step.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor?: number;
  /** 0 = no jitter, 1 = full jitter (delay drawn uniformly from [0, cap]). */
  jitter?: number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  constructor(private readonly opts: BackoffOptions) {}

  next(): number {
    const { initialMs, maxMs, factor = 2, jitter = 0.5, random = Math.random } = this.opts;
    const cap = Math.min(maxMs, initialMs * factor ** this.attempt);
    this.attempt++;
    const low = cap * (1 - jitter);
    return Math.round(low + random() * (cap - low));
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}

export async function retry<T>(
  fn: (attempt: number) => Promise<T>,
  opts: BackoffOptions & { retries: number; clock: Clock; shouldRetry?: (e: unknown) => boolean },
): Promise<T> {
  const backoff = new Backoff(opts);
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (attempt >= opts.retries || (opts.shouldRetry && !opts.shouldRetry(e))) throw e;
      await opts.clock.sleep(backoff.next());
    }
  }
}
