import { migrate, type Db } from '../core/db.js';

export interface BackupRun {
  id: string;
  startedAt: number;
  finishedAt: number;
  trigger: string;
  ok: boolean;
  snapshotId: string | null;
  dataAdded: number;
  /** Sources that could not be staged (e.g. records locked), or the failure. No patient data. */
  error: string | null;
}

/** Backup runs in the state db, so "last good backup" survives a restart (health, fleet alert). */
export class BackupHistory {
  constructor(private readonly db: Db) {
    migrate(db, 'backup', [
      {
        version: 1,
        up: `CREATE TABLE backup_runs (
            id TEXT PRIMARY KEY, started_at INTEGER NOT NULL, finished_at INTEGER NOT NULL, trigger TEXT NOT NULL,
            ok INTEGER NOT NULL, snapshot_id TEXT, data_added INTEGER NOT NULL DEFAULT 0, error TEXT);
          CREATE INDEX backup_runs_finished ON backup_runs(finished_at);`,
      },
      {
        // A restore onto this box (backup restore), announced to the fleet once as backup.restored.
        version: 2,
        up: `CREATE TABLE backup_restores (
            id TEXT PRIMARY KEY, at INTEGER NOT NULL, snapshot_id TEXT NOT NULL, from_device TEXT NOT NULL, announced_at INTEGER);`,
      },
    ]);
  }

  save(r: BackupRun, keep = 500): void {
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO backup_runs (id, started_at, finished_at, trigger, ok, snapshot_id, data_added, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(r.id, r.startedAt, r.finishedAt, r.trigger, r.ok ? 1 : 0, r.snapshotId, r.dataAdded, r.error);
      this.db.prepare('DELETE FROM backup_runs WHERE id NOT IN (SELECT id FROM backup_runs ORDER BY finished_at DESC LIMIT ?)').run(keep);
    })();
  }

  recordRestore(r: { id: string; at: number; snapshotId: string; fromDevice: string }): void {
    this.db.prepare('INSERT INTO backup_restores (id, at, snapshot_id, from_device) VALUES (?, ?, ?, ?)').run(r.id, r.at, r.snapshotId, r.fromDevice);
  }

  unannouncedRestores(): { id: string; at: number; snapshotId: string; fromDevice: string }[] {
    const rows = this.db.prepare('SELECT id, at, snapshot_id, from_device FROM backup_restores WHERE announced_at IS NULL ORDER BY at').all() as {
      id: string;
      at: number;
      snapshot_id: string;
      from_device: string;
    }[];
    return rows.map((r) => ({ id: r.id, at: r.at, snapshotId: r.snapshot_id, fromDevice: r.from_device }));
  }

  markAnnounced(id: string, at: number): void {
    this.db.prepare('UPDATE backup_restores SET announced_at = ? WHERE id = ?').run(at, id);
  }

  last(okOnly = false): BackupRun | null {
    const r = this.db.prepare(`SELECT * FROM backup_runs ${okOnly ? 'WHERE ok = 1' : ''} ORDER BY finished_at DESC, id DESC LIMIT 1`).get() as
      | {
          id: string;
          started_at: number;
          finished_at: number;
          trigger: string;
          ok: number;
          snapshot_id: string | null;
          data_added: number;
          error: string | null;
        }
      | undefined;
    return r
      ? {
          id: r.id,
          startedAt: r.started_at,
          finishedAt: r.finished_at,
          trigger: r.trigger,
          ok: r.ok === 1,
          snapshotId: r.snapshot_id,
          dataAdded: r.data_added,
          error: r.error,
        }
      : null;
  }
}
