import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { ulid } from '../../agent/src/core/ids.js';
import type { Fleet } from '../../fleet/src/fleet.js';
import type { Derived, Inbound } from '../../fleet/src/store/types.js';
import { requireChromium, type TestBrowser } from '../helpers/browser.js';
import { startFleetBrowserLab, type FleetBrowserLab } from '../helpers/fleet.js';
import { mosquittoMissing } from '../helpers/mosquitto.js';
import { telemetryInbound } from '../helpers/fleet-inbound.js';

const skip = requireChromium() || mosquittoMissing();
const PW = 'fleet e2e password';
const LIVE = 'P81001-01';
const DAY = 86_400_000;

/**
 * The dashboard in Debian's chromium: a real agent behind a real mosquitto (commands reach it),
 * plus history written through the store for a few more practices. Screenshots: test-artifacts/fleet/.
 */
describe('fleet dashboard in a browser', { skip }, () => {
  let lab: FleetBrowserLab;
  let b: TestBrowser;
  let base: string;

  const tele = (fleet: Fleet, id: string, at: number, o: Partial<Derived>): Inbound =>
    telemetryInbound(id, at, fleet.ctx.inventory.place(id), { health: { failover: { status: 'ok', summary: 'traffic on wan' } }, ...o });

  /** Written through the store as ingest would, before the live agent starts. */
  const seed = async (fleet: Fleet) => {
    const s = fleet.ctx.store;
    const now = Date.now();
    // Y00002-01: a week of history on and off 4G, data creeping to 96 %, in survivable telephony now.
    const hist: Inbound[] = [];
    for (let t = now - 7 * DAY, i = 0; t < now; t += 30 * 60_000, i++) {
      const cell = i % 48 > 40;
      hist.push(
        tele(
          fleet,
          'Y00002-01',
          t,
          cell ? { activeKind: 'cellular', activeUplink: '4g', dataPct: 60 + i / 10, telephonyMode: 'survivable' } : { dataPct: 60 + i / 10 },
        ),
      );
    }
    hist.push(
      tele(fleet, 'Y00002-01', now, {
        activeKind: 'cellular',
        activeUplink: '4g',
        dataPct: 96,
        telephonyMode: 'survivable',
        cellularSince: now - 3 * 3600_000,
      }),
    );
    for (let m = 0; m < 3; m++)
      hist.push({
        kind: 'event',
        deviceId: 'Y00002-01',
        receivedAt: now,
        place: fleet.ctx.inventory.place('Y00002-01'),
        msg: {
          id: ulid(now - m * 20 * DAY),
          name: 'failover.switched',
          at: now - m * 20 * DAY,
          bootId: 'b',
          payload: { from: 'wan', to: '4g', kind: 'failover', reason: 'wan down', at: now },
        },
      });
    hist.push(tele(fleet, 'Y00003-01', now, { recordsStale: true }));
    await s.devices.ingest(hist);
    await fleet.alerts.evaluate();
  };

  before(async () => {
    lab = await startFleetBrowserLab({
      live: LIVE,
      password: PW,
      pmPractice: 'Y00002',
      fleet: {
        instanceId: 'fleet-e2e',
        inventory: [{ deviceId: 'Y00002-01', practice: 'Y00002', practiceName: 'Canal Side', pcn: 'PCN-S', clinicalSystem: 'SystmOne' }],
      },
      agentDir: 'agent',
      until: 'telemetry_at',
      seed,
    });
    ({ b, base } = lab);
  });
  after(() => lab?.close());

  const signIn = (user: 'admin' | 'viewer' | 'pm'): Promise<Page> => lab.signIn(user);

  it('ICB admin: list with state cards and filters, device page with charts, a command to the real agent, audit', async () => {
    const p = await signIn('admin');
    assert.equal(await p.locator('#devices tbody tr[data-device]').count(), 3);
    assert.match(await p.locator('[data-card=cellular]').innerText(), /^1\s/);
    assert.match(await p.locator('tr[data-device="Y00002-01"] .uplink').innerText(), /on 4G \(4g\) 3 h/);
    assert.match(await p.locator('tr[data-device="Y00002-01"] .telephony').innerText(), /survivable/);
    assert.match(await p.locator('tr[data-device="Y00003-01"] .records').innerText(), /stale/);
    await b.screenshot(p, 'fleet', 'list');
    await Promise.all([p.waitForURL(/state=cellular/), p.click('[data-card=cellular]')]);
    assert.deepEqual(await p.locator('#devices tbody tr[data-device]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-device'))), ['Y00002-01']);
    await p.goto(`${base}/?q=canal`);
    assert.equal(await p.locator('#devices tbody tr[data-device]').count(), 1);

    await p.goto(`${base}/devices/Y00002-01`);
    assert.equal((await p.locator('svg[aria-label="Active uplink over time"] rect[fill="#ed8b00"]').count()) > 5, true, '4G periods drawn');
    assert.equal(await p.locator('svg[aria-label="4G data use against the cap"] polyline').count(), 1);
    assert.match(await p.locator('svg[aria-label="Failovers per month"]').innerHTML(), /<title>[^<]+: [1-9]/);
    await b.screenshot(p, 'fleet', 'device');

    await p.goto(`${base}/devices/${LIVE}`);
    await Promise.all([p.waitForURL(/done=|error=/), p.click('#commands button:has-text("Ping")')]);
    assert.match(await p.locator('.flash').innerText(), /ping: ok/);
    await p.click('#commands button:has-text("Run drill")');
    await Promise.all([p.waitForURL(/done=|error=/), p.click('#confirm button:has-text("Yes")')]);
    assert.match(await p.locator('.flash').innerText(), /drill: .*UNAVAILABLE/, 'the harness agent runs no drills: the device says so');
    await p.click('#commands button:has-text("Back up now")');
    assert.match(await p.locator('#confirm').innerText(), /off-box now\?/);
    await Promise.all([p.waitForURL(/done=|error=/), p.click('#confirm button:has-text("Yes, back up now")')]);
    assert.match(await p.locator('.flash').innerText(), /Back up now: .*backup capability is not running/, 'nor backups: the real agent says so, in words');
    await p.goto(`${base}/audit`);
    const audit = await p.locator('#audit tbody').innerText();
    assert.match(audit, /admin\s+P81001-01\s+drill[\s\S]*error/);
    assert.match(audit, /admin\s+P81001-01\s+backup-now\s+\{"force":false\}\s+error\s+UNAVAILABLE/);
    assert.match(audit, /admin\s+P81001-01\s+ping[\s\S]*ok/);
  });

  it('alerts: listed with delivery state and acknowledged in the browser', async () => {
    const p = await signIn('admin');
    await p.goto(`${base}/alerts`);
    const row = p.locator('#alerts tr', { hasText: 'Y00002-01' }).filter({ hasText: 'data-cap 95%' });
    await Promise.all([p.waitForURL(/\/alerts\?done=/), row.locator('button:has-text("Acknowledge")').click()]);
    assert.match(await p.locator('#alerts tr', { hasText: 'Y00002-01' }).filter({ hasText: 'data-cap 95%' }).innerText(), /acknowledged by admin/);
    assert.ok(await p.locator('#alerts tr', { hasText: 'Y00003-01' }).filter({ hasText: 'records-stale' }).count());
  });

  it('practice manager sees only their practice; viewer cannot send commands', async () => {
    const p = await signIn('pm');
    assert.deepEqual(await p.locator('#devices tbody tr[data-device]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-device'))), ['Y00002-01']);
    const other = await p.goto(`${base}/devices/${LIVE}`);
    assert.equal(other!.status(), 404);
    await p.goto(`${base}/devices/Y00002-01`);
    assert.equal(await p.locator('#commands').count(), 0);
    assert.equal((await p.goto(`${base}/audit`))!.status(), 403);
    await p.goto(`${base}/reports/outages`);
    const report = await p.locator('#report tbody').innerText();
    assert.match(report, /Y00002/);
    assert.doesNotMatch(report, /P81001|Y00003/);

    const v = await signIn('viewer');
    await v.goto(`${base}/devices/${LIVE}`);
    assert.equal(await v.locator('#commands').count(), 0);
    const csrf = await v.locator('header input[name=csrf]').getAttribute('value');
    const r = await v.request.post(`${base}/devices/${LIVE}/commands/ping`, { form: { csrf: csrf! } });
    assert.equal(r.status(), 403);
    const noCsrf = await v.request.post(`${base}/alerts/1/ack`, { form: {} });
    assert.equal(noCsrf.status(), 403);
  });

  it('monthly outage report: printable page and CSV with an ICB total', async () => {
    const p = await signIn('admin');
    await p.goto(`${base}/reports/outages`);
    assert.match(await p.locator('#report tbody').innerText(), /\(ICB total\)/);
    await b.screenshot(p, 'fleet', 'outages');
    const month = new Date().toISOString().slice(0, 7);
    const csv = await (await p.request.get(`${base}/reports/outages.csv?month=${month}`)).text();
    const lines = csv.trim().split('\r\n');
    assert.equal(
      lines[0],
      'practice,practice_name,pcn,devices,minutes_on_4g,outages_survived,minutes_offline,clinical_system,clinical_system_outages,drills_failed',
    );
    const y = lines.find((l) => l.startsWith('Y00002,'))!.split(',');
    assert.equal(y[1], 'Canal Side');
    assert.equal(y[7], 'SystmOne');
    assert.ok(Number(y[4]) > 0, 'minutes on 4G counted');
    assert.ok(lines.at(-1)!.startsWith('(ICB total),'));
  });
});
