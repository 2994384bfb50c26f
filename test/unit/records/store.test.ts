import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { DayListEntry, PatientSummary } from '../../../agent/src/records/model.js';
import { RecordsStore, parseDob } from '../../../agent/src/records/store.js';

export function summary(id: string, family: string, given: string, dob: string, fetchedAt = 1000): PatientSummary {
  return {
    patient: {
      id,
      nhsNumber: id,
      name: `${family.toUpperCase()}, ${given}`,
      family,
      given: [given],
      title: null,
      dob,
      sex: 'female',
      address: null,
      phone: null,
      practice: null,
      usualGp: null,
    },
    allergies: [],
    medications: [],
    problems: [],
    immunisations: [],
    results: [],
    warnings: [],
    appointments: [],
    fetchedAt,
    source: 'test',
  };
}

function entry(id: string, date: string, start: number, clin: string, patientId: string | null): DayListEntry {
  return {
    appointmentId: id,
    date,
    start,
    end: start + 600_000,
    clinicianId: clin,
    clinicianName: `Dr ${clin}`,
    patientId,
    patientName: patientId,
    nhsNumber: patientId,
    dob: null,
    status: 'booked',
    type: null,
    location: null,
    hasSummary: false,
    withheld: false,
    fetchedAt: 0,
  };
}

describe('records store', () => {
  it('stores, queries, searches, withholds and purges', () => {
    const dir = mkdtempSync(join(tmpdir(), 'c1-store-'));
    const key = randomBytes(32);
    try {
      const s = RecordsStore.open(join(dir, 'r.db'), { key });
      s.putPatient({ summary: summary('9000000009', 'Smith', 'Jane', '1970-01-02'), hash: 'h1', etag: null, lastUpdated: null });
      s.putPatient({ summary: summary('9000000017', 'Smithson', 'Bob', '1980-05-06'), hash: 'h2', etag: null, lastUpdated: null });
      s.putPatient({ summary: summary('9000000025', 'Jones', 'Ann', '1980-05-06'), hash: 'h3', etag: null, lastUpdated: null });
      s.replaceDayList(
        '2026-11-27',
        [entry('a2', '2026-11-27', 2000, 'c1', '9000000017'), entry('a1', '2026-11-27', 1000, 'c1', '9000000009'), entry('a3', '2026-11-27', 1500, 'c2', null)],
        5000,
      );
      s.replaceDayList('2026-11-30', [entry('b1', '2026-11-30', 1000, 'c2', '9000000025')], 5000);
      assert.deepEqual(
        s.dayList('2026-11-27').map((e) => e.appointmentId),
        ['a1', 'a3', 'a2'],
      );
      assert.deepEqual(
        s.dayList('2026-11-27', 'c1').map((e) => e.appointmentId),
        ['a1', 'a2'],
      );
      assert.equal(s.dayList('2026-11-27', 'c1')[0]!.hasSummary, true);
      assert.deepEqual(s.clinicians('2026-11-27'), [
        { id: 'c1', name: 'Dr c1', appointments: 2 },
        { id: 'c2', name: 'Dr c2', appointments: 1 },
      ]);
      assert.equal(s.patientSummary('9000000009')!.patient.family, 'Smith');
      assert.deepEqual(
        s
          .search('smith')
          .map((p) => p.id)
          .sort(),
        ['9000000009', '9000000017'],
      );
      assert.deepEqual(
        s.search('smith jane').map((p) => p.id),
        ['9000000009'],
      );
      assert.deepEqual(
        s.search('mith').map((p) => p.id),
        [],
      );
      assert.deepEqual(
        s.search('900 000 0009').map((p) => p.id),
        ['9000000009'],
      );
      assert.deepEqual(
        s
          .search('06/05/1980')
          .map((p) => p.id)
          .sort(),
        ['9000000017', '9000000025'],
      );
      assert.deepEqual(
        s.search('%').map((p) => p.id),
        [],
      );
      s.withholdPatient('9000000017', 'restricted', 6000);
      assert.equal(s.patientSummary('9000000017'), null);
      assert.equal(s.dayList('2026-11-27', 'c1')[1]!.withheld, true);
      const m = s.meta();
      assert.equal(m.patients, 2);
      assert.equal(m.appointments, 4);
      assert.equal(m.withheld, 1);
      assert.deepEqual(m.dates, ['2026-11-27', '2026-11-30']);
      assert.equal(s.purgeOutside(['2026-11-30']), 1);
      assert.deepEqual(s.meta().dates, ['2026-11-30']);
      assert.equal(s.meta().withheld, 0);
      assert.equal(s.patientSummary('9000000025')!.patient.family, 'Jones');
      s.close();
      assert.throws(() => RecordsStore.open(join(dir, 'r.db'), { key: randomBytes(32) }), /cannot be opened/);
      const again = RecordsStore.open(join(dir, 'r.db'), { key });
      assert.equal(again.meta().patients, 1);
      again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps a 512 KiB page cache, not the 16 MB better-sqlite3 builds in (the resident agent holds the connection for good)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'c1-store-'));
    try {
      const s = RecordsStore.open(join(dir, 'r.db'), { key: randomBytes(32) });
      assert.equal(s.db.pragma('cache_size', { simple: true }), -512);
      s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('parses dates of birth', () => {
    assert.equal(parseDob('1/2/1990'), '1990-02-01');
    assert.equal(parseDob('1990-02-01'), '1990-02-01');
    assert.equal(parseDob('smith'), null);
  });
});
