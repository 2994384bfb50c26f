import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createUser } from '../../../agent/src/auth/accounts.js';
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
});
