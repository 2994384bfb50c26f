import type { SqlDriver } from './driver.js';

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
  async ackAlert(id: number, by: string, at: number): Promise<boolean> {
    return (await this.d.run('UPDATE alerts SET acked_by = ?, acked_at = ? WHERE id = ? AND acked_at IS NULL', [by, at, id])).changes > 0;
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
  async alert(id: number): Promise<AlertRow | undefined> {
    return this.d.get<AlertRow>('SELECT * FROM alerts WHERE id = ?', [id]);
  }
}
