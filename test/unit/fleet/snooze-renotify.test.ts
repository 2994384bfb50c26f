import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Alerts, hhmm } from '../../../fleet/src/alerts/alerts.js';
import { validateFleetConfig } from '../../../fleet/src/config.js';
import type { FleetCtx } from '../../../fleet/src/ctx.js';
import { Inventory } from '../../../fleet/src/inventory.js';
import { SqliteDriver } from '../../../fleet/src/store/driver.js';
import { Store } from '../../../fleet/src/store/store.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { fleetLog } from '../../helpers/fleet.js';
import { telemetryInbound } from '../../helpers/fleet-inbound.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

/**
 * The "still open after its snooze" notice, on a clock the test moves: not before the snooze ends,
 * exactly once when it does (also with two fleet instances evaluating the same store), not for an
 * alert acknowledged or cleared meanwhile, held while a maintenance window covers the device, and
 * once more after a second snooze. Real SQLite (in memory); delivery itself is alerts.test.ts's.
 */
describe('alerts: a snooze that ends with the alert still open notifies once more', () => {
  // 13:00 UTC on 1 July: 14:00 in London (BST), so the notice's HH:MM must be UK time.
  const clock = new FakeClock(Date.UTC(2026, 6, 1, 13));
  const inv = new Inventory([{ deviceId: 'S-01', practice: 'S', practiceName: 'Snooze Lane' }]);
  let store: Store;
  let a1: Alerts;
  let a2: Alerts;

  before(async () => {
    store = await Store.open(new SqliteDriver(':memory:'));
    const r = validateFleetConfig({ alerts: { evaluateMs: 3_600_000 } });
    assert.ok(r.ok);
    const ctx = { config: r.config, log: fleetLog(), clock, store, inventory: inv, instanceId: 't' } as unknown as FleetCtx;
    // Two instances on one store, as two fleet processes sharing PostgreSQL.
    a1 = new Alerts();
    a2 = new Alerts();
    await a1.start(ctx);
    await a2.start({ ...ctx, instanceId: 't2' } as FleetCtx);
  });
  after(async () => {
    await a1?.stop();
    await a2?.stop();
    await store?.close();
  });

  const stale = (id: string, on = true) => store.devices.ingest([telemetryInbound(id, clock.now(), inv.place(id), { recordsStale: on })]);
  const evaluate = () => Promise.all([a1.evaluate(), a2.evaluate()]);
  const notices = async () => (await store.accounts.auditLog(500)).filter((a) => a.action === 'alert-renotified');
  const open = async (id: string) => (await store.ops.openAlerts()).find((a) => a.device_id === id)!;

  it('is sent once when the snooze ends, naming the snoozer and the end in UK time', async () => {
    await stale('S-01');
    await evaluate();
    const a = await open('S-01');
    assert.equal(a.delivered, 'none configured');
    assert.equal(await store.ops.snoozeAlert(a.id, 'amy', clock.now() + HOUR), true);
    await clock.advance(HOUR - MIN);
    await evaluate();
    assert.equal((await notices()).length, 0, 'still snoozed: nothing');
    await clock.advance(MIN);
    await evaluate();
    await evaluate();
    await clock.advance(10 * MIN);
    await evaluate();
    const n = await notices();
    assert.equal(n.length, 1, 'once, whatever the number of evaluations and instances');
    assert.equal(n[0]!.username, 'fleet');
    assert.equal(n[0]!.device_id, 'S-01');
    assert.deepEqual(JSON.parse(n[0]!.args!), { alert: a.id, snoozedUntil: Date.UTC(2026, 6, 1, 14), snoozedBy: 'amy' });
    assert.match(n[0]!.detail!, /^S-01 records cache not synced \(stale\): still open after the snooze until 15:00 by amy; sent: none configured$/);
    const row = (await store.ops.alert(a.id))!;
    assert.equal(row.renotified_at, Date.UTC(2026, 6, 1, 14));
    assert.equal(row.snooze_notified_until, row.snoozed_until);
    assert.equal(row.renotified, 'none configured');
    assert.equal(hhmm(Date.UTC(2026, 11, 1, 9, 5)), '09:05', 'GMT in winter');
  });

  it('snoozed again, it can come back once more; acknowledged or cleared during a snooze, it does not', async () => {
    const a = await open('S-01');
    await store.ops.snoozeAlert(a.id, 'bob', clock.now() + 2 * HOUR);
    await clock.advance(2 * HOUR);
    await evaluate();
    assert.equal((await notices()).length, 2);
    assert.equal((await notices())[0]!.detail!.includes('by bob'), true);

    await store.ops.snoozeAlert(a.id, 'bob', clock.now() + HOUR);
    assert.equal(await store.ops.ackAlert(a.id, 'bob', clock.now()), true);
    await clock.advance(2 * HOUR);
    await evaluate();
    assert.equal((await notices()).length, 2, 'acknowledged: someone has it');

    await stale('S-02');
    await evaluate();
    const b = await open('S-02');
    await store.ops.snoozeAlert(b.id, 'amy', clock.now() + HOUR);
    await stale('S-02', false);
    await clock.advance(2 * HOUR);
    await evaluate();
    assert.ok((await store.ops.alert(b.id))!.cleared_at, 'the condition ended with the snooze');
    assert.equal((await notices()).length, 2, 'cleared: nothing to say');
  });

  it('waits for the end of a maintenance window covering the device', async () => {
    await stale('S-03');
    await evaluate();
    const c = await open('S-03');
    const now = clock.now();
    await store.ops.snoozeAlert(c.id, 'amy', now + HOUR);
    await store.ops.addMaintenance({
      scope: 'device',
      scope_id: 'S-03',
      starts_at: now,
      ends_at: now + 3 * HOUR,
      reason: 'x',
      created_by: 'amy',
      created_at: now,
    });
    await clock.advance(2 * HOUR);
    await evaluate();
    assert.equal((await notices()).length, 2, 'in a window: held');
    await clock.advance(HOUR + MIN);
    await evaluate();
    const n = await notices();
    assert.equal(n.length, 3, 'window over, still open: sent now');
    assert.equal(n[0]!.device_id, 'S-03');
  });
});
