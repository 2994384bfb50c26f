import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createUser, deleteUser, setDisabled } from '../../../agent/src/auth/accounts.js';
import { SessionStore } from '../../../agent/src/auth/sessions.js';
import { createTestCtx } from '../../helpers/ctx.js';

describe('session store', () => {
  it('keeps a session in steady use alive, writing last_seen at most every idle/20', async () => {
    const ctx = createTestCtx();
    try {
      createUser(ctx.db, 'gp1', 'correct horse battery staple', 'clinician');
      let now = 1_000_000;
      const idle = 15 * 60_000;
      const store = new SessionStore(ctx.db, () => now, { idleTimeoutMs: idle, maxAgeMs: 12 * 3600_000 });
      const s = store.create('gp1');
      const lastSeen = () => (ctx.db.prepare('SELECT last_seen FROM auth_sessions').get() as { last_seen: number }).last_seen;
      const writes = new Set<number>();
      // A clinician clicking every 10 s for 40 minutes: never signed out.
      for (let i = 0; i < 240; i++) {
        now += 10_000;
        assert.ok(store.touch(s.sessionId), `signed out after ${(i * 10) / 60} min of use`);
        writes.add(lastSeen());
      }
      assert.ok(writes.size <= 240 / 4 + 1, `last_seen written ${writes.size} times for 240 requests`);
      assert.ok(now - lastSeen() <= idle / 20);
      // Then idle for longer than the timeout (plus the write granularity): signed out, row gone.
      now += idle + idle / 20 + 1;
      assert.equal(store.touch(s.sessionId), undefined);
      assert.equal((ctx.db.prepare('SELECT count(*) n FROM auth_sessions').get() as { n: number }).n, 0);
    } finally {
      ctx.cleanup();
    }
  });

  it('the lookup cache never outlives a change: sign-out, another process, disable, delete, role', async () => {
    const ctx = createTestCtx();
    try {
      createUser(ctx.db, 'gp1', 'correct horse battery staple', 'clinician');
      createUser(ctx.db, 'rec1', 'correct horse battery staple', 'reception');
      const now = 1_000_000;
      const store = new SessionStore(ctx.db, () => now, { idleTimeoutMs: 15 * 60_000, maxAgeMs: 12 * 3600_000 });
      const a = store.create('gp1');
      const b = store.create('gp1');
      const c = store.create('rec1');
      // Warm: repeated lookups are served from the cache (no SQL for the row: proven by removing it behind the
      // store's back through a second connection, which only data_version reveals).
      for (let i = 0; i < 3; i++) assert.equal(store.touch(a.sessionId)?.username, 'gp1');
      assert.equal(store.touch(b.sessionId)?.role, 'clinician');

      // 1. Signed out through the store: refused on the next request.
      store.destroy(a.sessionId);
      assert.equal(store.touch(a.sessionId), undefined);
      assert.ok(store.touch(b.sessionId), 'the other session lives on');

      // 2. Another process (the `user` CLI, a restore) deletes the session row in the same db file.
      const other = new Database(ctx.db.name);
      try {
        other.prepare('DELETE FROM auth_sessions').run();
      } finally {
        other.close();
      }
      assert.equal(store.touch(b.sessionId), undefined, 'a session deleted by another connection must be refused at once');
      assert.equal(store.touch(c.sessionId), undefined);

      // 3. An admin disables an account / deletes it / changes a role on this connection.
      const d = store.create('gp1');
      const e = store.create('rec1');
      assert.ok(store.touch(d.sessionId) && store.touch(e.sessionId));
      ctx.db.prepare("UPDATE auth_users SET role = 'admin' WHERE username = 'rec1'").run();
      assert.equal(store.touch(e.sessionId)?.role, 'admin', 'a role change is seen on the next request');
      setDisabled(ctx.db, 'gp1', true, now);
      assert.equal(store.touch(d.sessionId), undefined, 'disabled account: refused at once');
      const f = store.create('rec1');
      assert.ok(store.touch(f.sessionId));
      deleteUser(ctx.db, 'rec1');
      assert.equal(store.touch(f.sessionId), undefined, 'deleted account: refused at once');
      assert.equal(store.touch('made-up'), undefined);
    } finally {
      ctx.cleanup();
    }
  });
});
