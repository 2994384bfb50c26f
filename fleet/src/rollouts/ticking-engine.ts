import type { TimerHandle } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import type { Component, ComponentHealth, FleetCtx } from '../ctx.js';

/**
 * What the config rollout engine (engine.ts) and the update campaign engine (campaigns/engine.ts)
 * share: a pass every tickMs that never overlaps the previous, the last failure kept for health()
 * until a pass goes through, and their audit rows (user 'fleet', `args` naming the rollout or
 * campaign). The subclass says what one pass does and what health() counts.
 */
export abstract class TickingEngine implements Component {
  abstract readonly name: string;
  protected ctx!: FleetCtx;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private lastError: string | null = null;
  ticks = 0;

  /** `kind` names the audit rows' args key and the failure log ('rollout step failed'). */
  constructor(private readonly kind: 'rollout' | 'campaign') {}

  /** How often to tick (read at start, from ctx.config). */
  protected abstract tickMs(): number;
  /** One pass over what needs stepping; a throw is logged and shown by health() until a pass goes through. */
  protected abstract pass(): Promise<void>;
  /** What health() says when the last pass went through, and the counters it shows (ticks is added). */
  protected abstract progress(): { summary: string; counts: Record<string, number> };

  async start(ctx: FleetCtx): Promise<void> {
    this.ctx = ctx;
    this.timer = ctx.clock.setInterval(() => void this.tick(), this.tickMs());
  }

  async stop(): Promise<void> {
    this.ctx.clock.clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  health(): ComponentHealth {
    const { summary, counts } = this.progress();
    return {
      status: this.lastError ? 'degraded' : 'ok',
      summary: this.lastError ? `last step failed: ${this.lastError}` : summary,
      details: { ...counts, ticks: this.ticks },
    };
  }

  /** One pass now; while one runs, that one (a tick never overlaps the previous). */
  tick(): Promise<void> {
    if (this.running) return this.running;
    this.running = (async () => {
      try {
        await this.pass();
        this.lastError = null;
      } catch (e) {
        this.lastError = describeError(e).message;
        this.ctx.log.error(`${this.kind} step failed`, describeError(e));
      } finally {
        this.ticks++;
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** An accounts audit row by 'fleet' about rollout or campaign `row`. */
  protected async audit(row: { id: number }, action: string, detail: string, device: string | null = null, outcome = 'ok'): Promise<void> {
    await this.ctx.store.accounts.audit({
      at: this.ctx.clock.now(),
      username: 'fleet',
      device_id: device,
      action,
      args: JSON.stringify({ [this.kind]: row.id }),
      outcome,
      detail: detail.slice(0, 1000),
    });
  }
}
