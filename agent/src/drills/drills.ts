import './events.js';
import type { DrillsReport } from '../../../contract/reports/index.js';
import type { Capability, Ctx, DrillStep, Health } from '../core/capability.js';
import type { TimerHandle } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import { ulid } from '../core/ids.js';
import { nextLocalTimeAt } from '../../../common/local-time.js';
import { DrillStore, type DrillResult, type DrillStepOutcome, type StoredDrill } from './store.js';

export type DrillTrigger = 'schedule' | 'manual' | 'remote';

/** Long timers drift and Node caps them at ~24.8 days: re-check the schedule at least hourly. */
const MAX_WAIT_MS = 3600_000;
/**
 * A slot found more than this late is skipped, not run: the wall clock jumped (a Pi without an
 * RTC boots with a stale time and NTP moves it on) or the box was suspended, and running now
 * would probe the backups in the middle of surgery hours instead of at the quiet time.
 */
const MAX_LATE_MS = 15 * 60_000;

/**
 * The weekly proof that each backup works: runs every capability's drillSteps() one after the
 * other (steps probe through standby paths; running them in parallel would muddle the figures),
 * each with a timeout, stores the result and emits 'drill.completed' (telemetry forwards it).
 */
export class DrillsCapability implements Capability<DrillsReport> {
  readonly name = 'drills';
  private ctx!: Ctx;
  private store!: DrillStore;
  private timer: TimerHandle | undefined;
  private next: number | null = null;
  private running: Promise<DrillResult> | null = null;
  private last: StoredDrill | null = null;

  async start(ctx: Ctx): Promise<void> {
    this.ctx = ctx;
    this.store = new DrillStore(ctx.db);
    this.last = this.store.recent(1)[0] ?? null;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.ctx?.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.next = null;
    // A drill in flight finishes on its own; its result is still stored.
  }

  health(): Health<DrillsReport> {
    if (!this.ctx) return { status: 'starting', summary: 'starting' };
    const lines: string[] = [];
    const last = this.last ? { id: this.last.id, at: this.last.at, passed: this.last.passed, steps: this.last.steps } : null;
    if (last) {
      lines.push(`last drill ${new Date(last.at).toISOString().slice(0, 16).replace('T', ' ')}Z: ${last.passed ? 'passed' : 'FAILED'}`);
      for (const s of last.steps) lines.push(`  ${s.passed ? 'ok  ' : 'FAIL'} ${s.name}: ${s.detail}`);
    }
    if (this.next) lines.push(`next drill ${new Date(this.next).toISOString().slice(0, 16).replace('T', ' ')}Z`);
    const failed = last && !last.passed ? last.steps.find((s) => !s.passed) : undefined;
    return {
      status: this.running ? 'ok' : last && !last.passed ? 'degraded' : 'ok',
      summary: this.running
        ? 'drill running'
        : last
          ? last.passed
            ? 'last drill passed'
            : `last drill FAILED${failed ? `: ${failed.name}` : ''}`
          : 'no drill run yet',
      details: { last, next: this.next, running: !!this.running, lines },
    };
  }

  history(limit = 20): StoredDrill[] {
    return this.store.recent(limit);
  }

  /** Run a drill now; a second request while one runs gets the running drill's result. */
  runNow(trigger: DrillTrigger): Promise<DrillResult> {
    if (this.running) return this.running;
    this.running = this.execute(trigger).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private schedule(): void {
    const cfg = this.ctx.config.status.drills;
    this.ctx.clock.clearTimeout(this.timer);
    if (!cfg.enabled) {
      this.next = null;
      return;
    }
    const now = this.ctx.clock.now();
    this.next = nextLocalTimeAt(now, cfg.weekday, cfg.time);
    this.timer = this.ctx.clock.setTimeout(
      () => {
        const late = this.next === null ? -1 : this.ctx.clock.now() - this.next;
        if (late > MAX_LATE_MS) {
          this.ctx.log.warn('scheduled drill slot missed (clock jumped or agent suspended): not run outside the quiet time', {
            lateMin: Math.round(late / 60_000),
          });
          this.next = null;
        } else if (late >= 0) {
          this.runNow('schedule').catch((e: unknown) => this.ctx.log.error('scheduled drill could not run', describeError(e)));
          // Recompute from just after the due time so one slot runs once.
          this.next = null;
        }
        this.schedule();
      },
      Math.min(MAX_WAIT_MS, Math.max(1000, this.next - now)),
    );
  }

  private collectSteps(): DrillStep[] {
    const steps: DrillStep[] = [];
    for (const cap of this.ctx.capabilities.list()) {
      if (cap === this || typeof cap.drillSteps !== 'function') continue;
      try {
        steps.push(...cap.drillSteps());
      } catch (e) {
        const err = describeError(e);
        steps.push({ name: `${cap.name}: list drill steps`, run: async () => ({ passed: false, detail: `could not list steps: ${err.message}` }) });
      }
    }
    return steps;
  }

  private async runStep(step: DrillStep, timeoutMs: number): Promise<DrillStepOutcome> {
    const started = this.ctx.clock.monotonic();
    let timer: TimerHandle | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = this.ctx.clock.setTimeout(() => reject(new Error(`timed out after ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      });
      const r = await Promise.race([step.run(), timeout]);
      return {
        name: step.name,
        passed: r.passed,
        detail: r.detail,
        figures: { ...(r.figures ?? {}), durationMs: Math.round(this.ctx.clock.monotonic() - started) },
      };
    } catch (e) {
      return { name: step.name, passed: false, detail: describeError(e).message, figures: { durationMs: Math.round(this.ctx.clock.monotonic() - started) } };
    } finally {
      this.ctx.clock.clearTimeout(timer);
    }
  }

  private async execute(trigger: DrillTrigger): Promise<DrillResult> {
    const cfg = this.ctx.config.status.drills;
    const id = ulid(this.ctx.clock.now());
    const at = this.ctx.clock.now();
    const started = this.ctx.clock.monotonic();
    const steps = this.collectSteps();
    this.ctx.log.info('drill started', { id, trigger, steps: steps.map((s) => s.name) });
    this.ctx.bus.emit('drill.started', { id, trigger, steps: steps.map((s) => s.name), at });
    const outcomes: DrillStepOutcome[] = [];
    for (const s of steps) {
      const o = await this.runStep(s, cfg.stepTimeoutMs);
      outcomes.push(o);
      this.ctx.log[o.passed ? 'info' : 'warn']('drill step', { id, step: o.name, passed: o.passed, detail: o.detail });
    }
    if (outcomes.length === 0) outcomes.push({ name: 'drill steps', passed: false, detail: 'no capability offered a drill step: nothing was proven' });
    const result: StoredDrill = { id, at, trigger, passed: outcomes.every((o) => o.passed), steps: outcomes, durationMs: this.ctx.clock.monotonic() - started };
    try {
      this.store.save(result, cfg.keep);
    } catch (e) {
      this.ctx.log.error('could not store drill result', describeError(e));
    }
    this.last = result;
    const failed = outcomes.filter((o) => !o.passed).map((o) => o.name);
    this.ctx.log[result.passed ? 'info' : 'warn']('drill completed', { id, passed: result.passed, failed });
    this.ctx.bus.emit('drill.completed', { id, passed: result.passed, steps: outcomes, at });
    return { id, at, passed: result.passed, steps: outcomes };
  }
}
