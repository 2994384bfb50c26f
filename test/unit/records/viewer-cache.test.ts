import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createUser } from '../../../agent/src/auth/index.js';
import { RecordsStore } from '../../../agent/src/records/store.js';
import { RecordsFrontDesk } from '../../../agent/src/records/viewer/index.js';
import { buildWebApp } from '../../../agent/src/web/app.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FIX, seedViewerStore } from './viewer-fixture.js';

/**
 * The viewer keeps rendered day lists and summaries between views (speed under 20 viewers). These
 * prove that a kept page is never served once the data under it changed, however it changed (a sync
 * through this store, an unchanged re-fetch, another connection to the file), and that every view
 * is still audited and gets its own CSRF token, fresh idempotency keys and current arrivals.
 */
const DATE = '2026-11-27';
const PW = 'correct horse battery staple';

describe('records viewer page caches', () => {
  let ctx: TestCtx;
  let clock: FakeClock;
  let store: RecordsStore;
  let desk: RecordsFrontDesk;
  let app: FastifyInstance;
  let dbPath: string;
  const key = randomBytes(32);
  const sessions: Record<string, { cookie: string; csrf: string }> = {};

  before(async () => {
    clock = new FakeClock(Date.parse(`${DATE}T09:00:00Z`));
    ctx = createTestCtx({ clock, config: { records: { timeZone: 'Europe/London' }, status: { https: false, auth: { idleTimeoutMs: 4 * 3600_000 } } } });
    dbPath = join(ctx.dir, 'records.db');
    store = RecordsStore.open(dbPath, { key });
    seedViewerStore(store, DATE, Date.parse(`${DATE}T08:30:00Z`), clock.now() - 10 * 60_000);
    desk = new RecordsFrontDesk(() => store);
    desk.start(ctx);
    app = await buildWebApp(ctx, { https: false });
    for (const [name, role] of [
      ['clin1', 'clinician'],
      ['clin2', 'clinician'],
      ['rec', 'reception'],
    ] as const) {
      createUser(ctx.db, name, PW, role);
      const r = await app.inject({ method: 'POST', url: '/login', payload: { username: name, password: PW } });
      assert.equal(r.statusCode, 200, r.body);
      sessions[name] = { cookie: String(r.headers['set-cookie']).split(';')[0]!, csrf: (r.json() as { csrf: string }).csrf };
    }
  });
  after(async () => {
    await app.close();
    await desk.stop();
    store.close();
    ctx.cleanup();
  });

  const get = (who: string, url: string) => app.inject({ method: 'GET', url, headers: { cookie: sessions[who]!.cookie, accept: 'text/html' } });
  const audits = () => (store.db.prepare('SELECT count(*) AS n FROM rec_audit').get() as { n: number }).n;
  const full = () => store.patientSummary(FIX.full.id)!;

  it('serves a changed summary at once after a sync rewrote it, and audits every view', async () => {
    const n0 = audits();
    const a = await get('clin1', `/records/patient?id=${FIX.full.id}`);
    const b = await get('clin1', `/records/patient?id=${FIX.full.id}`);
    assert.match(a.body, /Ramipril 5mg capsules/);
    assert.equal(a.body, b.body, 'same data, same page');
    const s = full();
    s.medications[0]!.name = 'Lisinopril 10mg tablets';
    store.putPatient({ summary: s, hash: 'h1-changed', etag: null, lastUpdated: null });
    const c = await get('clin1', `/records/patient?id=${FIX.full.id}`);
    assert.match(c.body, /Lisinopril 10mg tablets/);
    assert.doesNotMatch(c.body, /Ramipril/);
    assert.equal(audits() - n0, 3, 'one audit entry per view, cached or not');
  });

  it('shows the new fetch time after an unchanged re-fetch (same hash, new fetched_at)', async () => {
    const before = await get('clin1', `/records/patient?id=${FIX.full.id}`);
    const t = Date.parse(`${DATE}T09:41:00Z`);
    store.touchPatient(FIX.full.id, t);
    const after = await get('clin1', `/records/patient?id=${FIX.full.id}`);
    assert.doesNotMatch(before.body, /fetched at 09:41/);
    assert.match(after.body, /This record fetched at 09:41/);
  });

  it('answers 404 (audited) for a summary withheld after it was viewed', async () => {
    assert.equal((await get('clin1', `/records/patient?id=${FIX.plain.id}`)).statusCode, 200);
    store.withholdPatient(FIX.plain.id, 'restricted', clock.now());
    const r = await get('clin1', `/records/patient?id=${FIX.plain.id}`);
    assert.equal(r.statusCode, 404);
    assert.doesNotMatch(r.body, /FIXTURE, Bob/);
    const last = store.db.prepare('SELECT action, patient_id AS p FROM rec_audit ORDER BY seq DESC LIMIT 1').get();
    assert.deepEqual({ ...(last as object) }, { action: 'lookup.not-cached', p: FIX.plain.id });
  });

  it('gives each day list view its own CSRF token and fresh keys, and current arrivals', async () => {
    const keys = (body: string) => [...body.matchAll(/name="key" value="([^"]+)"/g)].map((m) => m[1]);
    const a = await get('clin1', `/records/day?date=${DATE}`);
    const b = await get('clin1', `/records/day?date=${DATE}`);
    const c = await get('clin2', `/records/day?date=${DATE}`);
    assert.ok(keys(a.body).length >= 2);
    assert.equal(new Set([...keys(a.body), ...keys(b.body)]).size, keys(a.body).length * 2, 'keys are never reused between views');
    assert.ok(a.body.includes(sessions.clin1!.csrf) && !a.body.includes(sessions.clin2!.csrf));
    assert.ok(c.body.includes(sessions.clin2!.csrf) && !c.body.includes(sessions.clin1!.csrf));
    const form = new URLSearchParams({ _csrf: sessions.clin1!.csrf, key: keys(a.body)[0]!, patient: FIX.full.id, appointment: 'a1', back: '/records/day' });
    const r = await app.inject({
      method: 'POST',
      url: '/records/capture/arrival',
      headers: { cookie: sessions.clin1!.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form.toString(),
    });
    assert.equal(r.statusCode, 303, r.body);
    const d = await get('clin1', `/records/day?date=${DATE}`);
    assert.match(d.body, /Arrived \(recorded\)/);
  });

  it('keeps reception and clinicians on their own links (role is part of the key)', async () => {
    const clin = await get('clin1', `/records/day?date=${DATE}`);
    const rec = await get('rec', `/records/day?date=${DATE}`);
    assert.match(clin.body, /\/records\/patient\?id=9990000018/);
    assert.doesNotMatch(rec.body, /\/records\/patient\?id=/);
    assert.match(rec.body, /\/records\/patient\/demographics\?id=9990000018/);
  });

  it('reflects a summary arriving for a booked patient (the day list links it)', async () => {
    const before = await get('clin1', `/records/day?date=${DATE}&clinician=c2`);
    assert.match(before.body, /Record withheld \(sensitive\)/);
    const s = full();
    s.patient = { ...s.patient, id: FIX.withheld.id, nhsNumber: FIX.withheld.id, name: 'UNWITHHELD, Dora' };
    store.putPatient({ summary: s, hash: 'h4', etag: null, lastUpdated: null });
    const after = await get('clin1', `/records/day?date=${DATE}&clinician=c2`);
    assert.doesNotMatch(after.body, /Record withheld \(sensitive\)/);
    assert.match(after.body, new RegExp(`/records/patient\\?id=${FIX.withheld.id}`));
  });

  it('sees a change committed by another connection to the file (PRAGMA data_version)', async () => {
    const before = await get('clin1', `/records/day?date=${DATE}`);
    assert.match(before.body, /SAMPLE, Carla/);
    const other = RecordsStore.open(dbPath, { key });
    try {
      other.replaceDayList(
        DATE,
        store.dayList(DATE).filter((e) => e.patientId !== FIX.third.id),
        clock.now(),
      );
    } finally {
      other.close();
    }
    const after = await get('clin1', `/records/day?date=${DATE}`);
    assert.doesNotMatch(after.body, /SAMPLE, Carla/);
    const sum = await get('clin1', `/records/patient?id=${FIX.full.id}`);
    assert.equal(sum.statusCode, 200);
  });
});
