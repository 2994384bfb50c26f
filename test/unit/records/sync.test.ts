import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createLogger } from '../../../common/log.js';
import { FhirDayListSource } from '../../../agent/src/records/day-list.js';
import { GpConnectClient } from '../../../agent/src/records/gpconnect/client.js';
import { gpcOptions } from '../../fhir-server/client-options.js';
import { RecordsStore } from '../../../agent/src/records/store.js';
import { bookingWindow, runSync, type SyncOptions } from '../../../agent/src/records/sync.js';
import { startFhirServer, type FhirServer } from '../../fhir-server/server.js';
import { FakeClock } from '../../helpers/fake-clock.js';

describe('records sync against the test FHIR server', () => {
  let server: FhirServer;
  let dir: string;
  let store: RecordsStore;
  let clock: FakeClock;
  const log = createLogger({ level: 'silent' });
  const opts = (o: Partial<SyncOptions> = {}): SyncOptions => ({
    timeZone: 'Europe/London',
    workingDays: [1, 2, 3, 4, 5],
    concurrency: 4,
    summaryMaxAgeMs: 3_600_000,
    retries: 0,
    clock,
    log,
    ...o,
  });
  const sync = (o: Partial<SyncOptions> = {}) =>
    runSync(store, new FhirDayListSource({ baseUrl: server.r4Base, timeoutMs: 5000 }), new GpConnectClient(gpcOptions(server.gpcBase)), opts(o));

  before(async () => {
    server = await startFhirServer({ practice: { patients: 1000, clinicians: 4, perClinicianPerDay: 12 } });
  });
  after(async () => server.close());
  beforeEach(() => {
    store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = mkdtempSync(join(tmpdir(), 'c1-sync-'));
    store = RecordsStore.open(join(dir, 'r.db'), { key: randomBytes(32) });
    clock = new FakeClock(Date.parse('2026-11-27T09:00:00Z'));
    Object.assign(server.faults, { errorRate: 0, partialRate: 0, delayMs: 0, failDayList: false, failNhs: [] });
    server.setPractice({ generation: 0 });
  });

  it('caches both days, every booked patient (except restricted ones), with SSP headers and JWT', async () => {
    const r = await sync();
    assert.deepEqual(r.dates, ['2026-11-27', '2026-11-30']);
    const booked = new Map<number, string>();
    for (const d of r.dates) for (const a of server.practice.appointments(d)) if (a.status !== 'cancelled') booked.set(a.patient, d);
    const restricted = [...booked.keys()].filter((i) => server.practice.patient(i).restricted);
    assert.equal(r.errors, 0);
    assert.equal(r.appointments, server.practice.appointments('2026-11-27').length + server.practice.appointments('2026-11-30').length);
    assert.equal(r.patients, booked.size - restricted.length);
    assert.equal(r.withheld, restricted.length);
    assert.equal(server.stats.rejected, 0, 'the server accepted every SSP header set and JWT');
    const h = server.lastHeaders!;
    assert.equal(h['ssp-from'], '200000000359');
    assert.equal(h['ssp-to'], '918999198738');
    assert.match(String(h['ssp-traceid']), /^[0-9a-f-]{36}$/);
    const [hdr, claims, sig] = String(h.authorization).slice('Bearer '.length).split('.');
    assert.deepEqual(JSON.parse(Buffer.from(hdr!, 'base64url').toString()), { alg: 'none', typ: 'JWT' });
    assert.equal(sig, '');
    const c = JSON.parse(Buffer.from(claims!, 'base64url').toString());
    assert.equal(c.requesting_organization.identifier[0].value, 'A00000');
    assert.equal(c.exp - c.iat, 300);
    // A cached patient matches the synthetic source.
    const [i] = [...booked.keys()].filter((k) => !server.practice.patient(k).restricted);
    const p = server.practice.patient(i!);
    const s = store.patientSummary(p.nhsNumber)!;
    assert.equal(s.patient.family, p.family);
    assert.equal(s.medications.length, p.medications.length);
    assert.equal(s.allergies.length, p.allergies.length);
    for (const m of p.medications) assert.ok(s.medications.some((x) => x.name === m.drug[0] && x.lastIssueDate === m.issues.at(-1)));
    assert.equal(s.fetchedAt, clock.now());
    assert.equal(store.meta().asOf, clock.now());
    for (const ri of restricted) {
      assert.equal(store.patientSummary(server.practice.patient(ri).nhsNumber), null);
      assert.equal(store.search(server.practice.patient(ri).nhsNumber).length, 0);
    }
    // Warnings are kept.
    const warned = [...booked.keys()].find((k) => server.practice.patient(k).warning && !server.practice.patient(k).restricted);
    assert.ok(warned !== undefined, 'no booked patient carries a warning: this check would test nothing');
    if (warned !== undefined)
      assert.equal(store.patientSummary(server.practice.patient(warned).nhsNumber)!.warnings[0]!.code, server.practice.patient(warned).warning);
  });

  it('is incremental: fresh patients are skipped; re-fetched unchanged ones are not rewritten', async () => {
    await sync();
    const before = server.stats.structured;
    const r2 = await sync();
    assert.equal(server.stats.structured, before, 'nothing re-fetched within summaryMaxAgeMs');
    assert.equal(r2.fetched, 0);
    assert.ok(r2.skippedFresh > 0);
    await clock.advance(10 * 60_000);
    server.setPractice({ generation: 1 });
    const r3 = await sync({ summaryMaxAgeMs: 0 });
    assert.ok(r3.changed > 0 && r3.unchanged > r3.changed, `changed ${r3.changed} unchanged ${r3.unchanged}`);
  });

  it('never wipes good data on upstream errors or partial responses; asOf does not advance', async () => {
    await sync();
    const asOf = store.meta().asOf;
    const meta = store.meta();
    const some = store.dayList('2026-11-27').find((e) => e.hasSummary)!;
    const old = store.patientSummary(some.patientId!)!;
    await clock.advance(20 * 60_000);
    Object.assign(server.faults, { failDayList: true, partialRate: 0.5, errorRate: 0.2, failNhs: [some.nhsNumber!] });
    const r = await sync({ summaryMaxAgeMs: 0 });
    assert.equal(r.dayListErrors.length, 2);
    assert.ok(r.errors > 0);
    assert.ok(server.stats.partial > 0, 'partial responses were injected');
    assert.equal(store.meta().asOf, asOf);
    assert.equal(store.meta().appointments, meta.appointments);
    assert.equal(store.meta().patients, meta.patients);
    assert.deepEqual(store.patientSummary(some.patientId!), old);
    assert.equal(store.db.pragma('integrity_check', { simple: true }), 'ok');
  });

  it('keeps a cached day list (and its patients) when the upstream list comes back empty', async () => {
    await sync();
    const meta = store.meta();
    const asOf = meta.asOf;
    assert.ok(meta.appointments > 0 && meta.patients > 0);
    await clock.advance(20 * 60_000);
    const empty = { fetchDay: async () => [] };
    const r = await runSync(store, empty, new GpConnectClient(gpcOptions(server.gpcBase)), opts());
    assert.equal(r.dayListErrors.length, 2);
    assert.match(r.dayListErrors[0]!, /came back empty; keeping the \d+ cached appointments/);
    assert.equal(store.meta().appointments, meta.appointments);
    assert.equal(store.meta().patients, meta.patients);
    assert.equal(r.purged, 0);
    assert.equal(store.meta().asOf, asOf);
    // A date with nothing cached takes an empty list as it is (a day with no bookings).
    store.replaceDayList('2026-11-27', [], clock.now());
    const r2 = await runSync(store, empty, new GpConnectClient(gpcOptions(server.gpcBase)), opts());
    assert.ok(!r2.dayListErrors.some((e) => e.startsWith('2026-11-27')), r2.dayListErrors.join('; '));
  });

  it('resumes an interrupted run and purges patients outside the booking window', async () => {
    server.faults.delayMs = 5;
    const ac = new AbortController();
    let n = 0;
    const first = await sync({ concurrency: 2, signal: ac.signal, onProgress: (p) => p.phase === 'summaries' && ++n === 20 && ac.abort() });
    assert.ok(first.fetched >= 20 && store.getMeta('syncRun') === first.runId, 'aborted run left its queue');
    const fetchedBefore = server.stats.structured;
    server.faults.delayMs = 0;
    const second = await sync();
    assert.equal(second.resumed, true);
    assert.equal(second.runId, first.runId);
    const bookedCount = second.patients + second.withheld;
    assert.ok(server.stats.structured - fetchedBefore < bookedCount, 'only the rest was fetched');
    assert.equal(store.getMeta('syncRun'), null);
    // Monday: Friday's patients not booked Monday or Tuesday are purged.
    await clock.advance(3 * 86_400_000);
    const r = await sync();
    assert.deepEqual(r.dates, ['2026-11-30', '2026-12-01']);
    assert.ok(r.purged > 0);
    assert.deepEqual(store.meta().dates, ['2026-11-30', '2026-12-01']);
    const keep = new Set(r.dates.flatMap((d) => store.dayList(d).map((e) => e.patientId)));
    for (const row of store.db.prepare('SELECT id FROM rec_patients').all() as { id: string }[]) assert.ok(keep.has(row.id));
  });

  it('computes the booking window over weekends', () => {
    assert.deepEqual(bookingWindow(Date.parse('2026-11-27T09:00:00Z'), 'Europe/London', [1, 2, 3, 4, 5]), ['2026-11-27', '2026-11-30']);
    assert.deepEqual(bookingWindow(Date.parse('2026-11-28T23:30:00Z'), 'Europe/London', [1, 2, 3, 4, 5]), ['2026-11-28', '2026-11-30']);
    assert.deepEqual(bookingWindow(Date.parse('2026-06-30T23:30:00Z'), 'Europe/London', [1, 2, 3, 4, 5]), ['2026-07-01', '2026-07-02']);
  });
});
