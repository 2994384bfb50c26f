import { escapeHtml as e } from '../../web/html.js';
import type { CaptureItem } from '../capture.js';
import type { Clinician, DayListEntry, PatientListItem, PatientSummary } from '../model.js';
import { hhmm } from '../../../../common/zoned-time.js';
import { clinicalDate, nhsFormat } from './format.js';

/**
 * Page bodies of the viewer (wrapped in the shared chrome by routes.ts). Pure functions of their
 * inputs so they are cheap to test; every value goes through escapeHtml.
 */
export type ViewerRole = 'admin' | 'clinician' | 'reception';
export const canSeeClinical = (role: string): boolean => role === 'clinician' || role === 'admin';

export function subNav(role: string): string {
  return (
    `<nav class="sub" aria-label="Records"><a href="/records/day">Day list</a><a href="/records/search">Search</a>` +
    `<a href="/records/capture/call">Log a call</a>` +
    `<a href="/records/captures">Offline captures</a>${role === 'admin' ? '<a href="/records/audit">Audit</a>' : ''}</nav>`
  );
}

const patientLink = (id: string, role: string, label: string) =>
  canSeeClinical(role)
    ? `<a href="/records/patient?id=${encodeURIComponent(id)}">${e(label)}</a>`
    : `<a href="/records/patient/demographics?id=${encodeURIComponent(id)}">${e(label)}</a>`;

export interface DayListView {
  date: string;
  clinicianId: string;
  clinicians: Clinician[];
  entries: DayListEntry[];
  dates: string[];
  role: string;
  timeZone: string;
  csrf: string;
  /** One fresh idempotency key per arrival button. */
  newKey: () => string;
  arrived: Set<string>;
}

/** What a day list page varies by per request: the session's CSRF token, fresh keys, arrivals recorded so far. */
export type DayListRender = (csrf: string, newKey: () => string, arrived: Set<string>) => string;

/**
 * The day list page with everything escaped and formatted once (Intl time formatting and
 * escapeHtml over hundreds of cells were most of a page view's CPU): the viewer keeps it while the
 * store's view version is unchanged, and each request only splices in its CSRF token, a fresh
 * idempotency key per arrival button and the "Arrived" cells.
 */
export function compileDayList(v: Omit<DayListView, 'csrf' | 'newKey' | 'arrived'>): { rows: number; render: DayListRender } {
  const options = [`<option value="">All clinicians</option>`]
    .concat(v.clinicians.map((c) => `<option value="${e(c.id)}"${c.id === v.clinicianId ? ' selected' : ''}>${e(c.name)} (${c.appointments})</option>`))
    .join('');
  const back = `<input type="hidden" name="back" value="/records/day?date=${e(v.date)}&amp;clinician=${e(encodeURIComponent(v.clinicianId))}">`;
  const rows = v.entries.map((a) => {
    const name = a.patientName ?? '(no patient)';
    const who = a.patientId && a.hasSummary && !a.withheld ? patientLink(a.patientId, v.role, name) : e(name);
    const note = a.withheld ? 'Record withheld (sensitive): not cached' : a.patientId && !a.hasSummary ? 'Summary not cached yet' : '';
    const pre =
      `<tr><td>${e(hhmm(a.start, v.timeZone))}</td><td>${who}</td><td class="nowrap">${e(nhsFormat(a.nhsNumber))}</td>` +
      `<td class="opt">${e(clinicalDate(a.dob))}</td><td class="opt">${e(a.clinicianName ?? '')}</td><td class="opt">${e(a.type ?? '')}</td>` +
      `<td>${e(a.status)}${note ? `<br><span class="muted">${e(note)}</span>` : ''}</td><td>`;
    const form = a.patientId
      ? {
          appointmentId: a.appointmentId,
          tail:
            `"><input type="hidden" name="patient" value="${e(a.patientId)}">` +
            `<input type="hidden" name="appointment" value="${e(a.appointmentId)}">${back}<button type="submit">Mark arrived</button></form>`,
        }
      : null;
    return { pre, form };
  });
  const head = `<h1>Day list</h1>
<form class="inline" method="get" action="/records/day">
<div><label for="date">Date</label><input id="date" type="date" name="date" value="${e(v.date)}"></div>
<div><label for="clinician">Clinician</label><select id="clinician" name="clinician">${options}</select></div>
<button type="submit">Show</button></form>
${v.dates.length ? `<p class="muted">Cached days: ${v.dates.map((d) => `<a href="/records/day?date=${e(d)}">${e(d)}</a>`).join(', ')}</p>` : ''}
`;
  if (v.entries.length === 0) return { rows: 0, render: () => `${head}<p class="card">No appointments cached for this day.</p>` };
  const tableHead =
    `<div class="scroll"><table><caption class="muted">${v.entries.length} appointments</caption><thead><tr><th scope="col">Time</th>` +
    `<th scope="col">Patient</th><th scope="col">NHS number</th><th scope="col" class="opt">Born</th><th scope="col" class="opt">Clinician</th>` +
    `<th scope="col" class="opt">Type</th><th scope="col">Status</th><th scope="col">Arrival</th></tr></thead><tbody>`;
  return {
    rows: v.entries.length,
    render: (csrf, newKey, arrived) => {
      const formHead =
        `<form method="post" action="/records/capture/arrival"><input type="hidden" name="_csrf" value="${e(csrf)}">` +
        `<input type="hidden" name="key" value="`;
      let out = head + tableHead;
      for (const r of rows) {
        out += r.pre;
        if (r.form) out += arrived.has(r.form.appointmentId) ? '<span>Arrived (recorded)</span>' : formHead + e(newKey()) + r.form.tail;
        out += '</td></tr>';
      }
      return out + '</tbody></table></div>';
    },
  };
}

export function dayListBody(v: DayListView): string {
  return compileDayList(v).render(v.csrf, v.newKey, v.arrived);
}

export function searchBody(q: string, results: PatientListItem[] | null, role: string): string {
  const form =
    `<h1>Find a patient</h1><form class="inline" method="get" action="/records/search" role="search">
<div><label for="q">Name, NHS number or date of birth</label><input id="q" name="q" value="${e(q)}" size="30" autocomplete="off"></div>` +
    `<button type="submit">Search</button></form>`;
  if (results === null) return form + '<p class="muted">Only patients booked today or on the next working day are cached.</p>';
  if (results.length === 0) return form + '<p class="card">No cached patient matches.</p>';
  const rows = results
    .map(
      (p) =>
        `<tr><td>${patientLink(p.id, role, p.name)}</td><td>${e(nhsFormat(p.nhsNumber))}</td><td>${e(clinicalDate(p.dob))}</td><td>${e(p.sex ?? '')}</td></tr>`,
    )
    .join('');
  return (
    `${form}<div class="scroll"><table><caption class="muted">${results.length} found</caption><thead><tr><th scope="col">Name</th>` +
    `<th scope="col">NHS number</th><th scope="col">Born</th><th scope="col">Sex</th></tr></thead><tbody>${rows}</tbody></table></div>`
  );
}

export function demographicsCard(s: PatientSummary): string {
  const p = s.patient;
  const row = (k: string, v: string | null) => (v ? `<dt>${e(k)}</dt><dd>${e(v)}</dd>` : '');
  return (
    `<section class="card" aria-labelledby="demo-h"><h2 id="demo-h">${e(p.name)}</h2>` +
    `<dl class="demo">${row('NHS number', nhsFormat(p.nhsNumber))}${row('Born', clinicalDate(p.dob))}${row('Sex', p.sex)}` +
    `${row('Address', p.address)}${row('Phone', p.phone)}${row('Usual GP', p.usualGp)}${row('Practice', p.practice)}</dl></section>`
  );
}

const NO_ALLERGIES = 'No allergies in the cached record (this does not mean no known allergies).';

function allergyItem(a: { substance: string; reaction?: string | null; severity?: string | null; onset?: string | null }): string {
  const since = a.onset ? ` <span class="muted">since ${e(clinicalDate(a.onset))}</span>` : '';
  return `<li class="allergy">${e(a.substance)}${a.reaction ? ` - ${e(a.reaction)}` : ''}${a.severity ? ` (${e(a.severity)})` : ''}${since}</li>`;
}

function section(id: string, title: string, count: number, inner: string, empty: string): string {
  return (
    `<section class="card" aria-labelledby="${id}">` +
    `<h2 id="${id}">${e(title)}${count ? ` (${count})` : ''}</h2>${count ? inner : `<p class="muted">${e(empty)}</p>`}</section>`
  );
}

function table(head: string[], rows: string[][]): string {
  return (
    `<div class="scroll"><table><thead><tr>${head.map((h) => `<th scope="col">${e(h)}</th>`).join('')}</tr></thead>` +
    `<tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table></div>`
  );
}

/** The parts of a summary page that depend only on the cached record (the viewer keeps them per record version). */
export interface CompiledSummary {
  name: string;
  warnings: string[];
  sections: string;
}

/**
 * Newest first for FHIR dates (ISO 8601: 2019, 2019-03, 2019-03-07, 2019-03-07T10:00:00+00:00), which
 * sort as plain strings. Not String.localeCompare: its first use loads ICU's collation data into the agent.
 */
const newestFirst = (a: string | null | undefined, b: string | null | undefined): number => {
  const x = a ?? '';
  const y = b ?? '';
  return x < y ? 1 : x > y ? -1 : 0;
};

export function compileSummary(s: PatientSummary, timeZone: string): CompiledSummary {
  const allergies = s.allergies.filter((a) => a.status === 'active');
  const meds = s.medications.filter((m) => m.status === 'active');
  const problems = [...s.problems].sort((a, b) => (a.status === 'active' ? 0 : 1) - (b.status === 'active' ? 0 : 1) || newestFirst(a.onset, b.onset));
  const results = [...s.results].sort((a, b) => newestFirst(a.date, b.date)).slice(0, 30);
  const imms = [...s.immunisations].sort((a, b) => newestFirst(a.date, b.date));
  const id = encodeURIComponent(s.patient.id);
  const sections =
    `${demographicsCard(s)}
<p class="muted">This record fetched at ${e(hhmm(s.fetchedAt, timeZone))} on ${e(new Date(s.fetchedAt).toISOString().slice(0, 10))}.</p>
<nav class="sub" aria-label="Record offline"><a href="/records/capture/note?patient=${id}">Write consultation note</a>` +
    `<a href="/records/capture/call?patient=${id}">Log a call</a></nav>
${section('allergy-h', 'Allergies', allergies.length, `<ul>${allergies.map(allergyItem).join('')}</ul>`, NO_ALLERGIES)}
${section(
  'med-h',
  'Current medications',
  meds.length,
  table(
    ['Medication', 'Dosage', 'Type', 'Last issued', 'Issues'],
    meds.map((m) => [e(m.name), e(m.dosage ?? ''), e(m.prescriptionType ?? ''), e(clinicalDate(m.lastIssueDate) || 'not issued'), e(m.issueCount)]),
  ),
  'No current medications in the cached record.',
)}
${section(
  'prob-h',
  'Problems',
  problems.length,
  table(
    ['Problem', 'Status', 'Significance', 'Since'],
    problems.map((p) => [e(p.name), e(p.status), e(p.significance ?? ''), e(clinicalDate(p.onset))]),
  ),
  'No problems recorded.',
)}
${section(
  'res-h',
  'Recent results',
  results.length,
  table(
    ['Test', 'Result', 'Range', 'Date'],
    results.map((r) => [
      e(r.name),
      `${e(r.value ?? '')}${r.interpretation ? ` <strong>${e(r.interpretation)}</strong>` : ''}`,
      e(r.referenceRange ?? ''),
      e(clinicalDate(r.date)),
    ]),
  ),
  'No results in the cached record.',
)}
${section(
  'imm-h',
  'Immunisations',
  imms.length,
  table(
    ['Vaccine', 'Date', 'Status'],
    imms.map((i) => [e(i.vaccine), e(clinicalDate(i.date)), e(i.notGiven ? 'not given' : i.status)]),
  ),
  'No immunisations recorded.',
)}
`;
  return { name: s.patient.name, warnings: s.warnings.map((w) => `<li><strong>${e(w.section)}:</strong> ${e(w.text || w.code)}</li>`), sections };
}

/** A compiled summary with this request's offline captures for the patient (never cached: they change as they are sent). */
export function renderSummary(c: CompiledSummary, captures: CaptureItem[], timeZone: string): string {
  const warnings = [...c.warnings];
  const local = captures.filter((x) => x.state !== 'accepted');
  if (local.length)
    warnings.push(`<li><strong>Recorded here while offline:</strong> ${local.length} item(s) not yet filed in the clinical system (see below).</li>`);
  const warn = warnings.length ? `<div class="warn" role="alert"><strong>&#9888; Incomplete record</strong><ul>${warnings.join('')}</ul></div>` : '';
  const offline = section(
    'cap-h',
    'Recorded here while offline',
    captures.length,
    capturesTable(captures, timeZone, false),
    'Nothing recorded offline for this patient.',
  );
  return `${warn}${c.sections}${offline}`;
}

export function summaryBody(s: PatientSummary, captures: CaptureItem[], timeZone: string): string {
  return renderSummary(compileSummary(s, timeZone), captures, timeZone);
}

export function capturesTable(items: CaptureItem[], timeZone: string, showPatient: boolean, actions?: (c: CaptureItem) => string): string {
  const head = ['Recorded', 'Kind', ...(showPatient ? ['Patient'] : []), 'By', 'State', 'Detail', ...(actions ? ['Action'] : [])];
  return table(
    head,
    items.map((c) => [
      e(`${new Date(c.createdAt).toISOString().slice(0, 10)} ${hhmm(c.createdAt, timeZone)}`),
      e(c.kind),
      ...(showPatient ? [e(c.patientId ?? '')] : []),
      e(`${c.author} (${c.role})`),
      `<span class="state state-${e(c.state)}">${e(c.state.toUpperCase())}</span>`,
      e([c.reason, c.resolution ? `resolved: ${c.resolution}` : '', c.upstreamRef ? `ref ${c.upstreamRef}` : ''].filter(Boolean).join('; ')),
      ...(actions ? [actions(c)] : []),
    ]),
  );
}
