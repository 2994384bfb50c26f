import { readFile } from 'node:fs/promises';
import { AppError } from '../../../common/errors.js';
import { HttpClient, type FetchLike, type HttpResponse } from './http-fetch.js';
import { bundleResources, conceptText, isObj, objs, parseFhirJson, ref, str, type Resource } from './gpconnect/fhir.js';
import { NHS_NUMBER_SYSTEM } from './gpconnect/structured.js';
import type { DayListEntry } from './model.js';

/**
 * Day-list sources. GP Connect has no interaction listing every appointment of a practice's day,
 * so the list comes from either a FHIR R4 `Appointment?date=` search (with `_include` of patients
 * and practitioners) or a file the practice system drops (JSON array or CSV with a header row).
 * A source either returns the complete list or throws: a partial list must never replace a good one.
 */
export type DayListRow = Omit<DayListEntry, 'hasSummary' | 'withheld' | 'fetchedAt' | 'date'>;

export interface DayListSource {
  fetchDay(date: string): Promise<DayListRow[]>;
}

/** Cache key of a patient: the NHS number, or a local id when the booking has none. */
export function patientKey(nhsNumber: string | null, localId: string | null): string | null {
  return nhsNumber ?? (localId ? `local:${localId}` : null);
}

export class FhirDayListSource implements DayListSource {
  private readonly send: FetchLike;
  constructor(private readonly o: { baseUrl: string; bearerToken?: string; timeoutMs: number; fetch?: FetchLike; maxPages?: number }) {
    this.send = o.fetch ?? new HttpClient().fetch;
  }

  async fetchDay(date: string): Promise<DayListRow[]> {
    const base = this.o.baseUrl.replace(/\/+$/, '');
    let url: string | null = `${base}/Appointment?date=${date}&_include=Appointment:patient&_include=Appointment:practitioner&_count=500`;
    const resources: Resource[] = [];
    let pages = 0;
    while (url) {
      if (++pages > (this.o.maxPages ?? 200)) throw new AppError('UPSTREAM_ERROR', 'day list: too many pages');
      const bundle = await this.get(url);
      if (bundle.resourceType !== 'Bundle') throw new AppError('UPSTREAM_ERROR', `day list: expected Bundle, got ${bundle.resourceType}`);
      resources.push(...bundleResources(bundle));
      const next = objs(bundle.link).find((l) => str(l.relation) === 'next');
      url = next ? str(next.url) : null;
      if (bundle.total !== undefined && !next) {
        const got = resources.filter((r) => r.resourceType === 'Appointment').length;
        if (typeof bundle.total === 'number' && got < bundle.total)
          throw new AppError('UPSTREAM_ERROR', `day list incomplete: ${got} of ${bundle.total} appointments`);
      }
    }
    return mapR4Appointments(resources);
  }

  private async get(url: string): Promise<Resource> {
    const headers: Record<string, string> = { accept: 'application/fhir+json' };
    if (this.o.bearerToken) headers.authorization = `Bearer ${this.o.bearerToken}`;
    let res: HttpResponse;
    try {
      res = await this.send(url, { headers, signal: AbortSignal.timeout(this.o.timeoutMs) });
    } catch (e) {
      throw new AppError('UPSTREAM_ERROR', `day list request failed: ${(e as Error).message}`, { transient: true });
    }
    if (!res.ok) throw new AppError('UPSTREAM_ERROR', `day list HTTP ${res.status}`, { status: res.status, transient: res.status >= 500 });
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw new AppError('UPSTREAM_ERROR', `day list response truncated: ${(e as Error).message}`, { transient: true });
    }
    return parseFhirJson(text, 'day list');
  }
}

export function mapR4Appointments(resources: Resource[]): DayListRow[] {
  const byRef = new Map(resources.filter((r) => r.id).map((r) => [`${r.resourceType}/${r.id}`, r]));
  return resources
    .filter((r) => r.resourceType === 'Appointment')
    .map((a) => {
      const actors = objs(a.participant).map((p) => (isObj(p.actor) ? p.actor : {}));
      const pActor = actors.find((x) => (ref(x) ?? '').startsWith('Patient/'));
      const cActor = actors.find((x) => (ref(x) ?? '').startsWith('Practitioner/'));
      const lActor = actors.find((x) => (ref(x) ?? '').startsWith('Location/'));
      const pRef = pActor ? ref(pActor) : null;
      const cRef = cActor ? ref(cActor) : null;
      const patient = pRef ? byRef.get(pRef) : undefined;
      const clin = cRef ? byRef.get(cRef) : undefined;
      const nhsFromActor = isObj(pActor?.identifier) && str(pActor.identifier.system) === NHS_NUMBER_SYSTEM ? str(pActor.identifier.value) : null;
      const nhs = str(objs(patient?.identifier).find((i) => str(i.system) === NHS_NUMBER_SYSTEM)?.value) ?? nhsFromActor;
      const pname = objs(patient?.name)[0];
      const patientName = pname
        ? `${(str(pname.family) ?? '').toUpperCase()}, ${(Array.isArray(pname.given) ? pname.given : []).join(' ')}`.replace(/^, /, '')
        : str(pActor?.display);
      const cname = objs(clin?.name)[0];
      const clinicianName =
        str(cActor?.display) ??
        (cname
          ? (str(cname.text) ??
            [...(Array.isArray(cname.prefix) ? cname.prefix : []), ...(Array.isArray(cname.given) ? cname.given : []), cname.family].filter(Boolean).join(' '))
          : null);
      const start = Date.parse(str(a.start) ?? '');
      if (!Number.isFinite(start)) throw new AppError('UPSTREAM_ERROR', 'day list: appointment without a valid start');
      const end = Date.parse(str(a.end) ?? '');
      return {
        appointmentId: a.id ?? `${start}-${pRef ?? ''}`,
        start,
        end: Number.isFinite(end) ? end : null,
        clinicianId: cRef ? cRef.slice('Practitioner/'.length) : null,
        clinicianName,
        patientId: patientKey(nhs?.replace(/\s/g, '') ?? null, pRef ? pRef.slice('Patient/'.length) : null),
        patientName: patientName ?? null,
        nhsNumber: nhs?.replace(/\s/g, '') ?? null,
        dob: str(patient?.birthDate),
        status: str(a.status) ?? 'booked',
        type: conceptText(a.appointmentType) ?? conceptText(objs(a.serviceType)[0]),
        location: lActor ? (str(lActor.display) ?? ref(lActor)) : null,
      };
    });
}

/**
 * File drop: `{date}` in the path is the day. JSON: an array (or {appointments: [...]}) of objects
 * with the DayListRow field names; CSV: a header row with those names, RFC 4180 quoting.
 */
export class FileDayListSource implements DayListSource {
  constructor(private readonly o: { path: string; format: 'auto' | 'json' | 'csv' }) {}

  async fetchDay(date: string): Promise<DayListRow[]> {
    const path = this.o.path.replaceAll('{date}', date);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw new AppError('UPSTREAM_ERROR', `day list file unreadable: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    const format = this.o.format === 'auto' ? (text.trimStart().startsWith('[') || text.trimStart().startsWith('{') ? 'json' : 'csv') : this.o.format;
    const rows = format === 'json' ? jsonRows(text) : csvRows(text);
    return rows.filter((r) => !r.date || r.date === date).map((r, i) => toRow(r, i));
  }
}

function jsonRows(text: string): Record<string, string>[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    void e; // the parser's message quotes the file's content (patient names): not logged
    throw new AppError('UPSTREAM_ERROR', 'day list file is not valid JSON');
  }
  const list = Array.isArray(v) ? v : isObj(v) && Array.isArray(v.appointments) ? v.appointments : null;
  if (!list) throw new AppError('UPSTREAM_ERROR', 'day list JSON must be an array of appointments');
  return list.filter(isObj).map((o) => Object.fromEntries(Object.entries(o).map(([k, x]) => [k, x === null || x === undefined ? '' : String(x)])));
}

/** Minimal RFC 4180 CSV reader (quoted fields, doubled quotes, CRLF). */
export function csvRows(text: string): Record<string, string>[] {
  const records: string[][] = [];
  let field = '';
  let row: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') ((field += '"'), i++);
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') (row.push(field), (field = ''));
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      (row.push(field), records.push(row), (row = []), (field = ''));
    } else field += c;
  }
  // A file caught mid-write (or cut short) must fail, not yield a shorter list: applying it would
  // drop the missing bookings and purge their patients.
  if (quoted) throw new AppError('UPSTREAM_ERROR', 'day list CSV ends inside a quoted field (truncated?)');
  if (field !== '' || row.length) (row.push(field), records.push(row));
  const [header, ...data] = records.filter((r) => r.some((f) => f.trim() !== ''));
  if (!header) return [];
  data.forEach((r, i) => {
    if (r.length !== header.length)
      throw new AppError('UPSTREAM_ERROR', `day list CSV row ${i + 1} has ${r.length} fields, the header ${header.length} (truncated?)`);
  });
  return data.map((r) => Object.fromEntries(header.map((h, i) => [h.trim(), (r[i] ?? '').trim()])));
}

function toRow(r: Record<string, string>, i: number): DayListRow {
  const start = /^\d+$/.test(r.start ?? '') ? Number(r.start) : Date.parse(r.start ?? '');
  if (!Number.isFinite(start)) throw new AppError('UPSTREAM_ERROR', `day list row ${i + 1}: bad start`);
  const end = r.end ? (/^\d+$/.test(r.end) ? Number(r.end) : Date.parse(r.end)) : NaN;
  const nhs = (r.nhsNumber ?? '').replace(/\s/g, '') || null;
  const v = (k: string) => (r[k] ? r[k]! : null);
  return {
    appointmentId: v('appointmentId') ?? `row-${i + 1}`,
    start,
    end: Number.isFinite(end) ? end : null,
    clinicianId: v('clinicianId'),
    clinicianName: v('clinicianName'),
    patientId: v('patientId') ?? patientKey(nhs, null),
    patientName: v('patientName'),
    nhsNumber: nhs,
    dob: v('dob'),
    status: v('status') ?? 'booked',
    type: v('type'),
    location: v('location'),
  };
}
