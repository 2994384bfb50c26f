import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { migrateStore } from '../../../fleet/src/store/migrations.js';
import { PgDriver } from '../../../fleet/src/store/pg-driver.js';
import { postgresMissing, TestPostgres } from '../../helpers/postgres.js';

/**
 * The database-wide locks fleet instances sharing one PostgreSQL take turns by (alerts, rollout
 * steps, migrations), on a real PostgreSQL: two drivers stand for two instances.
 */
describe('PostgreSQL advisory locks between fleet instances (real PostgreSQL)', { skip: postgresMissing() }, () => {
  let pg: TestPostgres;
  let a: PgDriver;
  let b: PgDriver;
  before(async () => {
    pg = await new TestPostgres().start();
    a = new PgDriver(pg.url, 3);
    b = new PgDriver(pg.url, 3);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await pg?.stop();
  });

  it('while one instance holds a lock the other skips (or waits, with wait); different names do not block', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const first = a.exclusive('alerts', () => held.then(() => 'a ran'));
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(await b.exclusive('alerts', async () => 'b ran'), { ran: false });
    assert.deepEqual(await b.exclusive('rollouts', async () => 'b ran'), { ran: true, value: 'b ran' });
    const waiting = b.exclusive('alerts', async () => 'b waited', { wait: true });
    let settled = false;
    void waiting.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(settled, false, 'wait: true blocks while the other holds it');
    release();
    assert.deepEqual(await first, { ran: true, value: 'a ran' });
    assert.deepEqual(await waiting, { ran: true, value: 'b waited' });
    // Let go afterwards, also after fn throws.
    await assert.rejects(
      a.exclusive('alerts', async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.deepEqual(await b.exclusive('alerts', async () => 'free'), { ran: true, value: 'free' });
  });

  it('two instances migrating an empty database at once: each migration runs once', async () => {
    const [va, vb] = await Promise.all([migrateStore(a), migrateStore(b)]);
    assert.equal(va, vb);
    const rows = await a.all<{ version: number }>('SELECT version FROM fleet_migrations ORDER BY version');
    assert.deepEqual(
      rows.map((r) => Number(r.version)),
      [...new Set(rows.map((r) => Number(r.version)))],
    );
    assert.ok(rows.some((r) => Number(r.version) === 8));
    assert.equal(va, 10, 'the highest migration: 10, campaign pause and resume');
    assert.ok(await a.get("SELECT 1 FROM information_schema.tables WHERE table_name = 'fleet_instances'"));
  });

  it('a migration missing below the highest applied one (merged later) is still applied', async () => {
    await a.exec('DROP TABLE fleet_instances');
    // 6 and 8 missing below 10 (campaign pause and resume), the highest applied.
    await a.run('DELETE FROM fleet_migrations WHERE version IN (6, 8)');
    assert.ok(await a.get('SELECT 1 FROM fleet_migrations WHERE version = 10'));
    assert.ok(await a.get("SELECT 1 FROM information_schema.columns WHERE table_name = 'campaigns' AND column_name = 'paused_by'"));
    await a.exec('ALTER TABLE alerts DROP COLUMN renotified'); // 6 is re-applied in full, so undo one of its changes too
    await a.exec('ALTER TABLE alerts DROP COLUMN renotified_at');
    await a.exec('ALTER TABLE alerts DROP COLUMN snooze_notified_until');
    await a.exec('DROP TABLE totp_recovery');
    await migrateStore(a);
    const versions = (await a.all<{ version: number }>('SELECT version FROM fleet_migrations')).map((r) => Number(r.version));
    assert.ok(versions.includes(6) && versions.includes(8));
    assert.equal(Math.max(...versions), 10);
    assert.ok(await a.get("SELECT 1 FROM information_schema.tables WHERE table_name = 'fleet_instances'"));
  });
});
