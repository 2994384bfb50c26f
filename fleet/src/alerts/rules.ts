import type { FleetConfig } from '../config.js';
import type { DeviceRow } from '../store/types.js';

export interface Firing {
  kind: 'offline' | 'on-4g' | 'data-cap' | 'drill-failed' | 'records-stale';
  level: string;
  summary: string;
}

const min = (ms: number) => `${Math.round(ms / 60_000)} min`;

/** Which alerts a device's last-known state raises now (pure: the de-duplication lives in the store). */
export function firing(d: DeviceRow, now: number, cfg: FleetConfig['alerts']): Firing[] {
  const out: Firing[] = [];
  if (!d.online && d.state_since !== null && now - d.state_since >= cfg.offlineMin * 60_000)
    out.push({ kind: 'offline', level: '', summary: `${d.id} offline for ${min(now - d.state_since)}` });
  if (d.online && d.active_kind === 'cellular' && d.cellular_since !== null && now - d.cellular_since >= cfg.cellularMin * 60_000)
    out.push({ kind: 'on-4g', level: '', summary: `${d.id} on 4G for ${min(now - d.cellular_since)}` });
  if (d.data_pct !== null) for (const p of cfg.dataCapPcts) if (d.data_pct >= p) out.push({ kind: 'data-cap', level: String(p), summary: `${d.id} has used ${Math.round(d.data_pct)}% of its 4G allowance` });
  if (d.drill_passed === 0) out.push({ kind: 'drill-failed', level: '', summary: `${d.id} backup drill failed` });
  if (d.records_stale === 1) out.push({ kind: 'records-stale', level: '', summary: `${d.id} records cache not synced (stale)` });
  return out;
}
