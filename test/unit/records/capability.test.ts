import assert from 'node:assert/strict';
import { reported } from '../../helpers/reports.js';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TIMESYNC_FLAG } from '../../../agent/src/platform/clock-sync.js';
import { after, before, describe, it } from 'node:test';
import { isAppError } from '../../../common/errors.js';
import { FileDayListSource, csvRows } from '../../../agent/src/records/day-list.js';
import { RecordsCapability } from '../../../agent/src/records/records.js';
import { recordsPaths } from '../../../agent/src/records/sources.js';
import { startFhirServer, type FhirServer } from '../../fhir-server/server.js';
import { createTestCtx } from '../../helpers/ctx.js';
import { createUser } from '../../../agent/src/auth/index.js';
import { buildWebApp } from '../../../agent/src/web/app.js';

describe('records capability', () => {
  let server: FhirServer;
  before(async () => {
    server = await startFhirServer({ practice: { patients: 400, clinicians: 3, perClinicianPerDay: 8 } });
  });
  after(async () => server.close());

  it('is locked until provisioned/unlocked, syncs, reports health and a drill step, and destroys its key', async () => {
    const ctx = createTestCtx({
      config: {
        records: {
          enabled: true,
          gpconnect: { baseUrl: server.gpcBase, fromAsid: '200000000359', toAsid: '918999198738' },
          dayList: { source: 'fhir', fhirBaseUrl: server.r4Base },
          retries: 0,
        },
      },
    });
    try {
      const cap = new RecordsCapability();
      await cap.start(ctx);
      let h = reported(cap);
      assert.equal(h.status, 'degraded');
      assert.equal((h.details as { locked: boolean }).locked, true);
      assert.match((h.details as { lines: string[] }).lines[0]!, /no records key yet/);
      await assert.rejects(cap.unlock('whatever passphrase'), (e) => isAppError(e, 'NOT_FOUND'));

      await cap.provision('operator passphrase 1');
      const synced = ctx.bus.waitFor('records.synced');
      const res = await cap.syncNow();
      const ev = await synced;
      assert.ok(res && res.patients > 0, JSON.stringify(reported(cap).details));
      assert.deepEqual(ev, { patients: res.patients, appointments: res.appointments, asOf: res.asOf, durationMs: res.durationMs, errors: 0 });
      h = reported(cap);
      const d = h.details as Record<string, unknown>;
      assert.equal(h.status, 'ok');
      assert.deepEqual(
        Object.keys(d).sort(),
        ['appointments', 'asOf', 'clock', 'lines', 'locked', 'patients', 'pendingCaptures', 'provisioned', 'stale', 'sync'].sort(),
      );
      // Hazard H7: no timesyncd flag under the host root yet, so the clock is not confirmed; then it is.
      assert.equal(d.clock, 'unconfirmed');
      assert.ok((d.lines as string[]).some((l) => /clock not confirmed by NTP/.test(l)));
      const flag = ctx.platform.hostPath(TIMESYNC_FLAG);
      mkdirSync(dirname(flag), { recursive: true });
      writeFileSync(flag, '');
      assert.equal((reported(cap).details as { clock: string }).clock, 'synced');
      assert.deepEqual(d.sync, { running: false, done: res.fetched, total: res.fetched, lastError: null });
      assert.equal(d.patients, res.patients);
      const [step] = cap.drillSteps();
      assert.equal((await step!.run()).passed, true);
      await cap.stop();

      // Agent restart (run dir survives): unlocked from the run-dir key without a passphrase.
      const again = new RecordsCapability();
      await again.start(ctx);
      assert.equal((reported(again).details as { locked: boolean }).locked, false);
      await again.stop();

      // Reboot (run dir is tmpfs, emptied): locked until the passphrase is given.
      rmSync(recordsPaths(ctx.config).runtimeKey);
      const rebooted = new RecordsCapability();
      await rebooted.start(ctx);
      assert.equal((reported(rebooted).details as { locked: boolean }).locked, true);
      assert.equal((await rebooted.drillSteps()[0]!.run()).passed, false);
      await assert.rejects(rebooted.unlock('not the passphrase'), (e) => isAppError(e, 'UNAUTHORIZED'));
      await rebooted.unlock('operator passphrase 1');
      assert.equal((reported(rebooted).details as { patients: number }).patients, res.patients);
      rebooted.destroyKey();
      const p = recordsPaths(ctx.config);
      assert.equal(existsSync(p.key) || existsSync(p.db) || existsSync(p.runtimeKey), false);
      assert.equal((reported(rebooted).details as { locked: boolean }).locked, true);
      await rebooted.stop();
    } finally {
      ctx.cleanup();
    }
  });

  it('an admin unlocks the cache on the web page (status page path); other roles are refused', async () => {
    const ctx = createTestCtx({
      config: {
        records: { enabled: true, gpconnect: { baseUrl: server.gpcBase, fromAsid: '1', toAsid: '2' }, dayList: { fhirBaseUrl: server.r4Base } },
        status: { https: false },
      },
    });
    try {
      const cap = new RecordsCapability();
      await cap.start(ctx);
      const app = await buildWebApp(ctx, { https: false });
      const login = async (user: string, role: 'admin' | 'clinician') => {
        createUser(ctx.db, user, 'long enough password 1', role);
        const r = await app.inject({ method: 'POST', url: '/login', payload: { username: user, password: 'long enough password 1' } });
        return { cookie: String(r.headers['set-cookie']).split(';')[0]!, csrf: (r.json() as { csrf: string }).csrf };
      };
      const admin = await login('ann', 'admin');
      const clin = await login('cli', 'clinician');
      const post = (who: { cookie: string; csrf: string }, passphrase: string) =>
        app.inject({
          method: 'POST',
          url: '/records/key',
          headers: { cookie: who.cookie, 'content-type': 'application/x-www-form-urlencoded' },
          payload: new URLSearchParams({ passphrase, _csrf: who.csrf }).toString(),
        });
      const page = await app.inject({ method: 'GET', url: '/records/key', headers: { cookie: admin.cookie, accept: 'text/html' } });
      assert.match(page.body, /Create key/);
      assert.equal((await post(clin, 'clinician passphrase')).statusCode, 403);
      assert.equal((await post(admin, 'admin passphrase 42')).statusCode, 303, 'first use provisions');
      cap.lock();
      assert.equal((reported(cap).details as { locked: boolean }).locked, true);
      assert.equal((await post(admin, 'wrong passphrase 42')).statusCode, 401);
      assert.equal((reported(cap).details as { locked: boolean }).locked, true);
      const ok = await post(admin, 'admin passphrase 42');
      assert.equal(ok.statusCode, 303);
      assert.equal(ok.headers.location, '/records/day');
      assert.equal((reported(cap).details as { locked: boolean }).locked, false);
      await app.close();
      await cap.stop();
    } finally {
      ctx.cleanup();
    }
  });

  it('reads a CSV or JSON day-list file drop', async () => {
    const ctx = createTestCtx();
    try {
      const csv = join(ctx.dir, 'day-2026-11-27.csv');
      writeFileSync(
        csv,
        'appointmentId,start,clinicianId,clinicianName,nhsNumber,patientName,dob,status\r\na1,2026-11-27T09:00:00Z,c1,Dr Who,943 476 5919,"SMITH, ' +
          'Jane",1970-01-01,booked\r\na2,2026-11-27T09:10:00Z,c1,Dr Who,,"O""Brien, Pat",,arrived\r\n',
      );
      const rows = await new FileDayListSource({ path: join(ctx.dir, 'day-{date}.csv'), format: 'auto' }).fetchDay('2026-11-27');
      assert.equal(rows.length, 2);
      assert.equal(rows[0]!.nhsNumber, '9434765919');
      assert.equal(rows[0]!.patientId, '9434765919');
      assert.equal(rows[0]!.patientName, 'SMITH, Jane');
      assert.equal(rows[1]!.patientName, 'O"Brien, Pat');
      assert.equal(rows[1]!.patientId, null);
      assert.equal(rows[0]!.start, Date.parse('2026-11-27T09:00:00Z'));
      writeFileSync(
        join(ctx.dir, 'd.json'),
        JSON.stringify({ appointments: [{ appointmentId: 'x', start: 1795770000000, nhsNumber: '9434765919', clinicianId: 'c2' }] }),
      );
      const j = await new FileDayListSource({ path: join(ctx.dir, 'd.json'), format: 'auto' }).fetchDay('2026-11-27');
      assert.deepEqual([j[0]!.appointmentId, j[0]!.start, j[0]!.clinicianId], ['x', 1795770000000, 'c2']);
      await assert.rejects(new FileDayListSource({ path: join(ctx.dir, 'missing.csv'), format: 'csv' }).fetchDay('2026-11-27'), (e) =>
        isAppError(e, 'UPSTREAM_ERROR'),
      );
      assert.deepEqual(csvRows('a,b\n1,"x,y"\n'), [{ a: '1', b: 'x,y' }]);
      // Cut short mid-row or mid-quote (written while we read): an error, never a shorter list.
      assert.throws(
        () => csvRows('a,b\n1,2\n3'),
        (e) => isAppError(e, 'UPSTREAM_ERROR') && /row 2 has 1 fields/.test(e.message),
      );
      assert.throws(
        () => csvRows('a,b\n1,"x,y'),
        (e) => isAppError(e, 'UPSTREAM_ERROR') && !e.message.includes('x,y'),
      );
      assert.deepEqual(csvRows('a,b\n1,2'), [{ a: '1', b: '2' }]);
    } finally {
      ctx.cleanup();
    }
  });
});
