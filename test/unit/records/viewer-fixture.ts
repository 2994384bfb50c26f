import type { DayListEntry, PatientSummary } from '../../../agent/src/records/model.js';
import type { RecordsStore } from '../../../agent/src/records/store.js';

/**
 * A small synthetic practice for viewer unit and browser tests: three cached patients (one with a
 * full clinical record and "data in transit" warnings), one withheld, two clinicians. All names
 * and NHS numbers are invented (999 test range).
 */
export const FIX = {
  full: { id: '9990000018', name: 'TESTWOOD, Amelia Rose (Mrs)', family: 'Testwood' },
  plain: { id: '9990000026', name: 'FIXTURE, Bob (Mr)', family: 'Fixture' },
  third: { id: '9990000034', name: 'SAMPLE, Carla (Ms)', family: 'Sample' },
  withheld: { id: '9990000042' },
};

function summary(id: string, name: string, family: string, given: string, dob: string, fetchedAt: number): PatientSummary {
  return {
    patient: {
      id,
      nhsNumber: id,
      name,
      family,
      given: [given],
      title: null,
      dob,
      sex: 'female',
      address: '1 Test Street, Testtown, TE1 1ST',
      phone: '01632 960000',
      practice: 'A12345',
      usualGp: 'Dr Alpha',
    },
    allergies: [],
    medications: [],
    problems: [],
    immunisations: [],
    results: [],
    warnings: [],
    appointments: [],
    fetchedAt,
    source: 'fixture',
  };
}

export function seedViewerStore(store: RecordsStore, date: string, dayStart: number, asOf: number): void {
  const full = summary(FIX.full.id, FIX.full.name, FIX.full.family, 'Amelia', '1956-04-03', asOf);
  full.allergies = [
    {
      id: 'al1',
      substance: 'Penicillin V',
      code: null,
      status: 'active',
      category: 'medication',
      reaction: 'Anaphylaxis',
      severity: 'severe',
      onset: '1990',
      recorded: null,
      endDate: null,
      endReason: null,
      note: null,
    },
    {
      id: 'al2',
      substance: 'Latex',
      code: null,
      status: 'resolved',
      category: null,
      reaction: null,
      severity: null,
      onset: null,
      recorded: null,
      endDate: '2001',
      endReason: 'no longer',
      note: null,
    },
  ];
  full.medications = [
    {
      id: 'm1',
      name: 'Ramipril 5mg capsules',
      code: null,
      dosage: 'One daily',
      quantity: '28',
      status: 'active',
      prescriptionType: 'repeat',
      start: '2020-01-01',
      end: null,
      lastIssueDate: '2026-10-30',
      issueCount: 12,
      repeatsAllowed: 6,
      discontinuedReason: null,
    },
    {
      id: 'm2',
      name: 'Amoxicillin 500mg',
      code: null,
      dosage: 'TDS',
      quantity: '21',
      status: 'completed',
      prescriptionType: 'acute',
      start: '2019-01-01',
      end: '2019-01-08',
      lastIssueDate: '2019-01-01',
      issueCount: 1,
      repeatsAllowed: null,
      discontinuedReason: null,
    },
  ];
  full.problems = [
    { id: 'p1', name: 'Essential hypertension', code: null, status: 'active', significance: 'major', onset: '2019-06', abatement: null, note: null },
  ];
  full.results = [
    {
      id: 'r1',
      name: 'Serum potassium',
      code: null,
      date: '2026-11-01',
      value: '5.9 mmol/L',
      unit: 'mmol/L',
      referenceRange: '3.5-5.3',
      interpretation: 'High',
      status: 'final',
      group: null,
    },
  ];
  full.immunisations = [
    { id: 'i1', vaccine: 'Influenza vaccine', code: null, date: '2026-10-02', status: 'completed', notGiven: false, doseSequence: null, note: null },
  ];
  full.warnings = [
    {
      code: 'data-in-transit',
      section: 'Medications',
      text: 'Patient record transfer from previous GP practice not yet complete; information recorded before 1-Oct-2026 may be missing.',
    },
  ];
  store.putPatient({ summary: full, hash: 'h1', etag: null, lastUpdated: null });
  store.putPatient({ summary: summary(FIX.plain.id, FIX.plain.name, FIX.plain.family, 'Bob', '1980-05-06', asOf), hash: 'h2', etag: null, lastUpdated: null });
  store.putPatient({
    summary: summary(FIX.third.id, FIX.third.name, FIX.third.family, 'Carla', '1980-05-06', asOf),
    hash: 'h3',
    etag: null,
    lastUpdated: null,
  });
  const entry = (id: string, min: number, clin: string, p: { id: string; name?: string } | null): DayListEntry => ({
    appointmentId: id,
    date,
    start: dayStart + min * 60_000,
    end: dayStart + (min + 10) * 60_000,
    clinicianId: clin,
    clinicianName: clin === 'c1' ? 'Dr Alpha' : 'Nurse Beta',
    patientId: p?.id ?? null,
    patientName: p ? (p.name ?? 'WITHHELD, Person') : null,
    nhsNumber: p?.id ?? null,
    dob: null,
    status: 'booked',
    type: 'Routine',
    location: 'Room 1',
    hasSummary: false,
    withheld: false,
    fetchedAt: asOf,
  });
  store.withholdPatient(FIX.withheld.id, 'restricted', asOf);
  store.replaceDayList(
    date,
    [
      entry('a1', 0, 'c1', FIX.full),
      entry('a2', 10, 'c1', FIX.plain),
      entry('a3', 20, 'c2', FIX.third),
      entry('a4', 30, 'c2', FIX.withheld),
      entry('a5', 40, 'c2', null),
    ],
    asOf,
  );
  store.setMeta('asOf', String(asOf));
}
