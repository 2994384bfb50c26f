import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { createUser } from '../../agent/src/auth/index.js';
import { systemClock } from '../../common/clock.js';
import { StatusCapability } from '../../agent/src/status/status.js';
import { WebServer } from '../../agent/src/web/server.js';
import { launchChromium, requireChromium as noBrowser } from '../helpers/browser.js';
import { createTestCtx, type TestCtx } from '../helpers/ctx.js';
import { cellularHealth, FakeCap, FakeFailover, recordsHealth, registry, telemetryHealth } from '../unit/status/fixtures.js';
import { FakeSystemInfo } from '../helpers/fake-system-info.js';

/**
 * The status page in Debian's chromium, health driven through fake capabilities in ctx.
 * Screenshots of each state go to test-artifacts/status/.
 */
const ART = 'test-artifacts/status';
const PW = 'correct horse battery';

describe('status page in a browser', { skip: noBrowser() }, () => {
  let ctx: TestCtx;
  let status: StatusCapability;
  let web: WebServer;
  let failover: FakeFailover;
  let records: FakeCap;
  let browser: Browser;
  let page: Page;
  let base: string;

  before(async () => {
    mkdirSync(ART, { recursive: true });
    ctx = createTestCtx({ clock: systemClock, config: { status: { listen: '127.0.0.1', port: 0, refreshMs: 60_000 } } });
    failover = new FakeFailover(() => ctx.bus);
    records = new FakeCap('records', recordsHealth(Date.now() - 12 * 60_000));
    status = new StatusCapability({ systemInfo: new FakeSystemInfo() });
    ctx.capabilities = registry([new FakeCap('cellular', cellularHealth()), failover, records, new FakeCap('telemetry', telemetryHealth()), status]);
    createUser(ctx.db, 'admin', PW, 'admin');
    // Real HTTPS with the generated self-signed certificate (openssl through the real runner).
    const { ProcessRunner } = await import('../../agent/src/platform/command.js');
    ctx.platform = { ...ctx.platform, commands: new ProcessRunner() };
    await status.start(ctx);
    web = new WebServer();
    await web.start(ctx);
    base = `https://127.0.0.1:${web.port}`;
    browser = await launchChromium();
    page = await browser.newPage({ ignoreHTTPSErrors: true, viewport: { width: 1000, height: 900 } });
  });
  after(async () => {
    await browser?.close();
    await web?.stop();
    await status?.stop();
    ctx?.cleanup();
  });

  const stateText = () => page.locator('#state .text').textContent();

  it('normal: "All systems normal", green, icon + text', async () => {
    await page.goto(base + '/');
    assert.equal(await stateText(), 'All systems normal');
    assert.equal(await page.locator('#state').getAttribute('data-level'), 'normal');
    assert.equal(await page.locator('#state').getAttribute('aria-live'), 'polite');
    assert.equal(await page.locator('main').count(), 1);
    await page.screenshot({ path: `${ART}/normal.png`, fullPage: true });
  });

  it('updates live within 2 s of a failover (no reload), then shows offline', async () => {
    await page.goto(base + '/');
    // The live stream is open (the page script marks it) before the switch.
    await page.waitForSelector('body[data-live="1"]', { timeout: 5000 });
    const navs: string[] = [];
    page.on('framenavigated', (f) => navs.push(f.url()));
    const t0 = Date.now();
    failover.switchTo('lte', Date.now(), 'down', 'up');
    await page.waitForFunction(() => document.getElementById('state')?.getAttribute('data-level') === 'backup', undefined, { timeout: 2000 });
    const took = Date.now() - t0;
    assert.ok(took < 2000, `updated in ${took} ms`);
    assert.match((await stateText()) ?? '', /^Internet down - running on 4G backup since \d\d:\d\d$/);
    assert.deepEqual(navs, [], 'no reload');
    await page.screenshot({ path: `${ART}/backup.png`, fullPage: true });

    failover.switchTo(null, Date.now(), 'down', 'down');
    await page.waitForFunction(() => document.getElementById('state')?.getAttribute('data-level') === 'offline', undefined, { timeout: 2000 });
    assert.match((await stateText()) ?? '', /^Offline since \d\d:\d\d - records cache available, as of \d\d:\d\d$/);
    await page.screenshot({ path: `${ART}/offline.png`, fullPage: true });

    failover.switchTo('wan', Date.now(), 'up', 'up');
    await page.waitForFunction(() => document.getElementById('state')?.getAttribute('data-level') === 'normal', undefined, { timeout: 2000 });
  });

  it('admin actions need a login; after signing in, forcing an uplink works', async () => {
    await page.goto(base + '/');
    assert.equal(await page.getByRole('button', { name: 'Run a drill now' }).count(), 0);
    await page.getByRole('link', { name: 'Sign in as an admin' }).click();
    await page.waitForURL(/\/login/);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill('wrong password!');
    await page.getByRole('button', { name: 'Sign in' }).click();
    assert.match((await page.getByRole('alert').textContent()) ?? '', /Wrong username or password/);
    await page.screenshot({ path: `${ART}/login-refused.png` });
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(PW);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(base + '/');
    await page.getByLabel('Force uplink').selectOption('lte');
    await page.getByLabel('For', { exact: true }).selectOption('15');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/msg=forced/);
    assert.deepEqual(failover.forced, [{ uplink: 'lte', ms: 15 * 60_000 }]);
    assert.match((await page.getByRole('alert').textContent()) ?? '', /forced for maintenance/);
    await page.screenshot({ path: `${ART}/admin.png`, fullPage: true });
    // Every control an admin uses has an accessible name (label, aria-label or button text).
    const unnamed = await page.evaluate(() =>
      Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea, button'))
        .filter((el) => {
          const labels = (el as HTMLInputElement).labels;
          const name =
            el.tagName === 'BUTTON'
              ? el.textContent?.trim()
              : Array.from(labels ?? [])
                  .map((l) => l.textContent?.trim())
                  .join('') || el.getAttribute('aria-label');
          return !name;
        })
        .map((el) => el.outerHTML),
    );
    assert.deepEqual(unnamed, []);
  });

  it('a forged cross-site form post to an admin action (signed-in admin visits another site) is refused, logged, and changes nothing', async () => {
    await page.goto(base + '/');
    assert.equal(await page.getByRole('button', { name: 'Run a drill now' }).count(), 1, 'admin still signed in');
    const forcedBefore = failover.forced.length;
    // The attacker's page, on another origin, auto-submits a form at the appliance.
    const evil = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(
        `<form id="f" method="post" action="${base}/api/actions/force"><input name="uplink" value="lte"><input name="minutes" value="240">` +
          `<input name="_csrf" value="guessed"></form><script>document.getElementById('f').submit()</script>`,
      );
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    try {
      const answered = page.waitForResponse((r) => r.url() === `${base}/api/actions/force`, { timeout: 10_000 });
      await page.goto(`http://localhost:${(evil.address() as AddressInfo).port}/`);
      const res = await answered;
      assert.equal(res.status(), 403);
      assert.match(await res.text(), /cross-site request refused/);
    } finally {
      evil.close();
    }
    assert.equal(failover.forced.length, forcedBefore, 'nothing forced');
    assert.ok(ctx.logged.some((e) => e.msg === 'request refused' && e.status === 403 && e.path === '/api/actions/force'));
    await page.goto(base + '/');
    assert.equal(await stateText(), 'All systems normal', 'agent still serving');
  });

  it('first load stays under the 150 KB page-weight budget (bytes on the wire, every request)', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const p = await context.newPage();
    const sizes: Promise<number>[] = [];
    const urls: string[] = [];
    p.on('requestfinished', (req) => {
      urls.push(req.url());
      sizes.push(req.sizes().then((s) => s.responseBodySize + s.responseHeadersSize));
    });
    await p.goto(base + '/', { waitUntil: 'load' });
    await p.waitForLoadState('networkidle').catch(() => {}); // SSE keeps one request open
    const total = (await Promise.all(sizes)).reduce((a, b) => a + b, 0);
    assert.ok(
      urls.some((u) => u.endsWith('/assets/status.js')),
      'script counted',
    );
    assert.ok(
      urls.every((u) => u.startsWith(base)),
      `only local requests: ${urls.join(' ')}`,
    );
    assert.ok(total > 2000 && total < 150 * 1024, `first load ${total} bytes`);
    await context.close();
  });

  it('is keyboard reachable: Tab reaches the skip link first, and the focus ring is visible', async () => {
    await page.goto(base + '/');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    assert.equal(outline, 'solid');
  });
});
