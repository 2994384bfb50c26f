import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isAppError } from '../../../common/errors.js';
import { GpConnectClient, INTERACTIONS, structuredRequestBody } from '../../../agent/src/records/gpconnect/client.js';
import { parseFhirJson } from '../../../agent/src/records/gpconnect/fhir.js';
import { gpcOptions } from '../../fhir-server/client-options.js';

const FIXTURES = process.env.GPC_FIXTURES ?? '/work/shared/fixtures/gpconnect';
const fixture = (f: string) => readFileSync(join(FIXTURES, f), 'utf8');

type Call = { url: string; init: RequestInit };
function fakeFetch(respond: (c: Call) => Response): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    fetch: (async (url: string | URL, init?: RequestInit) => {
      const c = { url: String(url), init: init ?? {} };
      calls.push(c);
      return respond(c);
    }) as typeof fetch,
  };
}

describe('GP Connect client', () => {
  it('sends the structured-record request through the SSP with headers and an unsigned JWT', async () => {
    const f = fakeFetch(
      (c) =>
        new Response(
          c.url.includes('Appointment') ? fixture('appointments/retrieve_patients_appts_response_example.json') : fixture('structured/meds_response.json'),
          { status: 200 },
        ),
    );
    const client = new GpConnectClient({
      ...gpcOptions('https://provider.example/gpc/fhir'),
      sspUrl: 'https://proxy.spine.invalid',
      fetch: f.fetch,
      now: () => 1_800_000_000_000,
    });
    const rec = await client.fetchPatient('9999999999', 5);
    assert.equal(f.calls[0]!.url, 'https://proxy.spine.invalid/https://provider.example/gpc/fhir/Patient/$gpc.getstructuredrecord');
    const h = f.calls[0]!.init.headers as Record<string, string>;
    assert.equal(h['Ssp-InteractionID'], INTERACTIONS.structured);
    assert.equal(h['Ssp-From'], '200000000359');
    assert.equal(h['Ssp-To'], '918999198738');
    const [, payload, sig] = h.authorization!.replace('Bearer ', '').split('.');
    assert.equal(sig, '');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    assert.equal(claims.aud, 'https://provider.example/gpc/fhir/Patient/$gpc.getstructuredrecord');
    assert.equal(claims.iat, 1_800_000_000);
    assert.equal(claims.requested_record.identifier[0].value, '9999999999');
    // The body asks for the same things, in the same shape, as the published request examples.
    const body = JSON.parse(String(f.calls[0]!.init.body));
    const published = parseFhirJson(fixture('structured/allergies_request1.json')) as unknown as {
      parameter: { name: string; valueIdentifier?: unknown; part?: unknown }[];
    };
    assert.deepEqual(body.parameter[0], published.parameter[0]);
    assert.deepEqual(
      body.parameter.find((p: { name: string }) => p.name === 'includeAllergies'),
      published.parameter.find((p) => p.name === 'includeAllergies'),
    );
    assert.deepEqual(body, structuredRequestBody('9999999999'));
    assert.equal(rec.summary.medications.length, 3);
    // Appointment Management uses the logical id from the structured record.
    assert.match(f.calls[1]!.url, /\/Patient\/04603d77-1a4e-4d63-b246-d7504f8bd833\/Appointment\?start=ge\d{4}-\d{2}-\d{2}$/);
    assert.equal((f.calls[1]!.init.headers as Record<string, string>)['Ssp-InteractionID'], INTERACTIONS.patientAppointments);
    assert.equal(rec.summary.appointments.length, 2);
  });

  it('classifies failures: 5xx transient, 4xx not, broken JSON an upstream error', async () => {
    const mk = (r: () => Response) => new GpConnectClient({ ...gpcOptions('http://x/gpc'), includeAppointments: false, fetch: fakeFetch(r).fetch });
    await assert.rejects(
      mk(() => new Response('{}', { status: 503 })).fetchPatient('9999999999', 1),
      (e) => isAppError(e, 'UPSTREAM_ERROR') && e.details?.transient === true,
    );
    await assert.rejects(
      mk(
        () =>
          new Response(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ code: 'not-found', details: { text: 'PATIENT_NOT_FOUND' } }] }), {
            status: 404,
          }),
      ).fetchPatient('9999999999', 1),
      (e) => isAppError(e, 'UPSTREAM_ERROR') && e.details?.transient === false && /404 not-found PATIENT_NOT_FOUND/.test(e.message),
    );
    await assert.rejects(mk(() => new Response(fixture('structured/consultations_response1.json'), { status: 200 })).fetchPatient('9999999999', 1), (e) =>
      isAppError(e, 'UPSTREAM_ERROR'),
    );
    // Error text reaches logs, health and telemetry: no NHS number, no quoted body.
    await assert.rejects(
      mk(
        () =>
          new Response(
            JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ code: 'invalid', diagnostics: 'Patient 943 476 5919 SMITH not found' }] }),
            { status: 400 },
          ),
      ).fetchPatient('9434765919', 1),
      (e) => isAppError(e) && !/943 ?476 ?5919/.test(e.message) && /\[redacted\]/.test(e.message),
    );
    // Free text can name the patient: none of it survives, only the codes.
    await assert.rejects(
      mk(
        () =>
          new Response(
            JSON.stringify({
              resourceType: 'OperationOutcome',
              issue: [
                {
                  code: 'invalid',
                  details: { coding: [{ code: 'INVALID_RESOURCE' }], text: 'Jane SMITH (born 01/02/1960) is not registered' },
                  diagnostics: 'SMITH',
                },
              ],
            }),
            { status: 422 },
          ),
      ).fetchPatient('9434765919', 1),
      (e) => isAppError(e) && !/SMITH|Jane|1960/.test(e.message) && /422 invalid INVALID_RESOURCE \[redacted\]/.test(e.message),
    );
    await assert.rejects(
      mk(
        () =>
          new Response(
            JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ code: 'invalid', diagnostics: 'Patient 943 476 5919 SMITH not found' }] }),
            { status: 400 },
          ),
      ).fetchPatient('9434765919', 1),
      (e) => isAppError(e) && !e.message.includes('SMITH'),
    );
    // An OperationOutcome in place of the structured Bundle (HTTP 200): the same rule.
    await assert.rejects(
      mk(
        () =>
          new Response(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ code: 'not-found', diagnostics: 'no record for Jane SMITH' }] }), {
            status: 200,
          }),
      ).fetchPatient('9434765919', 1),
      (e) => isAppError(e, 'UPSTREAM_ERROR') && !/SMITH|Jane/.test(e.message) && /OperationOutcome: not-found \[redacted\]/.test(e.message),
    );
    await assert.rejects(
      mk(() => new Response('{"resourceType":"Bundle","entry":[{"name":"SMITH, Jane" ', { status: 200 })).fetchPatient('9434765919', 1),
      (e) => isAppError(e, 'UPSTREAM_ERROR') && !e.message.includes('SMITH'),
    );
    await assert.rejects(
      mk(() => {
        throw new TypeError('fetch failed');
      }).fetchPatient('9999999999', 1),
      (e) => isAppError(e, 'UPSTREAM_ERROR') && e.details?.transient === true,
    );
  });
});
