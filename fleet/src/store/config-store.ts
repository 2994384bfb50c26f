import type { SqlDriver } from './driver.js';

export type Scope = 'icb' | 'pcn' | 'practice';
export const SCOPES: readonly Scope[] = ['icb', 'pcn', 'practice'];

export interface TemplateRow {
  scope: Scope;
  scope_id: string;
  doc: string;
  version: number;
  updated_at: number;
  updated_by: string;
}
export interface TemplateVersionRow {
  scope: Scope;
  scope_id: string;
  version: number;
  doc: string;
  at: number;
  by_user: string;
}
export interface DesiredRow {
  device_id: string;
  revision: number;
  doc: string;
  published_at: number;
  rollout_id: number | null;
}
export type RolloutPhase = 'draft' | 'canary' | 'all' | 'done' | 'stopped' | 'aborted';
export const ACTIVE_PHASES: readonly RolloutPhase[] = ['draft', 'canary', 'all'];
export interface RolloutRow {
  id: number;
  created_at: number;
  created_by: string;
  scope: Scope;
  scope_id: string;
  phase: RolloutPhase;
  /** JSON arrays of device ids, for display; the per-device truth is rollout_devices. */
  canary: string;
  targets: string;
  message: string | null;
  updated_at: number;
  soak_ms: number;
  soak_from: number | null;
  paused: number;
  started_at: number | null;
}
export type StepState = 'pending' | 'publishing' | 'published' | 'applied' | 'rejected' | 'unhealthy';
export interface RolloutDeviceRow {
  rollout_id: number;
  device_id: string;
  canary: number;
  rank: number;
  revision: number;
  doc: string;
  state: StepState;
  claimed_at: number | null;
  published_at: number | null;
  settled_at: number | null;
  detail: string | null;
}

/**
 * Config templates (every save a new version), the practice -> PCN map, desired documents as
 * published, and staged rollouts. State changes that two fleet instances might race on are
 * conditional updates (compare-and-set on the phase or step state), so exactly one wins.
 */
export class ConfigStore {
  constructor(private readonly d: SqlDriver) {}

  async templates(): Promise<TemplateRow[]> {
    return this.d.all<TemplateRow>('SELECT * FROM templates ORDER BY scope, scope_id');
  }
  async template(scope: Scope, id: string): Promise<TemplateRow | undefined> {
    return this.d.get<TemplateRow>('SELECT * FROM templates WHERE scope = ? AND scope_id = ?', [scope, id]);
  }
  async templateVersions(scope: Scope, id: string, limit = 50): Promise<TemplateVersionRow[]> {
    return this.d.all<TemplateVersionRow>('SELECT * FROM template_versions WHERE scope = ? AND scope_id = ? ORDER BY version DESC LIMIT ?', [scope, id, limit]);
  }

  /**
   * Saves a new version; `expected` is the version the editor started from (optimistic locking:
   * a save over someone else's newer one is refused rather than silently overwriting it).
   */
  async saveTemplate(
    scope: Scope,
    id: string,
    doc: string,
    by: string,
    at: number,
    expected: number,
  ): Promise<{ ok: true; version: number } | { ok: false; current: number }> {
    return this.d.tx(async (t) => {
      const cur = Number((await t.get<{ version: number }>('SELECT version FROM templates WHERE scope = ? AND scope_id = ?', [scope, id]))?.version ?? 0);
      if (cur !== expected) return { ok: false as const, current: cur };
      const version = cur + 1;
      await t.run(
        `INSERT INTO templates (scope, scope_id, doc, version, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?)
          ON CONFLICT (scope, scope_id)
          DO UPDATE SET doc = excluded.doc, version = excluded.version, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
        [scope, id, doc, version, at, by],
      );
      await t.run('INSERT INTO template_versions (scope, scope_id, version, doc, at, by_user) VALUES (?, ?, ?, ?, ?, ?)', [scope, id, version, doc, at, by]);
      return { ok: true as const, version };
    });
  }

  async pcnMap(): Promise<{ practice: string; pcn: string; updated_at: number; updated_by: string }[]> {
    return this.d.all('SELECT * FROM practice_pcn ORDER BY pcn, practice');
  }
  async pcnOf(practice: string): Promise<string | undefined> {
    return (await this.d.get<{ pcn: string }>('SELECT pcn FROM practice_pcn WHERE practice = ?', [practice]))?.pcn;
  }
  /** Maps a practice to a PCN (or removes the mapping) and re-files its devices, in one transaction. */
  async setPcn(practice: string, pcn: string | null, by: string, at: number): Promise<void> {
    await this.d.tx(async (t) => {
      if (pcn === null) await t.run('DELETE FROM practice_pcn WHERE practice = ?', [practice]);
      else
        await t.run(
          `INSERT INTO practice_pcn (practice, pcn, updated_at, updated_by) VALUES (?, ?, ?, ?) ON CONFLICT (practice)
            DO UPDATE SET pcn = excluded.pcn, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
          [practice, pcn, at, by],
        );
      await t.run('UPDATE devices SET pcn = ? WHERE practice = ?', [pcn, practice]);
    });
  }

  async putDesired(r: DesiredRow, t: SqlDriver = this.d): Promise<void> {
    await t.run(
      `INSERT INTO desired (device_id, revision, doc, published_at, rollout_id) VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id)
        DO UPDATE SET revision = excluded.revision, doc = excluded.doc, published_at = excluded.published_at, rollout_id = excluded.rollout_id`,
      [r.device_id, r.revision, r.doc, r.published_at, r.rollout_id],
    );
  }
  async desired(id: string): Promise<DesiredRow | undefined> {
    return this.d.get<DesiredRow>('SELECT * FROM desired WHERE device_id = ?', [id]);
  }
  async desiredForPractice(practice: string): Promise<DesiredRow[]> {
    return this.d.all<DesiredRow>(
      'SELECT desired.* FROM desired JOIN devices ON devices.id = desired.device_id WHERE devices.practice = ? ORDER BY desired.device_id',
      [practice],
    );
  }

  async createRollout(
    r: Omit<RolloutRow, 'id' | 'soak_from' | 'paused' | 'started_at'>,
    steps: Omit<RolloutDeviceRow, 'rollout_id' | 'claimed_at' | 'published_at' | 'settled_at' | 'detail' | 'state'>[],
  ): Promise<number> {
    return this.d.tx(async (t) => {
      const row = await t.get<{ id: number }>(
        `INSERT INTO rollouts (created_at, created_by, scope, scope_id, phase, canary, targets, message, updated_at, soak_ms)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
        [r.created_at, r.created_by, r.scope, r.scope_id, r.phase, r.canary, r.targets, r.message, r.updated_at, r.soak_ms],
      );
      const id = Number(row!.id);
      for (const s of steps)
        await t.run("INSERT INTO rollout_devices (rollout_id, device_id, canary, rank, revision, doc, state) VALUES (?, ?, ?, ?, ?, ?, 'pending')", [
          id,
          s.device_id,
          s.canary,
          s.rank,
          s.revision,
          s.doc,
        ]);
      return id;
    });
  }
  async rollout(id: number): Promise<RolloutRow | undefined> {
    return this.d.get<RolloutRow>('SELECT * FROM rollouts WHERE id = ?', [id]);
  }
  async rollouts(activeOnly = false, limit = 100): Promise<RolloutRow[]> {
    const w = activeOnly ? `WHERE phase IN (${ACTIVE_PHASES.map((p) => `'${p}'`).join(', ')})` : '';
    return this.d.all<RolloutRow>(`SELECT * FROM rollouts ${w} ORDER BY id DESC LIMIT ?`, [limit]);
  }
  /** Compare-and-set on the phase: true when this caller made the change. */
  async setPhase(id: number, from: readonly RolloutPhase[], phase: RolloutPhase, message: string | null, at: number): Promise<boolean> {
    const r = await this.d.run(
      `UPDATE rollouts SET phase = ?, message = COALESCE(?, message), updated_at = ?, started_at = CASE WHEN ? = 'canary' THEN ?
        ELSE started_at END WHERE id = ? AND phase IN (${from.map(() => '?').join(', ')})`,
      [phase, message, at, phase, at, id, ...from],
    );
    return r.changes > 0;
  }
  async setPaused(id: number, paused: boolean, at: number): Promise<boolean> {
    const r = await this.d.run(`UPDATE rollouts SET paused = ?, updated_at = ? WHERE id = ? AND paused = ? AND phase IN ('draft', 'canary', 'all')`, [
      paused ? 1 : 0,
      at,
      id,
      paused ? 0 : 1,
    ]);
    return r.changes > 0;
  }
  /** Starts the soak once (compare-and-set): true for the one caller that started it. */
  async startSoak(id: number, at: number): Promise<boolean> {
    return (await this.d.run('UPDATE rollouts SET soak_from = ?, updated_at = ? WHERE id = ? AND soak_from IS NULL', [at, at, id])).changes > 0;
  }

  async steps(id: number): Promise<RolloutDeviceRow[]> {
    return this.d.all<RolloutDeviceRow>('SELECT * FROM rollout_devices WHERE rollout_id = ? ORDER BY canary DESC, rank', [id]);
  }
  /** Devices among `ids` that are in an active rollout (a device is in at most one at a time). */
  async inActiveRollout(ids: string[]): Promise<{ device_id: string; rollout_id: number }[]> {
    if (!ids.length) return [];
    const out: { device_id: string; rollout_id: number }[] = [];
    const active = ACTIVE_PHASES.map((p) => `'${p}'`).join(', ');
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      out.push(
        ...(await this.d.all<{ device_id: string; rollout_id: number }>(
          `SELECT rd.device_id, rd.rollout_id FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id
            WHERE r.phase IN (${active}) AND rd.device_id IN (${chunk.map(() => '?').join(', ')})`,
          chunk,
        )),
      );
    }
    return out;
  }
  /**
   * Claims a step for publishing: pending -> publishing, or a publishing claim older than
   * `staleBefore` (the instance that claimed it died between claim and publish).
   */
  async claim(id: number, device: string, at: number, staleBefore: number): Promise<boolean> {
    const r = await this.d.run(
      `UPDATE rollout_devices SET state = 'publishing', claimed_at = ? WHERE rollout_id = ? AND device_id = ?
        AND (state = 'pending' OR (state = 'publishing' AND claimed_at < ?))`,
      [at, id, device, staleBefore],
    );
    return r.changes > 0;
  }
  /** After the broker's PUBACK: the step is published and the desired document recorded, together. */
  async published(step: RolloutDeviceRow, at: number): Promise<void> {
    await this.d.tx(async (t) => {
      await t.run("UPDATE rollout_devices SET state = 'published', published_at = ? WHERE rollout_id = ? AND device_id = ? AND state = 'publishing'", [
        at,
        step.rollout_id,
        step.device_id,
      ]);
      await this.putDesired({ device_id: step.device_id, revision: step.revision, doc: step.doc, published_at: at, rollout_id: step.rollout_id }, t);
    });
  }
  /** published -> applied/rejected/unhealthy, or applied -> rejected/unhealthy; compare-and-set on `from`. */
  async settle(
    id: number,
    device: string,
    from: 'published' | 'applied',
    state: 'applied' | 'rejected' | 'unhealthy',
    detail: string | null,
    at: number,
  ): Promise<boolean> {
    const r = await this.d.run('UPDATE rollout_devices SET state = ?, detail = ?, settled_at = ? WHERE rollout_id = ? AND device_id = ? AND state = ?', [
      state,
      detail,
      at,
      id,
      device,
      from,
    ]);
    return r.changes > 0;
  }
}
