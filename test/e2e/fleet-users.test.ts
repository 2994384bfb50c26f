import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { hashPassword } from '../../common/password.js';
import { base32Decode, hotp, totpStep } from '../../common/totp.js';
import type { Fleet } from '../../fleet/src/fleet.js';
import { launchBrowser, requireChromium, type TestBrowser } from '../helpers/browser.js';
import { fleetConfig, signIn, startFleet, tempDir } from '../helpers/fleet.js';
import { mosquittoMissing, startBroker, type TestBroker } from '../helpers/mosquitto.js';
import { onPath } from '../lab/tools.js';

const skip = requireChromium() || mosquittoMissing();
const PW = 'fleet users e2e password';

async function noHorizontalScroll(p: Page, what: string): Promise<void> {
  const [sw, cw] = await p.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  assert.ok(sw <= cw, `${what}: page is ${sw} px wide in a ${cw} px viewport`);
}

/** Account management in the dashboard (HTTPS, self-signed), in Debian's chromium, desktop and 390 px. */
describe('fleet accounts page in a browser', { skip }, () => {
  let broker: TestBroker;
  let fleet: Fleet;
  let tmp: ReturnType<typeof tempDir>;
  let b: TestBrowser;
  let base: string;

  before(async () => {
    broker = await startBroker([]);
    tmp = tempDir();
    fleet = await startFleet(fleetConfig(broker, tmp.dir, { http: { port: 0, tls: { enabled: true } } }));
    for (const [u, role] of [
      ['admin', 'icb-admin'],
      ['viewer', 'icb-viewer'],
    ] as const)
      await fleet.ctx.store.accounts.putUser({ username: u, hash: hashPassword(PW), role, practice: null }, Date.now());
    base = fleet.web.url;
    b = await launchBrowser();
  });
  after(async () => {
    await b?.close();
    await fleet?.stop();
    await broker?.close();
    tmp?.rm();
  });

  it('an admin adds, disables, enables and re-roles an account; each change audited; refusals explained', async () => {
    assert.match(base, /^https:/);
    const p = await signIn(b, base, 'admin', PW);
    await p.click('nav >> text=Accounts');
    await p.waitForURL(`${base}/users`);
    await p.fill('#add-user input[name=username]', 'newbie');
    await p.selectOption('#add-user select[name=role]', 'icb-viewer');
    await p.fill('#add-user input[name=password]', 'newbie long password');
    await p.click('#add-user button');
    await p.waitForSelector('section.user[data-user=newbie]');
    assert.match((await p.textContent('[role=status]')) ?? '', /user newbie added \(icb-viewer\)/);
    // Disable: newbie can no longer sign in.
    const card = 'section.user[data-user=newbie]';
    await p.click(`${card} summary`);
    await p.click(`${card} button:has-text("Disable")`);
    await p.waitForSelector(`${card} .bad:has-text("disabled")`);
    // Refusal: the last enabled admin cannot disable themself.
    await p.click('section.user[data-user=admin] summary');
    await p.click('section.user[data-user=admin] button:has-text("Disable")');
    assert.match((await p.textContent('[role=alert]')) ?? '', /last enabled icb-admin/);
    // Refusal: a practice manager needs a practice.
    await p.click(`${card} summary`);
    await p.selectOption(`${card} select[name=role]`, 'practice-manager');
    await p.fill(`${card} input[name=practice]`, '');
    await p.click(`${card} button:has-text("Set role")`);
    assert.match((await p.textContent('[role=alert]')) ?? '', /needs --practice/);
    await b.screenshot(p, 'fleet', 'users-desktop');

    const q = await b.newPage({ width: 1024, height: 768 });
    await q.goto(`${base}/login`);
    await q.fill('input[name=username]', 'newbie');
    await q.fill('input[name=password]', 'newbie long password');
    await q.click('button:has-text("Sign in")');
    assert.match((await q.textContent('[role=alert]')) ?? '', /Wrong user name or password/);

    const a = await signIn(b, base, 'admin', PW);
    await a.goto(`${base}/users`);
    await a.click(`${card} summary`);
    await a.click(`${card} button:has-text("Enable")`);
    await a.click(`${card} summary`);
    await a.selectOption(`${card} select[name=role]`, 'practice-manager');
    await a.fill(`${card} input[name=practice]`, 'P81001');
    await a.click(`${card} button:has-text("Set role")`);
    await a.waitForSelector(`${card} p:has-text("practice-manager of P81001")`);
    const audit = (await fleet.ctx.store.accounts.auditLog(20))
      .filter((r) => r.action.startsWith('user-'))
      .reverse()
      .map((r) => `${r.username} ${r.action}`);
    assert.deepEqual(audit, ['admin user-add', 'admin user-disable', 'admin user-enable', 'admin user-set-role']);
    // Removing needs the confirmation ticked (the browser enforces it; the server checks it too).
    await a.click(`${card} summary`);
    await a.click(`${card} button:has-text("Remove account")`);
    assert.equal(await a.locator(card).count(), 1, 'not removed without the confirmation');
    const csrf = await a.inputValue('input[name=csrf] >> nth=0');
    const direct = await a.request.post(`${base}/users/newbie/remove`, { form: { csrf }, maxRedirects: 0 });
    assert.match(decodeURIComponent(direct.headers().location ?? ''), /really remove/);
    const n = await signIn(b, base, 'newbie', 'newbie long password');
    assert.equal(await n.locator('nav >> text=Accounts').count(), 0, 'not shown to non-admins');
  });

  it('viewers are refused the page and its actions', async () => {
    const p = await signIn(b, base, 'viewer', PW);
    const r = await p.goto(`${base}/users`);
    assert.equal(r?.status(), 403);
  });

  it('fits a 390 px phone without horizontal scrolling (accounts page, expanded, and sign-in)', async () => {
    const p = await b.newPage({ width: 390, height: 844 });
    await p.goto(`${base}/login`);
    await noHorizontalScroll(p, 'sign-in');
    await p.fill('input[name=username]', 'admin');
    await p.fill('input[name=password]', PW);
    await Promise.all([p.waitForURL(`${base}/`), p.click('button:has-text("Sign in")')]);
    await p.goto(`${base}/users`);
    await noHorizontalScroll(p, 'accounts');
    for (const s of await p.locator('section.user summary').all()) await s.click();
    await noHorizontalScroll(p, 'accounts with every card expanded');
    await b.screenshot(p, 'fleet', 'users-phone');
  });

  it('TOTP set-up on a phone: the QR code chromium draws decodes (zbarimg) to the link; no CSP refusal; recovery codes fit', async () => {
    const p = await b.newPage({ width: 390, height: 844 });
    const refused: string[] = [];
    p.on('console', (m) => /Content Security Policy|Refused to/i.test(m.text()) && refused.push(m.text()));
    await p.goto(`${base}/login`);
    await p.fill('input[name=username]', 'viewer');
    await p.fill('input[name=password]', PW);
    await Promise.all([p.waitForURL(`${base}/`), p.click('button:has-text("Sign in")')]);
    await p.goto(`${base}/account`);
    await Promise.all([p.waitForURL(`${base}/account`), p.click('button:has-text("Set up a second factor")')]);
    const qr = p.locator('#totp-qr svg');
    const box = (await qr.boundingBox())!;
    assert.ok(box.width >= 150 && box.width <= 390, `QR drawn ${box.width} px wide`);
    await noHorizontalScroll(p, 'TOTP set-up');
    await p.click('#totp-uri >> xpath=ancestor::details/summary');
    const uri = await p.locator('#totp-uri').innerText();
    if (onPath('zbarimg')) {
      const shot = join(tmp.dir, 'qr.png');
      await qr.screenshot({ path: shot });
      assert.equal(execFileSync('zbarimg', ['--raw', '-q', shot], { encoding: 'utf8' }).trim(), uri, 'the QR code a phone would scan is the link');
    }
    const key = base32Decode((await p.locator('#totp-secret').innerText()).replace(/ /g, ''));
    await p.fill('input[name=code]', hotp(key, totpStep(Date.now())));
    await Promise.all([p.waitForURL(`${base}/account/totp/confirm`), p.click('button:has-text("Turn on")')]);
    assert.equal(await p.locator('#recovery-codes li').count(), 10);
    await noHorizontalScroll(p, 'recovery codes');
    await b.screenshot(p, 'fleet', 'totp-recovery-codes-phone');
    assert.deepEqual(refused, [], 'the CSP refused nothing');
  });
});
