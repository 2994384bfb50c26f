import type { SynthPatient, SyntheticPractice } from './synthetic.js';

/**
 * FHIR shapes of the synthetic practice: GP Connect STU3 structured-record Bundles (the same
 * profiles and extensions as the published examples) and FHIR R4 Appointment searchsets.
 */
const SCT = 'http://snomed.info/sct';
const GPC = 'https://fhir.nhs.uk/STU3/StructureDefinition';
const cc = (display: string, code: string) => ({ coding: [{ system: SCT, code, display }] });
const list = (id: string, title: string, code: string, refs: string[], warning: string | null, contained?: unknown[]) => ({
  resourceType: 'List',
  id,
  meta: { profile: [`${GPC}/CareConnect-GPC-List-1`] },
  ...(warning ? { extension: [{ url: `${GPC}/Extension-CareConnect-GPC-ListWarningCode-1`, valueCode: warning }] } : {}),
  ...(contained ? { contained } : {}),
  status: 'current',
  mode: 'snapshot',
  title,
  code: cc(title, code),
  entry: refs.map((reference) => ({ item: { reference } })),
  ...(refs.length === 0 && !contained?.length ? { emptyReason: { text: 'No content recorded' } } : {}),
});

export function patientResource(p: SynthPatient) {
  return {
    resourceType: 'Patient',
    id: p.logicalId,
    meta: {
      versionId: '1',
      profile: [`${GPC}/CareConnect-GPC-Patient-1`],
      ...(p.restricted ? { security: [{ system: 'http://hl7.org/fhir/v3/Confidentiality', code: 'R', display: 'restricted' }] } : {}),
    },
    identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: p.nhsNumber }],
    active: true,
    name: [{ use: 'official', family: p.family, given: [p.given], prefix: [p.sex === 'female' ? 'Ms' : 'Mr'] }],
    telecom: [{ system: 'phone', value: p.phone, use: 'home' }],
    gender: p.sex,
    birthDate: p.dob,
    address: [{ use: 'home', line: p.address, postalCode: p.postcode }],
    generalPractitioner: [{ reference: `Practitioner/prac-${p.usualClinician + 1}` }],
    managingOrganization: { reference: 'Organization/org-1' },
  };
}

export function structuredBundle(practice: SyntheticPractice, p: SynthPatient) {
  const gp = practice.clinician(p.usualClinician);
  const res: unknown[] = [
    patientResource(p),
    {
      resourceType: 'Organization',
      id: 'org-1',
      identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'A00000' }],
      name: 'Synthetic Surgery',
    },
    { resourceType: 'Practitioner', id: gp.id, name: [{ family: gp.family, given: [gp.given], prefix: [gp.prefix] }] },
  ];
  const pref = { reference: `Patient/${p.logicalId}` };
  // Allergies: active in the bundle, resolved ones contained in the "Ended allergies" list.
  const active: string[] = [];
  const ended: unknown[] = [];
  p.allergies.forEach((a, k) => {
    const r = {
      resourceType: 'AllergyIntolerance',
      id: `${p.logicalId}-al-${k}`,
      meta: { profile: [`${GPC}/CareConnect-GPC-AllergyIntolerance-1`] },
      ...(a.resolved
        ? {
            extension: [
              {
                url: `${GPC}/Extension-CareConnect-GPC-AllergyIntoleranceEnd-1`,
                extension: [
                  { url: 'endDate', valueDateTime: a.resolved.endDate },
                  { url: 'reasonEnded', valueString: a.resolved.reason },
                ],
              },
            ],
          }
        : {}),
      clinicalStatus: a.resolved ? 'resolved' : 'active',
      verificationStatus: 'unconfirmed',
      category: ['medication'],
      code: cc(a.substance[0], a.substance[1]),
      patient: pref,
      assertedDate: a.asserted,
      reaction: [{ manifestation: [{ coding: [{ system: SCT, display: a.reaction }] }], severity: a.severity }],
    };
    if (a.resolved) ended.push(r);
    else (res.push(r), active.push(`AllergyIntolerance/${r.id}`));
  });
  res.push(list(`${p.logicalId}-l-al`, 'Allergies and adverse reactions', '886921000000105', active, p.warning));
  res.push(list(`${p.logicalId}-l-al-end`, 'Ended allergies', '1103671000000101', [], null, ended));
  // Medications: statement -> plan (intent=plan) -> issues (intent=order basedOn the plan).
  const meds: string[] = [];
  p.medications.forEach((m, k) => {
    const id = `${p.logicalId}-m-${k}`;
    const planId = `${id}-plan`;
    res.push({ resourceType: 'Medication', id: `${id}-med`, code: cc(m.drug[0], m.drug[1]) });
    res.push({
      resourceType: 'MedicationStatement',
      id,
      meta: { profile: [`${GPC}/CareConnect-GPC-MedicationStatement-1`] },
      extension: [{ url: `${GPC}/Extension-CareConnect-GPC-MedicationStatementLastIssueDate-1`, valueDateTime: m.issues.at(-1) }],
      basedOn: [{ reference: `MedicationRequest/${planId}` }],
      status: m.status,
      medicationReference: { reference: `Medication/${id}-med` },
      effectivePeriod: { start: m.start },
      subject: pref,
      taken: 'unk',
      dosage: [{ text: m.drug[2] }],
    });
    res.push({
      resourceType: 'MedicationRequest',
      id: planId,
      intent: 'plan',
      status: m.status,
      subject: pref,
      authoredOn: m.start,
      medicationReference: { reference: `Medication/${id}-med` },
      dosageInstruction: [{ text: m.drug[2] }],
      dispenseRequest: { quantity: { value: 28, unit: 'tablet' }, validityPeriod: { start: m.start } },
      extension: [
        { url: `${GPC}/Extension-CareConnect-GPC-PrescriptionType-1`, valueCodeableConcept: { coding: [{ code: m.type, display: m.type }] } },
        ...(m.type === 'repeat'
          ? [
              {
                url: `${GPC}/Extension-CareConnect-GPC-MedicationRepeatInformation-1`,
                extension: [
                  { url: 'numberOfRepeatPrescriptionsAllowed', valuePositiveInt: m.repeatsAllowed },
                  { url: 'numberOfRepeatPrescriptionsIssued', valuePositiveInt: m.issues.length },
                ],
              },
            ]
          : []),
      ],
    });
    m.issues.forEach((d, j) =>
      res.push({
        resourceType: 'MedicationRequest',
        id: `${id}-iss-${j}`,
        intent: 'order',
        status: 'completed',
        subject: pref,
        authoredOn: d,
        basedOn: [{ reference: `MedicationRequest/${planId}` }],
        medicationReference: { reference: `Medication/${id}-med` },
      }),
    );
    meds.push(`MedicationStatement/${id}`);
  });
  res.push(list(`${p.logicalId}-l-med`, 'Medications and medical devices', '933361000000108', meds, null));
  const probs = p.problems.map((pr, k) => {
    const id = `${p.logicalId}-pr-${k}`;
    res.push({
      resourceType: 'Condition',
      id,
      extension: [{ url: 'https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-ProblemSignificance-1', valueCode: pr.significance }],
      clinicalStatus: pr.active ? 'active' : 'inactive',
      code: cc(pr.problem[0], pr.problem[1]),
      subject: pref,
      onsetDateTime: pr.onset,
    });
    return `Condition/${id}`;
  });
  res.push(list(`${p.logicalId}-l-pr`, 'Problems', '717711000000103', probs, null));
  const imms = p.immunisations.map((im, k) => {
    const id = `${p.logicalId}-im-${k}`;
    res.push({
      resourceType: 'Immunization',
      id,
      status: 'completed',
      notGiven: false,
      vaccineCode: cc(im.vaccine[0], im.vaccine[1]),
      patient: pref,
      date: im.date,
      primarySource: true,
    });
    return `Immunization/${id}`;
  });
  res.push(list(`${p.logicalId}-l-im`, 'Immunisations', '1102181000000102', imms, null));
  const obs = p.results.map((t, k) => {
    const id = `${p.logicalId}-ob-${k}`;
    res.push({
      resourceType: 'Observation',
      id,
      status: 'final',
      code: cc(t.test[0], t.test[1]),
      subject: pref,
      effectiveDateTime: t.date,
      valueQuantity: { value: t.value, unit: t.test[2] },
      referenceRange: [{ low: { value: t.test[3], unit: t.test[2] }, high: { value: t.test[4], unit: t.test[2] } }],
    });
    return { reference: `Observation/${id}` };
  });
  if (obs.length)
    res.push({ resourceType: 'DiagnosticReport', id: `${p.logicalId}-dr`, status: 'final', code: { text: 'Blood tests' }, subject: pref, result: obs });
  res.push(
    list(
      `${p.logicalId}-l-inv`,
      'Investigations and results',
      '887191000000108',
      obs.map((o) => o.reference),
      null,
    ),
  );
  return {
    resourceType: 'Bundle',
    meta: { profile: [`${GPC}/GPConnect-StructuredRecord-Bundle-1`] },
    type: 'collection',
    entry: res.map((resource) => ({ resource })),
  };
}

/** FHIR R4 searchset for Appointment?date=, with _include'd Patients and Practitioners, paged. */
export function r4AppointmentPage(practice: SyntheticPractice, date: string, page: number, count: number, selfBase: string) {
  const all = practice.appointments(date);
  const slice = all.slice(page * count, (page + 1) * count);
  const entry: unknown[] = [];
  const seen = new Set<string>();
  for (const a of slice) {
    const p = practice.patient(a.patient);
    const c = practice.clinician(a.clinician);
    entry.push({
      search: { mode: 'match' },
      resource: {
        resourceType: 'Appointment',
        id: a.id,
        status: a.status,
        start: new Date(a.start).toISOString(),
        end: new Date(a.end).toISOString(),
        appointmentType: { text: a.clinician % 6 === 5 ? 'Nurse appointment' : 'GP consultation' },
        participant: [
          { actor: { reference: `Patient/${p.logicalId}`, display: `${p.given} ${p.family}` }, status: 'accepted' },
          { actor: { reference: `Practitioner/${c.id}`, display: `${c.prefix} ${c.given} ${c.family}` }, status: 'accepted' },
        ],
      },
    });
    if (!seen.has(p.logicalId)) {
      seen.add(p.logicalId);
      entry.push({ search: { mode: 'include' }, resource: { ...patientResource(p), meta: undefined } });
    }
    if (!seen.has(c.id)) {
      seen.add(c.id);
      entry.push({
        search: { mode: 'include' },
        resource: { resourceType: 'Practitioner', id: c.id, name: [{ family: c.family, given: [c.given], prefix: [c.prefix] }] },
      });
    }
  }
  const links = [{ relation: 'self', url: `${selfBase}/Appointment?date=${date}&_count=${count}&page=${page}` }];
  if ((page + 1) * count < all.length) links.push({ relation: 'next', url: `${selfBase}/Appointment?date=${date}&_count=${count}&page=${page + 1}` });
  return { resourceType: 'Bundle', type: 'searchset', total: all.length, link: links, entry };
}

export function patientAppointmentsBundle(practice: SyntheticPractice, p: SynthPatient, dates: string[]) {
  const entry = dates.flatMap((d) =>
    practice
      .appointments(d)
      .filter((a) => a.patient === p.index)
      .map((a) => {
        const c = practice.clinician(a.clinician);
        return {
          resource: {
            resourceType: 'Appointment',
            id: a.id,
            status: a.status,
            start: new Date(a.start).toISOString(),
            end: new Date(a.end).toISOString(),
            participant: [
              { actor: { reference: `Patient/${p.logicalId}` }, status: 'accepted' },
              { actor: { reference: `Practitioner/${c.id}`, display: `${c.prefix} ${c.given} ${c.family}` }, status: 'accepted' },
            ],
          },
        };
      }),
  );
  return { resourceType: 'Bundle', type: 'searchset', total: entry.length, entry };
}
