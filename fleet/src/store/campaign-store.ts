import type { SqlDriver } from './driver.js';

export type CampaignPhase = 'draft' | 'canary' | 'all' | 'done' | 'stopped' | 'aborted';
export const CAMPAIGN_ACTIVE: readonly CampaignPhase[] = ['draft', 'canary', 'all'];

export interface CampaignRow {
  id: number;
  created_at: number;
  created_by: string;
  bundle_url: string;
  version: string;
  arch: string;
  /** JSON array of ODS codes; [] means every practice. */
  practices: string;
  canary_pct: number;
  soak_ms: number;
  /** 1: boxes may download over 4G (or another backup link); 0 (the default): they wait for the primary. */
  allow_cellular: number;
  /** Update hours "HH:MM-HH:MM", UK time (campaigns/hours.ts): no box is sent the command outside them. null: any time. */
  hours: string | null;
  /** Set while paused (migration 10): no box is sent the command until it is resumed; null: not paused. Meaningful in canary and all only. */
  paused_at: number | null;
  paused_by: string | null;
  phase: CampaignPhase;
  message: string | null;
  updated_at: number;
  started_at: number | null;
  started_by: string | null;
  soak_from: number | null;
  ended_by: string | null;
}

/**
 * pending (queued; may be waiting for the primary link or for the box to come online), sending (an
 * instance claimed it and is sending the command), sent (the box accepted it; `progress` is its
 * last update.progress phase), healthy (committed the new version and stayed healthy), rolled-back,
 * failed (refused, failed, no result in time, or unhealthy after updating), skipped (already runs
 * this version or newer when its turn came).
 */
export type CampaignStepState = 'pending' | 'sending' | 'sent' | 'healthy' | 'rolled-back' | 'failed' | 'skipped';
export const CAMPAIGN_FAILED: readonly CampaignStepState[] = ['rolled-back', 'failed'];

export interface CampaignDeviceRow {
  campaign_id: number;
  device_id: string;
  canary: number;
  rank: number;
  from_version: string | null;
  state: CampaignStepState;
  claimed_at: number | null;
  sent_at: number | null;
  settled_at: number | null;
  update_id: string | null;
  progress: string | null;
  detail: string | null;
}

const inList = (xs: readonly string[]) => xs.map((x) => `'${x}'`).join(', ');

/**
 * Update campaigns and their per-device steps. As config-store.ts: every change two fleet
 * instances could race on is a compare-and-set on the phase or the step's state.
 */
export class CampaignStore {
  constructor(private readonly d: SqlDriver) {}

  async create(
    c: Omit<CampaignRow, 'id' | 'phase' | 'message' | 'started_at' | 'started_by' | 'soak_from' | 'ended_by' | 'hours' | 'paused_at' | 'paused_by'> & {
      message: string | null;
      hours?: string | null;
    },
    steps: Pick<CampaignDeviceRow, 'device_id' | 'canary' | 'rank' | 'from_version'>[],
  ): Promise<number> {
    return this.d.tx(async (t) => {
      const row = await t.get<{ id: number }>(
        `INSERT INTO campaigns (created_at, created_by, bundle_url, version, arch, practices, canary_pct, soak_ms, allow_cellular, hours, phase, message,
          updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'draft', ?, ?) RETURNING id`,
        [
          c.created_at,
          c.created_by,
          c.bundle_url,
          c.version,
          c.arch,
          c.practices,
          c.canary_pct,
          c.soak_ms,
          c.allow_cellular,
          c.hours ?? null,
          c.message,
          c.updated_at,
        ],
      );
      const id = Number(row!.id);
      for (const s of steps)
        await t.run("INSERT INTO campaign_devices (campaign_id, device_id, canary, rank, from_version, state) VALUES (?, ?, ?, ?, ?, 'pending')", [
          id,
          s.device_id,
          s.canary,
          s.rank,
          s.from_version,
        ]);
      return id;
    });
  }

  async get(id: number): Promise<CampaignRow | undefined> {
    if (!Number.isSafeInteger(id)) return undefined;
    return this.d.get<CampaignRow>('SELECT * FROM campaigns WHERE id = ?', [id]);
  }
  async list(limit = 100): Promise<CampaignRow[]> {
    return this.d.all<CampaignRow>('SELECT * FROM campaigns ORDER BY id DESC LIMIT ?', [limit]);
  }
  /** Campaigns the engine must look at: running ones, and stopped/aborted ones with boxes still mid-update (their outcome is still shown). */
  async toWatch(): Promise<CampaignRow[]> {
    return this.d.all<CampaignRow>(
      `SELECT * FROM campaigns WHERE phase IN ('canary', 'all') OR (phase IN ('stopped', 'aborted') AND EXISTS
        (SELECT 1 FROM campaign_devices cd WHERE cd.campaign_id = campaigns.id AND cd.state IN ('sending', 'sent'))) ORDER BY id`,
    );
  }
  /** Compare-and-set on the phase: true when this caller made the change. */
  async setPhase(
    id: number,
    from: readonly CampaignPhase[],
    phase: CampaignPhase,
    message: string | null,
    at: number,
    by: string | null = null,
  ): Promise<boolean> {
    const r = await this.d.run(
      `UPDATE campaigns SET phase = ?, message = COALESCE(?, message), updated_at = ?,
        started_at = CASE WHEN ? = 'canary' THEN ? ELSE started_at END, started_by = CASE WHEN ? = 'canary' THEN ? ELSE started_by END,
        ended_by = CASE WHEN ? = 'aborted' THEN ? ELSE ended_by END
        WHERE id = ? AND phase IN (${from.map(() => '?').join(', ')})`,
      [phase, message, at, phase, at, phase, by, phase, by, id, ...from],
    );
    return r.changes > 0;
  }
  async setMessage(id: number, message: string, at: number): Promise<void> {
    await this.d.run('UPDATE campaigns SET message = ?, updated_at = ? WHERE id = ? AND (message IS NULL OR message <> ?)', [message, at, id, message]);
  }
  /**
   * Pauses a running campaign (canary or all) that is not paused yet: compare-and-set, so of two
   * fleet instances or a double click one wins and the other is told nothing changed.
   */
  async pause(id: number, user: string, at: number): Promise<boolean> {
    const r = await this.d.run(
      `UPDATE campaigns SET paused_at = ?, paused_by = ?, updated_at = ? WHERE id = ? AND phase IN ('canary', 'all') AND paused_at IS NULL`,
      [at, user, at, id],
    );
    return r.changes > 0;
  }
  /** Resumes a paused running campaign (compare-and-set as pause); the message says who resumed it. */
  async resume(id: number, user: string, at: number): Promise<boolean> {
    const r = await this.d.run(
      `UPDATE campaigns SET paused_at = NULL, paused_by = NULL, message = ?, updated_at = ? WHERE id = ? AND phase IN ('canary', 'all')
        AND paused_at IS NOT NULL`,
      [`resumed by ${user}`.slice(0, 500), at, id],
    );
    return r.changes > 0;
  }
  async startSoak(id: number, at: number): Promise<boolean> {
    return (await this.d.run('UPDATE campaigns SET soak_from = ?, updated_at = ? WHERE id = ? AND soak_from IS NULL', [at, at, id])).changes > 0;
  }

  async steps(id: number): Promise<CampaignDeviceRow[]> {
    return this.d.all<CampaignDeviceRow>('SELECT * FROM campaign_devices WHERE campaign_id = ? ORDER BY canary DESC, rank', [id]);
  }
  /** Counts per state for the list page, one query for all campaigns shown. */
  async counts(ids: number[]): Promise<Map<number, Record<string, number>>> {
    const out = new Map<number, Record<string, number>>();
    if (!ids.length) return out;
    const rows = await this.d.all<{ campaign_id: number; state: string; n: number }>(
      `SELECT campaign_id, state, COUNT(*) AS n FROM campaign_devices WHERE campaign_id IN (${ids.map(() => '?').join(', ')}) GROUP BY campaign_id, state`,
      ids,
    );
    for (const r of rows) {
      const m = out.get(Number(r.campaign_id)) ?? {};
      m[r.state] = Number(r.n);
      out.set(Number(r.campaign_id), m);
    }
    return out;
  }
  /** Devices among `ids` in an unfinished campaign (a box takes one update at a time). */
  async inActive(ids: string[]): Promise<{ device_id: string; campaign_id: number }[]> {
    const out: { device_id: string; campaign_id: number }[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      out.push(
        ...(await this.d.all<{ device_id: string; campaign_id: number }>(
          `SELECT cd.device_id, cd.campaign_id FROM campaign_devices cd JOIN campaigns c ON c.id = cd.campaign_id
            WHERE c.phase IN (${inList(CAMPAIGN_ACTIVE)}) AND cd.device_id IN (${chunk.map(() => '?').join(', ')})`,
          chunk,
        )),
      );
    }
    return out;
  }
  /**
   * pending -> sending, or a sending claim older than staleBefore (its instance died mid-send); only
   * while the campaign runs and is not paused, checked in the same statement, so a pause or an abort
   * that has committed stops every later claim even by a tick that read the campaign before it.
   */
  async claim(id: number, device: string, at: number, staleBefore: number): Promise<boolean> {
    const r = await this.d.run(
      `UPDATE campaign_devices SET state = 'sending', claimed_at = ? WHERE campaign_id = ? AND device_id = ?
        AND (state = 'pending' OR (state = 'sending' AND claimed_at < ?))
        AND EXISTS (SELECT 1 FROM campaigns c WHERE c.id = ? AND c.phase IN ('canary', 'all') AND c.paused_at IS NULL)`,
      [at, id, device, staleBefore, id],
    );
    return r.changes > 0;
  }
  /** Moves a step on, compare-and-set on its state; fields left undefined are kept. */
  async settle(
    id: number,
    device: string,
    from: CampaignStepState,
    to: CampaignStepState,
    at: number,
    f: { detail?: string | null; progress?: string | null; updateId?: string | null; sentAt?: number } = {},
  ): Promise<boolean> {
    const terminal = !['pending', 'sending', 'sent'].includes(to);
    const r = await this.d.run(
      `UPDATE campaign_devices SET state = ?, detail = CASE WHEN ? = 1 THEN ? ELSE detail END, progress = CASE WHEN ? = 1 THEN ? ELSE progress END,
        update_id = COALESCE(?, update_id), sent_at = COALESCE(?, sent_at), settled_at = CASE WHEN ? = 1 THEN ? ELSE settled_at END
        WHERE campaign_id = ? AND device_id = ? AND state = ?`,
      [
        to,
        f.detail !== undefined ? 1 : 0,
        f.detail?.slice(0, 500) ?? null,
        f.progress !== undefined ? 1 : 0,
        f.progress ?? null,
        f.updateId ?? null,
        f.sentAt ?? null,
        terminal ? 1 : 0,
        at,
        id,
        device,
        from,
      ],
    );
    return r.changes > 0;
  }
}
