import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { systemClock } from '../../common/clock.js';
import { StatusCapability } from '../../agent/src/status/status.js';
import { WebServer } from '../../agent/src/web/server.js';
import { launchChromium, requireChromium as noBrowser } from '../helpers/browser.js';
import { createTestCtx, type TestCtx } from '../helpers/ctx.js';
import { cellularHealth, FakeCap, failoverHealth, registry } from '../unit/status/fixtures.js';
import { FakeSystemInfo } from '../helpers/fake-system-info.js';

/**
 * Issue 20's words on the status page in Debian's chromium: DNS not answering on a named line,
 * a slow line, and the real failback time, at desktop width and at 390 px with no horizontal
 * scroll. Screenshots go to test-artifacts/status/.
 */
const ART = 'test-artifacts/status';

describe('status page: DNS, slow and failback words in a browser', { skip: noBrowser() }, () => {
  let ctx: TestCtx;
  let status: StatusCapability;
  let web: WebServer;
  let failover: FakeCap;
  let browser: Browser;
  let base: string;

  const set = (active: string, wan: Record<string, unknown>, lte: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const h = failoverHealth(active, Date.now() - 60_000, 'up', 'up');
    const d = h.details as { uplinks: Record<string, unknown>[] } & Record<string, unknown>;
    d.uplinks[0] = { ...d.uplinks[0], label: 'BT broadband', ...wan };
    d.uplinks[1] = { ...d.uplinks[1], label: 'EE 4G', ...lte };
    Object.assign(d, extra);
    failover.h = h;
  };

  before(async () => {
    mkdirSync(ART, { recursive: true });
    ctx = createTestCtx({ clock: systemClock, config: { status: { listen: '127.0.0.1', port: 0, refreshMs: 60_000 } } });
    failover = new FakeCap('failover', failoverHealth('wan', Date.now(), 'up', 'up'));
    status = new StatusCapability({ systemInfo: new FakeSystemInfo() });
    ctx.capabilities = registry([new FakeCap('cellular', cellularHealth()), failover, status]);
    const { ProcessRunner } = await import('../../agent/src/platform/command.js');
    ctx.platform = { ...ctx.platform, commands: new ProcessRunner() };
    await status.start(ctx);
    web = new WebServer();
    await web.start(ctx);
    base = `https://127.0.0.1:${web.port}`;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await web?.stop();
    await status?.stop();
    ctx?.cleanup();
  });

  for (const width of [1000, 390]) {
    it(`at ${width} px: DNS not answering and the failback time in words, no horizontal scroll`, async () => {
      const page = await browser.newPage({ ignoreHTTPSErrors: true, viewport: { width, height: 900 } });
      try {
        const back = Date.now() + 40 * 60_000;
        set('lte', { state: 'degraded', dns: 'failing' }, { state: 'up' }, { failbackAt: back });
        await page.goto(base + '/');
        const body = (await page.locator('body').textContent()) ?? '';
        // the practice named its 4G line 'EE 4G': the headline uses the practice's own words
        assert.match(body, /Internet down - running on EE 4G since \d\d:\d\d/);
        assert.match(body, /DNS not answering on BT broadband/);
        assert.match(body, /Back on BT broadband at \d\d:\d\d if it stays working/);
        assert.match(body, /DNS not answering;/);
        const scroll = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        assert.ok(scroll <= 0, `horizontal scroll of ${scroll} px`);
        await page.screenshot({ path: `${ART}/dns-failing-${width}.png`, fullPage: true });

        set('wan', { state: 'slow', latencyMs: 512 }, { state: 'up' });
        await page.goto(base + '/');
        assert.match(
          (await page.locator('#state .text').textContent()) ?? '',
          /Internet working - Internet connection is slow \(BT broadband: 512 ms round trip\)/,
        );
        assert.match((await page.locator('body').textContent()) ?? '', /Slow/);
        const scroll2 = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        assert.ok(scroll2 <= 0, `horizontal scroll of ${scroll2} px`);
        await page.screenshot({ path: `${ART}/slow-${width}.png`, fullPage: true });
      } finally {
        await page.close();
      }
    });
  }
});
