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

const MIN = 60_000;

describe('fleet alerts: rules, de-duplication, webhook + SMTP delivery, acknowledge', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: Store;
  let hook: Awaited<ReturnType<typeof httpSink>>;
  let smtp: Awaited<ReturnType<typeof smtpSink>>;
  let alerts: Alerts;
  const clock = new FakeClock(Date.UTC(2026, 11, 1, 9));
  const inv = new Inventory([]);

  before(async () => {
    tmp = tempDir();
    store = await Store.open(new SqliteDriver(join(tmp.dir, 'f.db')));
    hook = await httpSink();
    smtp = await smtpSink();
    const r = validateFleetConfig({ alerts: { evaluateMs: 3_600_000, offlineMin: 15, cellularMin: 30, webhookUrl: hook.url, smtp: { host: '127.0.0.1', port: smtp.port, to: ['it@icb.invalid', 'oncall@icb.invalid'] } } });
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

  const tele = (id: string, o: Partial<Derived>): Inbound => {
    const at = clock.now();
    const derived: Derived = { activeUplink: 'wan', activeKind: 'wired', cellularSince: null, telephonyMode: null, telephonyRegistered: null, telephonyCalls: null, recordsStale: false, recordsAsOf: null, dataPct: 10, dataUsed: null, dataAllowance: null, health: {}, ...o };
    return { kind: 'telemetry', deviceId: id, receivedAt: at, place: inv.place(id), derived, msg: { id: ulid(at), at, bootId: 'b', activeUplink: derived.activeUplink, activeKind: derived.activeKind as 'wired', system: { cpuLoadPct: 0, loadAvg1: 0, memUsedPct: 0, memTotalBytes: 0, disks: [], cpuTempC: null, throttled: null, uptimeS: 0 }, capabilities: {} } };
  };

  it('opens each alert once, delivers it by webhook and email, clears it when the condition ends', async () => {
    await store.devices.ingest([
      { kind: 'state', deviceId: 'A-01', receivedAt: clock.now(), place: inv.place('A-01'), msg: { online: true, bootId: 'b', bdSeq: 1, at: clock.now() } },
      tele('B-01', { activeKind: 'cellular', activeUplink: '4g', cellularSince: clock.now(), dataPct: 96, recordsStale: true }),
      { kind: 'event', deviceId: 'C-01', receivedAt: clock.now(), place: inv.place('C-01'), msg: { id: ulid(clock.now()), name: 'drill.completed', at: clock.now(), bootId: 'b', payload: { passed: false, steps: [] } } },
    ]);
    await store.devices.ingest([{ kind: 'state', deviceId: 'A-01', receivedAt: clock.now(), place: inv.place('A-01'), msg: { online: false, bootId: 'b', bdSeq: 1 } }]);
    await alerts.evaluate();
    const kinds = async () => (await store.ops.openAlerts()).map((a) => `${a.device_id} ${a.kind}${a.level ? ' ' + a.level : ''}`).sort();
    // At once: data cap 75 and 95, records stale, drill failed; not yet offline (15 min) or on 4G (30 min).
    assert.deepEqual(await kinds(), ['B-01 data-cap 75', 'B-01 data-cap 95', 'B-01 records-stale', 'C-01 drill-failed']);
    await clock.advance(31 * MIN);
    await alerts.evaluate();
    await alerts.evaluate(); // again: nothing new (de-duplicated)
    assert.deepEqual(await kinds(), ['A-01 offline', 'B-01 data-cap 75', 'B-01 data-cap 95', 'B-01 on-4g', 'B-01 records-stale', 'C-01 drill-failed']);
    assert.equal(hook.got.length, 6, 'one webhook per alert');
    assert.equal(smtp.mails.length, 6, 'one email per alert');
    const offline = hook.got.find((g) => (g as { kind: string }).kind === 'offline') as { device: string; summary: string };
    assert.equal(offline.device, 'A-01');
    assert.match(offline.summary, /offline for 31 min/);
    assert.deepEqual(smtp.mails[0]!.to, ['it@icb.invalid', 'oncall@icb.invalid']);
    assert.match(smtp.mails.map((m) => m.data).join('\n'), /Subject: \[surgery-edge\] A-01 offline for 31 min/);
    assert.ok((await store.ops.openAlerts()).every((a) => a.delivered === 'webhook, email'));

    // Back on the wire, data below cap: those clear; a later recurrence is a new alert.
    await store.devices.ingest([tele('B-01', { dataPct: 20, recordsStale: false })]);
    await alerts.evaluate();
    assert.deepEqual(await kinds(), ['A-01 offline', 'C-01 drill-failed']);
    await store.devices.ingest([tele('B-01', { dataPct: 80 })]);
    await alerts.evaluate();
    assert.deepEqual(await kinds(), ['A-01 offline', 'B-01 data-cap 75', 'C-01 drill-failed']);
    assert.equal(hook.got.length, 7);
  });

  it('acknowledging keeps the alert open but marks who; a failing webhook is recorded, not fatal', async () => {
    const a = (await store.ops.openAlerts()).find((x) => x.kind === 'offline')!;
    assert.equal(await store.ops.ackAlert(a.id, 'amy', clock.now()), true);
    assert.equal((await store.ops.alert(a.id))!.acked_by, 'amy');
    hook.status.code = 500;
    await store.devices.ingest([tele('D-01', { dataPct: 100 })]);
    await alerts.evaluate();
    const d = (await store.ops.openAlerts()).filter((x) => x.device_id === 'D-01');
    assert.equal(d.length, 3, '75, 95 and 100');
    assert.ok(d.every((x) => x.delivered === 'webhook failed, email'));
    assert.equal(alerts.health().status, 'degraded');
  });
});
