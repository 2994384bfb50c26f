import { migrate, type Db } from '../core/db.js';

export interface DrillStepOutcome {
  name: string;
  passed: boolean;
  detail: string;
  figures?: Record<string, number>;
}

export interface DrillResult {
  id: string;
  at: number;
  passed: boolean;
  steps: DrillStepOutcome[];
}

export interface StoredDrill extends DrillResult {
  trigger: string;
  durationMs: number;
}

/** Drill results in the state db: the ICB's proof that the backup worked, kept across restarts. */
export class DrillStore {
  constructor(private readonly db: Db) {
    migrate(db, 'drills', [
      {
        version: 1,
        up: `CREATE TABLE drill_results (
            id TEXT PRIMARY KEY, at INTEGER NOT NULL, trigger TEXT NOT NULL, passed INTEGER NOT NULL,
            duration_ms INTEGER NOT NULL, steps TEXT NOT NULL);
          CREATE INDEX drill_results_at ON drill_results(at);`,
      },
    ]);
  }

  save(r: StoredDrill, keep: number): void {
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO drill_results (id, at, trigger, passed, duration_ms, steps) VALUES (?, ?, ?, ?, ?, ?)')
        .run(r.id, r.at, r.trigger, r.passed ? 1 : 0, Math.round(r.durationMs), JSON.stringify(r.steps));
      this.db.prepare('DELETE FROM drill_results WHERE id NOT IN (SELECT id FROM drill_results ORDER BY at DESC, id DESC LIMIT ?)').run(keep);
    })();
  }

  recent(limit: number): StoredDrill[] {
    const rows = this.db.prepare('SELECT * FROM drill_results ORDER BY at DESC, id DESC LIMIT ?').all(limit) as {
      id: string;
      at: number;
      trigger: string;
      passed: number;
      duration_ms: number;
      steps: string;
    }[];
    return rows.map((r) => ({
      id: r.id,
      at: r.at,
      trigger: r.trigger,
      passed: r.passed === 1,
      durationMs: r.duration_ms,
      steps: JSON.parse(r.steps) as DrillStepOutcome[],
    }));
  }
}
