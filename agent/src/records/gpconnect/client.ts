import { createHash, randomUUID } from 'node:crypto';
import { AppError } from '../../../../common/errors.js';
import type { Appointment } from '../model.js';
import { HttpClient, type FetchLike, type HttpResponse } from '../http-fetch.js';
import { issueSummary, objs, parseFhirJson, redact, type Resource } from './fhir.js';
import { NHS_NUMBER_SYSTEM, parseAppointments, parseStructuredRecord, type StructuredRecord } from './structured.js';

/**
 * GP Connect consumer over the Spine Secure Proxy. Each request carries the SSP headers
 * (Ssp-TraceID, Ssp-From, Ssp-To, Ssp-InteractionID) and a fresh unsigned JWT (alg "none", empty
 * signature, as GP Connect's "Cross Organisation Audit & Provenance" requires; 5-minute expiry).
 */
export const INTERACTIONS = {
  structured: 'urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1',
  patientAppointments: 'urn:nhs:names:services:gpconnect:fhir:rest:search:patient_appointments-1',
} as const;

export interface GpConnectOptions {
  baseUrl: string;
  sspUrl: string;
  fromAsid: string;
  toAsid: string;
  jwtIssuer: string;
  organizationOds: string;
  organizationName: string;
  practitionerId: string;
  practitionerSdsUserId: string;
  practitionerFamily: string;
  practitionerGiven: string;
  deviceName: string;
  deviceVersion: string;
  includeAppointments: boolean;
  requestTimeoutMs: number;
  /** Injectable for tests. */
  fetch?: FetchLike;
  now?: () => number;
}

export interface FetchedRecord extends StructuredRecord {
  etag: string | null;
  /** sha-256 of the response body: change detection when the provider sends no ETag. */
  bodyHash: string;
}

const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

export function buildJwt(o: GpConnectOptions, aud: string, nowMs: number, nhsNumber?: string): string {
  const iat = Math.floor(nowMs / 1000);
  const practitionerIds = [
    ...(o.practitionerSdsUserId ? [{ system: 'https://fhir.nhs.uk/Id/sds-user-id', value: o.practitionerSdsUserId }] : []),
    { system: 'https://surgery-edge.nhs.invalid/Id/local-user-id', value: o.practitionerId },
  ];
  const payload = {
    iss: o.jwtIssuer,
    sub: o.practitionerId,
    aud,
    exp: iat + 300,
    iat,
    reason_for_request: 'directcare',
    requested_scope: 'patient/*.read',
    ...(nhsNumber ? { requested_record: { resourceType: 'Patient', identifier: [{ system: NHS_NUMBER_SYSTEM, value: nhsNumber }] } } : {}),
    requesting_device: {
      resourceType: 'Device',
      identifier: [{ system: 'https://surgery-edge.nhs.invalid/Id/device', value: o.deviceName }],
      model: o.deviceName,
      version: o.deviceVersion,
    },
    requesting_organization: {
      resourceType: 'Organization',
      identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: o.organizationOds }],
      name: o.organizationName,
    },
    requesting_practitioner: {
      resourceType: 'Practitioner',
      id: o.practitionerId,
      identifier: practitionerIds,
      name: [{ family: o.practitionerFamily, given: [o.practitionerGiven] }],
    },
  };
  return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(payload)}.`;
}

export function structuredRequestBody(nhsNumber: string): Resource {
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'patientNHSNumber', valueIdentifier: { system: NHS_NUMBER_SYSTEM, value: nhsNumber } },
      { name: 'includeAllergies', part: [{ name: 'includeResolvedAllergies', valueBoolean: true }] },
      { name: 'includeMedication', part: [{ name: 'includePrescriptionIssues', valueBoolean: true }] },
      { name: 'includeProblems' },
      { name: 'includeImmunisations' },
      { name: 'includeInvestigations' },
    ],
  };
}

export class GpConnectClient {
  private readonly send: FetchLike;
  constructor(private readonly o: GpConnectOptions) {
    this.send = o.fetch ?? new HttpClient().fetch;
  }

  private url(path: string): string {
    const base = this.o.baseUrl.replace(/\/+$/, '');
    return this.o.sspUrl ? `${this.o.sspUrl.replace(/\/+$/, '')}/${base}${path}` : `${base}${path}`;
  }

  private async request(method: 'GET' | 'POST', path: string, interaction: string, nhsNumber: string, body?: unknown) {
    const now = (this.o.now ?? Date.now)();
    const aud = `${this.o.baseUrl.replace(/\/+$/, '')}${path.split('?')[0]}`;
    const headers: Record<string, string> = {
      accept: 'application/fhir+json',
      'Ssp-TraceID': randomUUID(),
      'Ssp-From': this.o.fromAsid,
      'Ssp-To': this.o.toAsid,
      'Ssp-InteractionID': interaction,
      authorization: `Bearer ${buildJwt(this.o, aud, now, nhsNumber)}`,
    };
    if (body !== undefined) headers['content-type'] = 'application/fhir+json';
    let res: HttpResponse;
    try {
      res = await this.send(this.url(path), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.o.requestTimeoutMs),
      });
    } catch (e) {
      throw new AppError('UPSTREAM_ERROR', `GP Connect request failed: ${(e as Error).name === 'TimeoutError' ? 'timeout' : redact((e as Error).message)}`, {
        transient: true,
      });
    }
    const text = await res.text().catch((e: unknown) => {
      throw new AppError('UPSTREAM_ERROR', `GP Connect response truncated: ${(e as Error).message}`, { transient: true });
    });
    if (!res.ok) {
      let detail = `HTTP ${res.status}`;
      try {
        const oo = parseFhirJson(text);
        if (oo.resourceType === 'OperationOutcome') detail += ` ${issueSummary(objs(oo.issue)[0])}`;
      } catch {
        /* non-FHIR error body */
      }
      throw new AppError('UPSTREAM_ERROR', `GP Connect ${redact(detail.trim())}`, { status: res.status, transient: res.status >= 500 || res.status === 429 });
    }
    return { text, etag: res.headers.get('etag') };
  }

  /** Access Record: Structured for one patient, plus their appointments when configured. */
  async fetchPatient(nhsNumber: string, fetchedAt: number): Promise<FetchedRecord> {
    const { text, etag } = await this.request(
      'POST',
      '/Patient/$gpc.getstructuredrecord',
      INTERACTIONS.structured,
      nhsNumber,
      structuredRequestBody(nhsNumber),
    );
    const bodyHash = createHash('sha256').update(text).digest('hex');
    const rec = parseStructuredRecord(parseFhirJson(text, 'structured record'), fetchedAt);
    if (this.o.includeAppointments && !rec.restricted) rec.summary.appointments = await this.fetchAppointments(nhsNumber, rec.patientLogicalId, fetchedAt);
    return { ...rec, etag, bodyHash };
  }

  /** Appointment Management "retrieve a patient's appointments" (from today on). */
  async fetchAppointments(nhsNumber: string, logicalId: string | null, fromMs: number): Promise<Appointment[]> {
    if (!logicalId) return [];
    const start = new Date(fromMs).toISOString().slice(0, 10);
    const path = `/Patient/${encodeURIComponent(logicalId)}/Appointment?start=ge${start}`;
    const { text } = await this.request('GET', path, INTERACTIONS.patientAppointments, nhsNumber);
    return parseAppointments(parseFhirJson(text, 'appointments'));
  }
}
