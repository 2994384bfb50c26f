import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AuditLog } from '../../../agent/src/records/audit.js';
import { RecordsStore } from '../../../agent/src/records/store.js';
import { createTestCtx } from '../../helpers/ctx.js';

const DAY = 86_400_000;

function setup() {
  const ctx = createTestCtx();
  const store = RecordsStore.open(join(ctx.dir, 'records.db'), { key: randomBytes(32) });
  let now = Date.parse('2020-01-01T00:00:00Z');
  const audit = AuditLog.open(store.db, () => now);
  const add = (n: number) => {
    for (let i = 0; i < n; i++) audit.append({ user: 'u', role: 'clinician', patientId: '9000000009', action: 'view.summary', device: 'd' });
  };
  return { ctx, store, audit, add, at: (t: number) => (now = t), now: () => now };
}

describe('audit retention: purge with a checkpoint keeps the chain verifiable', () => {
  it('purges old entries, records the purge in the chain, and still verifies; the chain goes on', () => {
    const { ctx, store, audit, add, at, now } = setup();
    try {
      add(10); // 2020
      at(now() + 400 * DAY);
      add(5);
      const r = audit.purgeBefore(now() - 365 * DAY);
      assert.equal(r.purged, 10);
      assert.equal(r.anchor?.seq, 10);
      const v = audit.verify();
      assert.ok(v.ok, String(v.reason));
      assert.equal(v.entries, 6, '5 kept + the audit.purge entry');
      assert.equal(v.head?.seq, 16);
      assert.equal(audit.recent(1)[0]?.action, 'audit.purge');
      add(3);
      assert.ok(audit.verify().ok, 'appends after a purge chain on');
      assert.equal(audit.purgeBefore(now() - 365 * DAY).purged, 0, 'nothing more is old enough');
      // The append-only trigger is back.
      assert.throws(() => store.db.prepare('DELETE FROM rec_audit WHERE seq = 11').run(), /append-only/);
    } finally {
      store.close();
      ctx.cleanup();
    }
  });

  it('detects a checkpoint moved forward to hide more deleted rows, and rows deleted behind the checkpoint', () => {
    const { ctx, store, audit, add, at, now } = setup();
    try {
      add(10);
      at(now() + 400 * DAY);
      add(5);
      audit.purgeBefore(now() - 365 * DAY);
      // Attacker with the key: deletes entry 11 and moves the anchor to it.
      const e11 = store.db.prepare('SELECT seq, hash FROM rec_audit WHERE seq = 11').get() as { seq: number; hash: string };
      store.db.exec('DROP TRIGGER rec_audit_no_delete');
      store.db.prepare('DELETE FROM rec_audit WHERE seq = 11').run();
      const v1 = audit.verify();
      assert.equal(v1.ok, false);
      assert.equal(v1.firstBrokenSeq, 11, 'a gap right after the checkpoint');
      store.db.prepare('UPDATE rec_audit_checkpoint SET seq = ?, hash = ?').run(e11.seq, e11.hash);
      const v2 = audit.verify();
      assert.equal(v2.ok, false);
      assert.match(String(v2.reason), /checkpoint is not the one the last audit.purge entry names/);
    } finally {
      store.close();
      ctx.cleanup();
    }
  });

  it('never purges the head, even when every entry is old', () => {
    const { ctx, store, audit, add, at, now } = setup();
    try {
      add(3);
      at(now() + 10 * 365 * DAY);
      const r = audit.purgeBefore(now());
      assert.equal(r.purged, 2, 'the newest entry stays');
      assert.ok(audit.verify().ok);
    } finally {
      store.close();
      ctx.cleanup();
    }
  });
});

describe('records cache retention backstop', () => {
  it('deletes patients and appointments fetched before the cutoff, keeps newer ones', () => {
    const { ctx, store } = setup();
    try {
      const ins = store.db.prepare("INSERT INTO rec_patients (id, nhs_number, name, name_lc, summary, hash, fetched_at) VALUES (?, ?, 'N', 'n', '{}', 'h', ?)");
      ins.run('old', '1', 1_000);
      ins.run('new', '2', 10_000);
      store.db
        .prepare(
          "INSERT INTO rec_appointments (id, date, start, status, fetched_at) VALUES ('a1', '2020-01-01', 0, 'booked', 1000), ('a2', '2020-01-02', 0, " +
            "'booked', 10000)",
        )
        .run();
      const before = store.dayListsVersion();
      assert.deepEqual(store.purgeFetchedBefore(5_000), { patients: 1, appointments: 1 });
      assert.deepEqual(
        (store.db.prepare('SELECT id FROM rec_patients').all() as { id: string }[]).map((r) => r.id),
        ['new'],
      );
      assert.notEqual(store.dayListsVersion(), before, 'viewer caches refresh');
    } finally {
      store.close();
      ctx.cleanup();
    }
  });
});
