import type { Param, SqlDriver } from './driver.js';

export interface AlertRow {
  id: number;
  device_id: string;
  kind: string;
  level: string;
  summary: string;
  opened_at: number;
  cleared_at: number | null;
  acked_by: string | null;
  acked_at: number | null;
  delivered: string | null;
  snoozed_until: number | null;
  snoozed_by: string | null;
  /** The snoozed_until a "still open after snooze" notice was sent for (one per snooze). */
  snooze_notified_until: number | null;
  renotified_at: number | null;
  /** Where that notice went ("email, webhook"), as `delivered` for the first. */
  renotified: string | null;
}

/** An alert with its device's practice, for the alerts page and the mail (staff think in practices). */
export interface AlertListRow extends AlertRow {
  practice: string | null;
  practice_name: string | null;
}

/** open: needs someone (not acknowledged, not snoozed); active: not cleared, whatever else. */
export type AlertStatus = 'active' | 'open' | 'acknowledged' | 'snoozed' | 'cleared' | 'all';
export const ALERT_STATUSES: readonly AlertStatus[] = ['active', 'open', 'acknowledged', 'snoozed', 'cleared', 'all'];

export interface AlertFilter {
  status?: AlertStatus;
  kind?: string;
  practice?: string;
  deviceIds?: string[];
  now: number;
  limit?: number;
  offset?: number;
}

export type MaintenanceScope = 'device' | 'practice' | 'icb';

export interface MaintenanceRow {
  id: number;
  scope: MaintenanceScope;
  scope_id: string;
  starts_at: number;
  ends_at: number;
  reason: string;
  created_by: string;
  created_at: number;
  ended_by: string | null;
  ended_at: number | null;
}

/** Alerts: one open row per device/kind/level (the de-duplication). Config lives in config-store.ts. */
export class OpsStore {
  constructor(private readonly d: SqlDriver) {}

  /** Opens an alert unless the same one is already open; returns it only when new. */
  async openAlert(a: { device_id: string; kind: string; level: string; summary: string; at: number }): Promise<AlertRow | undefined> {
    return this.d.get<AlertRow>(
      `INSERT INTO alerts (device_id, kind, level, summary, opened_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (device_id, kind, level) WHERE cleared_at IS NULL DO NOTHING RETURNING *`,
      [a.device_id, a.kind, a.level, a.summary, a.at],
    );
  }
  async clearAlert(id: number, at: number): Promise<void> {
    await this.d.run('UPDATE alerts SET cleared_at = ? WHERE id = ? AND cleared_at IS NULL', [at, id]);
  }
  /** A cleared alert is history: it cannot be acknowledged (or snoozed). */
  async ackAlert(id: number, by: string, at: number): Promise<boolean> {
    const sql = 'UPDATE alerts SET acked_by = ?, acked_at = ? WHERE id = ? AND acked_at IS NULL AND cleared_at IS NULL';
    return (await this.d.run(sql, [by, at, id])).changes > 0;
  }
  async snoozeAlert(id: number, by: string, until: number): Promise<boolean> {
    return (await this.d.run('UPDATE alerts SET snoozed_by = ?, snoozed_until = ? WHERE id = ? AND cleared_at IS NULL', [by, until, id])).changes > 0;
  }
  /** Not cleared, not acknowledged, and a snooze that ended by `now` without its notice sent yet. */
  async snoozesEnded(now: number): Promise<AlertRow[]> {
    return this.d.all<AlertRow>(
      `SELECT * FROM alerts WHERE cleared_at IS NULL AND acked_at IS NULL AND snoozed_until IS NOT NULL AND snoozed_until <= ?
       AND (snooze_notified_until IS NULL OR snooze_notified_until <> snoozed_until) ORDER BY id`,
      [now],
    );
  }
  /**
   * Claim the notice for the snooze that ended at `snoozedUntil`: one UPDATE, so of several fleet
   * instances (or a re-snooze racing the end) exactly one sends it; false when another did, or
   * when the alert was acknowledged, cleared or snoozed again meanwhile.
   */
  async claimRenotify(id: number, snoozedUntil: number, at: number): Promise<boolean> {
    const sql = `UPDATE alerts SET snooze_notified_until = ?, renotified_at = ?, renotified = NULL WHERE id = ? AND snoozed_until = ? AND snoozed_until <= ?
      AND cleared_at IS NULL AND acked_at IS NULL AND (snooze_notified_until IS NULL OR snooze_notified_until <> ?)`;
    return (await this.d.run(sql, [snoozedUntil, at, id, snoozedUntil, at, snoozedUntil])).changes > 0;
  }
  async markRenotified(id: number, renotified: string): Promise<void> {
    await this.d.run('UPDATE alerts SET renotified = ? WHERE id = ?', [renotified, id]);
  }
  async markDelivered(id: number, delivered: string): Promise<void> {
    await this.d.run('UPDATE alerts SET delivered = ? WHERE id = ?', [delivered, id]);
  }
  async openAlerts(): Promise<AlertRow[]> {
    return this.d.all<AlertRow>('SELECT * FROM alerts WHERE cleared_at IS NULL ORDER BY opened_at DESC');
  }
  async alerts(limit = 200, deviceId?: string): Promise<AlertRow[]> {
    if (deviceId) return this.d.all<AlertRow>('SELECT * FROM alerts WHERE device_id = ? ORDER BY id DESC LIMIT ?', [deviceId, limit]);
    return this.d.all<AlertRow>('SELECT * FROM alerts ORDER BY (CASE WHEN cleared_at IS NULL THEN 0 ELSE 1 END), id DESC LIMIT ?', [limit]);
  }
  async alert(id: number): Promise<AlertListRow | undefined> {
    return this.d.get<AlertListRow>('SELECT a.*, d.practice, d.practice_name FROM alerts a LEFT JOIN devices d ON d.id = a.device_id WHERE a.id = ?', [id]);
  }

  private alertWhere(f: AlertFilter): { sql: string; params: Param[] } {
    const w: string[] = [];
    const p: Param[] = [];
    const status = f.status ?? 'active';
    if (status === 'active') w.push('a.cleared_at IS NULL');
    if (status === 'open') (w.push('a.cleared_at IS NULL AND a.acked_at IS NULL AND (a.snoozed_until IS NULL OR a.snoozed_until <= ?)'), p.push(f.now));
    if (status === 'acknowledged') w.push('a.cleared_at IS NULL AND a.acked_at IS NOT NULL');
    if (status === 'snoozed') (w.push('a.cleared_at IS NULL AND a.acked_at IS NULL AND a.snoozed_until > ?'), p.push(f.now));
    if (status === 'cleared') w.push('a.cleared_at IS NOT NULL');
    if (f.kind) (w.push('a.kind = ?'), p.push(f.kind));
    if (f.practice) (w.push('d.practice = ?'), p.push(f.practice));
    if (f.deviceIds) (w.push(f.deviceIds.length ? `a.device_id IN (${f.deviceIds.map(() => '?').join(', ')})` : '1 = 0'), p.push(...f.deviceIds));
    return { sql: w.length ? `WHERE ${w.join(' AND ')}` : '', params: p };
  }

  /** The alerts page: filtered, what needs someone first (open, then snoozed/acknowledged, then cleared), newest first within. */
  async listAlerts(f: AlertFilter): Promise<AlertListRow[]> {
    const { sql, params } = this.alertWhere(f);
    return this.d.all<AlertListRow>(
      `SELECT a.*, d.practice, d.practice_name FROM alerts a LEFT JOIN devices d ON d.id = a.device_id ${sql}
       ORDER BY (CASE WHEN a.cleared_at IS NOT NULL THEN 2 WHEN a.acked_at IS NULL AND (a.snoozed_until IS NULL OR a.snoozed_until <= ?) THEN 0 ELSE 1 END),
         a.opened_at DESC, a.id DESC
       LIMIT ? OFFSET ?`,
      [...params, f.now, f.limit ?? 200, f.offset ?? 0],
    );
  }
  async countAlerts(f: AlertFilter): Promise<number> {
    const { sql, params } = this.alertWhere(f);
    return Number((await this.d.get<{ n: number }>(`SELECT COUNT(*) AS n FROM alerts a LEFT JOIN devices d ON d.id = a.device_id ${sql}`, params))?.n ?? 0);
  }
  async alertKinds(): Promise<string[]> {
    return (await this.d.all<{ kind: string }>('SELECT DISTINCT kind FROM alerts ORDER BY kind')).map((r) => r.kind);
  }

  async addMaintenance(m: Omit<MaintenanceRow, 'id' | 'ended_by' | 'ended_at'>): Promise<number> {
    const r = await this.d.get<{ id: number }>(
      'INSERT INTO maintenance (scope, scope_id, starts_at, ends_at, reason, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id',
      [m.scope, m.scope_id, m.starts_at, m.ends_at, m.reason, m.created_by, m.created_at],
    );
    return Number(r!.id);
  }
  /** Ends a window now (or cancels one not yet started); false when it had already ended. */
  async endMaintenance(id: number, by: string, at: number): Promise<boolean> {
    const sql = `UPDATE maintenance SET ended_by = ?, ended_at = ?, ends_at = CASE WHEN ends_at > ? THEN ? ELSE ends_at END
      WHERE id = ? AND ended_at IS NULL AND ends_at > ?`;
    return (await this.d.run(sql, [by, at, at, at, id, at])).changes > 0;
  }
  async maintenance(id: number): Promise<MaintenanceRow | undefined> {
    return this.d.get<MaintenanceRow>('SELECT * FROM maintenance WHERE id = ?', [id]);
  }
  /** Windows in force at `now` or still to come (the alerts page), soonest first. */
  async currentMaintenance(now: number): Promise<MaintenanceRow[]> {
    return this.d.all<MaintenanceRow>('SELECT * FROM maintenance WHERE ends_at > ? ORDER BY starts_at, id', [now]);
  }
}
