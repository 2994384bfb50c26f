import { BACKUP_STALE_MS } from '../../../contract/reports/backup.js';
import type { FleetConfig } from '../config.js';
import type { DeviceRow } from '../store/types.js';

export interface Firing {
  kind: 'offline' | 'on-4g' | 'data-cap' | 'drill-failed' | 'records-stale' | 'backup-stale';
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
  if (d.data_pct !== null)
    for (const p of cfg.dataCapPcts)
      if (d.data_pct >= p) out.push({ kind: 'data-cap', level: String(p), summary: `${d.id} has used ${Math.round(d.data_pct)}% of its 4G allowance` });
  if (d.drill_passed === 0) out.push({ kind: 'drill-failed', level: '', summary: `${d.id} backup drill failed` });
  if (d.records_stale === 1) out.push({ kind: 'records-stale', level: '', summary: `${d.id} records cache not synced (stale)` });
  const backup = backupStale(d, now);
  if (backup) out.push({ kind: 'backup-stale', level: '', summary: backup });
  return out;
}

const hours = (ms: number) => `${Math.floor(ms / 3600_000)} h`;

/**
 * The last good off-box backup is older than 26 h (BACKUP_STALE_MS, the box's own threshold), from
 * the backup report's lastSuccessAt in the last telemetry. A box that has never had a good backup
 * alerts once it has been known to the fleet for 26 h (a new box gets its first nightly run). The
 * summary names the practice: that is who the ICB rings. Boxes without backup configured do not alert.
 */
export function backupStale(d: DeviceRow, now: number): string | null {
  if (!d.health_json?.includes('"backup"')) return null;
  let h: { status?: unknown; lastGoodBackupAt?: unknown } | undefined;
  try {
    h = (JSON.parse(d.health_json) as Record<string, typeof h>).backup;
  } catch {
    return null;
  }
  if (!h || h.status === 'disabled' || !('lastGoodBackupAt' in h)) return null;
  const last = typeof h.lastGoodBackupAt === 'number' ? h.lastGoodBackupAt : null;
  const since = last ?? d.first_seen;
  if (now - since <= BACKUP_STALE_MS) return null;
  const practice = d.practice_name ? `${d.practice_name} (${d.practice})` : d.practice;
  return last === null
    ? `${practice}: ${d.id} has no good off-box backup (known to the fleet for ${hours(now - since)})`
    : `${practice}: ${d.id} last good off-box backup ${hours(now - last)} ago`;
}
