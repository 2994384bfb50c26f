import type { Health, HealthMap } from '../core/capability.js';

export interface GateConfig {
  /** Give up and roll back after this long on trial. */
  timeoutMs: number;
  /** Every condition must hold this long without a break (one good sample is not health). */
  stableMs: number;
  /** Also require the MQTT session to the fleet: a release that cannot phone home is not kept. */
  requireBroker: boolean;
}

export type GateVerdict = { kind: 'wait'; unmet: string[] } | { kind: 'pass' } | { kind: 'fail'; reason: string };

/**
 * What must be true on a trial boot before the new slot is committed, from capabilities' health()
 * only: no capability failed, an uplink carries traffic (failover has an active uplink), and
 * (by default) the telemetry session to the broker is up.
 */
export function unmetConditions(health: HealthMap, cfg: Pick<GateConfig, 'requireBroker'>, telemetryEnabled: boolean): string[] {
  const unmet: string[] = [];
  for (const [name, h] of Object.entries(health)) {
    if (name === 'update') continue;
    if (h.status === 'failed') unmet.push(`${name} failed: ${h.summary}`);
    else if (h.status === 'starting') unmet.push(`${name} still starting`);
  }
  const fo = health.failover?.details as { active?: string | null } | undefined;
  if (!health.failover) unmet.push('failover not running');
  else if (!fo?.active) unmet.push('no uplink reachable');
  if (cfg.requireBroker && telemetryEnabled) {
    const t = health.telemetry?.details as { connected?: boolean } | undefined;
    if (!t?.connected) unmet.push('not connected to the fleet broker');
  }
  return unmet;
}

/** One evaluation: `okSince` is when every condition last started holding (null when one fails now). */
export function judgeGate(elapsedMs: number, okSinceMs: number | null, nowMs: number, unmet: string[], cfg: GateConfig): GateVerdict {
  if (unmet.length === 0 && okSinceMs !== null && nowMs - okSinceMs >= cfg.stableMs) return { kind: 'pass' };
  if (elapsedMs >= cfg.timeoutMs) {
    return {
      kind: 'fail',
      reason: unmet.length
        ? `health gate timed out after ${Math.round(cfg.timeoutMs / 1000)} s: ${unmet.join('; ')}`
        : 'health gate timed out before the system was stable',
    };
  }
  return { kind: 'wait', unmet };
}
