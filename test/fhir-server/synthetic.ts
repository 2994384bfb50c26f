/**
 * A synthetic GP practice, generated deterministically from a seed: the same seed always gives the
 * same patients, clinicians and bookings, so benchmarks and tests are repeatable. Nothing is stored;
 * every patient is generated on demand from (seed, index, generation).
 */
export interface PracticeOptions {
  seed: number;
  patients: number;
  clinicians: number;
  /** Appointments per clinician per working day. */
  perClinicianPerDay: number;
  timeZone: string;
  /** Bumping this changes ~10% of records (for incremental-sync tests). */
  generation: number;
}

export const DEFAULT_PRACTICE: PracticeOptions = {
  seed: 42,
  patients: 12_000,
  clinicians: 30,
  perClinicianPerDay: 24,
  timeZone: 'Europe/London',
  generation: 0,
};

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const hashStr = (s: string) => [...s].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 7);

/** NHS numbers with a valid modulus-11 check digit, in the 999 test range. */
export function nhsNumberFor(i: number): string {
  for (let k = 0; ; k++) {
    const base = String(999_000_000 + i * 11 + k).padStart(9, '0');
    const sum = [...base].reduce((s, d, j) => s + Number(d) * (10 - j), 0);
    const check = 11 - (sum % 11);
    if (check === 10) continue;
    return base + String(check === 11 ? 0 : check);
  }
}

const FAMILY = [
  'Smith',
  'Jones',
  'Taylor',
  'Brown',
  'Williams',
  'Wilson',
  'Johnson',
  'Davies',
  'Patel',
  'Robinson',
  'Wright',
  'Thompson',
  'Evans',
  'Walker',
  'White',
  'Roberts',
  'Green',
  'Hall',
  'Wood',
  'Jackson',
  'Clarke',
  'Khan',
  'Ahmed',
  'Hussain',
  'Singh',
  'Lewis',
  'Harris',
  'Martin',
  'Cooper',
  'King',
  "O'Brien",
  'Nowak',
  'Kowalski',
  'Okafor',
  'Mensah',
  'Nguyen',
  'Chen',
  'Murphy',
  'Kelly',
  'Hughes',
];
const GIVEN_F = [
  'Olivia',
  'Amelia',
  'Isla',
  'Ava',
  'Mia',
  'Grace',
  'Sophia',
  'Emily',
  'Fatima',
  'Aisha',
  'Zofia',
  'Margaret',
  'Susan',
  'Patricia',
  'Jane',
  'Helen',
  'Priya',
  'Chloe',
  'Ruby',
  'Evie',
];
const GIVEN_M = [
  'Oliver',
  'George',
  'Noah',
  'Arthur',
  'Muhammad',
  'Leo',
  'Harry',
  'Jack',
  'Jacob',
  'Thomas',
  'David',
  'John',
  'Michael',
  'Peter',
  'Raj',
  'Kwame',
  'Piotr',
  'James',
  'William',
  'Ali',
];
const STREETS = ['High Street', 'Station Road', 'Church Lane', 'Victoria Road', 'Park Avenue', 'Mill Lane', 'Green Lane', 'Manor Road'];

export const ALLERGENS: readonly [string, string][] = [
  ['Penicillin V', '764146007'],
  ['Amoxicillin', '372687004'],
  ['Aspirin', '387458008'],
  ['Codeine', '387494007'],
  ['Ibuprofen', '387207008'],
  ['Peanut', '256349002'],
  ['Latex', '111088007'],
  ['Trimethoprim', '372854000'],
  ['Elastoplast', '418920007'],
];
export const REACTIONS = ['Urticaria', 'Angioedema', 'Nausea', 'Rash', 'Anaphylaxis', 'Wheeze'];
export const DRUGS: readonly [string, string, string][] = [
  ['Amlodipine 5mg tablets', '319283006', 'One tablet once a day'],
  ['Atorvastatin 20mg tablets', '320030007', 'One tablet at night'],
  ['Metformin 500mg tablets', '325278007', 'One tablet twice a day with meals'],
  ['Ramipril 5mg capsules', '318885001', 'One capsule once a day'],
  ['Levothyroxine 50microgram tablets', '315243008', 'One tablet in the morning'],
  ['Omeprazole 20mg gastro-resistant capsules', '317335000', 'One capsule daily'],
  ['Salbutamol 100micrograms/dose inhaler', '320176004', 'Two puffs when required'],
  ['Sertraline 50mg tablets', '321949006', 'One tablet daily'],
  ['Warfarin 1mg tablets', '319733000', 'As directed by anticoagulant clinic'],
  ['Bisoprolol 2.5mg tablets', '318593003', 'One tablet daily'],
  ['Paracetamol 500mg tablets', '322236009', 'Two tablets up to four times a day'],
  ['Apixaban 5mg tablets', '703907005', 'One tablet twice a day'],
];
export const PROBLEMS: readonly [string, string][] = [
  ['Essential hypertension', '59621000'],
  ['Type 2 diabetes mellitus', '44054006'],
  ['Asthma', '195967001'],
  ['Hypothyroidism', '40930008'],
  ['Atrial fibrillation', '49436004'],
  ['Depressive disorder', '35489007'],
  ['Osteoarthritis of knee', '239873007'],
  ['Chronic kidney disease stage 3', '433144002'],
  ['Gastro-oesophageal reflux disease', '235595009'],
  ['Appendicectomy', '80146002'],
];
export const TESTS: readonly [string, string, string, number, number][] = [
  ['Serum sodium', '104934005', 'mmol/L', 133, 146],
  ['Serum potassium', '59573005', 'mmol/L', 3.5, 5.3],
  ['eGFR', '80274001', 'mL/min/1.73m2', 60, 120],
  ['HbA1c', '1107481000000106', 'mmol/mol', 20, 42],
  ['Haemoglobin', '1022431000000105', 'g/L', 115, 165],
  ['Total cholesterol', '1005671000000105', 'mmol/L', 2.5, 5],
  ['TSH', '1022791000000101', 'mU/L', 0.27, 4.2],
];
export const VACCINES: readonly [string, string][] = [
  ['Influenza vaccine', '1066171000000108'],
  ['COVID-19 mRNA vaccine', '39114911000001105'],
  ['Pneumococcal polysaccharide vaccine', '22 1000000'],
  ['Tetanus, diphtheria and polio vaccine', '414619005'],
  ['Shingles vaccine', '871751006'],
];

export interface SynthPatient {
  index: number;
  nhsNumber: string;
  logicalId: string;
  family: string;
  given: string;
  sex: 'male' | 'female';
  dob: string;
  address: string[];
  postcode: string;
  phone: string;
  restricted: boolean;
  warning: 'data-in-transit' | 'data-awaiting-filing' | null;
  allergies: { substance: [string, string]; reaction: string; severity: string; asserted: string; resolved: null | { endDate: string; reason: string } }[];
  medications: {
    drug: [string, string, string];
    type: 'acute' | 'repeat';
    status: 'active' | 'completed';
    start: string;
    issues: string[];
    repeatsAllowed: number;
  }[];
  problems: { problem: [string, string]; active: boolean; significance: 'major' | 'minor'; onset: string }[];
  results: { test: [string, string, string, number, number]; value: number; date: string }[];
  immunisations: { vaccine: [string, string]; date: string }[];
  usualClinician: number;
}

const day = (r: () => number, fromYear: number, toYear: number) => {
  const y = fromYear + Math.floor(r() * (toYear - fromYear));
  return `${y}-${String(1 + Math.floor(r() * 12)).padStart(2, '0')}-${String(1 + Math.floor(r() * 28)).padStart(2, '0')}`;
};

export interface SynthAppointment {
  id: string;
  clinician: number;
  patient: number;
  start: number;
  end: number;
  status: string;
}

export class SyntheticPractice {
  private readonly byNhs = new Map<string, number>();
  constructor(readonly o: PracticeOptions = DEFAULT_PRACTICE) {
    for (let i = 0; i < o.patients; i++) this.byNhs.set(nhsNumberFor(i), i);
  }

  indexOf(nhsNumber: string): number | undefined {
    return this.byNhs.get(nhsNumber);
  }

  clinician(c: number): { id: string; family: string; given: string; prefix: string; role: string } {
    const r = rng(this.o.seed * 7919 + c);
    const nurse = c % 6 === 5;
    return {
      id: `prac-${c + 1}`,
      family: pick(r, FAMILY),
      given: pick(r, [...GIVEN_F, ...GIVEN_M]),
      prefix: nurse ? 'Nurse' : 'Dr',
      role: nurse ? 'Practice nurse' : 'GP',
    };
  }

  patient(i: number): SynthPatient {
    const r = rng(this.o.seed * 1_000_003 + i);
    const sex = r() < 0.5 ? 'female' : 'male';
    const age = Math.floor(r() * 95);
    const old = age > 50;
    const p: SynthPatient = {
      index: i,
      nhsNumber: nhsNumberFor(i),
      logicalId: `pat-${i}`,
      family: pick(r, FAMILY),
      given: pick(r, sex === 'female' ? GIVEN_F : GIVEN_M),
      sex,
      dob: day(r, 2026 - age - 1, 2026 - age),
      address: [`${1 + Math.floor(r() * 200)} ${pick(r, STREETS)}`, 'Leeds'],
      postcode: `LS${1 + Math.floor(r() * 28)} ${Math.floor(r() * 9)}${pick(r, ['AB', 'HT', 'QZ', 'NX'])}`,
      phone: `0113 ${String(Math.floor(r() * 1e7)).padStart(7, '0')}`,
      restricted: i % 497 === 13,
      warning: i % 53 === 7 ? 'data-in-transit' : i % 61 === 11 ? 'data-awaiting-filing' : null,
      allergies: [],
      medications: [],
      problems: [],
      immunisations: [],
      results: [],
      usualClinician: Math.floor(r() * this.o.clinicians),
    };
    const nAll = r() < 0.7 ? 0 : 1 + Math.floor(r() * 3);
    for (let k = 0; k < nAll; k++)
      p.allergies.push({
        substance: pick(r, ALLERGENS),
        reaction: pick(r, REACTIONS),
        severity: pick(r, ['mild', 'moderate', 'severe']),
        asserted: day(r, 1990, 2025),
        resolved: r() < 0.15 ? { endDate: day(r, 2015, 2025), reason: 'No reaction on re-challenge' } : null,
      });
    const nMed = Math.floor(r() * (old ? 9 : 4));
    for (let k = 0; k < nMed; k++) {
      const repeat = r() < 0.75;
      const start = day(r, 2018, 2026);
      const issues = Array.from({ length: repeat ? 1 + Math.floor(r() * 10) : 1 }, (_, j) => {
        const d = new Date(`${start}T00:00:00Z`);
        d.setUTCDate(d.getUTCDate() + 28 * j);
        return d.toISOString().slice(0, 10);
      });
      p.medications.push({
        drug: pick(r, DRUGS),
        type: repeat ? 'repeat' : 'acute',
        status: repeat ? 'active' : 'completed',
        start,
        issues,
        repeatsAllowed: repeat ? 6 + Math.floor(r() * 7) : 0,
      });
    }
    const nProb = Math.floor(r() * (old ? 7 : 3));
    for (let k = 0; k < nProb; k++)
      p.problems.push({ problem: pick(r, PROBLEMS), active: r() < 0.7, significance: r() < 0.5 ? 'major' : 'minor', onset: day(r, 1980, 2026) });
    const nRes = Math.floor(r() * (old ? 12 : 4));
    for (let k = 0; k < nRes; k++) {
      const test = pick(r, TESTS);
      const span = test[4] - test[3];
      p.results.push({ test, value: Math.round((test[3] - span * 0.2 + r() * span * 1.4) * 10) / 10, date: day(r, 2023, 2026) });
    }
    const nImm = Math.floor(r() * 5);
    for (let k = 0; k < nImm; k++) p.immunisations.push({ vaccine: pick(r, VACCINES), date: day(r, 2015, 2026) });
    // A new generation changes ~10% of patients: a fresh result, as a lab feed would add.
    if (this.o.generation > 0 && (hashStr(`${i}`) + this.o.generation) % 10 === 0)
      p.results.push({ test: TESTS[0]!, value: 140 + this.o.generation, date: '2026-11-26' });
    return p;
  }

  /**
   * Bookings of one day: every clinician has `perClinicianPerDay` 10-minute slots from 08:30 with
   * a short lunch; patients drawn from the list (older patients more often). Weekends are empty.
   */
  private readonly apptCache = new Map<string, SynthAppointment[]>();
  appointments(date: string): SynthAppointment[] {
    const hit = this.apptCache.get(date);
    if (hit) return hit;
    const list = this.generateAppointments(date);
    this.apptCache.set(date, list);
    return list;
  }

  private generateAppointments(date: string): SynthAppointment[] {
    const weekday = new Date(`${date}T12:00:00Z`).getUTCDay();
    if (weekday === 0 || weekday === 6) return [];
    const r = rng(this.o.seed * 31 + hashStr(date));
    const out: SynthAppointment[] = [];
    for (let c = 0; c < this.o.clinicians; c++) {
      for (let s = 0; s < this.o.perClinicianPerDay; s++) {
        const minutes = 8 * 60 + 30 + s * 15 + (s >= this.o.perClinicianPerDay / 2 ? 90 : 0);
        const start = zonedEpoch(date, minutes, this.o.timeZone);
        const patient = Math.floor(r() * this.o.patients);
        out.push({ id: `appt-${date}-${c + 1}-${s + 1}`, clinician: c, patient, start, end: start + 10 * 60_000, status: r() < 0.03 ? 'cancelled' : 'booked' });
      }
    }
    return out;
  }
}

/** Epoch ms of a local wall-clock time (minutes after midnight) on a date in a time zone. */
const formatters = new Map<string, Intl.DateTimeFormat>();
export function zonedEpoch(date: string, minutes: number, timeZone: string): number {
  const guess = Date.parse(`${date}T00:00:00Z`) + minutes * 60_000;
  let f = formatters.get(timeZone);
  if (!f)
    formatters.set(
      timeZone,
      (f = new Intl.DateTimeFormat('en-GB', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
      })),
    );
  const parts = f.formatToParts(guess);
  const g = (t: string) => Number(parts.find((p) => p.type === t)!.value);
  const asLocal = Date.UTC(g('year'), g('month') - 1, g('day'), g('hour'), g('minute'));
  return guess - (asLocal - guess);
}
