import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { ulid } from '../../agent/src/core/ids.js';
import type { Fleet } from '../../fleet/src/fleet.js';
import type { Derived, Inbound } from '../../fleet/src/store/types.js';
import { requireChromium } from '../helpers/browser.js';
import { startFleetBrowserLab, waitFor, type FleetBrowserLab } from '../helpers/fleet.js';
import { mosquittoMissing } from '../helpers/mosquitto.js';
import { telemetryInbound } from '../helpers/fleet-inbound.js';

const skip = requireChromium() || mosquittoMissing();
const PW = 'fleet triage e2e password';
const LIVE = 'P81001-01';
const DAY = 86_400_000;
const MIN = 60_000;
const GREEN = 'rgb(0, 127, 59)';

/**
 * Issue 17, triage at a glance, in Debian's chromium against a real agent behind a real mosquitto:
 * the worst-first live list, alerts triage, the device page in words and dates, confirmation of
 * disruptive commands, and every dashboard page at 390 px (a phone) and 1280 px without sideways
 * scrolling. Screenshots: test-artifacts/fleet-triage/.
 */
describe('fleet triage in a browser (desktop and phone)', { skip }, () => {
  let lab: FleetBrowserLab;
  let base: string;
  let rolloutId = 0;
  let campaignId = 0;

  const place = (fleet: Fleet, id: string) => fleet.ctx.inventory.place(id);
  const tele = (fleet: Fleet, id: string, at: number, o: Partial<Derived>): Inbound =>
    telemetryInbound(id, at, place(fleet, id), { health: { failover: { status: 'ok', summary: 'traffic on wan' } }, ...o });
  const state = (fleet: Fleet, id: string, online: boolean, at: number): Inbound => ({
    kind: 'state',
    deviceId: id,
    receivedAt: at,
    place: place(fleet, id),
    msg: { online, bootId: 'b', bdSeq: 1, at },
  });
  const event = (fleet: Fleet, id: string, name: string, at: number, payload: unknown): Inbound => ({
    kind: 'event',
    deviceId: id,
    receivedAt: at,
    place: place(fleet, id),
    msg: { id: ulid(at), name, at, bootId: 'b', payload },
  });

  const seed = async (fleet: Fleet) => {
    const now = Date.now();
    const hist: Inbound[] = [];
    // Y00002-01 Canal Side: a month of history, on 4G now at 97 % of its allowance.
    for (let t = now - 30 * DAY, i = 0; t < now; t += 2 * 3600_000, i++)
      hist.push(tele(fleet, 'Y00002-01', t, i % 12 > 9 ? { activeKind: 'cellular', activeUplink: '4g', dataPct: 40 + i / 8 } : { dataPct: 40 + i / 8 }));
    hist.push(state(fleet, 'Y00002-01', true, now - 2 * DAY));
    hist.push(
      tele(fleet, 'Y00002-01', now, {
        activeKind: 'cellular',
        activeUplink: '4g',
        dataPct: 97,
        telephonyMode: 'survivable',
        cellularSince: now - 2 * 3600_000,
      }),
    );
    hist.push(
      event(fleet, 'Y00002-01', 'failover.switched', now - 2 * 3600_000, {
        from: 'wan',
        to: '4g',
        kind: 'failover',
        reason: 'wan probes failing',
        at: now - 2 * 3600_000,
      }),
    );
    hist.push(
      event(fleet, 'Y00002-01', 'drill.completed', now - 3 * DAY, {
        id: 'd1',
        passed: true,
        steps: [{ name: 'failover', passed: true, detail: 'ok' }],
        at: now - 3 * DAY,
      }),
    );
    hist.push(event(fleet, 'Y00002-01', 'cellular.usage-threshold', now - DAY, { pct: 95, usedBytes: 9.5e9, allowanceBytes: 1e10, at: now - DAY }));
    // Y00003-01 Hill Top: offline for 3 h; its last telemetry said all was well (must not show green).
    hist.push(
      state(fleet, 'Y00003-01', true, now - 10 * 3600_000),
      tele(fleet, 'Y00003-01', now - 3 * 3600_000 - MIN, {}),
      state(fleet, 'Y00003-01', false, now - 3 * 3600_000),
    );
    // Y00004-01 Mill Lane: records stale.
    hist.push(state(fleet, 'Y00004-01', true, now - DAY), tele(fleet, 'Y00004-01', now, { recordsStale: true }));
    // Y00005-01 Park Road: fine, until the test takes it offline.
    hist.push(state(fleet, 'Y00005-01', true, now - DAY), tele(fleet, 'Y00005-01', now, {}));
    await fleet.ctx.store.devices.ingest(hist);
    await fleet.alerts.evaluate();
    // Two versions of a practice template, so the version diff page has something to show.
    await fleet.ctx.store.config.saveTemplate('practice', 'Y00002', JSON.stringify({ cellular: { allowanceMb: 20000 } }), 'admin', now, 0);
    await fleet.ctx.store.config.saveTemplate('practice', 'Y00002', JSON.stringify({ cellular: { allowanceMb: 30000 } }), 'admin', now, 1);
    rolloutId = await fleet.ctx.store.config.createRollout(
      {
        created_at: now,
        created_by: 'admin',
        scope: 'practice',
        scope_id: 'Y00002',
        phase: 'done',
        canary: '[]',
        targets: '["Y00002-01"]',
        message: 'seeded',
        updated_at: now,
        soak_ms: 0,
      },
      [{ device_id: 'Y00002-01', canary: 0, rank: 0, revision: 1, doc: '{}' }],
    );
    // An update campaign (a draft: nothing is sent) with a long bundle URL, for the phone-width check of its page.
    campaignId = await fleet.ctx.store.campaigns.create(
      {
        created_at: now,
        created_by: 'admin',
        bundle_url: 'https://updates.icb.example/releases/2026/surgery-edge-0.2.0-amd64-with-a-long-file-name.seb',
        version: '0.2.0',
        arch: 'amd64',
        practices: '["Y00002","Y00003"]',
        canary_pct: 5,
        soak_ms: 3_600_000,
        allow_cellular: 0,
        message: null,
        updated_at: now,
      },
      [
        { device_id: 'Y00002-01', canary: 1, rank: 0, from_version: '0.1.0' },
        { device_id: 'Y00003-01', canary: 0, rank: 1, from_version: null },
      ],
    );
  };

  before(async () => {
    lab = await startFleetBrowserLab({
      live: LIVE,
      password: PW,
      pmPractice: 'Y00002',
      fleet: {
        instanceId: 'fleet-e2e-triage',
        http: { liveMs: 300 },
        alerts: { offlineMin: 15, cellularMin: 30 },
        inventory: [
          { deviceId: 'Y00002-01', practice: 'Y00002', practiceName: 'Canal Side', pcn: 'PCN-S', clinicalSystem: 'SystmOne' },
          { deviceId: 'Y00003-01', practice: 'Y00003', practiceName: 'Hill Top', pcn: 'PCN-S', clinicalSystem: 'EMIS' },
          { deviceId: 'Y00004-01', practice: 'Y00004', practiceName: 'Mill Lane', pcn: 'PCN-N', clinicalSystem: 'EMIS' },
          { deviceId: 'Y00005-01', practice: 'Y00005', practiceName: 'Park Road', pcn: 'PCN-N', clinicalSystem: 'EMIS' },
        ],
      },
      agentDir: 'agent',
      until: 'telemetry_at',
      seed,
    });
    base = lab.base;
  });
  after(() => lab?.close());

  const ids = (p: Page) => p.locator('#devices tbody tr[data-device]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-device')));
  const noSideways = async (p: Page, what: string) => {
    const [sw, cw] = await p.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(sw <= cw, `${what}: ${sw} px of content in a ${cw} px viewport (sideways scrolling)`);
  };

  it('the list: worst first, sortable, last seen, offline values greyed as last-known, and it updates live without a reload', async () => {
    const p = await lab.signIn('viewer');
    assert.deepEqual((await ids(p)).slice(0, 3), ['Y00003-01', 'Y00002-01', 'Y00004-01'], 'offline, then on 4G, then records stale');
    assert.equal(await p.locator('#devices thead th').nth(4).innerText(), 'Last seen');
    // Offline: last-known values greyed with their age; nothing in the row is green.
    const off = p.locator('tr[data-device="Y00003-01"]');
    assert.match(await off.locator('.telephony').innerText(), /cloud \(last known, 3 h ago\)/);
    const colours = await off.locator('td *').evaluateAll((els) => els.map((e) => getComputedStyle(e).color));
    assert.ok(!colours.includes('rgb(0, 127, 59)'), `no green in an offline row: ${colours.join(' ')}`);
    assert.equal(await off.locator('.telephony .lk').evaluate((e) => getComputedStyle(e).color), 'rgb(107, 107, 107)');
    // The live stream re-renders rows every liveMs (300 ms here): wait for a settled row rather than
    // reading one the stream may be replacing, then check it.
    const liveGreen = 'tr[data-device="Y00005-01"] .telephony .ok';
    await p
      .waitForFunction(([sel, green]) => Array.from(document.querySelectorAll(sel!)).some((el) => getComputedStyle(el).color === green), [liveGreen, GREEN], {
        timeout: 5000,
      })
      .catch(() => undefined);
    assert.equal(await p.locator(liveGreen).evaluate((e) => getComputedStyle(e).color), GREEN, 'a live device is green');
    await lab.b.screenshot(p, 'fleet-triage', 'list-desktop');

    // Sort by a column header, and back.
    await Promise.all([p.waitForURL(/sort=device&dir=asc/), p.click('#devices thead th[data-sort=device] a')]);
    assert.deepEqual(await ids(p), [LIVE, 'Y00002-01', 'Y00003-01', 'Y00004-01', 'Y00005-01']);
    await Promise.all([p.waitForURL(/sort=device&dir=desc/), p.click('#devices thead th[data-sort=device] a')]);
    assert.equal((await ids(p))[0], 'Y00005-01');
    await p.goto(`${base}/`);

    // Live: Y00005-01 drops off; the open page re-orders without navigating.
    await waitFor(async () => Number(await p.locator('#live').getAttribute('data-updates')) >= 1, 5000, 'the live stream connected');
    await p.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    await lab.fleet.ctx.store.devices.ingest([state(lab.fleet, 'Y00005-01', false, Date.now())]);
    await p.waitForFunction(
      () =>
        document.querySelector('#devices tbody tr[data-device]')?.getAttribute('data-device') !== 'Y00003-01' ||
        document.querySelectorAll('#devices tr.offline').length === 2,
      undefined,
      { timeout: 5000 },
    );
    assert.equal(await p.locator('#devices tr.offline').count(), 2);
    assert.deepEqual((await ids(p)).slice(0, 2).sort(), ['Y00003-01', 'Y00005-01']);
    assert.match(await p.locator('[data-card=offline]').innerText(), /^2\s/);
    assert.equal(await p.evaluate(() => (window as unknown as { marker?: number }).marker), 42, 'same page: no reload');
    assert.match(await p.locator('#live').innerText(), /updated \d\d:\d\d:\d\d/);
  });

  it('alerts: practice named, only the highest data cap, filters, bulk acknowledge, snooze, maintenance window; cleared ones have no Acknowledge', async () => {
    const p = await lab.signIn('admin');
    await p.goto(`${base}/alerts`);
    const canal = p.locator('#alerts tbody tr', { hasText: 'Y00002-01' });
    assert.ok(await canal.first().locator('.practice', { hasText: 'Canal Side (Y00002)' }).count());
    assert.deepEqual(await canal.filter({ hasText: 'data-cap' }).locator('td[data-label=Kind]').allInnerTexts(), ['data-cap 95%'], '97 %: only the 95 % alert');
    // Filter by kind, then by practice.
    await p.selectOption('select[name=kind]', 'records-stale');
    await Promise.all([p.waitForURL(/kind=records-stale/), p.click('#alert-filters button')]);
    assert.deepEqual(await p.locator('#alerts tbody tr[data-alert] td[data-label=Practice]').allInnerTexts(), ['Mill Lane (Y00004)']);
    await p.goto(`${base}/alerts?practice=Y00002`);
    assert.ok((await p.locator('#alerts tbody tr[data-alert] td[data-label=Practice]').allInnerTexts()).every((t) => t === 'Canal Side (Y00002)'));

    // Bulk: select two open alerts, acknowledge both.
    await p.goto(`${base}/alerts?status=open`);
    const open = p.locator('#alerts tbody tr[data-state=open]');
    const n = await open.count();
    assert.ok(n >= 3, `${n} open alerts`);
    // "select all" (added by the page's script) ticks every row's box, and untick clears them.
    await p.check('#select-all input');
    assert.equal(await p.locator('input[form=bulk][type=checkbox]:checked').count(), n);
    await p.uncheck('#select-all input');
    assert.equal(await p.locator('input[form=bulk][type=checkbox]:checked').count(), 0);
    const picked = [await open.nth(0).getAttribute('data-alert'), await open.nth(1).getAttribute('data-alert')];
    for (const id of picked) await p.check(`input[name=a${id}]`);
    await p.selectOption('#bulk select[name=action]', 'ack');
    await Promise.all([p.waitForURL(/done=/), p.click('#bulk button')]);
    assert.match(await p.locator('[role=status]').innerText(), /2 of 2 alert\(s\) acknowledged/);
    assert.ok(/status=open/.test(p.url()), 'back on the same filter');
    for (const id of picked) assert.equal(await p.locator(`tr[data-alert="${id}"]`).count(), 0, 'acknowledged: no longer open');
    await p.goto(`${base}/alerts?status=acknowledged`);
    for (const id of picked) assert.match(await p.locator(`tr[data-alert="${id}"] .state`).innerText(), /acknowledged by admin/);

    // Snooze one from its row.
    await p.goto(`${base}/alerts?status=open`);
    const s = p.locator('#alerts tbody tr[data-state=open]').first();
    const sid = await s.getAttribute('data-alert');
    await Promise.all([p.waitForURL(/done=/), s.locator('button:has-text("Snooze 4 h")').click()]);
    await p.goto(`${base}/alerts?status=snoozed`);
    assert.match(await p.locator(`tr[data-alert="${sid}"] .state`).innerText(), /snoozed until .* (GMT|BST) by admin/);

    // A maintenance window for Park Road, from the form (UK time).
    await p.selectOption('#add-window select[name=scope]', 'practice');
    await p.fill('#add-window input[name=id]', 'Y00005');
    await p.fill('#add-window input[name=reason]', 'new switch');
    await Promise.all([p.waitForURL(/done=/), p.click('#add-window button')]);
    assert.match(await p.locator('#windows tbody').innerText(), /practice Y00005[\s\S]*new switch[\s\S]*in force/);
    await p.goto(`${base}/`);
    assert.match(await p.locator('tr[data-device="Y00005-01"] .state').innerText(), /maintenance/);

    // Cleared alerts: history, no Acknowledge, no checkbox.
    await lab.fleet.ctx.store.devices.ingest([tele(lab.fleet, 'Y00004-01', Date.now(), { recordsStale: false })]);
    await lab.fleet.alerts.evaluate();
    await p.goto(`${base}/alerts?status=cleared`);
    assert.ok((await p.locator('#alerts tbody tr[data-state=cleared]').count()) >= 1);
    assert.equal(await p.locator('#alerts tbody tr[data-state=cleared] button').count(), 0);
    assert.equal(await p.locator('#alerts tbody tr[data-state=cleared] input[type=checkbox]').count(), 0);
    await p.goto(`${base}/audit`);
    const audit = await p.locator('#audit tbody').innerText();
    for (const a of ['ack-alert', 'snooze-alert', 'maintenance-add']) assert.match(audit, new RegExp(`admin\\s+\\S*\\s*${a}`), a);
  });

  it('device page: events in words with UK times, chart axes that read as dates and months, confirmation before a drill', async () => {
    const p = await lab.signIn('admin');
    await p.goto(`${base}/devices/Y00002-01`);
    const events = await p.locator('#events tbody').innerText();
    assert.match(events, /Switched from wan to 4G: wan probes failing/);
    assert.match(events, /Backup drill passed \(1 step\(s\)\)/);
    assert.match(events, /4G data at 95% of the allowance \(9500 MB of 10000 MB\)/);
    assert.match(
      await p.locator('#events tbody tr').first().locator('td').first().innerText(),
      /^[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2,3} \d{4}, \d\d:\d\d (GMT|BST)$/,
    );
    const weekTicks = await p.locator('svg[aria-label="Active uplink over time"] text.tick').allTextContents();
    assert.ok(weekTicks.length >= 6 && weekTicks.every((t) => /^[A-Z][a-z]{2} \d{1,2} [A-Z][a-z]{2,3}$/.test(t)), `week axis: ${weekTicks.join(', ')}`);
    const monthTicks = await p.locator('svg[aria-label="4G data use against the cap"] text.tick').allTextContents();
    assert.ok(monthTicks.length >= 4 && monthTicks.every((t) => /^\d{1,2} [A-Z][a-z]{2,3}$/.test(t)), `30-day axis: ${monthTicks.join(', ')}`);
    const bars = await p.locator('svg[aria-label="Failovers per month"] text.tick').allTextContents();
    assert.equal(bars.length, 12);
    assert.match(bars[0]!, /^[A-Z][a-z]{2,3} \d{4}$/, 'first bar carries the year');
    assert.ok(
      bars.every((b) => /^[A-Z][a-z]{2,3}( \d{4})?$/.test(b)),
      bars.join(', '),
    );
    await lab.b.screenshot(p, 'fleet-triage', 'device-desktop');

    // Disruptive: a confirmation page first; "No" sends nothing; "Yes" sends it to the real agent.
    await p.goto(`${base}/devices/${LIVE}`);
    await p.click('#commands button:has-text("Run drill")');
    await p.waitForSelector('#confirm');
    assert.match(await p.locator('#confirm').innerText(), /Run a failover drill on P81001-01/);
    await Promise.all([p.waitForURL(`${base}/devices/${LIVE}`), p.click('#confirm a:has-text("No, go back")')]);
    assert.equal((await lab.fleet.ctx.store.accounts.auditLog(50)).filter((a) => a.action === 'drill').length, 0, 'nothing sent');
    await p.click('#commands button:has-text("Run drill")');
    await Promise.all([p.waitForURL(/done=|error=/), p.click('#confirm button:has-text("Yes")')]);
    assert.match(await p.locator('.flash').innerText(), /drill: /);
    assert.equal((await lab.fleet.ctx.store.accounts.auditLog(50)).filter((a) => a.action === 'drill').length, 1, 'sent once');
    await Promise.all([p.waitForURL(/done=|error=/), p.click('#commands button:has-text("Ping")')]);
    assert.match(await p.locator('.flash').innerText(), /ping: ok/, 'ping needs no confirmation');
  });

  it('every dashboard page fits a 390 px phone and a 1280 px desktop without sideways scrolling', async () => {
    const sample: Record<string, string> = {
      '/devices/:id': '/devices/Y00002-01',
      '/rollouts/:id': `/rollouts/${rolloutId}`,
      '/campaigns/:id': `/campaigns/${campaignId}`,
      '/config/template': '/config/template?scope=icb',
      '/config/template/diff': '/config/template/diff?scope=practice&id=Y00002&from=1&to=2',
    };
    const pages = [...new Set(lab.fleet.web.routes.filter((r) => r.method === 'GET').map((r) => r.url))]
      .filter((u) => !/^\/(static|live|api)\/|^\/healthz$|\.csv$/.test(u))
      .map((u) => sample[u] ?? u.replace(/:[a-z]+/gi, 'Y00002-01'));
    assert.ok(pages.length >= 10, pages.join(' '));
    assert.ok(pages.includes('/campaigns') && pages.includes(`/campaigns/${campaignId}`), 'the update campaign pages are checked too');
    for (const width of [390, 1280]) {
      const p = await lab.signIn('admin');
      await p.setViewportSize({ width, height: 844 });
      for (const path of [...pages, '/alerts?status=all', '/?sort=seen']) {
        const r = await p.goto(`${base}${path}`);
        assert.match(r!.headers()['content-type'] ?? '', /text\/html/, path);
        assert.ok(r!.status() < 400, `${path}: ${r!.status()}`);
        await noSideways(p, `${path} at ${width} px`);
        if (width === 390) await lab.b.screenshot(p, 'fleet-triage', `phone${path.replace(/[/?=&]+/g, '-') || '-list'}`);
      }
      // And the confirmation page, the sign-in page.
      if (width === 390) {
        await p.goto(`${base}/devices/${LIVE}`);
        await p.click('#commands button:has-text("Force uplink")');
        await p.waitForSelector('#confirm');
        await noSideways(p, 'confirmation at 390 px');
        const out = await lab.b.newPage({ width: 390, height: 844 });
        await out.goto(`${base}/login`);
        await noSideways(out, '/login at 390 px');
      }
    }
    // On a phone the list is one card per device, each value labelled.
    const p = await lab.signIn('pm');
    await p.setViewportSize({ width: 390, height: 844 });
    await p.goto(`${base}/`);
    const label = await p.locator('tr[data-device="Y00002-01"] td.state').evaluate((td) => getComputedStyle(td, '::before').content);
    assert.equal(label, '"State: "');
  });
});
