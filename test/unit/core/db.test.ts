import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Sqlite from 'better-sqlite3';
import { openStateDb } from '../../../agent/src/core/db.js';

describe('state database', () => {
  it("keeps a 2 MiB page cache (about SQLite's own), not the 16 MB better-sqlite3 builds in", () => {
    const db = openStateDb(':memory:');
    assert.equal(db.pragma('cache_size', { simple: true }), -2048);
    db.close();
  });

  it('opens the agent.db an earlier agent wrote with better-sqlite3, and better-sqlite3 reads what it writes (plain SQLite, no key)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'se-statedb-'));
    try {
      const path = join(dir, 'agent.db');
      const old = new Sqlite(path);
      old.pragma('journal_mode = WAL');
      old.exec("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('before')");
      old.close();
      const db = openStateDb(path);
      assert.deepEqual(db.prepare('SELECT v FROM t').all(), [{ v: 'before' }]);
      db.prepare("INSERT INTO t VALUES ('after')").run();
      db.close();
      const again = new Sqlite(path, { readonly: true });
      assert.deepEqual(again.prepare('SELECT v FROM t ORDER BY v').all(), [{ v: 'after' }, { v: 'before' }]);
      again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
