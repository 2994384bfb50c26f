import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isAppError } from '../../../common/errors.js';
import { parseFhirJson } from '../../../agent/src/records/gpconnect/fhir.js';
import { parseAppointments, parsePatient, parseStructuredRecord } from '../../../agent/src/records/gpconnect/structured.js';

/**
 * Every GP Connect example response payload published with the spec goes through the adapter, and
 * what it extracts is checked against an independent walk of the same JSON (not hard-coded counts).
 */
export const FIXTURES = process.env.GPC_FIXTURES ?? '/work/shared/fixtures/gpconnect';

type J = Record<string, any>;
function rawJson(text: string): unknown {
  const lines = text.split('\n');
  if (lines[0]?.includes('{% highlight')) lines.shift();
  while (lines.length && lines.at(-1)!.trim() === '') lines.pop();
  if (lines.at(-1)?.includes('{% endhighlight')) lines.pop();
  return JSON.parse(lines.join('\n'));
}
/** Every object with the given resourceType anywhere in the document (entries, contained), by id. */
function walk(doc: unknown, type: string): J[] {
  const out = new Map<string, J>();
  let anon = 0;
  const visit = (v: unknown) => {
    if (Array.isArray(v)) return v.forEach(visit);
    if (v && typeof v === 'object') {
      const o = v as J;
      if (o.resourceType === type) out.set(o.id ?? `anon${anon++}`, o);
      Object.values(o).forEach(visit);
    }
  };
  visit(doc);
  return [...out.values()];
}
const display = (cc: J | undefined): string | undefined => cc?.text ?? cc?.coding?.[0]?.display;

const structuredDir = join(FIXTURES, 'structured');
const responses = readdirSync(structuredDir)
  .filter((f) => /_response\d*\.json$|full_record\.json$/.test(f))
  .sort();

describe('GP Connect structured record fixtures', () => {
  it('finds the published response payloads', () => {
    assert.ok(responses.length >= 20, `only ${responses.length} response files in ${structuredDir}`);
  });

  for (const file of responses) {
    it(`parses ${file}`, () => {
      const text = readFileSync(join(structuredDir, file), 'utf8');
      let doc: unknown;
      try {
        doc = rawJson(text);
      } catch {
        // Published broken/placeholder examples: the adapter must refuse them with a clear error.
        assert.throws(
          () => parseStructuredRecord(parseFhirJson(text), 1),
          (e: unknown) => isAppError(e, 'UPSTREAM_ERROR'),
        );
        return;
      }
      const hasPatient = walk(doc, 'Patient').length > 0;
      if (!hasPatient) {
        assert.throws(() => parseStructuredRecord(parseFhirJson(text), 1), /no Patient/);
        return;
      }
      const { summary } = parseStructuredRecord(parseFhirJson(text), 42);
      assert.equal(summary.fetchedAt, 42);

      // Patient
      const p = walk(doc, 'Patient')[0]!;
      const nhs = (p.identifier ?? []).find((i: J) => i.system === 'https://fhir.nhs.uk/Id/nhs-number')?.value;
      assert.equal(summary.patient.nhsNumber, nhs ?? null);
      assert.equal(summary.patient.dob, p.birthDate ?? null);

      // Allergies: every AllergyIntolerance in entries and in Lists' contained (resolved list).
      const allergies = walk(doc, 'AllergyIntolerance');
      assert.deepEqual(summary.allergies.map((a) => a.id).sort(), allergies.map((a) => a.id).sort());
      for (const a of allergies) {
        const got = summary.allergies.find((x) => x.id === a.id)!;
        assert.equal(got.substance, display(a.code) ?? '(unspecified substance)');
        if (a.clinicalStatus) assert.equal(got.status, a.clinicalStatus);
        const endExt = (a.extension ?? []).find((e: J) => String(e.url).includes('AllergyIntoleranceEnd'));
        if (endExt) assert.equal(got.endReason, endExt.extension.find((e: J) => e.url === 'reasonEnded')?.valueString ?? null);
      }

      // Medications: one per MedicationStatement; last issue = newest order-intent request based on its plan.
      const statements = walk(doc, 'MedicationStatement');
      const meds = walk(doc, 'Medication');
      const requests = walk(doc, 'MedicationRequest');
      assert.equal(summary.medications.length, statements.length);
      for (const ms of statements) {
        const got = summary.medications.find((m) => m.id === ms.id)!;
        const med = meds.find((m) => `Medication/${m.id}` === ms.medicationReference?.reference);
        assert.equal(got.name, display(med?.code ?? ms.medicationCodeableConcept) ?? '(unnamed medication)');
        const plan = ms.basedOn?.[0]?.reference;
        const issues = requests.filter((r) => r.intent === 'order' && (r.basedOn ?? []).some((b: J) => b.reference === plan));
        assert.equal(got.issueCount, issues.length);
        const lastExt = (ms.extension ?? []).find((e: J) => String(e.url).includes('LastIssueDate'))?.valueDateTime;
        const newest = issues
          .map((i) => i.authoredOn)
          .sort()
          .at(-1);
        assert.equal(got.lastIssueDate, newest ?? lastExt ?? null);
      }

      // Problems: every Condition.
      const conditions = walk(doc, 'Condition');
      assert.deepEqual(summary.problems.map((x) => x.name).sort(), conditions.map((c) => display(c.code) ?? '(no description)').sort());

      // Immunisations.
      assert.equal(summary.immunisations.length, walk(doc, 'Immunization').length);
    });
  }

  it('extracts known facts from meds_response.json and allergies_response1.json', () => {
    const meds = parseStructuredRecord(parseFhirJson(readFileSync(join(structuredDir, 'meds_response.json'), 'utf8')), 1).summary;
    const aspirin = meds.medications.find((m) => m.name.startsWith('Aspirin'))!;
    assert.equal(aspirin.lastIssueDate, '2016-09-11');
    assert.equal(aspirin.prescriptionType, 'repeat');
    assert.equal(aspirin.repeatsAllowed, 5);
    const al = parseStructuredRecord(parseFhirJson(readFileSync(join(structuredDir, 'allergies_response1.json'), 'utf8')), 1).summary;
    assert.ok(al.allergies.some((a) => a.status === 'resolved' && a.endDate === '2018-03-01'));
    assert.equal(al.patient.name, 'JACKSON, Jane (Miss)');
  });

  it('results from pathology carry their report group and values', () => {
    const text = readFileSync(join(structuredDir, 'pathology_response1.json'), 'utf8');
    const doc = rawJson(text);
    const s = parseStructuredRecord(parseFhirJson(text), 1).summary;
    assert.equal(s.results.length, walk(doc, 'Observation').length);
    const withQty = walk(doc, 'Observation').filter((o) => o.valueQuantity?.value !== undefined);
    for (const o of withQty)
      assert.ok(s.results.find((r) => r.id === o.id)!.value!.startsWith(String(o.valueQuantity.comparator ?? '') + String(o.valueQuantity.value)));
  });

  it('keeps List warning codes and flags restricted patients', () => {
    const doc = rawJson(readFileSync(join(structuredDir, 'allergies_response1.json'), 'utf8')) as J;
    const list = doc.entry.find((e: J) => e.resource.resourceType === 'List').resource;
    list.extension = [{ url: 'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-ListWarningCode-1', valueCode: 'data-in-transit' }];
    const p = doc.entry.find((e: J) => e.resource.resourceType === 'Patient').resource;
    p.meta.security = [{ system: 'http://hl7.org/fhir/v3/Confidentiality', code: 'R', display: 'restricted' }];
    const r = parseStructuredRecord(parseFhirJson(JSON.stringify(doc)), 1);
    assert.deepEqual(
      r.summary.warnings.map((w) => [w.code, w.section]),
      [['data-in-transit', list.title]],
    );
    assert.match(r.restricted ?? '', /R/);
  });
});

describe('GP Connect appointments and foundations fixtures', () => {
  for (const file of readdirSync(join(FIXTURES, 'appointments')).filter((f) => f.includes('response'))) {
    it(`parses appointments/${file}`, () => {
      const text = readFileSync(join(FIXTURES, 'appointments', file), 'utf8');
      const doc = rawJson(text);
      const appts = parseAppointments(parseFhirJson(text));
      const expected = walk(doc, 'Appointment').filter((a) => a !== undefined);
      const top = doc as J;
      // Only top-level Appointments or Bundle entries are appointments (contained resources are not).
      const direct =
        top.resourceType === 'Appointment' ? [top] : (top.entry ?? []).map((e: J) => e.resource).filter((r: J) => r.resourceType === 'Appointment');
      assert.equal(appts.length, direct.length);
      for (const a of direct) {
        const got = appts.find((x) => x.id === a.id)!;
        assert.equal(got.start, Date.parse(a.start));
        assert.equal(got.status, a.status);
        assert.equal(got.patientId, a.participant.find((p: J) => String(p.actor?.reference).startsWith('Patient/'))?.actor.reference ?? null);
      }
      void expected;
    });
  }
  it('parses foundations patient resources', () => {
    for (const file of ['read_patient_response_example.json', 'find_patient_response_example.json', 'register_patient_response_example.json']) {
      const doc = rawJson(readFileSync(join(FIXTURES, 'foundations', file), 'utf8'));
      for (const p of walk(doc, 'Patient')) {
        const got = parsePatient(p as never);
        assert.equal(got.family, p.name?.[0]?.family ?? null);
        assert.equal(got.dob, p.birthDate ?? null);
      }
    }
  });
});
