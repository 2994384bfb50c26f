import { describeError } from '../../../common/errors.js';
import { topicFor } from '../../../contract/mqtt.js';
import type { FleetCtx } from '../ctx.js';
import type { RolloutDeviceRow, RolloutRow } from '../store/config-store.js';
import type { DeviceRow } from '../store/types.js';
import { healthProblem, stopReason } from './stop-rules.js';
import { TickingEngine } from './ticking-engine.js';

interface Reported {
  status?: string;
  lastDesiredRevision?: number | null;
  appliedRevision?: number;
  reasons?: { path: string; message: string }[];
}

/**
 * Steps staged rollouts: canaries first; once every canary runs the new revision (its birth says
 * so) and stays healthy for the soak time, everyone else. Any canary that rejects the document or
 * goes unhealthy (offline past the grace, a failed drill, a new offline/drill-failed alert, or no
 * apply within the timeout) stops the rollout before anyone else is touched; in the second wave,
 * rollouts.stopFailPct % of it failing stops it (stop-rules.ts, shared with update campaigns).
 *
 * All state is in the store, so a restart continues where it was: published steps are never
 * published again; a step claimed but not confirmed is re-published after claimTimeoutMs with the
 * same revision, which the device treats as "current" if it already had it. Phase changes and
 * claims are compare-and-set, so several fleet instances can run this side by side.
 */
export class RolloutEngine extends TickingEngine {
  readonly name = 'rollouts';
  published = 0;

  constructor() {
    super('rollout');
  }

  protected override tickMs(): number {
    return this.ctx.config.rollouts.tickMs;
  }

  protected override progress() {
    return { summary: `${this.published} published`, counts: { published: this.published } };
  }

  /** Every active rollout, one at a time. */
  protected override async pass(): Promise<void> {
    // One instance steps per tick (database-wide lock; the compare-and-set claims are the backstop).
    await this.ctx.store.driver.exclusive('rollouts', async () => {
      for (const r of await this.ctx.store.config.rollouts(true)) if (r.phase === 'canary' || r.phase === 'all') await this.step(r);
    });
  }

  private async step(r: RolloutRow): Promise<void> {
    const cfg = this.ctx.config.rollouts;
    const steps = await this.ctx.store.config.steps(r.id);
    const devices = await this.ctx.store.devices.getMany(steps.filter((s) => s.state === 'published' || s.state === 'applied').map((s) => s.device_id));
    const now = this.ctx.clock.now();
    for (const s of steps) {
      const d = devices.get(s.device_id);
      if (!d || (s.state !== 'published' && s.state !== 'applied')) continue;
      const verdict = await this.judge(s, d, now);
      if (verdict && verdict.state !== s.state && (await this.ctx.store.config.settle(r.id, s.device_id, s.state, verdict.state, verdict.detail, now))) {
        s.state = verdict.state;
        s.detail = verdict.detail;
        await this.audit(
          r,
          `rollout-${verdict.state}`,
          `revision ${s.revision}${verdict.detail ? `: ${verdict.detail}` : ''}`,
          s.device_id,
          verdict.state === 'applied' ? 'ok' : 'error',
        );
      }
    }
    if (r.phase === 'canary') {
      const canaries = steps.filter((s) => s.canary);
      const why = stopReason('canary', steps.map(stopStep), cfg.stopFailPct);
      if (why) {
        if (await this.ctx.store.config.setPhase(r.id, ['canary'], 'stopped', `stopped: ${why}`.slice(0, 500), now))
          await this.audit(r, 'rollout-stop', `${why}; ${steps.filter((s) => !s.canary).length} other device(s) left untouched`, null, 'stopped');
        return;
      }
      if (r.paused) return;
      await this.publishAll(r, canaries, canaries.length);
      if (!canaries.every((s) => s.state === 'applied')) return;
      if (r.soak_from === null) {
        if (!(await this.ctx.store.config.startSoak(r.id, now))) return; // another instance started it
        await this.audit(r, 'rollout-soak', `all ${canaries.length} canary device(s) applied; soaking ${Math.round(r.soak_ms / 60_000)} min`);
        if (r.soak_ms > 0) return;
      } else if (now - r.soak_from < r.soak_ms) return;
      if (!(await this.ctx.store.config.setPhase(r.id, ['canary'], 'all', 'canaries healthy: rolling out to all', now))) return;
      await this.audit(r, 'rollout-all', `canaries healthy after the soak; publishing to ${steps.length - canaries.length} more device(s)`);
      r.phase = 'all';
    }
    if (r.phase !== 'all') return;
    const why = stopReason('all', steps.map(stopStep), cfg.stopFailPct);
    if (why) {
      const left = steps.filter((s) => s.state === 'pending').length;
      if (await this.ctx.store.config.setPhase(r.id, ['all'], 'stopped', `stopped: ${why}`.slice(0, 500), now))
        await this.audit(r, 'rollout-stop', `${why}; ${left} device(s) left untouched`, null, 'stopped');
      return;
    }
    if (!r.paused) await this.publishAll(r, steps, cfg.publishPerTick);
    const open = steps.filter((s) => s.state !== 'applied' && s.state !== 'rejected' && s.state !== 'unhealthy');
    if (open.length) return;
    const count = (st: string) => steps.filter((s) => s.state === st).length;
    const msg = `done: ${count('applied')} applied, ${count('rejected')} rejected, ${count('unhealthy')} unhealthy`;
    if (await this.ctx.store.config.setPhase(r.id, ['all'], 'done', msg, now)) await this.audit(r, 'rollout-done', msg);
  }

  /** What a published device's state says about this step (undefined: no change yet). */
  private async judge(
    s: RolloutDeviceRow,
    d: DeviceRow,
    now: number,
  ): Promise<{ state: 'applied' | 'rejected' | 'unhealthy'; detail: string | null } | undefined> {
    const cfg = this.ctx.config.rollouts;
    const since = s.published_at ?? now;
    let rep: Reported = {};
    try {
      rep = JSON.parse(d.reported_json ?? '{}') as Reported;
    } catch {
      /* unreadable: treat as no report */
    }
    const fresh = (d.reported_at ?? 0) >= since - 60_000;
    if (fresh && rep.lastDesiredRevision === s.revision && (rep.status === 'rejected' || rep.status === 'ignored'))
      return {
        state: 'rejected',
        detail:
          (rep.reasons ?? [])
            .map((p) => `${p.path}: ${p.message}`)
            .join('; ')
            .slice(0, 500) || rep.status,
      };
    const problem = await healthProblem(this.ctx, d, since, now, cfg.offlineGraceMs, 'the publish');
    if (problem) return { state: 'unhealthy', detail: problem };
    if (s.state === 'published') {
      if (d.online && d.config_revision === s.revision) return { state: 'applied', detail: null };
      if (now - since > cfg.applyTimeoutMs)
        return { state: 'unhealthy', detail: `did not apply revision ${s.revision} within ${Math.round(cfg.applyTimeoutMs / 1000)} s` };
    }
    return undefined;
  }

  private async publishAll(r: RolloutRow, steps: RolloutDeviceRow[], max: number): Promise<void> {
    const now = this.ctx.clock.now();
    let n = 0;
    for (const s of steps) {
      if (n >= max) break;
      if (s.state !== 'pending' && !(s.state === 'publishing' && (s.claimed_at ?? 0) < now - this.ctx.config.rollouts.claimTimeoutMs)) continue;
      if (!this.ctx.mqtt.connected) return;
      if (!(await this.ctx.store.config.claim(r.id, s.device_id, now, now - this.ctx.config.rollouts.claimTimeoutMs))) continue;
      n++;
      try {
        await publishDesired(this.ctx, s.device_id, s.revision, s.doc);
      } catch (e) {
        // Left claimed: retried after claimTimeoutMs (a lost connection usually).
        this.ctx.log.warn('rollout publish failed; will retry', { rollout: r.id, device: s.device_id, ...describeError(e) });
        return;
      }
      await this.ctx.store.config.published(s, this.ctx.clock.now());
      s.state = 'published';
      s.published_at = this.ctx.clock.now();
      this.published++;
      await this.audit(r, 'rollout-publish', `revision ${s.revision}${s.canary ? ' (canary)' : ''}`, s.device_id);
    }
  }
}

function stopStep(s: RolloutDeviceRow) {
  return { ...s, failed: s.state === 'rejected' || s.state === 'unhealthy' };
}

/** The contract's config/desired: retained, QoS 1, `{revision, config}`; resolves on the broker's PUBACK. */
export function publishDesired(ctx: FleetCtx, deviceId: string, revision: number, doc: string): Promise<void> {
  const body = `{"revision":${revision},"config":${doc}}`;
  return ctx.mqtt.publish(topicFor(ctx.config.mqtt.prefix, deviceId, 'configDesired'), body, { qos: 1, retain: true });
}
