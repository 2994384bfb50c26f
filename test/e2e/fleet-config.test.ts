import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { validateConfig } from '../../agent/src/config/load.js';
import { redactSecrets } from '../../agent/src/config/redact.js';
import { requireChromium, type TestBrowser } from '../helpers/browser.js';
import { agentTemplate, startFleetBrowserLab, waitFor, type FleetBrowserLab } from '../helpers/fleet.js';
import { mosquittoMissing } from '../helpers/mosquitto.js';

const skip = requireChromium() || mosquittoMissing();
const PW = 'fleet config e2e password';
const LIVE = 'P81001-01';
const SECRET = 'tok-e2e-very-secret';

/**
 * Desired config and rollouts in Debian's chromium, against a real agent behind a real mosquitto:
 * edit the ICB template (refused with the problems, then saved; the secret never shown back),
 * plan and start a rollout, watch it finish, and read the device's field-by-field diff.
 * Screenshots: test-artifacts/fleet/config-*.png.
 */
describe('fleet config templates and rollouts in a browser', { skip }, () => {
  let lab: FleetBrowserLab;
  let b: TestBrowser;
  let base: string;

  before(async () => {
    lab = await startFleetBrowserLab({
      live: LIVE,
      password: PW,
      pmPractice: 'P81001',
      fleet: { instanceId: 'fleet-e2e-config', rollouts: { tickMs: 200, soakMin: 0 } },
      agentDir: LIVE,
      until: 'reported_json',
    });
    ({ b, base } = lab);
  });
  after(() => lab?.close());

  const signIn = (user: 'admin' | 'viewer' | 'pm') => lab.signIn(user);
  const template = (intervalMs: number) =>
    agentTemplate(lab.broker, lab.tmp.dir, intervalMs, { records: { dayList: { bearerToken: SECRET } } }) as { telemetry: Record<string, unknown> } & Record<
      string,
      unknown
    >;

  it('ICB admin: edit the ICB template (refused, then saved, secret redacted), plan and start a rollout, read the diff', async () => {
    const p = await signIn('admin');
    await Promise.all([p.waitForURL(`${base}/config`), p.click('header a:has-text("Config")')]);
    await p.selectOption('#new-template select[name=scope]', 'icb');
    await Promise.all([p.waitForURL(/\/config\/template\?scope=icb/), p.click('#new-template button')]);
    await p.fill('#doc', JSON.stringify(template(5), null, 2));
    await Promise.all([p.waitForLoadState(), p.click('button:has-text("Validate and save")')]);
    const problems = await p.locator('#problems').innerText();
    assert.match(problems, /\/telemetry\/intervalMs/);
    assert.equal(await p.locator('#problems li[data-path="/telemetry/intervalMs"]').count(), 1, 'each problem once');
    assert.match(
      await p
        .locator('#problems li[data-path="/telemetry/intervalMs"] details')
        .innerText({ timeout: 2000 })
        .catch(() => ''),
      /Devices/,
    );
    assert.equal(await p.locator(`#problems li[data-path="/telemetry/intervalMs"] details a[href="/devices/${LIVE}"]`).count(), 1, 'with the device list');
    assert.ok(!(await p.content()).includes(SECRET), 'a refused save does not echo the secret back');
    await b.screenshot(p, 'fleet', 'config-refused');
    // The refused text came back redacted: the secret has to be typed again.
    await p.fill('#doc', JSON.stringify(template(1500), null, 2));
    await Promise.all([p.waitForURL(/saved=1/), p.click('button:has-text("Validate and save")')]);
    assert.match(await p.locator('.flash').innerText(), /Saved version 1/);
    assert.match(await p.locator('#doc').inputValue(), /"bearerToken": "\[redacted\]"/);
    assert.ok(!(await p.content()).includes(SECRET));
    assert.equal(await p.locator('#versions tr').count(), 1);

    await Promise.all([p.waitForURL(`${base}/rollouts`), p.click('header a:has-text("Rollouts")')]);
    await p.selectOption('#new-rollout select[name=scope]', 'practice');
    await p.fill('#new-rollout input[name=id]', 'P81001');
    await p.fill('#new-rollout input[name=soak]', '0');
    await Promise.all([p.waitForURL(/\/rollouts\/\d+$/), p.click('button:has-text("Plan rollout")')]);
    assert.equal(await p.locator('#canaries').innerText(), LIVE, '1 device: it is the canary');
    assert.match(await p.locator('h1 .phase').innerText(), /draft/);
    await b.screenshot(p, 'fleet', 'config-rollout-draft');
    await Promise.all([p.waitForLoadState(), p.click('button:has-text("Start rollout")')]);
    const url = p.url();
    await waitFor(
      async () => {
        await p.goto(url);
        return /done/.test(await p.locator('h1 .phase').innerText());
      },
      30_000,
      'rollout done in the page',
    );
    assert.equal(await p.locator(`#steps tr[data-step="${LIVE}"]`).getAttribute('data-state'), 'applied');
    await b.screenshot(p, 'fleet', 'config-rollout-done');

    await p.goto(`${base}/devices/${LIVE}`);
    assert.equal(await p.locator('#desired-revision').innerText(), await p.locator('#applied-revision').innerText());
    assert.match(await p.locator('#diff-summary').innerText(), /^0 field\(s\) differ/);
    assert.match(await p.locator('#config-diff tr[data-path="/records/dayList/bearerToken"]').innerText(), /secret: not compared/);
    assert.ok(!(await p.content()).includes(SECRET));
    await p.click('#commands button:has-text("Reload config")');
    await Promise.all([p.waitForURL(/done=/), p.click('#confirm button:has-text("Yes")')]);
    assert.match(await p.locator('.flash').innerText(), /re-sent/);
    await b.screenshot(p, 'fleet', 'config-device-diff');
    await p.goto(`${base}/audit`);
    const audit = await p.locator('#audit tbody').innerText();
    for (const a of ['template-save', 'rollout-create', 'rollout-start', 'rollout-publish', 'rollout-applied', 'rollout-done', 'reload-config'])
      assert.match(audit, new RegExp(a), a);
    assert.ok(!audit.includes(SECRET));
  });

  it('PCN mapping from the Config page; a device that rejected shows its reasons and a field-by-field diff', async () => {
    const p = await signIn('admin');
    await p.goto(`${base}/config`);
    await p.fill('#pcn-map input[name=practice]', 'P81001');
    await p.fill('#pcn-map input[name=pcn]', 'PCN-N');
    await Promise.all([p.waitForURL(/done=/), p.click('button:has-text("Save mapping")')]);
    assert.match(await p.locator('#pcn-map tr[data-practice="P81001"]').innerText(), /PCN-N/);
    await p.goto(`${base}/?pcn=PCN-N`);
    assert.deepEqual(await p.locator('#devices tbody tr[data-device]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-device'))), [LIVE]);

    // A device whose agent refused revision 3 (as an older agent might): written through the store as ingest would.
    const s = lab.fleet.ctx.store;
    const id = 'Y00009-01';
    const place = lab.fleet.ctx.inventory.place(id);
    const running = { ...template(10_000), site: { deviceId: id, odsCode: 'Y00009' } };
    const v = validateConfig({ ...running, revision: 2 });
    assert.ok(v.ok);
    await s.devices.ingest([
      { kind: 'state', deviceId: id, receivedAt: Date.now(), place, msg: { online: true, bootId: 'b9', bdSeq: 1, configRevision: 2, at: Date.now() } },
    ]);
    await s.devices.ingest([
      {
        kind: 'reported',
        deviceId: id,
        receivedAt: Date.now(),
        place,
        msg: {
          appliedRevision: 2,
          lastDesiredRevision: 3,
          status: 'rejected',
          reasons: [{ path: '/telemetry/cellularIntervalMs', message: 'Expected integer to be greater or equal to 10000' }],
          at: Date.now(),
          config: redactSecrets(v.config) as unknown as Record<string, unknown>,
        },
      },
    ]);
    await s.config.putDesired({
      device_id: id,
      revision: 3,
      doc: JSON.stringify({ ...running, telemetry: { ...running.telemetry, intervalMs: 20_000 } }),
      published_at: Date.now(),
      rollout_id: null,
    });
    await p.goto(`${base}/devices/${id}`);
    assert.match(await p.locator('#rejection').innerText(), /rejected revision 3[\s\S]*\/telemetry\/cellularIntervalMs/);
    assert.match(await p.locator('#config').innerText(), /not in sync/);
    assert.match(await p.locator('#diff-summary').innerText(), /^1 field\(s\) differ/);
    assert.match(await p.locator('#config-diff tr[data-path="/telemetry/intervalMs"]').innerText(), /20000\s+10000\s+differs/);
    assert.ok(!(await p.content()).includes(SECRET));
    await b.screenshot(p, 'fleet', 'config-device-rejected');
  });

  it('practice manager edits only their own practice; viewer is read-only; neither sees rollouts controls', async () => {
    const pm = await signIn('pm');
    const own = await pm.goto(`${base}/config/template?scope=practice&id=P81001`);
    assert.equal(own!.status(), 200);
    assert.equal(await pm.locator('button:has-text("Validate and save")').count(), 1);
    assert.equal((await pm.goto(`${base}/config/template?scope=practice&id=Y00002`))!.status(), 403);
    assert.equal((await pm.goto(`${base}/config/template?scope=icb`))!.status(), 403);
    assert.equal((await pm.goto(`${base}/rollouts`))!.status(), 403);
    await pm.goto(`${base}/config`);
    const csrf = await pm.locator('header input[name=csrf]').getAttribute('value');
    const other = await pm.request.post(`${base}/config/template?scope=practice&id=Y00002`, { form: { csrf: csrf!, doc: '{}', version: '0' } });
    assert.equal(other.status(), 403);

    const v = await signIn('viewer');
    await v.goto(`${base}/config/template?scope=icb`);
    assert.equal(await v.locator('button:has-text("Validate and save")').count(), 0);
    assert.equal(await v.locator('#doc').getAttribute('readonly'), '');
    assert.ok(!(await v.content()).includes(SECRET));
    const vcsrf = await v.locator('header input[name=csrf]').getAttribute('value');
    assert.equal((await v.request.post(`${base}/config/template?scope=icb`, { form: { csrf: vcsrf!, doc: '{}', version: '1' } })).status(), 403);
    await v.goto(`${base}/rollouts`);
    assert.equal(await v.locator('#new-rollout').count(), 0);
  });

  it('ICB admin: preview the merged result for a device, diff two versions, restore the older one in one click', async () => {
    const p = await signIn('admin');
    await p.goto(`${base}/config/template?scope=icb`);
    const before = await p.locator('#versions tr[data-version]').count();
    await p.fill('#doc', JSON.stringify(template(2500), null, 2));
    await p.selectOption('#preview-controls select[name=device]', LIVE);
    await Promise.all([p.waitForLoadState(), p.click('button:has-text("Preview")')]);
    assert.equal(await p.locator('#preview').getAttribute('data-device'), LIVE);
    const merged = await p.locator('#preview-doc').innerText();
    assert.match(merged, /"intervalMs": 2500/);
    assert.match(merged, new RegExp(`"deviceId": "${LIVE}"`));
    assert.match(merged, /"bearerToken": "\[redacted\]"/);
    assert.equal(await p.locator('#preview-ok').count(), 1);
    assert.ok(!(await p.content()).includes(SECRET), 'the preview never shows a secret');
    assert.equal(await p.locator('#versions tr[data-version]').count(), before, 'a preview saves nothing');
    await b.screenshot(p, 'fleet', 'config-preview');

    // The text came back redacted from the preview: saving it keeps the stored secret.
    await Promise.all([p.waitForURL(/saved=/), p.click('button:has-text("Validate and save")')]);
    const saved = Number(new URL(p.url()).searchParams.get('saved'));
    await Promise.all([p.waitForURL(/\/config\/template\/diff/), p.click(`#versions tr[data-version="${saved - 1}"] a:has-text("Diff with current")`)]);
    assert.match(await p.locator(`#version-diff tr[data-path="/telemetry/intervalMs"]`).innerText(), /1500\s+2500/);
    assert.equal(await p.locator('#version-diff tr[data-path="/records/dayList/bearerToken"]').count(), 0, 'the kept secret did not change');
    assert.ok(!(await p.content()).includes(SECRET));
    await b.screenshot(p, 'fleet', 'config-version-diff');
    await Promise.all([p.waitForURL(/saved=/), p.click(`button:has-text("Restore v${saved - 1}")`)]);
    assert.equal(Number(new URL(p.url()).searchParams.get('saved')), saved + 1);
    assert.match(await p.locator('#doc').inputValue(), /"intervalMs": 1500/);
    assert.equal(await p.locator('#versions tr[data-version]').count(), before + 2);
    const stored = JSON.parse((await lab.fleet.ctx.store.config.template('icb', ''))!.doc) as { records: { dayList: { bearerToken: string } } };
    assert.equal(stored.records.dayList.bearerToken, SECRET, 'restored with its secret');
    await p.goto(`${base}/audit`);
    assert.match(await p.locator('#audit tbody').innerText(), /template-restore/);

    // Only ICB admins restore, and only with the session's CSRF token.
    const form = (csrf: string) => ({ form: { csrf, from: String(saved - 1), version: String(saved + 1) } });
    const url = `${base}/config/template/restore?scope=icb&id=`;
    assert.equal((await p.request.post(url, form('wrong-token'))).status(), 403);
    for (const who of ['viewer', 'pm'] as const) {
      const q = await signIn(who);
      await q.goto(`${base}/config`);
      const csrf = await q.locator('header input[name=csrf]').getAttribute('value');
      assert.equal((await q.request.post(url, form(csrf!))).status(), 403, who);
      if (who === 'viewer') {
        await q.goto(`${base}/config/template?scope=icb`);
        assert.equal(await q.locator('button:has-text("Restore")').count(), 0);
      }
    }
    assert.equal((await lab.fleet.ctx.store.config.template('icb', ''))!.version, saved + 1, 'nothing restored by them');
  });
});
