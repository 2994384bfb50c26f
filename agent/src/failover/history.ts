import { migrate, type Db } from '../core/db.js';

/**
 * Failover switch history in the agent's state db, so "today's outages" on the status page
 * survive an agent restart or a power cut (the db is WAL + synchronous=FULL). One row per switch;
 * `primary` says whether traffic went back onto the preferred uplink. Rows older than KEEP_MS go.
 */
const KEEP_MS = 8 * 86_400_000;

export interface SwitchRow {
  at: number;
  from: string | null;
  to: string | null;
  kind: string;
  primary: boolean;
}

/** One outage: traffic off the preferred uplink from `start` until `end` (null: still going on). */
export type { Outage } from '../../../contract/operations.js';
import type { Outage } from '../../../contract/operations.js';

export function migrateHistory(db: Db): void {
  migrate(db, 'failover', [
    {
      version: 1,
      up: `CREATE TABLE failover_switches (at INTEGER NOT NULL, from_uplink TEXT, to_uplink TEXT, kind TEXT NOT NULL, on_primary INTEGER NOT NULL);
        CREATE INDEX failover_switches_at ON failover_switches(at);`,
    },
  ]);
}

export function recordSwitch(db: Db, s: SwitchRow): void {
  db.prepare('INSERT INTO failover_switches (at, from_uplink, to_uplink, kind, on_primary) VALUES (?, ?, ?, ?, ?)').run(
    s.at,
    s.from,
    s.to,
    s.kind,
    s.primary ? 1 : 0,
  );
  db.prepare('DELETE FROM failover_switches WHERE at < ?').run(s.at - KEEP_MS);
}

interface Row {
  at: number;
  from_uplink: string | null;
  to_uplink: string | null;
  kind: string;
  on_primary: number;
}

/**
 * Outages overlapping [dayStart, now]: the last switch before the day gives the state the day
 * began in, so an outage that started last night shows from its real start.
 */
export function outagesSince(db: Db, dayStart: number, now: number): Outage[] {
  const before = db.prepare('SELECT * FROM failover_switches WHERE at < ? ORDER BY at DESC, rowid DESC LIMIT 1').get(dayStart) as Row | undefined;
  const rows = db.prepare('SELECT * FROM failover_switches WHERE at >= ? AND at <= ? ORDER BY at, rowid').all(dayStart, now) as Row[];
  const out: Outage[] = [];
  let cur: Outage | null = null;
  for (const r of before ? [before, ...rows] : rows) {
    if (r.on_primary) {
      if (cur) cur.end = r.at;
      cur = null;
      continue;
    }
    if (!cur) {
      cur = { start: r.at, end: null, via: [], offline: false, maintenance: r.kind === 'forced' };
      out.push(cur);
    } else if (r.kind !== 'forced') cur.maintenance = false;
    if (r.to_uplink === null) cur.offline = true;
    else if (!cur.via.includes(r.to_uplink)) cur.via.push(r.to_uplink);
  }
  return out.filter((o) => o.end === null || o.end >= dayStart);
}
