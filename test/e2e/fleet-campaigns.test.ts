import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { Page } from 'playwright-core';
import { ukMinutes } from '../../fleet/src/campaigns/hours.js';
import { requireChromium } from '../helpers/browser.js';
import { startFleetBrowserLab, waitFor, type FleetBrowserLab } from '../helpers/fleet.js';
import { pub, SimDevice, simUpdater } from '../helpers/fleet-sim.js';
import { mosquittoMissing } from '../helpers/mosquitto.js';

const skip = requireChromium() || mosquittoMissing();
const PW = 'fleet campaigns e2e password';
const LIVE = 'P81001-01';
const SIMS = ['Y10001-01', 'Y10001-02', 'Y10001-03', 'Y10001-04', 'Y10002-01', 'Y10002-02', 'Y10002-03', 'Y10002-04', 'Y10003-01', 'Y10003-02'];
const ON_4G = 'Y10002-04';
const hhmm = (m: number) => {
  const x = (((m % 1440) + 1440) % 1440) | 0;
  return `${String(Math.floor(x / 60)).padStart(2, '0')}:${String(x % 60).padStart(2, '0')}`;
};
/** Update hours from `a` to `b` minutes after the current UK time (either may cross midnight). */
const hoursAround = (a: number, b: number): [string, string] => [hhmm(ukMinutes(Date.now()) + a), hhmm(ukMinutes(Date.now()) + b)];

/**
 * Software update campaigns in Debian's chromium against a real fleet, a real mosquitto and
 * simulated boxes that answer the `update` command as the agent does (fleet-sim.ts): plan, review,
 * a confirmed start, live per-box progress (a box on 4G held until it is back on its primary link),
 * done, within update hours that include now; then on a 390 px phone a second campaign started and
 * aborted, and a third whose update hours exclude now: every box waits, nothing is sent; a fourth paused
 * and resumed (nothing sent while paused, even after its soak; a viewer refused). Screenshots:
 * test-artifacts/fleet-campaigns/.
 */
describe('fleet update campaigns in a browser (desktop and phone)', { skip }, () => {
  let lab: FleetBrowserLab;
  let base: string;
  let sim: MqttClient;
  let sims: SimDevice[];
  let commands: { id: string; version: string }[];

  before(async () => {
    lab = await startFleetBrowserLab({
      live: LIVE,
      password: PW,
      pmPractice: 'Y10001',
      fleet: { instanceId: 'fleet-e2e-campaigns', http: { liveMs: 300 }, campaigns: { tickMs: 200 } },
      agentDir: 'agent',
      until: 'telemetry_at',
    });
    base = lab.base;
    sim = await lab.broker.connect('fleet');
    sims = SIMS.map((id) => new SimDevice(id, lab.broker.prefix));
    sims.find((d) => d.id === ON_4G)!.cellular = true;
    ({ commands } = await simUpdater(sim, lab.broker.prefix, sims, () => 'commit', 300));
    for (const d of sims) {
      await pub(sim, d.birth(Date.now()), true);
      await pub(sim, d.telemetry(Date.now()));
    }
    await waitFor(
      async () => (await lab.fleet.ctx.store.devices.getMany(SIMS)).size === SIMS.length && (await lab.fleet.ctx.store.devices.get(ON_4G))?.active_kind,
      20_000,
      'simulated boxes known',
    );
  });
  after(async () => {
    sim?.end(true);
    await lab?.close();
  });

  const noSideways = async (p: Page, what: string) => {
    const [sw, cw] = await p.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(sw <= cw, `${what}: ${sw} px of content in a ${cw} px viewport (sideways scrolling)`);
  };
  const row = (p: Page, id: string) => p.locator(`#campaign-steps tr[data-step="${id}"]`);
  const plan = async (p: Page, version: string, practices: string, soak: string, hours?: [string, string]) => {
    await Promise.all([p.waitForURL(`${base}/campaigns`), p.click('header a:has-text("Updates")')]);
    await p.fill('#new-campaign input[name=url]', `https://updates.icb.example/surgery-edge-${version}-amd64.seb`);
    await p.fill('#new-campaign input[name=version]', version);
    await p.selectOption('#new-campaign select[name=arch]', 'amd64');
    await p.fill('#new-campaign textarea[name=practices]', practices);
    await p.fill('#new-campaign input[name=soak]', soak);
    if (hours) {
      await p.fill('#new-campaign input[name=hours_from]', hours[0]);
      await p.fill('#new-campaign input[name=hours_to]', hours[1]);
    }
    assert.equal(await p.locator('#new-campaign input[name=cellular]').isChecked(), false, 'downloads over 4G are off unless asked for');
    await Promise.all([p.waitForURL(/\/campaigns\/\d+$/), p.click('button:has-text("Plan campaign")')]);
  };

  it('1280 px: plan, review, confirmed start; live progress per box; a box on 4G waits, then goes on its primary; done', async () => {
    const p = await lab.signIn('admin');
    const hours = hoursAround(-60, 120);
    await plan(p, '0.2.0', 'y10001, Y10002', '0', hours);
    assert.match(await p.locator('h1').innerText(), /draft: not started/);
    assert.equal(await p.locator('#campaign-hours').innerText(), `${hours[0]}-${hours[1]} UK time; now inside: boxes are sent the update until ${hours[1]}`);
    assert.match(await p.locator('#review').innerText(), new RegExp(`sent it only between ${hours[0]} and ${hours[1]} UK time`));
    assert.equal(await p.locator('#campaign-steps tr').count(), 8);
    assert.match(await p.locator('#campaign-cellular').innerText(), /not allowed/);
    assert.match(await row(p, ON_4G).innerText(), /waiting: on 4G/, 'the review shows who would wait');
    assert.match(await p.locator('#review').innerText(), /to the 1 canary box\(es\) first/);
    await lab.b.screenshot(p, 'fleet-campaigns', 'draft-1280');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(commands.length, 0, 'a draft sends nothing');

    // The server checks the confirmation too, not only the browser's `required`.
    await p.evaluate(() => document.querySelector('#review input[name=confirm]')!.removeAttribute('required'));
    await Promise.all([p.waitForURL(/error=/), p.click('button:has-text("Start campaign")')]);
    assert.match(await p.locator('.flash').innerText(), /tick the box to confirm/);
    assert.equal(commands.length, 0);
    await p.check('#review input[name=confirm]');
    await Promise.all([p.waitForURL(/done=/), p.click('button:has-text("Start campaign")')]);
    assert.match(await p.locator('.flash').innerText(), /Started/);

    // Live: the page is not reloaded from here on.
    await p.waitForFunction((sel) => /updating the rest|done/.test(document.querySelector(sel)?.textContent ?? ''), '#campaign-phase', { timeout: 30_000 });
    await p.waitForFunction(() => document.querySelectorAll('#campaign-steps tr[data-group="healthy"]').length === 7, undefined, { timeout: 30_000 });
    assert.match(await row(p, ON_4G).innerText(), /waiting: on 4G/);
    assert.match(await row(p, 'Y10001-01').innerText(), /healthy on 0\.2\.0/);
    assert.match(await p.locator('#campaign-progress').innerText(), /7 healthy.*1 waiting/);
    assert.ok(Number(await p.locator('#live').getAttribute('data-updates')) > 0, 'updated live');
    assert.ok(!commands.some((c) => c.id === ON_4G), 'no command to the box on 4G');
    await lab.b.screenshot(p, 'fleet-campaigns', 'running-1280');

    const d = sims.find((x) => x.id === ON_4G)!;
    d.cellular = false;
    await pub(sim, d.telemetry(Date.now()));
    await p.waitForFunction(() => document.querySelector('#campaign-phase [data-phase]')?.getAttribute('data-phase') === 'done', undefined, {
      timeout: 30_000,
    });
    assert.match(await p.locator('#campaign-message').innerText(), /done: 8 healthy on 0\.2\.0/);
    assert.equal(await p.locator('#campaign-hours').innerText(), `${hours[0]}-${hours[1]} UK time`, 'done: the window without "now"');
    assert.equal(commands.filter((c) => c.version === '0.2.0').length, 8);
    await lab.b.screenshot(p, 'fleet-campaigns', 'done-1280');
    await p.goto(`${base}/campaigns`);
    assert.match(await p.locator('#campaigns tbody tr').first().innerText(), /0\.2\.0[\s\S]*8 healthy, 0 failed[\s\S]*done/);
  });

  it('390 px: plan and start a second campaign, then abort it: nothing more is sent; every page fits the phone', async () => {
    const p = await lab.signIn('admin');
    await p.setViewportSize({ width: 390, height: 844 });
    await noSideways(p, 'list at 390 px');
    await p.click('header a:has-text("Updates")');
    await noSideways(p, '/campaigns at 390 px');
    await plan(p, '0.3.0', 'Y10003', '60');
    assert.match(await p.locator('#campaign-hours').innerText(), /^any time/);
    await noSideways(p, 'draft at 390 px');
    await lab.b.screenshot(p, 'fleet-campaigns', 'draft-390');
    await p.check('#review input[name=confirm]');
    await Promise.all([p.waitForURL(/done=/), p.click('button:has-text("Start campaign")')]);
    await p.waitForFunction(() => document.querySelectorAll('#campaign-steps tr[data-group="healthy"]').length === 1, undefined, { timeout: 30_000 });
    assert.match(await p.locator('#campaign-phase').innerText(), /canaries first/, 'soaking for 60 min');
    await noSideways(p, 'running at 390 px');
    await lab.b.screenshot(p, 'fleet-campaigns', 'running-390');
    assert.match(await p.locator('#abort').innerText(), /carries on by itself/);
    await p.check('#abort input[name=confirm]');
    await Promise.all([p.waitForURL(/done=/), p.click('button:has-text("Abort campaign")')]);
    assert.match(await p.locator('.flash').innerText(), /Aborted/);
    assert.match(await p.locator('#campaign-phase').innerText(), /aborted/);
    assert.equal(await p.locator('#campaign-steps tr', { hasText: 'not sent (campaign aborted)' }).count(), 1);
    await noSideways(p, 'aborted at 390 px');
    await lab.b.screenshot(p, 'fleet-campaigns', 'aborted-390');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(commands.filter((c) => c.version === '0.3.0').length, 1, 'only the canary was ever sent 0.3.0');

    await p.goto(`${base}/audit`);
    const audit = await p.locator('#audit tbody').innerText();
    for (const a of ['campaign-create', 'campaign-start', 'campaign-abort', 'campaign-healthy', 'update']) assert.match(audit, new RegExp(a), a);
  });

  it('390 px: update hours that exclude now: one time alone refused; the review and the campaign page say so; every box waits, nothing sent', async () => {
    const p = await lab.signIn('admin');
    await p.setViewportSize({ width: 390, height: 844 });
    await p.click('header a:has-text("Updates")');
    await p.fill('#new-campaign input[name=url]', 'https://updates.icb.example/surgery-edge-0.4.0-amd64.seb');
    await p.fill('#new-campaign input[name=version]', '0.4.0');
    await p.fill('#new-campaign input[name=hours_from]', '19:00');
    await Promise.all([p.waitForURL(/error=/), p.click('button:has-text("Plan campaign")')]);
    assert.match(await p.locator('.flash').innerText(), /update hours must be two UK times like 19:00-07:00/);
    await noSideways(p, 'the form and its error at 390 px');
    await lab.b.screenshot(p, 'fleet-campaigns', 'hours-form-390');

    const hours = hoursAround(120, 240);
    const outside = `waiting: outside update hours ${hours[0]}-${hours[1]} (UK time)`;
    await plan(p, '0.4.0', 'Y10003', '0', hours);
    assert.equal(await p.locator('#campaign-hours').innerText(), `${hours[0]}-${hours[1]} UK time; now outside: boxes wait until ${hours[0]}`);
    assert.equal(await p.locator('#campaign-steps tr', { hasText: outside }).count(), 2, 'the review shows every box would wait');
    await noSideways(p, 'draft with update hours at 390 px');
    await lab.b.screenshot(p, 'fleet-campaigns', 'hours-draft-390');
    await p.check('#review input[name=confirm]');
    await Promise.all([p.waitForURL(/done=/), p.click('button:has-text("Start campaign")')]);
    await new Promise((r) => setTimeout(r, 1500)); // several engine ticks (200 ms)
    assert.equal(commands.filter((c) => c.version === '0.4.0').length, 0, 'nothing sent outside the update hours');
    await p.reload();
    assert.match(await p.locator('#campaign-phase').innerText(), /canaries first/);
    assert.match(await p.locator('#campaign-progress').innerText(), /0 in progress.*2 waiting/);
    assert.equal(await p.locator('#campaign-steps tr', { hasText: outside }).count(), 2);
    assert.match(await p.locator('#campaign-hours').innerText(), /now outside: boxes wait/);
    await noSideways(p, 'waiting for the update hours at 390 px');
    await lab.b.screenshot(p, 'fleet-campaigns', 'hours-waiting-390');
    assert.equal((await lab.fleet.ctx.store.campaigns.list())[0]!.hours, `${hours[0]}-${hours[1]}`);
    await p.check('#abort input[name=confirm]');
    await Promise.all([p.waitForURL(/done=/), p.click('button:has-text("Abort campaign")')]);
    assert.equal(commands.filter((c) => c.version === '0.4.0').length, 0);
  });

  it('1280 px: pause: nothing more sent, even after the soak; the page and the list say so; a viewer cannot; 390 px fits; resume', async () => {
    let p = await lab.signIn('admin');
    await plan(p, '0.5.0', 'Y10001', '60');
    await p.check('#review input[name=confirm]');
    await Promise.all([p.waitForURL(/done=/), p.click('button:has-text("Start campaign")')]);
    await p.waitForFunction(() => document.querySelectorAll('#campaign-steps tr[data-group="healthy"]').length === 1, undefined, { timeout: 30_000 });
    const id = Number(new URL(p.url()).pathname.split('/').pop());
    assert.equal(await p.locator('#campaign-paused').innerText(), '', 'not paused: no paused line');
    assert.match(await p.locator('#pause').innerText(), /Boxes already downloading or installing carry on/);
    assert.equal(await p.locator('#pause button:has-text("Resume")').count(), 0);
    await Promise.all([p.waitForURL(/done=/), p.click('#pause button:has-text("Pause")')]);
    assert.match(await p.locator('p.flash.ok').innerText(), /^Paused: no new boxes are sent the update until you resume/);
    const c = (await lab.fleet.ctx.store.campaigns.get(id))!;
    assert.equal(c.paused_by, 'admin');
    assert.equal(
      await p.locator('#campaign-paused').innerText(),
      `Paused by admin at ${hhmm(ukMinutes(c.paused_at!))} (UK time): no new boxes are sent the update; boxes already updating carry on.`,
    );
    assert.match(await p.locator('#campaign-phase').innerText(), /canaries first \(paused\)/);
    assert.equal(await p.locator('#campaign-steps tr', { hasText: 'not sent (campaign paused)' }).count(), 3);
    assert.match(await p.locator('#campaign-progress').innerText(), /1 healthy.*3 waiting/);
    assert.equal(await p.locator('#pause button:has-text("Pause")').count(), 0, 'paused: Resume instead of Pause');
    await lab.b.screenshot(p, 'fleet-campaigns', 'paused-1280');

    // A second Pause (a double click, another tab) changes nothing and says so.
    const csrf = await p.locator('header input[name=csrf]').first().inputValue();
    const again = await p.request.post(`${base}/campaigns/${id}/pause`, { form: { csrf }, maxRedirects: 0 });
    assert.equal(again.status(), 303);
    assert.match(decodeURIComponent(again.headers().location ?? ''), /error=Nothing done: the campaign is already paused/);
    assert.equal((await lab.fleet.ctx.store.campaigns.get(id))!.paused_at, c.paused_at, 'the first pause stands');

    // The soak ends while paused (shortened here rather than waited for): the rest wait for the resume.
    await lab.fleet.ctx.store.driver.run('UPDATE campaigns SET soak_ms = 0 WHERE id = ?', [id]);
    await new Promise((r) => setTimeout(r, 1500)); // several engine ticks (200 ms)
    assert.equal((await lab.fleet.ctx.store.campaigns.get(id))!.phase, 'canary');
    assert.equal(commands.filter((x) => x.version === '0.5.0').length, 1, 'only the canary, sent before the pause');
    await p.reload();
    assert.match(await p.locator('#campaign-summary').innerText(), /0 min left: the rest wait for the resume/);
    assert.match(await p.locator('#pause').innerText(), /the soak being over, the rest follow/);

    await p.setViewportSize({ width: 390, height: 844 });
    await noSideways(p, 'paused campaign at 390 px');
    await lab.b.screenshot(p, 'fleet-campaigns', 'paused-390');
    await p.goto(`${base}/campaigns`);
    assert.match(await p.locator(`#campaigns tr[data-campaign="${id}"] .phase`).innerText(), /canaries first \(paused\)/);
    await noSideways(p, 'the list with a paused campaign at 390 px');
    const noCsrf = await p.request.post(`${base}/campaigns/${id}/resume`, { form: {}, maxRedirects: 0 });
    assert.equal(noCsrf.status(), 403, 'no CSRF token: refused');

    const v = await lab.signIn('viewer'); // one page at a time: the admin's is closed
    await v.goto(`${base}/campaigns/${id}`);
    assert.match(await v.locator('#campaign-paused').innerText(), /^Paused by admin/, 'a viewer sees the pause');
    assert.equal(await v.locator('#pause, #abort').count(), 0, 'but no Pause, Resume or Abort');
    const vcsrf = await v.locator('header input[name=csrf]').first().inputValue();
    for (const action of ['resume', 'pause']) {
      const r = await v.request.post(`${base}/campaigns/${id}/${action}`, { form: { csrf: vcsrf }, maxRedirects: 0 });
      assert.equal(r.status(), 403, `viewer ${action}`);
      assert.match(await r.text(), /forbidden for your role/);
    }
    assert.equal((await lab.fleet.ctx.store.campaigns.get(id))!.paused_by, 'admin', 'still paused');

    p = await lab.signIn('admin');
    await p.goto(`${base}/campaigns/${id}`);
    await Promise.all([p.waitForURL(/done=/), p.click('#pause button:has-text("Resume")')]);
    assert.match(await p.locator('p.flash.ok').innerText(), /^Resumed/);
    await p.waitForFunction(() => document.querySelector('#campaign-phase [data-phase]')?.getAttribute('data-phase') === 'done', undefined, {
      timeout: 30_000,
    });
    assert.equal(await p.locator('#campaign-paused').innerText(), '');
    assert.match(await p.locator('#campaign-message').innerText(), /done: 4 healthy on 0\.5\.0/);
    const sent = commands.filter((x) => x.version === '0.5.0').map((x) => x.id);
    assert.deepEqual([sent.length, new Set(sent).size], [4, 4], 'resumed: the other three, each once');

    await p.goto(`${base}/audit`);
    for (const a of ['campaign-pause', 'campaign-resume'])
      assert.match(await p.locator('#audit tbody tr', { hasText: a }).first().innerText(), new RegExp(`admin[\\s\\S]*${a}[\\s\\S]*"campaign":${id}`), a);
    assert.equal(await p.locator('#audit tbody tr', { hasText: 'campaign-pause' }).filter({ hasText: 'no-op' }).count(), 1, 'the second pause: no-op');
  });

  it('an ICB viewer reads campaigns but cannot start or abort one; a practice manager cannot see them', async () => {
    const v = await lab.signIn('viewer');
    await v.goto(`${base}/campaigns`);
    assert.equal(await v.locator('#new-campaign').count(), 0);
    await v.click('#campaigns a >> nth=0');
    assert.equal(await v.locator('#abort, #review').count(), 0);
    const csrf = await v.locator('header input[name=csrf]').first().inputValue();
    const id = v.url().split('/').pop();
    const r = await v.request.post(`${base}/campaigns/${id}/abort`, { form: { csrf, confirm: 'yes' }, maxRedirects: 0 });
    assert.equal(r.status(), 403);
    assert.match(await r.text(), /forbidden for your role/);
    const a = await lab.signIn('admin');
    const noCsrf = await a.request.post(`${base}/campaigns`, { form: { url: 'https://u.example/x.seb', version: '9.9.9', arch: 'amd64' }, maxRedirects: 0 });
    assert.equal(noCsrf.status(), 403, 'no CSRF token: refused');
    assert.equal((await lab.fleet.ctx.store.campaigns.list()).filter((c) => c.version === '9.9.9').length, 0);
    const pm = await lab.signIn('pm');
    assert.equal(await pm.locator('header a:has-text("Updates")').count(), 0);
    assert.equal((await pm.goto(`${base}/campaigns`))!.status(), 403);
  });
});
