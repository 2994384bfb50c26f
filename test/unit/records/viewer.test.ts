import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createUser } from '../../../agent/src/auth/index.js';
import { TIMESYNC_FLAG } from '../../../agent/src/platform/clock-sync.js';
import { RecordsStore } from '../../../agent/src/records/store.js';
import { clockBanner } from '../../../agent/src/records/viewer/format.js';
import { RecordsFrontDesk } from '../../../agent/src/records/viewer/index.js';
import { buildWebApp } from '../../../agent/src/web/app.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FIX, seedViewerStore } from './viewer-fixture.js';

const DATE = '2026-11-27';
const PW = 'correct horse battery staple';

describe('records viewer (inject)', () => {
  let ctx: TestCtx;
  let clock: FakeClock;
  let store: RecordsStore | null;
  let desk: RecordsFrontDesk;
  let app: FastifyInstance;
  const sessions: Record<string, { cookie: string; csrf: string }> = {};

  before(async () => {
    clock = new FakeClock(Date.parse(`${DATE}T09:00:00Z`));
    ctx = createTestCtx({
      clock,
      config: { records: { staleAfterMs: 45 * 60_000, timeZone: 'Europe/London' }, status: { https: false, auth: { idleTimeoutMs: 4 * 3600_000 } } },
    });
    store = RecordsStore.open(join(ctx.dir, 'records.db'), { key: randomBytes(32) });
    seedViewerStore(store, DATE, Date.parse(`${DATE}T08:30:00Z`), clock.now() - 10 * 60_000);
    desk = new RecordsFrontDesk(() => store);
    desk.start(ctx);
    app = await buildWebApp(ctx, { https: false });
    for (const role of ['admin', 'clinician', 'reception'] as const) {
      createUser(ctx.db, role, PW, role);
      const r = await app.inject({ method: 'POST', url: '/login', payload: { username: role, password: PW } });
      assert.equal(r.statusCode, 200, r.body);
      sessions[role] = { cookie: String(r.headers['set-cookie']).split(';')[0]!, csrf: (r.json() as { csrf: string }).csrf };
    }
  });
  after(async () => {
    await app.close();
    await desk.stop();
    store?.close();
    ctx.cleanup();
  });

  const get = (role: string, url: string) => app.inject({ method: 'GET', url, headers: { cookie: sessions[role]!.cookie, accept: 'text/html' } });
  const post = (role: string, url: string, form: Record<string, string>, csrf = true) =>
    app.inject({
      method: 'POST',
      url,
      headers: { cookie: sessions[role]!.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ ...form, ...(csrf ? { _csrf: sessions[role]!.csrf } : {}) }).toString(),
    });
  const auditActions = () =>
    store!.db.prepare('SELECT user, role, action, patient_id AS p FROM rec_audit ORDER BY seq').all() as {
      user: string;
      role: string;
      action: string;
      p: string | null;
    }[];

  it('sends a signed-out browser to the login page', async () => {
    const r = await app.inject({ method: 'GET', url: '/records/day', headers: { accept: 'text/html' } });
    assert.equal(r.statusCode, 303);
    assert.match(String(r.headers.location), /^\/login\?next=/);
  });

  it('shows reception the day list with "as of", and audits the view', async () => {
    const before = auditActions().length;
    const r = await get('reception', `/records/day?date=${DATE}`);
    assert.equal(r.statusCode, 200);
    assert.match(r.body, /Records as of <strong>08:50<\/strong>/);
    assert.doesNotMatch(r.body, /STALE/);
    assert.match(r.body, /TESTWOOD, Amelia Rose/);
    assert.match(r.body, /999 000 0018/);
    assert.match(r.body, /Record withheld \(sensitive\)/);
    // reception links go to demographics, not the clinical summary
    assert.match(r.body, /\/records\/patient\/demographics\?id=9990000018/);
    assert.doesNotMatch(r.body, /\/records\/patient\?id=/);
    const one = await get('reception', `/records/day?date=${DATE}&clinician=c2`);
    assert.doesNotMatch(one.body, /TESTWOOD/);
    assert.match(one.body, /SAMPLE, Carla/);
    const a = auditActions().slice(before);
    assert.deepEqual(
      a.map((x) => [x.user, x.action]),
      [
        ['reception', 'view.day-list'],
        ['reception', 'view.day-list'],
      ],
    );
  });

  it('refuses reception the clinical summary (403) and audits the refusal', async () => {
    const r = await get('reception', `/records/patient?id=${FIX.full.id}`);
    assert.equal(r.statusCode, 403);
    assert.doesNotMatch(r.body, /Penicillin|Ramipril/);
    assert.deepEqual(auditActions().at(-1), { user: 'reception', role: 'reception', action: 'access.denied', p: FIX.full.id });
    const d = await get('reception', `/records/patient/demographics?id=${FIX.full.id}`);
    assert.equal(d.statusCode, 200);
    assert.match(d.body, /1 Test Street/);
    assert.doesNotMatch(d.body, /Penicillin|Ramipril/);
  });

  it('shows a clinician the summary with allergies, current medications and last issue, warnings', async () => {
    const r = await get('clinician', `/records/patient?id=${FIX.full.id}`);
    assert.equal(r.statusCode, 200);
    assert.match(r.body, /Penicillin V - Anaphylaxis/);
    assert.doesNotMatch(r.body, /Latex/); // resolved allergy is not in the current list
    assert.match(r.body, /Ramipril 5mg capsules/);
    assert.match(r.body, /30 Oct 2026/);
    assert.doesNotMatch(r.body, /Amoxicillin 500mg/); // completed course
    assert.match(r.body, /Essential hypertension/);
    assert.match(r.body, /Serum potassium/);
    assert.match(r.body, /Influenza vaccine/);
    assert.match(r.body, /Incomplete record[\s\S]*transfer from previous GP practice/);
    assert.match(r.body, /Records as of <strong>08:50/);
    assert.deepEqual(auditActions().at(-1), { user: 'clinician', role: 'clinician', action: 'view.summary', p: FIX.full.id });
    assert.equal((await get('clinician', '/records/patient?id=0000000000')).statusCode, 404);
  });

  it('audits lookups of patients who are not cached (404s), so probing for a patient leaves a trace', async () => {
    const probe = '9434765919';
    const cases: [string, string, number][] = [
      ['clinician', `/records/patient?id=${probe}`, 404],
      ['reception', `/records/patient/demographics?id=${probe}`, 404],
      ['clinician', `/records/capture/note?patient=${probe}`, 404],
      ['reception', `/records/capture/call?patient=${probe}`, 200],
    ];
    for (const [role, url, status] of cases) {
      const before = auditActions().length;
      const r = await get(role, url);
      assert.equal(r.statusCode, status, url);
      assert.deepEqual(auditActions().slice(before), [{ user: role, role, action: 'lookup.not-cached', p: probe }], url);
    }
    // Empty id: still a 404 and still audited (with no patient).
    const before = auditActions().length;
    assert.equal((await get('clinician', '/records/patient?id=')).statusCode, 404);
    assert.deepEqual(auditActions().slice(before), [{ user: 'clinician', role: 'clinician', action: 'lookup.not-cached', p: null }]);
    // And the 404 is refused like any view when the audit cannot be written.
    store!.db.exec(`CREATE TRIGGER fail_audit2 BEFORE INSERT ON rec_audit BEGIN SELECT RAISE(ABORT, 'audit write failed'); END`);
    try {
      assert.equal((await get('clinician', `/records/patient?id=${probe}`)).statusCode, 500);
    } finally {
      store!.db.exec('DROP TRIGGER fail_audit2');
    }
  });

  it('searches by name, NHS number and DOB', async () => {
    assert.match((await get('reception', '/records/search?q=testwood')).body, /TESTWOOD/);
    assert.match((await get('reception', '/records/search?q=999+000+0026')).body, /FIXTURE, Bob/);
    const dob = (await get('clinician', '/records/search?q=06%2F05%2F1980')).body;
    assert.match(dob, /FIXTURE, Bob/);
    assert.match(dob, /SAMPLE, Carla/);
    assert.match(dob, /2 found/);
    assert.equal(auditActions().at(-1)!.action, 'view.search');
  });

  it('captures a note with CSRF; a resubmitted form is one item; reception may not write notes', async () => {
    const form = await get('clinician', `/records/capture/note?patient=${FIX.plain.id}`);
    assert.equal(form.statusCode, 200);
    const key = /name="key" value="([0-9A-Z]{26})"/.exec(form.body)![1]!;
    const fields = { key, patient: FIX.plain.id, consultationType: 'telephone', history: 'Cough for 3 days', plan: '' };
    assert.equal((await post('clinician', '/records/capture/note', fields, false)).statusCode, 403);
    const r1 = await post('clinician', '/records/capture/note', fields);
    assert.equal(r1.statusCode, 303, r1.body);
    assert.equal(r1.headers.location, `/records/captures?saved=${key}`);
    assert.equal((await post('clinician', '/records/capture/note', fields)).statusCode, 303);
    const n = store!.db.prepare('SELECT count(*) AS n FROM rec_captures WHERE id = ?').get(key) as { n: number };
    assert.equal(n.n, 1);
    assert.equal(auditActions().filter((a) => a.action === 'capture.create').length, 1);
    assert.equal((await post('reception', '/records/capture/note', { ...fields, key: '01HZZZZZZZZZZZZZZZZZZZZZZZ' })).statusCode, 403);
    assert.deepEqual(auditActions().at(-1), { user: 'reception', role: 'reception', action: 'access.denied', p: null });
    assert.equal(store!.db.prepare("SELECT count(*) AS n FROM rec_captures WHERE id = '01HZZZZZZZZZZZZZZZZZZZZZZZ'").pluck().get(), 0);
    const list = await get('reception', `/records/captures?saved=${key}`);
    assert.match(list.body, /PENDING/);
    const summary = await get('clinician', `/records/patient?id=${FIX.plain.id}`);
    assert.match(summary.body, /not yet filed in the clinical system/);
    assert.equal(desk.pendingCaptures(), 1);
  });

  it('records an arrival from the day list and shows it', async () => {
    const day = await get('reception', `/records/day?date=${DATE}`);
    const key = /name="key" value="([0-9A-Z]{26})"><input type="hidden" name="patient" value="9990000026"/.exec(day.body)![1]!;
    const r = await post('reception', '/records/capture/arrival', { key, patient: FIX.plain.id, appointment: 'a2', back: `/records/day?date=${DATE}` });
    assert.equal(r.statusCode, 303);
    assert.equal(r.headers.location, `/records/day?date=${DATE}`);
    assert.match((await get('reception', `/records/day?date=${DATE}`)).body, /Arrived \(recorded\)/);
  });

  it('lets a clinician resolve a rejected capture; reception cannot', async () => {
    const { item } = desk.services()!.captures.create({
      kind: 'call',
      patientId: null,
      payload: { direction: 'incoming', summary: 'x', urgency: 'routine' },
      author: 'reception',
      role: 'reception',
      device: 't',
    });
    desk.services()!.captures.markSent(item.id);
    desk.services()!.captures.markRejected(item.id, 'caller not identified');
    const page = await get('clinician', '/records/captures');
    assert.match(page.body, /caller not identified/);
    assert.match(page.body, /Send again/);
    assert.doesNotMatch((await get('reception', '/records/captures')).body, /Send again/);
    assert.equal((await post('reception', '/records/captures/dismiss', { id: item.id, note: 'x' })).statusCode, 403);
    const r = await post('clinician', '/records/captures/dismiss', { id: item.id, note: 'phoned back, filed by hand' });
    assert.equal(r.statusCode, 303);
    assert.match(desk.services()!.captures.get(item.id)!.resolution!, /filed by hand/);
    assert.equal(auditActions().at(-1)!.action, 'capture.resolve');
  });

  it('corrects a rejected note and sends it again under a new key; a double submit makes one retry', async () => {
    const q = desk.services()!.captures;
    const { item } = q.create({
      kind: 'note',
      patientId: FIX.full.id,
      payload: { consultationType: 'telephone', history: 'wrong patient details' },
      author: 'clinician',
      role: 'clinician',
      device: 't',
    });
    q.markSent(item.id);
    q.markRejected(item.id, 'history mentions another patient');
    const list = await get('clinician', '/records/captures');
    assert.match(list.body, new RegExp(`/records/captures/edit\\?id=${item.id}`));
    const edit = await get('clinician', `/records/captures/edit?id=${item.id}`);
    assert.equal(edit.statusCode, 200);
    assert.match(edit.body, /history mentions another patient/);
    assert.match(edit.body, /<textarea id="history"[^>]*>wrong patient details<\/textarea>/);
    assert.match(edit.body, /<option value="telephone" selected>/);
    const form = { id: item.id, edit: '1', patient: FIX.full.id, consultationType: 'telephone', history: 'corrected history' };
    const r1 = await post('clinician', '/records/captures/retry', form);
    assert.equal(r1.statusCode, 303);
    const newId = /saved=([0-9A-Z]{26})/.exec(String(r1.headers.location))![1]!;
    assert.notEqual(newId, item.id);
    const r2 = await post('clinician', '/records/captures/retry', form);
    assert.equal(r2.headers.location, `/records/captures?saved=${newId}`);
    const fresh = q.get(newId)!;
    assert.equal(fresh.supersedes, item.id);
    assert.equal((fresh.payload as { history: string }).history, 'corrected history');
    assert.equal(q.list({ patientId: FIX.full.id }).filter((c) => c.supersedes === item.id).length, 1);
    assert.equal(auditActions().filter((a) => a.action === 'capture.retry').length, 1);
    assert.equal((await get('reception', `/records/captures/edit?id=${item.id}`)).statusCode, 403);
  });

  it('audits the final upstream answer on a capture as the agent', () => {
    const { item } = desk
      .services()!
      .captures.create({ kind: 'arrival', patientId: FIX.third.id, payload: {}, author: 'reception', role: 'reception', device: 't' });
    ctx.bus.emit('records.capture-state', { id: item.id, kind: 'arrival', state: 'sent', at: clock.now() });
    ctx.bus.emit('records.capture-state', { id: item.id, kind: 'arrival', state: 'accepted', at: clock.now() });
    const tail = auditActions().slice(-1);
    assert.deepEqual(tail, [{ user: 'agent', role: 'system', action: 'capture.state', p: FIX.third.id }]);
    assert.equal(desk.services()!.audit.verify().ok, true);
  });

  it('turns the "as of" line into a STALE banner when the cache is old', async () => {
    await clock.advance(60 * 60_000);
    const r = await get('clinician', `/records/day?date=${DATE}`);
    assert.match(r.body, /class="stale" role="alert"[^>]*><strong>&#9888; STALE: as of 08:50<\/strong>/);
    assert.match(r.body, /70 minutes old/);
  });

  it('warns on the day list and patient pages until NTP has confirmed the clock (hazard H7)', async () => {
    const WARN =
      /<div class="clock" role="alert" data-clock="unconfirmed"><strong>&#9888; Clock not confirmed:<\/strong> The appliance clock has not been confirmed/;
    for (const [role, url] of [
      ['reception', `/records/day?date=${DATE}`],
      ['clinician', `/records/patient?id=${FIX.full.id}`],
      ['reception', `/records/patient/demographics?id=${FIX.plain.id}`],
    ] as const) {
      const r = await get(role, url);
      assert.equal(r.statusCode, 200, url);
      assert.match(r.body, WARN, url);
      assert.match(r.body, /Check against a watch or phone\./);
      assert.ok(r.body.indexOf('data-clock=') < r.body.indexOf('data-as-of='), 'the clock warning comes before the "as of" line');
    }
    // systemd-timesyncd has synchronised: the flag file under the host root, and the warning goes.
    const flag = ctx.platform.hostPath(TIMESYNC_FLAG);
    mkdirSync(dirname(flag), { recursive: true });
    writeFileSync(flag, '');
    try {
      // The viewer stats the flag at most once a second (cachedClockTrust): the warning goes within it.
      await new Promise((r) => setTimeout(r, 1100));
      const r = await get('reception', `/records/day?date=${DATE}`);
      assert.doesNotMatch(r.body, /data-clock=/);
      assert.match(r.body, /TESTWOOD, Amelia Rose/);
    } finally {
      rmSync(flag);
    }
    assert.match(clockBanner('wrong'), /CLOCK WRONG:.*set earlier than this software was made/);
    assert.equal(clockBanner('synced'), '');
  });

  it('shows admins a verified audit trail', async () => {
    const r = await get('admin', '/records/audit');
    assert.equal(r.statusCode, 200);
    assert.match(r.body, /Chain intact: \d+ entries/);
    assert.equal((await get('clinician', '/records/audit')).statusCode, 403);
  });

  it('serves no patient data when the audit entry cannot be written', async () => {
    store!.db.exec(`CREATE TRIGGER fail_audit BEFORE INSERT ON rec_audit BEGIN SELECT RAISE(ABORT, 'audit write failed'); END`);
    try {
      const before = auditActions().length;
      const sum = await get('clinician', `/records/patient?id=${FIX.full.id}`);
      assert.equal(sum.statusCode, 500);
      assert.ok(!sum.body.includes(FIX.full.id) && !/Testwood/i.test(sum.body), 'summary shown without an audit entry');
      const day = await get('clinician', `/records/day?date=${DATE}`);
      assert.equal(day.statusCode, 500);
      assert.ok(!/Testwood/i.test(day.body), 'day list shown without an audit entry');
      assert.equal(auditActions().length, before);
    } finally {
      store!.db.exec('DROP TRIGGER fail_audit');
    }
    assert.equal((await get('clinician', `/records/patient?id=${FIX.full.id}`)).statusCode, 200);
  });

  it('refreshes the cached clinician picker and cached-days line when a day list is replaced or purged', async () => {
    const NEXT = '2026-11-30';
    const link = new RegExp(`href="/records/day\\?date=${NEXT}"`);
    assert.doesNotMatch((await get('clinician', `/records/day?date=${DATE}`)).body, link);
    const [first] = store!.dayList(DATE);
    store!.replaceDayList(NEXT, [{ ...first!, appointmentId: 'n1', clinicianId: 'c3', clinicianName: 'Dr Gamma' }], clock.now());
    assert.match((await get('clinician', `/records/day?date=${DATE}`)).body, link);
    assert.match((await get('clinician', `/records/day?date=${NEXT}`)).body, /Dr Gamma/);
    store!.purgeOutside([DATE]);
    assert.doesNotMatch((await get('clinician', `/records/day?date=${DATE}`)).body, link);
    assert.doesNotMatch((await get('clinician', `/records/day?date=${NEXT}`)).body, /Dr Gamma/);
  });

  it('treats repeated query parameters as one value instead of failing', async () => {
    const day = await get('clinician', `/records/day?date=${DATE}&clinician=c2&clinician=c1`);
    assert.equal(day.statusCode, 200);
    assert.match(day.body, /SAMPLE, Carla/);
    const sum = await get('clinician', `/records/patient?id=${FIX.full.id}&id=x`);
    assert.equal(sum.statusCode, 200);
    assert.equal((await get('clinician', '/records/search?q=Testwood&q=x')).statusCode, 200);
  });

  it('answers 503 while the store is locked', async () => {
    const s = store;
    store = null;
    const r = await get('clinician', `/records/day?date=${DATE}`);
    assert.equal(r.statusCode, 503);
    assert.match(r.body, /Records are locked/);
    store = s;
  });

  it('never writes patient names or NHS numbers into the logs', () => {
    const logs = JSON.stringify(ctx.logged);
    for (const s of [FIX.full.id, FIX.plain.id, 'Testwood', 'TESTWOOD', 'Fixture', 'Cough']) assert.ok(!logs.includes(s), `log contains ${s}`);
    assert.ok(ctx.logged.length > 0, 'expected some log lines (refusals) to check');
  });
});
