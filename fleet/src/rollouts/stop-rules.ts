import type { FleetCtx } from '../ctx.js';
import type { DeviceRow } from '../store/types.js';

/**
 * The automatic stop rules, one set for config rollouts (rollouts/engine.ts) and software update
 * campaigns (campaigns/engine.ts), so an ICB engineer learns them once (docs/fleet.md):
 *
 * 1. Canary wave: any canary that fails stops the whole thing before anyone else is touched.
 * 2. Second wave: once `stopFailPct` % of the second wave's devices (at least one) have failed,
 *    nothing more is sent; devices already sent to carry on by themselves.
 * 3. "Failed" includes going unhealthy after the change: offline past a grace, a failed backup
 *    drill, or a new offline / drill-failed alert (healthProblem below).
 */
export interface StopStep {
  device_id: string;
  canary: number;
  /** Counts against the stop rules (rejected, unhealthy, failed, rolled back). */
  failed: boolean;
  detail: string | null;
  state: string;
}

/** Failures in a wave of n devices that stop it: stopFailPct % of n, rounded up, at least one. */
export function failThreshold(n: number, stopFailPct: number): number {
  return Math.max(1, Math.ceil((n * stopFailPct) / 100 - 1e-9));
}

/** Why this wave must stop now, in words (null: carry on). */
export function stopReason(phase: 'canary' | 'all', steps: StopStep[], stopFailPct: number): string | null {
  if (phase === 'canary') {
    const bad = steps.find((s) => s.canary && s.failed);
    return bad ? `canary ${bad.device_id} ${bad.state}: ${bad.detail ?? ''}`.trim() : null;
  }
  const wave = steps.filter((s) => !s.canary);
  const failed = wave.filter((s) => s.failed);
  if (!wave.length || failed.length < failThreshold(wave.length, stopFailPct)) return null;
  return (
    `${failed.length} of ${wave.length} device(s) in the second wave failed (stop at ${stopFailPct} %), e.g. ` +
    `${failed[0]!.device_id} ${failed[0]!.state}: ${failed[0]!.detail ?? ''}`
  ).trim();
}

const UNHEALTHY_ALERTS = new Set(['offline', 'drill-failed']);

/**
 * What is wrong with a device since `since` (the change reached it), in words, or null: offline for
 * longer than graceMs (a short gap while it restarts is expected), a backup drill that failed, or
 * an offline / drill-failed alert opened since and not cleared.
 */
export async function healthProblem(ctx: FleetCtx, d: DeviceRow, since: number, now: number, graceMs: number, after = 'the change'): Promise<string | null> {
  const offFor = now - Math.max(d.state_since ?? 0, since);
  if (!d.online && offFor > graceMs) return `offline for ${Math.round(offFor / 1000)} s after ${after}`;
  if (d.drill_at !== null && d.drill_at >= since && d.drill_passed === 0) return `a backup drill failed after ${after}`;
  const alert = (await ctx.store.ops.alerts(20, d.id)).find((a) => UNHEALTHY_ALERTS.has(a.kind) && a.opened_at >= since && a.cleared_at === null);
  return alert ? `new alert: ${alert.summary}` : null;
}
