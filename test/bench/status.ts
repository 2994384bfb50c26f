/**
 * Status page benchmark: first-load bytes (transferred, as chromium counts them) and first
 * render time (navigation start -> first contentful paint) over HTTPS on loopback, plus the
 * live-update latency (failover event on the bus -> state line changed in the page).
 * Prints one JSON line per figure. Run: make bench-status
 */
import { createUser } from '../../agent/src/auth/index.js';
import { systemClock } from '../../common/clock.js';
import { ProcessRunner } from '../../agent/src/platform/command.js';
import { StatusCapability } from '../../agent/src/status/status.js';
import { WebServer } from '../../agent/src/web/server.js';
import { launchChromium, requireChromium as noBrowser } from '../helpers/browser.js';
import { createTestCtx } from '../helpers/ctx.js';
import { cellularHealth, FakeCap, FakeFailover, recordsHealth, registry, telemetryHealth } from '../unit/status/fixtures.js';
import { FakeSystemInfo } from '../helpers/fake-system-info.js';

const RUNS = Number(process.env.RUNS ?? 10);
const out = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ bench: 'status', ...o }) + '\n');
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { n: s.length, min: +s[0]!.toFixed(1), p50: +q(0.5).toFixed(1), p95: +q(0.95).toFixed(1), max: +s.at(-1)!.toFixed(1) };
};

if (noBrowser()) {
  out({ skipped: noBrowser() });
  process.exit(0);
}

const ctx = createTestCtx({ clock: systemClock, config: { status: { listen: '127.0.0.1', port: 0, refreshMs: 60_000 } } });
ctx.platform = { ...ctx.platform, commands: new ProcessRunner() };
const failover = new FakeFailover(() => ctx.bus);
const drills = new FakeCap('drills', {
  status: 'ok',
  summary: 'last drill passed',
  details: {
    last: {
      id: 'x',
      at: Date.now() - 86400_000,
      passed: true,
      steps: [
        { name: 'lte end-to-end', passed: true, detail: '5/5 probes' },
        { name: 'records cache freshness', passed: true, detail: 'as of 06:00' },
      ],
    },
    next: Date.now() + 6 * 86400_000,
    running: false,
    lines: [],
  },
});
const status = new StatusCapability({ systemInfo: new FakeSystemInfo() });
ctx.capabilities = registry([
  new FakeCap('cellular', cellularHealth()),
  failover,
  new FakeCap('records', recordsHealth(Date.now() - 600_000)),
  new FakeCap('telemetry', telemetryHealth()),
  drills,
  status,
]);
createUser(ctx.db, 'admin', 'correct horse battery', 'admin');
await status.start(ctx);
const web = new WebServer();
await web.start(ctx);
const base = `https://127.0.0.1:${web.port}/`;
const browser = await launchChromium();
try {
  const fcp: number[] = [];
  const bytes: number[] = [];
  const decoded: number[] = [];
  for (let i = 0; i < RUNS + 1; i++) {
    // Fresh context each time: a cold first load, no cache.
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(base, { waitUntil: 'load' });
    // A string, not a function: tsx's name-keeping helper (__name) does not exist in the page.
    const m = (await page.evaluate(
      `new Promise((resolve) => {
      const done = (fcpMs) => {
        const nav = performance.getEntriesByType('navigation')[0];
        const res = performance.getEntriesByType('resource');
        resolve({ fcp: fcpMs, transfer: nav.transferSize + res.reduce((a, r) => a + r.transferSize, 0), decoded: nav.decodedBodySize + res.reduce((a, ` +
        `r) => a + r.decodedBodySize, 0) });
      };
      const e = performance.getEntriesByName('first-contentful-paint')[0];
      if (e) done(e.startTime);
      else new PerformanceObserver((l) => done(l.getEntries()[0].startTime)).observe({ type: 'paint', buffered: true });
    })`,
    )) as { fcp: number; transfer: number; decoded: number };
    // Run 0 warms the server (JIT, TLS session setup); it is not counted.
    if (i > 0) {
      fcp.push(m.fcp);
      bytes.push(m.transfer);
      decoded.push(m.decoded);
    }
    await context.close();
  }
  out({ figure: 'first_load_transferred_bytes', ...stats(bytes), budget: 150 * 1024 });
  out({ figure: 'first_load_decoded_body_bytes', ...stats(decoded) });
  out({ figure: 'first_contentful_paint_ms', ...stats(fcp) });

  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(base, { waitUntil: 'load' });
  await page.waitForTimeout(300);
  const live: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const to = i % 2 === 0 ? 'lte' : 'wan';
    const want = to === 'lte' ? 'backup' : 'normal';
    const t0 = performance.now();
    failover.switchTo(to, Date.now(), to === 'lte' ? 'down' : 'up', 'up');
    // A function (page CSP forbids eval of strings); no inner named functions (see above).
    await page.waitForFunction((w) => document.getElementById('state')?.getAttribute('data-level') === w, want, { timeout: 5000, polling: 10 });
    live.push(performance.now() - t0);
  }
  out({ figure: 'live_update_event_to_dom_ms', ...stats(live), note: 'includes the 50 ms coalescing delay and 10 ms polling' });
  await context.close();

  const api: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t0 = performance.now();
    const r = await web.app!.inject({ url: '/metrics' });
    if (r.statusCode !== 200) throw new Error('metrics failed');
    api.push(performance.now() - t0);
  }
  out({ figure: 'metrics_render_ms', ...stats(api) });
} finally {
  await browser.close();
  await web.stop();
  await status.stop();
  ctx.cleanup();
}
