import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createUser } from '../../agent/src/auth/index.js';
import { RecordsCapability } from '../../agent/src/records/records.js';
import { buildWebApp } from '../../agent/src/web/app.js';
import { startFhirServer, type FhirServer } from '../fhir-server/server.js';
import { launchBrowser, requireChromium, type TestBrowser } from '../helpers/browser.js';
import { createTestCtx, type TestCtx } from '../helpers/ctx.js';

/**
 * The whole records path in a browser: the records capability syncs a synthetic practice from the
 * local FHIR test server into the encrypted store, the viewer shows it, and a call logged in the
 * browser is forwarded to a capture endpoint and shown ACCEPTED. Screenshots: test-artifacts/records/.
 */
const PW = 'synced e2e password';

describe('records viewer on a synced synthetic practice', { skip: requireChromium() }, () => {
  let fhir: FhirServer;
  let upstream: Server;
  const filed = new Map<string, { kind: string; provenance: { author: string } }>();
  let ctx: TestCtx;
  let cap: RecordsCapability;
  let app: FastifyInstance;
  let base: string;
  let b: TestBrowser;

  before(async () => {
    fhir = await startFhirServer({ practice: { patients: 600, clinicians: 4, perClinicianPerDay: 10 } });
    upstream = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        filed.set(String(req.headers['idempotency-key']), JSON.parse(body) as { kind: string; provenance: { author: string } });
        res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ ref: 'EMIS-1' }));
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    ctx = createTestCtx({
      config: {
        records: {
          enabled: true,
          retries: 0,
          gpconnect: { baseUrl: fhir.gpcBase, fromAsid: '200000000359', toAsid: '918999198738' },
          dayList: { source: 'fhir', fhirBaseUrl: fhir.r4Base },
          capture: { upstreamUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/captures` },
        },
        status: { https: false },
      },
    });
    cap = new RecordsCapability();
    await cap.start(ctx);
    await cap.provision('e2e operator passphrase');
    const res = await cap.syncNow();
    assert.ok(res && res.patients > 0 && res.errors === 0, `sync: ${JSON.stringify(res)}`);
    createUser(ctx.db, 'drsmith', PW, 'clinician');
    app = await buildWebApp(ctx, { https: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    b = await launchBrowser();
  });
  after(async () => {
    await b?.close();
    await app?.close();
    await cap?.stop();
    ctx?.cleanup();
    upstream?.close();
    await fhir?.close();
  });

  it('clinician opens a synced day list and a patient, logs a call that is forwarded and accepted', async () => {
    const page = await b.newPage({ width: 1180, height: 820 }); // tablet landscape
    await page.goto(`${base}/records/day`);
    await page.fill('#username', 'drsmith');
    await page.fill('#password', PW);
    await page.click('main button[type=submit]');
    await page.waitForURL((u) => u.pathname === '/records/day');
    assert.match(await page.locator('.asof').innerText(), /^Records as of \d\d:\d\d$/);
    const clinicians = await page.locator('#clinician option').count();
    assert.equal(clinicians, 5, 'All + 4 clinicians');
    await page.selectOption('#clinician', { index: 1 });
    await Promise.all([page.waitForURL(/clinician=/), page.click('form.inline button')]);
    const links = page.locator('tbody a[href^="/records/patient?id="]');
    assert.ok((await links.count()) >= 5, 'booked patients with cached summaries are linked');
    await b.screenshot(page, 'records', 'synced-day-list');

    const name = await links.first().innerText();
    await Promise.all([page.waitForURL(/\/records\/patient\?id=/), links.first().click()]);
    assert.ok((await page.locator('#demo-h').innerText()).startsWith(name), 'summary of the patient clicked');
    for (const h of ['allergy-h', 'med-h', 'prob-h', 'res-h', 'imm-h']) assert.equal(await page.locator(`#${h}`).count(), 1, h);
    assert.match(await page.locator('.asof').innerText(), /^Records as of \d\d:\d\d$/);
    await b.screenshot(page, 'records', 'synced-summary');

    await Promise.all([page.waitForURL(/capture\/call/), page.click('main >> text=Log a call')]);
    await page.fill('#caller', 'Synthetic caller');
    await page.fill('#summary', 'Asks whether blood results are back.');
    await Promise.all([page.waitForURL(/\/records\/captures\?saved=/), page.click('button.primary')]);
    const key = new URL(page.url()).searchParams.get('saved')!;
    // The forwarder was kicked by the capture: wait for the endpoint to have it, then reload.
    for (let i = 0; i < 100 && !filed.has(key); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(filed.get(key)?.kind, 'call');
    assert.equal(filed.get(key)?.provenance.author, 'drsmith');
    await page.reload();
    assert.match(await page.locator('[role=status]').innerText(), /state ACCEPTED/);
    await b.screenshot(page, 'records', 'synced-capture-accepted');
    await page.close();
  });
});
