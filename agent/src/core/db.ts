import type Database from 'better-sqlite3-multiple-ciphers';
import { Sqlite } from './sqlite.js';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type Db = Database.Database;

/**
 * The agent's state database (not patient data; that lives in the encrypted records store).
 * Opened with better-sqlite3-multiple-ciphers and no key, which is plain SQLite: the records store
 * needs that engine anyway, and a second one (better-sqlite3) cost the resident agent ~2 MB
 * (make bench-memory 95.1-96.9 -> 93.3 MB). The fleet server keeps better-sqlite3.
 * WAL + synchronous=FULL: a committed transaction survives a power cut, which the durable
 * outbox and the failover history rely on.
 */
export function openStateDb(path: string): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Sqlite(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // A 2 MiB page cache (about SQLite's own default), not better-sqlite3's 16 MB build default: the
  // resident agent keeps this connection for good, and the cache only grows. (No change in make
  // bench-memory, where the database is under 1 MB; 256 KiB measured the same. It bounds what a
  // long-lived box can hold.)
  db.pragma('cache_size = -2048');
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    owner TEXT NOT NULL, version INTEGER NOT NULL, applied_at INTEGER NOT NULL,
    PRIMARY KEY (owner, version))`);
  return db;
}

export interface Migration {
  version: number;
  up: string | ((db: Db) => void);
}

/**
 * Numbered migrations, namespaced by owner (one per capability) so capabilities evolve
 * their tables independently. Each migration runs in its own transaction with its record.
 */
export function migrate(db: Db, owner: string, migrations: readonly Migration[]): number {
  const current = (db.prepare('SELECT MAX(version) AS v FROM schema_migrations WHERE owner = ?').get(owner) as { v: number | null }).v ?? 0;
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  for (const m of sorted) {
    if (m.version <= current) continue;
    db.transaction(() => {
      if (typeof m.up === 'string') db.exec(m.up);
      else m.up(db);
      db.prepare('INSERT INTO schema_migrations (owner, version, applied_at) VALUES (?, ?, ?)').run(owner, m.version, Date.now());
    })();
  }
  return sorted.at(-1)?.version ?? current;
}
