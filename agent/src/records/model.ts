/**
 * Domain types of the records cache. These are what the store returns and what the viewer renders;
 * upstream formats (GP Connect STU3 Bundles, FHIR R4 Appointment searches, CSV drops) are mapped
 * into them by the adapters, so nothing past the adapters knows about FHIR.
 *
 * Dates: clinical dates are kept as the ISO strings upstream gave ("2018-03-01" or a full dateTime),
 * because partial dates ("2004", "2004-07") are common in GP records and must not be invented into
 * full days. Times the appliance itself measures (fetchedAt, asOf) are epoch milliseconds.
 */

/** A patient's identity and contact details. `id` is the cache key: the NHS number when there is one. */
export interface PatientDemographics {
  id: string;
  nhsNumber: string | null;
  /** Display name, "FAMILY, Given Names (Title)". */
  name: string;
  family: string | null;
  given: string[];
  title: string | null;
  /** ISO date (YYYY-MM-DD) or null. */
  dob: string | null;
  sex: string | null;
  address: string | null;
  phone: string | null;
  /** Registered GP practice (ODS code or name) when the record says. */
  practice: string | null;
  /** Usual GP's display name when the record says. */
  usualGp: string | null;
}

export type ClinicalStatus = 'active' | 'resolved' | 'inactive' | 'unknown';

export interface Allergy {
  id: string;
  /** What the patient reacts to (the AllergyIntolerance code display / text). */
  substance: string;
  code: string | null;
  /** 'active' for the current list, 'resolved' for the ended/resolved list. */
  status: ClinicalStatus;
  category: string | null;
  reaction: string | null;
  severity: string | null;
  onset: string | null;
  recorded: string | null;
  /** For resolved allergies: when and why it was ended. */
  endDate: string | null;
  endReason: string | null;
  note: string | null;
}

export interface Medication {
  id: string;
  name: string;
  code: string | null;
  dosage: string | null;
  quantity: string | null;
  /** 'active' | 'completed' | 'stopped' | 'intended' ... as upstream said. */
  status: string;
  /** 'acute' | 'repeat' | 'repeat-dispensing' | 'delayed-prescribing' when known. */
  prescriptionType: string | null;
  start: string | null;
  end: string | null;
  /** Date of the most recent issue (MedicationRequest intent=order) of this plan, when any. */
  lastIssueDate: string | null;
  issueCount: number;
  repeatsAllowed: number | null;
  discontinuedReason: string | null;
}

export interface Problem {
  id: string;
  name: string;
  code: string | null;
  status: ClinicalStatus;
  /** GP Connect problem significance: 'major' | 'minor'. */
  significance: string | null;
  onset: string | null;
  abatement: string | null;
  note: string | null;
}

export interface Immunisation {
  id: string;
  vaccine: string;
  code: string | null;
  date: string | null;
  status: string;
  notGiven: boolean;
  doseSequence: number | null;
  note: string | null;
}

/** A test result (Observation), optionally grouped under a report/panel. */
export interface Result {
  id: string;
  name: string;
  code: string | null;
  date: string | null;
  /** Value rendered as text ("5.2 mmol/L", "Negative"). */
  value: string | null;
  unit: string | null;
  referenceRange: string | null;
  interpretation: string | null;
  status: string | null;
  /** The DiagnosticReport or panel this belongs to, when any. */
  group: string | null;
}

/**
 * GP Connect List warnings (List.extension ListWarningCode): the section is incomplete.
 * Kept and shown to the clinician because a missing allergy "in transit" is a safety issue.
 */
export type WarningCode = 'confidential-items' | 'data-in-transit' | 'data-awaiting-filing' | string;

export interface Warning {
  code: WarningCode;
  /** Which section (list title) the warning belongs to. */
  section: string;
  text: string;
}

export interface Appointment {
  id: string;
  patientId: string | null;
  /** Epoch ms. */
  start: number;
  end: number | null;
  status: string;
  clinicianId: string | null;
  clinicianName: string | null;
  location: string | null;
  type: string | null;
  description: string | null;
}

/** One row of a clinician's day list, as reception and clinicians see it. */
export interface DayListEntry {
  appointmentId: string;
  /** Local date (YYYY-MM-DD) of the appointment. */
  date: string;
  start: number;
  end: number | null;
  clinicianId: string | null;
  clinicianName: string | null;
  patientId: string | null;
  patientName: string | null;
  nhsNumber: string | null;
  dob: string | null;
  status: string;
  type: string | null;
  location: string | null;
  /** True when a summary for this patient is cached. */
  hasSummary: boolean;
  /** True when the upstream flagged the patient sensitive/confidential: summary deliberately not cached. */
  withheld: boolean;
  fetchedAt: number;
}

export interface Clinician {
  id: string;
  name: string;
  appointments: number;
}

export interface PatientSummary {
  patient: PatientDemographics;
  allergies: Allergy[];
  medications: Medication[];
  problems: Problem[];
  immunisations: Immunisation[];
  results: Result[];
  warnings: Warning[];
  appointments: Appointment[];
  /** Epoch ms when this summary was fetched from upstream. */
  fetchedAt: number;
  /** Upstream source name ("gpconnect", ...). */
  source: string;
}

/** A search hit: enough to pick the right patient, no clinical detail. */
export interface PatientListItem {
  id: string;
  nhsNumber: string | null;
  name: string;
  dob: string | null;
  sex: string | null;
  fetchedAt: number;
}

export interface StoreMeta {
  /** Epoch ms of the last complete sync (day list + summaries), null when never. */
  asOf: number | null;
  /** Epoch ms of the last successful day-list fetch. */
  dayListAsOf: number | null;
  patients: number;
  appointments: number;
  withheld: number;
  /** Dates (YYYY-MM-DD) the cached day lists cover. */
  dates: string[];
}
