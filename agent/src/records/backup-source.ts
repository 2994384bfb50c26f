import type Database from 'better-sqlite3-multiple-ciphers';
import { Sqlite } from '../core/sqlite.js';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../../../common/errors.js';
import type { RecordsStore } from './store.js';

/**
 * The records database's part of the off-box backup: the audit log (rec_audit) and the offline
 * capture queue in every state (rec_captures), still SQLCipher-encrypted with the practice's data
 * key, plus the passphrase-wrapped key file (records.key) so a replacement box can open it with the
 * practice passphrase.
 *
 * The cached records themselves (patients, appointments, the sync queue and the cache's as-of
 * time) are deleted from the staged copy: they are re-fetched from GP Connect on the first sync,
 * and a restored cache must never show yesterday's records as current. (docs/operator-guide.md)
 *
 * Snapshot method: `VACUUM INTO`, SQLite's other online snapshot (one read transaction, so the copy
 * is consistent while the viewer and forwarder keep writing). better-sqlite3's `db.backup()` cannot
 * be used here: it opens the target itself without a key, and SQLite3MultipleCiphers refuses a
 * backup between an encrypted source and an unkeyed target. VACUUM INTO writes the target with the
 * source's cipher and key, so no plaintext page reaches the staging directory.
 */
export const CACHE_TABLES = ['rec_patients', 'rec_appointments', 'rec_withheld', 'rec_sync_queue', 'rec_meta'] as const;

export type RecordsStageFacts = {
  auditEntries: number;
  auditHead: { seq: number; hash: string } | null;
  captures: Record<string, number>;
};

export function openKeyed(path: string, key: Buffer): Database.Database {
  const db = new Sqlite(path);
  db.pragma(`cipher='sqlcipher'`);
  db.pragma('legacy=4');
  db.pragma(`key="x'${key.toString('hex')}'"`);
  try {
    db.prepare('SELECT count(*) FROM sqlite_master').get();
  } catch (e) {
    db.close();
    throw new AppError('UNAUTHORIZED', 'records database cannot be opened with this key', undefined, { cause: e });
  }
  return db;
}

export function stageRecords(store: RecordsStore, key: Buffer, keyFile: string, dir: string): { files: string[]; facts: RecordsStageFacts } {
  const dest = join(dir, 'records.db');
  rmSync(dest, { force: true });
  store.db.prepare('VACUUM INTO ?').run(dest);
  const db = openKeyed(dest, key);
  try {
    db.pragma('secure_delete = ON');
    const present = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
    db.transaction(() => {
      for (const t of CACHE_TABLES) if (present.has(t)) db.exec(`DELETE FROM ${t}`);
    })();
    db.exec('VACUUM');
    const facts: RecordsStageFacts = { auditEntries: 0, auditHead: null, captures: {} };
    if (present.has('rec_audit')) {
      facts.auditEntries = (db.prepare('SELECT count(*) AS n FROM rec_audit').get() as { n: number }).n;
      facts.auditHead = (db.prepare('SELECT seq, hash FROM rec_audit ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined) ?? null;
    }
    if (present.has('rec_captures')) {
      for (const r of db.prepare('SELECT state, count(*) AS n FROM rec_captures GROUP BY state').all() as { state: string; n: number }[])
        facts.captures[r.state] = r.n;
    }
    return { files: ['records.db', 'records.key'], facts };
  } finally {
    db.close();
    copyFileSync(keyFile, join(dir, 'records.key'));
  }
}
