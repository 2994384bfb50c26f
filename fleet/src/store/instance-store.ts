import type { SqlDriver } from './driver.js';

export interface InstanceRow {
  id: string;
  host: string;
  started_at: number;
  heartbeat_at: number;
  dashboard: string | null;
  takeover_by: string | null;
  takeover_at: number | null;
  drained_at: number | null;
  drained_messages: number | null;
}

/**
 * Fleet instances sharing this database (ingest/peers.ts): heartbeats, and the claim a survivor
 * makes on a dead peer's broker session. Claims are compare-and-set, so of several survivors one
 * drains a given peer.
 */
export class InstanceStore {
  constructor(private readonly d: SqlDriver) {}

  /** Starting (again) clears any claim on us: our own session is ours once more. */
  async register(id: string, host: string, dashboard: string | null, now: number): Promise<void> {
    await this.d.run(
      `INSERT INTO fleet_instances (id, host, started_at, heartbeat_at, dashboard) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET host = excluded.host, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
         dashboard = excluded.dashboard, takeover_by = NULL, takeover_at = NULL, drained_at = NULL, drained_messages = NULL`,
      [id, host, now, now, dashboard],
    );
  }

  async heartbeat(id: string, now: number): Promise<void> {
    await this.d.run('UPDATE fleet_instances SET heartbeat_at = ? WHERE id = ?', [now, id]);
  }

  async list(): Promise<InstanceRow[]> {
    return this.d.all<InstanceRow>('SELECT * FROM fleet_instances ORDER BY id');
  }

  /** Claims a peer silent since before `deadBefore`, not yet drained, unclaimed or with a claim older than `staleClaimBefore`. */
  async claim(peer: string, by: string, now: number, deadBefore: number, staleClaimBefore: number): Promise<boolean> {
    const r = await this.d.run(
      `UPDATE fleet_instances SET takeover_by = ?, takeover_at = ? WHERE id = ? AND id <> ? AND heartbeat_at < ? AND drained_at IS NULL
         AND (takeover_by IS NULL OR takeover_at < ?)`,
      [by, now, peer, by, deadBefore, staleClaimBefore],
    );
    return r.changes === 1;
  }

  async drained(peer: string, by: string, now: number, messages: number): Promise<void> {
    await this.d.run('UPDATE fleet_instances SET drained_at = ?, drained_messages = ? WHERE id = ? AND takeover_by = ?', [now, messages, peer, by]);
  }

  /** A drain that did not finish: let it be claimed again at the next look. */
  async release(peer: string, by: string): Promise<void> {
    await this.d.run('UPDATE fleet_instances SET takeover_by = NULL, takeover_at = NULL WHERE id = ? AND takeover_by = ?', [peer, by]);
  }
}
