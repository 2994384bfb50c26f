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

export type Scope = 'icb' | 'pcn' | 'practice';
export interface TemplateRow {
  scope: Scope;
  scope_id: string;
  doc: string;
  updated_at: number;
  updated_by: string;
}
export interface DesiredRow {
  device_id: string;
  revision: number;
  doc: string;
  published_at: number;
  rollout_id: number | null;
}
export interface RolloutRow {
  id: number;
  created_at: number;
  created_by: string;
  scope: Scope;
  scope_id: string;
  phase: 'canary' | 'all' | 'done' | 'stopped';
  canary: string;
  targets: string;
  message: string | null;
  updated_at: number;
}

/** Alerts (one open row per device/kind/level: the de-duplication), config templates, rollouts. */
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

  async putTemplate(t: TemplateRow): Promise<void> {
    await this.d.run(
      'INSERT INTO templates (scope, scope_id, doc, updated_at, updated_by) VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, scope_id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at, updated_by = excluded.updated_by',
      [t.scope, t.scope_id, t.doc, t.updated_at, t.updated_by],
    );
  }
  async templates(): Promise<TemplateRow[]> {
    return this.d.all<TemplateRow>('SELECT * FROM templates ORDER BY scope, scope_id');
  }

  async putDesired(r: DesiredRow): Promise<void> {
    await this.d.run(
      'INSERT INTO desired (device_id, revision, doc, published_at, rollout_id) VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET revision = excluded.revision, doc = excluded.doc, published_at = excluded.published_at, rollout_id = excluded.rollout_id',
      [r.device_id, r.revision, r.doc, r.published_at, r.rollout_id],
    );
  }
  async desired(id: string): Promise<DesiredRow | undefined> {
    return this.d.get<DesiredRow>('SELECT * FROM desired WHERE device_id = ?', [id]);
  }

  async createRollout(r: Omit<RolloutRow, 'id'>): Promise<number> {
    const row = await this.d.get<{ id: number }>(
      'INSERT INTO rollouts (created_at, created_by, scope, scope_id, phase, canary, targets, message, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id',
      [r.created_at, r.created_by, r.scope, r.scope_id, r.phase, r.canary, r.targets, r.message, r.updated_at],
    );
    return Number(row!.id);
  }
  async updateRollout(id: number, phase: RolloutRow['phase'], message: string | null, at: number): Promise<void> {
    await this.d.run('UPDATE rollouts SET phase = ?, message = ?, updated_at = ? WHERE id = ?', [phase, message, at, id]);
  }
  async rollouts(active = false): Promise<RolloutRow[]> {
    return this.d.all<RolloutRow>(`SELECT * FROM rollouts ${active ? "WHERE phase IN ('canary', 'all')" : ''} ORDER BY id DESC LIMIT 100`);
  }
}
