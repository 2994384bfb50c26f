import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ulid } from '../../../agent/src/core/ids.js';
import { Alerts } from '../../../fleet/src/alerts/alerts.js';
import { validateFleetConfig } from '../../../fleet/src/config.js';
import type { FleetCtx } from '../../../fleet/src/ctx.js';
import { Inventory } from '../../../fleet/src/inventory.js';
import { SqliteDriver } from '../../../fleet/src/store/driver.js';
import { Store } from '../../../fleet/src/store/store.js';
import type { Derived, Inbound } from '../../../fleet/src/store/types.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { fleetLog, tempDir } from '../../helpers/fleet.js';
import { httpSink, smtpSink } from '../../helpers/sinks.js';
import { telemetryInbound } from '../../helpers/fleet-inbound.js';

const MIN = 60_000;

describe('fleet alerts: rules, de-duplication, webhook + SMTP delivery, acknowledge', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: Store;
  let hook: Awaited<ReturnType<typeof httpSink>>;
  let smtp: Awaited<ReturnType<typeof smtpSink>>;
  let alerts: Alerts;
  const clock = new FakeClock(Date.UTC(2026, 11, 1, 9));
  const inv = new Inventory([{ deviceId: 'B-01', practice: 'B', practiceName: 'Canal Side' }]);

  before(async () => {
    tmp = tempDir();
    store = await Store.open(new SqliteDriver(join(tmp.dir, 'f.db')));
    hook = await httpSink();
    smtp = await smtpSink();
    const r = validateFleetConfig({
      alerts: {
        evaluateMs: 3_600_000,
        offlineMin: 15,
        cellularMin: 30,
        webhookUrl: hook.url,
        smtp: { host: '127.0.0.1', port: smtp.port, to: ['it@icb.invalid', 'oncall@icb.invalid'] },
      },
    });
    assert.ok(r.ok);
    const ctx = { config: r.config, log: fleetLog(), clock, store, inventory: inv, instanceId: 't' } as unknown as FleetCtx;
    alerts = new Alerts();
    await alerts.start(ctx);
  });
  after(async () => {
    await alerts?.stop();
    await store?.close();
    await hook?.close();
    await smtp?.close();
    tmp?.rm();
  });

  // This suite's boxes report no telephony, records time or data figures unless a test says so.
  const tele = (id: string, o: Partial<Derived>): Inbound =>
    telemetryInbound(id, clock.now(), inv.place(id), {
      telephonyMode: null,
      telephonyRegistered: null,
      telephonyCalls: null,
      recordsAsOf: null,
      dataUsed: null,
      dataAllowance: null,
      ...o,
    });

  it('opens each alert once, delivers it by webhook and email, clears it when the condition ends', async () => {
    await store.devices.ingest([
      { kind: 'state', deviceId: 'A-01', receivedAt: clock.now(), place: inv.place('A-01'), msg: { online: true, bootId: 'b', bdSeq: 1, at: clock.now() } },
      tele('B-01', { activeKind: 'cellular', activeUplink: '4g', cellularSince: clock.now(), dataPct: 96, recordsStale: true }),
      {
        kind: 'event',
        deviceId: 'C-01',
        receivedAt: clock.now(),
        place: inv.place('C-01'),
        msg: { id: ulid(clock.now()), name: 'drill.completed', at: clock.now(), bootId: 'b', payload: { passed: false, steps: [] } },
      },
    ]);
    await store.devices.ingest([
      { kind: 'state', deviceId: 'A-01', receivedAt: clock.now(), place: inv.place('A-01'), msg: { online: false, bootId: 'b', bdSeq: 1 } },
    ]);
    await alerts.evaluate();
    const kinds = async () => (await store.ops.openAlerts()).map((a) => `${a.device_id} ${a.kind}${a.level ? ' ' + a.level : ''}`).sort();
    // At once: data cap 95 (only the highest level reached stays open), records stale, drill failed;
    // not yet offline (15 min) or on 4G (30 min).
    assert.deepEqual(await kinds(), ['B-01 data-cap 95', 'B-01 records-stale', 'C-01 drill-failed']);
    await clock.advance(31 * MIN);
    await alerts.evaluate();
    await alerts.evaluate(); // again: nothing new (de-duplicated)
    assert.deepEqual(await kinds(), ['A-01 offline', 'B-01 data-cap 95', 'B-01 on-4g', 'B-01 records-stale', 'C-01 drill-failed']);
    assert.equal(hook.got.length, 5, 'one webhook per alert');
    assert.equal(smtp.mails.length, 5, 'one email per alert');
    const offline = hook.got.find((g) => (g as { kind: string }).kind === 'offline') as { device: string; summary: string };
    assert.equal(offline.device, 'A-01');
    assert.match(offline.summary, /offline for 31 min/);
    assert.deepEqual(smtp.mails[0]!.to, ['it@icb.invalid', 'oncall@icb.invalid']);
    // The practice is named in the subject (its name when the inventory has one, else its ODS code).
    const mail = smtp.mails.map((m) => m.data).join('\n');
    assert.match(mail, /Subject: \[surgery-edge\] A: A-01 offline for 31 min/);
    assert.match(mail, /Subject: \[surgery-edge\] Canal Side \(B\): B-01 has used 96% of its 4G allowance/);
    assert.match(mail, /Practice: Canal Side \(B\)/);
    const cap = hook.got.find((g) => (g as { kind: string }).kind === 'data-cap') as { practice: string; practiceName: string };
    assert.deepEqual([cap.practice, cap.practiceName], ['B', 'Canal Side']);
    assert.ok((await store.ops.openAlerts()).every((a) => a.delivered === 'webhook, email'));

    // Back on the wire, data below cap: those clear; a later recurrence is a new alert.
    await store.devices.ingest([tele('B-01', { dataPct: 20, recordsStale: false })]);
    await alerts.evaluate();
    assert.deepEqual(await kinds(), ['A-01 offline', 'C-01 drill-failed']);
    await store.devices.ingest([tele('B-01', { dataPct: 80 })]);
    await alerts.evaluate();
    assert.deepEqual(await kinds(), ['A-01 offline', 'B-01 data-cap 75', 'C-01 drill-failed']);
    assert.equal(hook.got.length, 6);
    // Climbing from 80 % to 97 %: the 75 % alert is cleared as the 95 % one opens.
    await store.devices.ingest([tele('B-01', { dataPct: 97 })]);
    await alerts.evaluate();
    assert.deepEqual(await kinds(), ['A-01 offline', 'B-01 data-cap 95', 'C-01 drill-failed']);
  });

  it('acknowledging keeps the alert open but marks who; a failing webhook is recorded, not fatal', async () => {
    const a = (await store.ops.openAlerts()).find((x) => x.kind === 'offline')!;
    assert.equal(await store.ops.ackAlert(a.id, 'amy', clock.now()), true);
    assert.equal((await store.ops.alert(a.id))!.acked_by, 'amy');
    hook.status.code = 500;
    await store.devices.ingest([tele('D-01', { dataPct: 100 })]);
    await alerts.evaluate();
    const d = (await store.ops.openAlerts()).filter((x) => x.device_id === 'D-01');
    assert.equal(d.length, 1, 'only the highest level, 100');
    assert.equal(d[0]!.level, '100');
    assert.ok(d.every((x) => x.delivered === 'webhook failed, email'));
    assert.equal(alerts.health().status, 'degraded');
    hook.status.code = 200;
  });

  it('a cleared alert cannot be acknowledged or snoozed', async () => {
    const cleared = (await store.ops.listAlerts({ status: 'cleared', now: clock.now() }))[0]!;
    assert.ok(cleared.cleared_at);
    assert.equal(await store.ops.ackAlert(cleared.id, 'amy', clock.now()), false);
    assert.equal(await store.ops.snoozeAlert(cleared.id, 'amy', clock.now() + 3_600_000), false);
  });

  it('a maintenance window opens no new alert for what it covers; what is still wrong when it ends alerts then', async () => {
    const now = clock.now();
    const sent = hook.got.length;
    const win = await store.ops.addMaintenance({
      scope: 'practice',
      scope_id: 'E',
      starts_at: now,
      ends_at: now + 60 * MIN,
      reason: 'rewiring',
      created_by: 'amy',
      created_at: now,
    });
    await store.ops.addMaintenance({
      scope: 'device',
      scope_id: 'F-01',
      starts_at: now + 30 * MIN,
      ends_at: now + 90 * MIN,
      reason: 'later',
      created_by: 'amy',
      created_at: now,
    });
    await store.devices.ingest([tele('E-01', { recordsStale: true }), tele('F-01', { recordsStale: true })]);
    await alerts.evaluate();
    const open = async () =>
      (await store.ops.openAlerts())
        .map((a) => `${a.device_id} ${a.kind}`)
        .filter((k) => /^[EF]-01/.test(k))
        .sort();
    assert.deepEqual(await open(), ['F-01 records-stale'], 'E-01 is in a window; F-01 window not started yet');
    assert.equal(hook.got.length, sent + 1);
    await clock.advance(61 * MIN);
    await alerts.evaluate();
    assert.deepEqual(await open(), ['E-01 records-stale', 'F-01 records-stale'], 'window over, E-01 still stale: it alerts now');
    assert.equal(hook.got.length, sent + 2);
    assert.equal(await store.ops.endMaintenance(win, 'amy', clock.now()), false, 'already over');
  });

  it('a snooze that ends with the alert still open: mailed and posted once more, saying who snoozed it until when', async () => {
    await store.devices.ingest([tele('B-01', { recordsStale: true })]);
    await alerts.evaluate();
    const a = (await store.ops.openAlerts()).find((x) => x.device_id === 'B-01' && x.kind === 'records-stale')!;
    const [mails, posts] = [smtp.mails.length, hook.got.length];
    // 09:00 UTC on 1 Dec + the suite's advances; the snooze ends on the minute for a readable HH:MM.
    const until = Math.ceil((clock.now() + 60 * MIN) / MIN) * MIN;
    assert.equal(await store.ops.snoozeAlert(a.id, 'amy', until), true);
    await clock.advance(until - clock.now() - 1);
    await alerts.evaluate();
    assert.equal(smtp.mails.length, mails, 'not while snoozed');
    await clock.advance(1);
    await alerts.evaluate();
    await alerts.evaluate();
    assert.equal(smtp.mails.length, mails + 1, 'one mail');
    assert.equal(hook.got.length, posts + 1, 'one webhook');
    const at = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', hour: '2-digit', minute: '2-digit' }).format(until);
    const mail = smtp.mails.at(-1)!.data;
    assert.match(mail, /Subject: \[surgery-edge\] Canal Side \(B\): STILL OPEN after snooze: B-01 records cache not synced \(stale\)/);
    assert.match(mail, new RegExp(`This alert is still open: it was snoozed until ${at} by amy\\.`));
    assert.match(mail, /Practice: Canal Side \(B\)/);
    const body = hook.got.at(-1) as { id: number; kind: string; stillOpenAfterSnooze?: { snoozedUntil: string; snoozedBy: string } };
    assert.equal(body.id, a.id);
    assert.deepEqual(body.stillOpenAfterSnooze, { snoozedUntil: new Date(until).toISOString(), snoozedBy: 'amy' });
    const row = (await store.ops.alert(a.id))!;
    assert.equal(row.renotified, 'webhook, email');
    assert.equal(row.delivered, 'webhook, email', 'the first delivery is kept as it was');
    const audit = (await store.accounts.auditLog(50)).filter((x) => x.action === 'alert-renotified');
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.outcome, 'ok');
    assert.match(audit[0]!.detail!, /sent: webhook, email$/);
  });
});
