import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { stringify } from 'yaml';
import { CHROMIUM, requireChromium } from '../../helpers/browser.js';
import { requireRoot } from '../../helpers/ctx.js';

/**
 * The real agent in A1's namespace lab (test/lab/lab.ts), seen from a browser running on the
 * practice LAN (inside the lab's LAN namespace, as a receptionist's PC would):
 *  - the page goes from "All systems normal" to "on 4G backup" within 2 s of the agent's
 *    switch when the primary link is cut, and back when it is restored;
 *  - `surgery-edge drill` passes with 4G healthy and fails naming the 4G step when 4G is broken.
 */
const LAB_FILE = resolve('test/lab/lab.ts');
const ART = 'test-artifacts/status';
const skip = requireRoot() || (!existsSync(LAB_FILE) ? 'the namespace lab (test/lab/lab.ts) is not in this checkout' : false) || requireChromium();

// Local view of the lab API (test/lab/lab.ts header): keeps this file compiling where the lab is absent.
interface LabAgent {
  waitForLog(pred: (e: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}
interface Lab {
  ns: { lan: string; app: string };
  up(): Promise<void>;
  down(): Promise<void>;
  cutCarrier(isp: 'primary' | 'cellular'): Promise<void>;
  blackhole(isp: 'primary' | 'cellular'): Promise<void>;
  restore(isp: 'primary' | 'cellular'): Promise<void>;
  agentConfig(overrides?: Record<string, unknown>): Record<string, unknown>;
  startAgent(opts?: { config?: Record<string, unknown> }): Promise<LabAgent>;
}
interface LabMod {
  createLab(opts: { prefix: string }): Lab;
  LAB: { lanGateway: string };
}

describe('status page and drills in the lab', { skip, timeout: 240_000 }, () => {
  let lab: Lab;
  let agent: LabAgent;
  let browser: Browser;
  let page: Page;
  let tmp: string;
  let cfgFile: string;
  let url: string;

  before(async () => {
    const { createLab, LAB } = (await import(LAB_FILE)) as LabMod;
    lab = createLab({ prefix: 'ld' });
    await lab.up();
    tmp = mkdtempSync(join(tmpdir(), 'ld-lab-'));
    // No modem in the lab: cellular's own modem step is covered by its tests (docs/cellular.md);
    // the end-to-end 4G proof is failover's step, which is what this test is about.
    const cfg = { status: { listen: '0.0.0.0', port: 8443, refreshMs: 3000 }, cellular: { enabled: false } };
    agent = await lab.startAgent({ config: cfg });
    // Same paths as the running agent: the CLI finds its runDir (port, token) and stateDir (cert).
    cfgFile = join(tmp, 'cli.yaml');
    writeFileSync(cfgFile, stringify(lab.agentConfig(cfg)));
    await agent.waitForLog((e) => e.msg === 'status page listening', 60_000);
    await agent.waitForLog((e) => typeof e.msg === 'string' && e.msg.startsWith('switched') && e.to === 'wan', 60_000);
    // A LAN PC's browser: chromium started inside the LAN namespace.
    const wrapper = join(tmp, 'chromium-in-lan');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${lab.ns.lan} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    browser = await chromium.launch({ executablePath: wrapper, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    page = await browser.newPage({ ignoreHTTPSErrors: true, viewport: { width: 1000, height: 900 } });
    url = `https://${LAB.lanGateway}:8443/`;
    mkdirSync(ART, { recursive: true });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await agent?.stop().catch(() => {});
    await lab?.down().catch(() => {});
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  // A LAN PC's user reloads when the browser reports its network changed under it; the test does
  // the same once, rather than failing on the browser's own netlink noise.
  const open = async () => {
    try {
      await page.goto(url);
    } catch (e) {
      if (!/ERR_NETWORK_CHANGED|interrupted by another navigation/.test(String(e))) throw e;
      await page.goto(url);
    }
  };
  const level = () => page.locator('#state').getAttribute('data-level');
  const waitLevel = (l: string, ms: number) =>
    page.waitForFunction((w) => document.getElementById('state')?.getAttribute('data-level') === w, l, { timeout: ms, polling: 20 }).then(() => Date.now());

  it('the page changes live within 2 s of the lab failing over to 4G, and back', async () => {
    await open();
    assert.equal(await level(), 'normal');
    assert.equal(await page.locator('#state .text').textContent(), 'All systems normal');
    await page.screenshot({ path: `${ART}/lab-normal.png`, fullPage: true });

    const shown = waitLevel('backup', 60_000);
    const switched = agent.waitForLog((e) => typeof e.msg === 'string' && e.msg.startsWith('switched') && e.to === '4g', 60_000);
    await lab.cutCarrier('primary');
    const [shownAt, sw] = await Promise.all([shown, switched]);
    const lag = shownAt - (sw.receivedAt as number);
    process.stdout.write(`# lab: page showed 4G backup ${lag} ms after the agent switched\n`);
    assert.ok(lag < 2000, `page updated ${lag} ms after the switch`);
    assert.match((await page.locator('#state .text').textContent()) ?? '', /^Internet down - running on 4G backup since \d\d:\d\d$/);
    await page.screenshot({ path: `${ART}/lab-backup.png`, fullPage: true });

    await lab.restore('primary');
    await waitLevel('normal', 90_000);
  });

  it('drill passes with 4G healthy and fails naming the 4G step when 4G is broken', async () => {
    const drill = () =>
      spawnSync('ip', ['netns', 'exec', lab.ns.app, resolve('agent/bin/surgery-edge'), 'drill', '--config', cfgFile], { encoding: 'utf8', timeout: 120_000 });
    const ok = drill();
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /PASSED/);
    assert.match(ok.stdout, /\[ok {2}\] uplink 4g carries traffic/);

    await lab.blackhole('cellular');
    const bad = drill();
    assert.equal(bad.status, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, /FAILED/);
    assert.match(bad.stdout, /\[FAIL\] uplink 4g carries traffic: 0\/\d+ targets answered/);
    await open();
    await page.waitForFunction(() => /Last backup drill failed: uplink 4g carries traffic/.test(document.body.textContent ?? ''), undefined, {
      timeout: 10_000,
    });
    await page.screenshot({ path: `${ART}/lab-drill-failed.png`, fullPage: true });
    await lab.restore('cellular');
  });
});
