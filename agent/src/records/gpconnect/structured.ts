import { AppError } from '../../../../common/errors.js';
import type { Allergy, Appointment, Immunisation, Medication, PatientDemographics, PatientSummary, Problem, Result, Warning } from '../model.js';
import {
  bundleResources,
  conceptCode,
  conceptText,
  ext,
  firstNote,
  isObj,
  issueSummary,
  num,
  objs,
  quantityText,
  ref,
  str,
  type Json,
  type Resource,
} from './fhir.js';

/**
 * Maps a GP Connect Access Record: Structured response (STU3 Bundle, CareConnect-GPC profiles) to a
 * PatientSummary. Reference: GP Connect 1.6 "Access Record Structured" (allergies, medications,
 * problems, immunisations, investigations; List resources carry section titles and warnings).
 */
export const NHS_NUMBER_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';

/** Confidentiality codes (v3 Confidentiality / GP Connect meta.security) that mean "do not cache". */
const RESTRICTED = new Set(['r', 'v', 'redacted', 'restricted', 'very restricted', 'confidential']);

export interface StructuredRecord {
  summary: PatientSummary;
  /** Non-null when the patient or record is flagged confidential/sensitive: do not cache. */
  restricted: string | null;
  /** Upstream version markers for incremental sync. */
  lastUpdated: string | null;
  /** The provider's logical id of the Patient (for Appointment Management). */
  patientLogicalId: string | null;
}

export function parseStructuredRecord(bundle: Resource, fetchedAt: number, source = 'gpconnect'): StructuredRecord {
  if (bundle.resourceType === 'OperationOutcome') {
    const issue = objs(bundle.issue)[0];
    throw new AppError('UPSTREAM_ERROR', `upstream returned OperationOutcome: ${issueSummary(issue)}`);
  }
  if (bundle.resourceType !== 'Bundle') throw new AppError('UPSTREAM_ERROR', `expected a Bundle, got ${bundle.resourceType}`);
  const resources = bundleResources(bundle);
  const lists = resources.filter((r) => r.resourceType === 'List');
  // Resolved allergies (and other ended items) travel as resources contained in their List.
  const contained = lists.flatMap((l) => objs(l.contained).filter((c): c is Resource => typeof c.resourceType === 'string'));
  const all = [...resources, ...contained];
  const byRef = new Map<string, Resource>();
  for (const r of all) if (r.id) byRef.set(`${r.resourceType}/${r.id}`, r);
  const of = (t: string) => dedupe(all.filter((r) => r.resourceType === t));

  const patientRes = resources.find((r) => r.resourceType === 'Patient');
  if (!patientRes) throw new AppError('UPSTREAM_ERROR', 'structured record has no Patient');
  const patient = parsePatient(patientRes, byRef);
  const restricted = restrictedReason(patientRes) ?? restrictedReason(bundle);

  const summary: PatientSummary = {
    patient,
    allergies: of('AllergyIntolerance').map(parseAllergy),
    medications: parseMedications(of('MedicationStatement'), of('MedicationRequest'), byRef),
    problems: of('Condition').map(parseProblem),
    immunisations: of('Immunization').map(parseImmunisation),
    results: parseResults(of('Observation'), of('DiagnosticReport'), of('Immunization')),
    warnings: lists.flatMap(parseWarnings),
    appointments: [],
    fetchedAt,
    source,
  };
  const lastUpdated = str(isObj(bundle.meta) ? bundle.meta.lastUpdated : null) ?? str(isObj(patientRes.meta) ? patientRes.meta.versionId : null);
  return { summary, restricted, lastUpdated, patientLogicalId: patientRes.id ?? null };
}

function dedupe(rs: Resource[]): Resource[] {
  const seen = new Set<string>();
  return rs.filter((r, i) => {
    const k = r.id ?? `#${i}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function restrictedReason(r: Json): string | null {
  const meta = isObj(r.meta) ? r.meta : {};
  for (const s of objs(meta.security)) {
    const code = (str(s.code) ?? '').toLowerCase();
    const display = (str(s.display) ?? '').toLowerCase();
    if (RESTRICTED.has(code) || RESTRICTED.has(display)) return `security label ${str(s.code) ?? display}`;
  }
  for (const e of ext(r, 'confidentiality')) {
    const code = (str(e.valueCode) ?? conceptCode(e.valueCodeableConcept) ?? '').toLowerCase();
    if (RESTRICTED.has(code)) return `confidentiality ${code}`;
  }
  return null;
}

export function parsePatient(p: Resource, byRef?: Map<string, Resource>): PatientDemographics {
  const ids = objs(p.identifier);
  const nhsNumber = str(ids.find((i) => str(i.system) === NHS_NUMBER_SYSTEM)?.value)?.replace(/\s/g, '') ?? null;
  const names = objs(p.name);
  const n = names.find((x) => str(x.use) === 'official') ?? names[0] ?? {};
  const family = str(n.family);
  const given = (Array.isArray(n.given) ? n.given : []).map(str).filter((g): g is string => g !== null);
  const title = Array.isArray(n.prefix) ? str(n.prefix[0]) : null;
  const name = family ? `${family.toUpperCase()}, ${given.join(' ')}${title ? ` (${title})` : ''}`.replace(/, $/, '') : (str(n.text) ?? '(no name)');
  const addr = objs(p.address)[0];
  const address = addr ? [...(Array.isArray(addr.line) ? addr.line : []), addr.city, addr.postalCode].map(str).filter(Boolean).join(', ') || null : null;
  const phone = str(objs(p.telecom).find((t) => str(t.system) === 'phone')?.value);
  const gpRef = ref(objs(p.generalPractitioner)[0]) ?? ref(p.generalPractitioner);
  const gp = gpRef ? byRef?.get(gpRef) : undefined;
  const gpName = gp ? objs(gp.name)[0] : undefined;
  const usualGp = gpName
    ? (str(gpName.text) ??
        [Array.isArray(gpName.prefix) ? gpName.prefix[0] : null, ...(Array.isArray(gpName.given) ? gpName.given : []), gpName.family]
          .map(str)
          .filter(Boolean)
          .join(' ')) ||
      null
    : null;
  const orgRef = ref(p.managingOrganization);
  const org = orgRef ? byRef?.get(orgRef) : undefined;
  return {
    id: nhsNumber ?? `local:${p.id ?? 'unknown'}`,
    nhsNumber,
    name,
    family,
    given,
    title,
    dob: str(p.birthDate),
    sex: str(p.gender),
    address,
    phone,
    practice: org ? (str(org.name) ?? null) : null,
    usualGp,
  };
}

function parseAllergy(r: Resource): Allergy {
  const end = ext(r, 'AllergyIntoleranceEnd')[0];
  const endPart = (u: string) => objs(end?.extension).find((e) => str(e.url) === u);
  const reaction = objs(r.reaction)[0];
  const status = str(r.clinicalStatus) ?? (end ? 'resolved' : 'active');
  return {
    id: r.id ?? '',
    substance: conceptText(r.code) ?? '(unspecified substance)',
    code: conceptCode(r.code),
    status: status === 'active' || status === 'resolved' || status === 'inactive' ? status : 'unknown',
    category: Array.isArray(r.category) ? str(r.category[0]) : str(r.category),
    reaction: reaction ? objs(reaction.manifestation).map(conceptText).filter(Boolean).join(', ') || null : null,
    severity: reaction ? str(reaction.severity) : null,
    onset: str(r.onsetDateTime),
    recorded: str(r.assertedDate) ?? str(r.recordedDate),
    endDate: str(endPart('endDate')?.valueDateTime),
    endReason: str(endPart('reasonEnded')?.valueString),
    note: firstNote(r),
  };
}

function medicationName(r: Json, byRef: Map<string, Resource>): { name: string | null; code: string | null } {
  const mref = ref(r.medicationReference);
  const med = mref ? byRef.get(mref) : undefined;
  const cc = med ? med.code : r.medicationCodeableConcept;
  return { name: conceptText(cc), code: conceptCode(cc) };
}

/**
 * One Medication per MedicationStatement (GP Connect's "medication summary" item). Its plan is the
 * MedicationRequest (intent=plan) it is basedOn; each issue is a MedicationRequest intent=order
 * basedOn that plan. Last issue date = newest issue's authoredOn, falling back to the statement's
 * LastIssueDate extension when the issues were not sent.
 */
function parseMedications(statements: Resource[], requests: Resource[], byRef: Map<string, Resource>): Medication[] {
  const issuesByPlan = new Map<string, Resource[]>();
  for (const rq of requests) {
    if (str(rq.intent) !== 'order') continue;
    for (const b of objs(rq.basedOn)) {
      const plan = ref(b);
      if (plan) issuesByPlan.set(plan, [...(issuesByPlan.get(plan) ?? []), rq]);
    }
  }
  return statements.map((ms) => {
    const planRef =
      objs(ms.basedOn)
        .map(ref)
        .find((x) => x?.startsWith('MedicationRequest/')) ?? null;
    const plan = planRef ? byRef.get(planRef) : undefined;
    const issues = planRef ? (issuesByPlan.get(planRef) ?? []) : [];
    const issueDates = issues
      .map((i) => str(i.authoredOn) ?? str(isObj(i.dispenseRequest) && isObj(i.dispenseRequest.validityPeriod) ? i.dispenseRequest.validityPeriod.start : null))
      .filter((d): d is string => d !== null)
      .sort();
    const lastIssueExt = ext(ms, 'LastIssueDate')[0];
    const { name, code } = medicationName(ms, byRef);
    const dosage = objs(ms.dosage)[0] ?? (plan ? objs(plan.dosageInstruction)[0] : undefined);
    const repeat = plan ? ext(plan, 'RepeatInformation')[0] : undefined;
    const repeatPart = (u: string) => num(objs(repeat?.extension).find((e) => str(e.url) === u)?.valuePositiveInt);
    const period = isObj(ms.effectivePeriod) ? ms.effectivePeriod : {};
    const dr = plan && isObj(plan.dispenseRequest) ? plan.dispenseRequest : {};
    const status = str(plan?.status) === 'stopped' ? 'stopped' : (str(ms.status) ?? 'unknown');
    const discontinued = plan ? ext(plan, 'StatusReason')[0] : undefined;
    return {
      id: ms.id ?? '',
      name: name ?? '(unnamed medication)',
      code,
      dosage: dosage ? (str(dosage.text) ?? str(dosage.patientInstruction)) : null,
      quantity: quantityText(dr.quantity),
      status,
      prescriptionType: plan ? (conceptCode(ext(plan, 'PrescriptionType')[0]?.valueCodeableConcept) ?? null) : null,
      start: str(ms.effectiveDateTime) ?? str(period.start),
      end: str(period.end),
      lastIssueDate: issueDates.at(-1) ?? str(lastIssueExt?.valueDateTime),
      issueCount: issues.length,
      repeatsAllowed: repeatPart('numberOfRepeatPrescriptionsAllowed'),
      discontinuedReason: discontinued ? (conceptText(objs(discontinued.extension)[0]?.valueCodeableConcept) ?? null) : null,
    };
  });
}

function parseProblem(r: Resource): Problem {
  const sig = ext(r, 'ProblemSignificance')[0];
  const actual = ext(r, 'ActualProblem')[0];
  const status = str(r.clinicalStatus);
  void actual;
  return {
    id: r.id ?? '',
    name: conceptText(r.code) ?? '(no description)',
    code: conceptCode(r.code),
    status: status === 'active' ? 'active' : status === 'inactive' || status === 'resolved' ? 'inactive' : 'unknown',
    significance: sig ? str(sig.valueCode) : null,
    onset: str(r.onsetDateTime) ?? (isObj(r.onsetPeriod) ? str(r.onsetPeriod.start) : null),
    abatement: str(r.abatementDateTime),
    note: firstNote(r),
  };
}

function parseImmunisation(r: Resource): Immunisation {
  const protocol = objs(r.vaccinationProtocol)[0];
  return {
    id: r.id ?? '',
    vaccine: conceptText(r.vaccineCode) ?? '(unspecified vaccine)',
    code: conceptCode(r.vaccineCode),
    date: str(r.date) ?? str(r.occurrenceDateTime),
    status: str(r.status) ?? 'unknown',
    notGiven: r.notGiven === true,
    doseSequence: protocol ? num(protocol.doseSequence) : null,
    note: firstNote(r),
  };
}

function valueText(o: Json): { value: string | null; unit: string | null } {
  if (isObj(o.valueQuantity)) {
    const q = o.valueQuantity;
    const comparator = str(q.comparator) ?? '';
    const v = str(q.value);
    const unit = str(q.unit) ?? str(q.code);
    return { value: v === null ? null : `${comparator}${v}${unit ? ` ${unit}` : ''}`, unit };
  }
  const s = str(o.valueString) ?? conceptText(o.valueCodeableConcept) ?? (typeof o.valueBoolean === 'boolean' ? String(o.valueBoolean) : null);
  return { value: s, unit: null };
}

/**
 * Results: Observations except those that only describe an immunisation (GP Connect puts
 * immunisation-related observations in the same Bundle). Each is grouped under the
 * DiagnosticReport that lists it, when there is one.
 */
function parseResults(observations: Resource[], reports: Resource[], immunisations: Resource[]): Result[] {
  const groupOf = new Map<string, string>();
  for (const dr of reports) {
    const name = conceptText(dr.code) ?? 'Report';
    for (const r of objs(dr.result)) {
      const id = ref(r);
      if (id) groupOf.set(id, name);
    }
  }
  for (const o of observations) {
    for (const rel of objs(o.related)) {
      const t = ref(rel.target);
      if (t && !groupOf.has(t)) groupOf.set(t, conceptText(o.code) ?? 'Panel');
    }
  }
  const immRefs = new Set(
    immunisations.flatMap((i) =>
      objs(i.reaction)
        .map((x) => ref(x.detail))
        .filter((x): x is string => x !== null),
    ),
  );
  return observations
    .filter((o) => !immRefs.has(`Observation/${o.id}`))
    .map((o) => {
      const { value, unit } = valueText(o);
      const rr = objs(o.referenceRange)[0];
      const range = rr
        ? (str(rr.text) ??
          ([quantityText(rr.low), quantityText(rr.high)].every((x) => x === null) ? null : `${quantityText(rr.low) ?? ''} - ${quantityText(rr.high) ?? ''}`))
        : null;
      return {
        id: o.id ?? '',
        name: conceptText(o.code) ?? '(unnamed result)',
        code: conceptCode(o.code),
        date: str(o.effectiveDateTime) ?? (isObj(o.effectivePeriod) ? str(o.effectivePeriod.start) : null) ?? str(o.issued),
        value,
        unit,
        referenceRange: range,
        interpretation: conceptText(o.interpretation),
        status: str(o.status),
        group: groupOf.get(`Observation/${o.id}`) ?? null,
      };
    });
}

const WARNING_TEXT: Record<string, string> = {
  'confidential-items': 'Items excluded due to confidentiality and/or patient preferences.',
  'data-in-transit': 'Patient record transfer from previous GP practice not yet complete; information recorded before the transfer may be missing.',
  'data-awaiting-filing': 'Patient data may be incomplete as there is data supplied by a third party awaiting review before becoming available.',
};

/** List.extension ListWarningCode (GP Connect 1.x) -> a warning shown with that section. */
export function parseWarnings(list: Resource): Warning[] {
  const section = str(list.title) ?? conceptText(list.code) ?? 'Record';
  return ext(list, 'WarningCode').map((e) => {
    const code = str(e.valueCode) ?? conceptCode(e.valueCodeableConcept) ?? 'unknown';
    return { code, section, text: WARNING_TEXT[code] ?? `Warning: ${code}` };
  });
}

/** Appointment Management: the patient's appointments (searchset of STU3 Appointment). */
export function parseAppointments(bundle: Resource, practitionerNames?: Map<string, string>): Appointment[] {
  return bundleResources(bundle)
    .filter((r) => r.resourceType === 'Appointment')
    .map((a) => {
      const participants = objs(a.participant);
      const actorRefs = participants.map((p) => ref(p.actor)).filter((x): x is string => x !== null);
      const patientRef = actorRefs.find((x) => x.startsWith('Patient/')) ?? null;
      const clinicianRef = actorRefs.find((x) => x.startsWith('Practitioner/')) ?? null;
      const locationRef = actorRefs.find((x) => x.startsWith('Location/')) ?? null;
      const start = Date.parse(str(a.start) ?? '');
      const end = Date.parse(str(a.end) ?? '');
      const clinicianDisplay = participants.map((p) => (isObj(p.actor) && ref(p.actor) === clinicianRef ? str(p.actor.display) : null)).find(Boolean) ?? null;
      return {
        id: a.id ?? '',
        patientId: patientRef,
        start: Number.isFinite(start) ? start : 0,
        end: Number.isFinite(end) ? end : null,
        status: str(a.status) ?? 'unknown',
        clinicianId: clinicianRef,
        clinicianName: clinicianDisplay ?? (clinicianRef ? (practitionerNames?.get(clinicianRef) ?? null) : null),
        location: locationRef,
        type: conceptText(a.appointmentType) ?? conceptText(objs(a.serviceType)[0]) ?? null,
        description: str(a.description),
      };
    });
}
