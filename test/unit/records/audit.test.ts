import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { mkdirSync, writeFileSync } from 'node:fs';
import { AuditLog, auditHash, GENESIS_HASH } from '../../../agent/src/records/audit.js';
import { auditCommand } from '../../../agent/src/records/audit-cli.js';
import { RecordsStore } from '../../../agent/src/records/store.js';

describe('records audit chain', () => {
  let dir: string;
  let store: RecordsStore;
  let audit: AuditLog;
  let t = 1_700_000_000_000;
  const key = randomBytes(32);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'c2-audit-'));
    store = RecordsStore.open(join(dir, 'records.db'), { key });
    audit = AuditLog.open(store.db, () => t++);
    for (let i = 0; i < 6; i++) {
      audit.append({
        user: `u${i}`,
        role: 'clinician',
        patientId: i % 2 ? '9000000009' : null,
        action: i % 2 ? 'view.summary' : 'view.day-list',
        device: '10.0.0.2 test',
        detail: `d${i}`,
      });
    }
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('chains entries and verifies an intact log', () => {
    const r = audit.verify();
    assert.equal(r.ok, true);
    assert.equal(r.entries, 6);
    assert.equal(r.firstBrokenSeq, null);
    const recent = audit.recent(10);
    assert.deepEqual(
      recent.map((e) => e.seq),
      [6, 5, 4, 3, 2, 1],
    );
    assert.equal(recent.at(-1)!.prevHash, GENESIS_HASH);
    assert.equal(recent[0]!.prevHash, recent[1]!.hash);
    const { hash, ...rest } = recent[0]!;
    assert.equal(auditHash(rest), hash);
    assert.deepEqual(r.head, { seq: 6, hash });
    assert.deepEqual(
      audit.recent(10, '9000000009').map((e) => e.seq),
      [6, 4, 2],
    );
  });

  it('refuses UPDATE and DELETE through triggers', () => {
    assert.throws(() => store.db.prepare("UPDATE rec_audit SET user = 'x' WHERE seq = 2").run(), /append-only/);
    assert.throws(() => store.db.prepare('DELETE FROM rec_audit WHERE seq = 6').run(), /append-only/);
    assert.equal(audit.verify().ok, true);
  });

  it('names the seq of an altered row', () => {
    store.db.exec('DROP TRIGGER rec_audit_no_update');
    store.db.prepare("UPDATE rec_audit SET patient_id = '9999999999' WHERE seq = 3").run();
    const r = audit.verify();
    assert.equal(r.ok, false);
    assert.equal(r.firstBrokenSeq, 3);
    assert.match(r.reason!, /altered/);
  });

  it('names the seq after a re-hashed forgery (the next link breaks)', () => {
    store.db.exec('DROP TRIGGER rec_audit_no_update');
    const row = audit.recent(10).find((e) => e.seq === 4)!;
    const forged = { ...row, user: 'someone-else' };
    const { hash: _old, ...fields } = forged;
    store.db.prepare('UPDATE rec_audit SET user = ?, hash = ? WHERE seq = 4').run(forged.user, auditHash(fields));
    const r = audit.verify();
    assert.equal(r.firstBrokenSeq, 5);
    assert.match(r.reason!, /does not link/);
  });

  it('names the seq of a deleted row', () => {
    store.db.exec('DROP TRIGGER rec_audit_no_delete');
    store.db.prepare('DELETE FROM rec_audit WHERE seq = 2').run();
    const r = audit.verify();
    assert.equal(r.firstBrokenSeq, 2);
    assert.match(r.reason!, /missing/);
  });

  it('group-commits entries queued in the same turn: one transaction, chained, resolved after commit', async () => {
    let transactions = 0;
    const realTx = store.db.transaction.bind(store.db);
    (store.db as { transaction: typeof realTx }).transaction = ((fn: Parameters<typeof realTx>[0]) => (transactions++, realTx(fn))) as typeof realTx;
    const pending = Array.from({ length: 20 }, (_, i) =>
      audit.appendDurable({ user: `v${i}`, role: 'clinician', patientId: null, action: 'view.day-list', device: '10.0.0.3 test', detail: `b${i}` }),
    );
    // Nothing is written (or resolved) until the batch commits.
    assert.equal(audit.count(), 6);
    const entries = await Promise.all(pending);
    assert.equal(transactions, 1);
    assert.deepEqual(
      entries.map((e) => e.seq),
      Array.from({ length: 20 }, (_, i) => 7 + i),
    );
    assert.deepEqual(
      entries.map((e) => e.user),
      Array.from({ length: 20 }, (_, i) => `v${i}`),
    );
    assert.equal(audit.count(), 26);
    assert.equal(audit.verify().ok, true);
    // A later turn is a new batch that continues the same chain.
    const next = await audit.appendDurable({ user: 'late', role: 'admin', patientId: null, action: 'view.audit', device: 'd' });
    assert.equal(transactions, 2);
    assert.equal(next.prevHash, entries.at(-1)!.hash);
  });

  it('rejects every entry of a batch whose commit fails and writes none of them', async () => {
    store.db.exec(`CREATE TRIGGER fail_third BEFORE INSERT ON rec_audit WHEN NEW.user = 'v2' BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
    const results = await Promise.allSettled(
      Array.from({ length: 4 }, (_, i) => audit.appendDurable({ user: `v${i}`, role: 'clinician', patientId: null, action: 'view.day-list', device: 'd' })),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected', 'rejected', 'rejected'],
    );
    assert.equal(audit.count(), 6);
    assert.equal(audit.verify().ok, true);
  });

  it('keeps one chain across two connections writing in turn', () => {
    const other = RecordsStore.open(join(dir, 'records.db'), { key });
    try {
      const audit2 = AuditLog.open(other.db, () => t++);
      for (let i = 0; i < 10; i++) {
        (i % 2 ? audit : audit2).append({ user: 'x', role: 'admin', patientId: null, action: 'view.search', device: 'd' });
      }
      const r = audit.verify();
      assert.equal(r.ok, true);
      assert.equal(r.entries, 16);
    } finally {
      other.close();
    }
  });

  it('`audit verify` exits 0 when intact, 1 naming the seq when broken, 2 without the key', async () => {
    const keyFile = join(dir, 'key.hex');
    writeFileSync(keyFile, key.toString('hex'));
    const db = join(dir, 'records.db');
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((c: string) => (out.push(String(c)), true)) as typeof process.stdout.write;
    try {
      assert.equal(await auditCommand.run(['verify', '--db', db, '--key-file', keyFile]), 0);
      store.db.exec('DROP TRIGGER rec_audit_no_update');
      store.db.prepare("UPDATE rec_audit SET action = 'view.search' WHERE seq = 5").run();
      assert.equal(await auditCommand.run(['verify', '--db', db, '--key-file', keyFile]), 1);
    } finally {
      process.stdout.write = write;
    }
    assert.match(out[0]!, /intact: 6 entries/);
    assert.match(out[1]!, /BROKEN at seq 5/);
    // No key given: the running agent's unlocked key in the run dir (records.unlocked-key) is used.
    mkdirSync(join(dir, 'run'), { recursive: true });
    writeFileSync(join(dir, 'run', 'records.unlocked-key'), key.toString('hex'));
    const cfg = join(dir, 'config.yaml');
    writeFileSync(cfg, `paths:\n  stateDir: ${join(dir, 'state')}\n  runDir: ${join(dir, 'run')}\nrecords:\n  dbPath: ${db}\n`);
    out.length = 0;
    process.stdout.write = ((c: string) => (out.push(String(c)), true)) as typeof process.stdout.write;
    try {
      assert.equal(await auditCommand.run(['verify', '--config', cfg]), 1);
    } finally {
      process.stdout.write = write;
    }
    assert.match(out[0]!, /BROKEN at seq 5/);
    writeFileSync(keyFile, randomBytes(32).toString('hex'));
    const err = process.stderr.write.bind(process.stderr);
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      assert.equal(await auditCommand.run(['verify', '--db', db, '--key-file', keyFile]), 2);
    } finally {
      process.stderr.write = err;
    }
  });
});
