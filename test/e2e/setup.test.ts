import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { Agent } from '../../agent/src/agent.js';
import { systemClock } from '../../common/clock.js';
import { RecordsCapability } from '../../agent/src/records/records.js';
import { SetupCapability } from '../../agent/src/setup/setup.js';
import { StatusCapability } from '../../agent/src/status/status.js';
import { WebServer } from '../../agent/src/web/server.js';
import { launchBrowser, requireChromium as noBrowser, type TestBrowser } from '../helpers/browser.js';
import { createTestCtx, testConfig, type TestCtx } from '../helpers/ctx.js';
import { FakeCap, failoverHealth, recordsHealth, registry } from '../unit/status/fixtures.js';
import { FakeSystemInfo } from '../helpers/fake-system-info.js';

/**
 * Issue 16 in Debian's chromium: the locked-cache headline (desktop and 390 px phone), and the
 * first-run wizard end to end on a real Agent (its reconfigure restarts the web server), then
 * signing in as the new admin. Screenshots: test-artifacts/setup/.
 */
const WIDTHS = [1280, 390];

const noSideScroll = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth);

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('locked records cache headline in a browser', { skip: noBrowser() }, () => {
  let ctx: TestCtx;
  let status: StatusCapability;
  let web: WebServer;
  let browser: TestBrowser;

  before(async () => {
    ctx = createTestCtx({ clock: systemClock, config: { status: { listen: '127.0.0.1', port: 0, https: false, refreshMs: 60_000 } } });
    const rec = recordsHealth(Date.now());
    const locked = new FakeCap('records', { ...rec, status: 'degraded', details: { ...rec.details, locked: true, provisioned: true, asOf: null } });
    status = new StatusCapability({ systemInfo: new FakeSystemInfo() });
    ctx.capabilities = registry([new FakeCap('failover', failoverHealth('wan', Date.now(), 'up', 'up')), locked, status]);
    await status.start(ctx);
    web = new WebServer();
    await web.start(ctx);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await web?.stop();
    await status?.stop();
    ctx?.cleanup();
  });

  for (const width of WIDTHS) {
    it(`at ${width} px: not green, says what is wrong and what to do, links Unlock, no sideways scroll`, async () => {
      const page = await browser.newPage({ width, height: 800 });
      await page.goto(`http://127.0.0.1:${web.port}/`);
      assert.equal(await page.locator('#state').getAttribute('data-level'), 'attention');
      assert.equal(await page.locator('#state .text').textContent(), 'Records cache locked after a restart - an admin must unlock it');
      const unlock = page.locator('#state a.act');
      assert.equal(await unlock.textContent(), 'Unlock');
      assert.equal(await unlock.getAttribute('href'), '/records/key');
      assert.ok(await unlock.isVisible());
      assert.match((await page.locator('#state .todo').textContent()) ?? '', /^What to do now: Ask an admin to unlock/);
      const bg = await page.locator('#state').evaluate((el) => getComputedStyle(el).backgroundColor);
      assert.notEqual(bg, 'rgb(231, 245, 234)', 'not the green background');
      assert.ok(await noSideScroll(page), 'no horizontal scroll');
      await browser.screenshot(page, 'setup', `locked-${width}`);
    });
  }
});

describe('first-run wizard end to end on a real agent', { skip: noBrowser() }, () => {
  let browser: TestBrowser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  for (const width of WIDTHS) {
    it(`at ${width} px: code, wizard, set up; the wizard is gone; sign in as the new admin`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'se-setup-e2e-'));
      const port = await freePort();
      const config = testConfig(
        {
          uplinks: [
            { name: 'wan', interface: 'wan0', kind: 'wired', priority: 1, table: 101 },
            { name: '4g', interface: 'wwan0', kind: 'cellular', priority: 2, table: 102 },
          ],
          records: { tpm: 'off' },
          status: { listen: '127.0.0.1', port, https: false, refreshMs: 60_000, setup: { required: true } },
        },
        dir,
      );
      const agent = new Agent({
        config,
        clock: systemClock,
        logSink: () => {},
        capabilities: () => [
          new FakeCap('failover', {
            ...failoverHealth('wan', Date.now(), 'up', 'up'),
          }),
          new RecordsCapability(),
          new SetupCapability(),
          new StatusCapability({ systemInfo: new FakeSystemInfo() }),
        ],
        web: { https: false },
      });
      // The fake failover reports the config's uplinks, labels included, as the real one does.
      const labelled = () => {
        const cfg = agent.context.config;
        const h = failoverHealth('wan', Date.now(), 'up', 'up');
        const ups = (h.details as { uplinks: Array<{ name: string; label?: string }> }).uplinks;
        ups[1]!.name = '4g';
        for (const u of ups) {
          const l = cfg.uplinks.find((c) => c.name === u.name)?.label;
          if (l) u.label = l;
        }
        return h;
      };
      await agent.start();
      try {
        const base = `http://127.0.0.1:${port}`;
        const page = await browser.newPage({ width, height: 900 });
        await page.goto(base + '/');
        assert.equal(await page.locator('#state').getAttribute('data-level'), 'setup');
        assert.match((await page.locator('#state .text').textContent()) ?? '', /^Not set up yet/);
        await page.locator('#state a.act', { hasText: 'Set up this box' }).click();
        await page.waitForURL(base + '/setup');
        assert.ok(await noSideScroll(page), 'code page');
        await browser.screenshot(page, 'setup', `code-${width}`);

        // The ICB engineer reads the code from the fleet's device page; here the console fallback's file.
        const code = readFileSync(join(config.paths.runDir, 'setup-code'), 'utf8').trim();
        await page.fill('#code', code.toLowerCase());
        await page.click('button[type=submit]');
        await page.waitForSelector('text=1. Your admin account');
        assert.ok(await noSideScroll(page), 'wizard page');
        await page.fill('#username', 'pm');
        await page.fill('#password', 'manager password 1');
        await page.fill('#password2', 'manager password 1');
        await page.fill('#label_wan', 'BT broadband');
        await page.fill('#label_4g', 'EE 4G backup');
        await page.fill('#passphrase', 'records passphrase 1');
        await page.fill('#passphrase2', 'records passphrase 1');
        await page.check('input[name=understood]');
        // Loopback addresses that refuse: the cache opens but cannot sync (nothing leaves this machine).
        await page.fill('#gp_base', 'https://127.0.0.1:9/gpconnect/fhir');
        await page.fill('#gp_from', '200000000001');
        await page.fill('#gp_to', '200000000002');
        await page.fill('#day_list', 'https://127.0.0.1:9/daylist/fhir');
        await browser.screenshot(page, 'setup', `wizard-${width}`);
        await page.click('button:has-text("Finish set-up")');
        await page.waitForSelector('h1:has-text("This box is set up")');
        assert.ok(await noSideScroll(page), 'done page');

        // Reconfigure restarts the web server a moment later: wait until it answers on the new config.
        const deadline = Date.now() + 15_000;
        while (Date.now() < deadline) {
          if (agent.context.config.uplinks[0]?.label === 'BT broadband') break;
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.equal(agent.context.config.uplinks[0]?.label, 'BT broadband', 'labels applied through reconfigure');
        (agent.get('failover') as unknown as FakeCap).h = labelled();

        // The wizard is gone and the code spent.
        const gone = await page.goto(base + '/setup');
        assert.equal(gone?.status(), 404);

        await page.goto(base + '/login?next=%2Fadmin%2Fusers');
        await page.fill('#username', 'pm');
        await page.fill('#password', 'manager password 1');
        await page.click('button[type=submit]');
        await page.waitForURL(base + '/admin/users');
        assert.match((await page.locator('h1').textContent()) ?? '', /Staff accounts/);
        assert.match((await page.locator('table.users').textContent()) ?? '', /pm.*Admin/);
        assert.ok(await noSideScroll(page), 'admin screen');
        await browser.screenshot(page, 'setup', `admin-${width}`);

        // Back on the status page: no longer "not set up"; the records key exists and the cache is open
        // but has never synced, which is not green either; the uplinks carry the practice's names.
        await page.goto(base + '/');
        const level = await page.locator('#state').getAttribute('data-level');
        assert.notEqual(level, 'setup');
        assert.notEqual(level, 'normal');
        assert.match((await page.locator('#state .text').textContent()) ?? '', /Records cache has never synced/);
        assert.match((await page.locator('#c-uplinks').locator('..').textContent()) ?? '', /BT broadband/);
        assert.ok(await noSideScroll(page), 'status page');
        await browser.screenshot(page, 'setup', `status-after-${width}`);
      } finally {
        await agent.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
