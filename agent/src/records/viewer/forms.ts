import { AppError } from '../../../../common/errors.js';
import { escapeHtml as e } from '../../web/html.js';
import type { CaptureKind } from '../capture.js';

/**
 * Offline capture forms. Each form carries the session's CSRF token and a fresh idempotency key
 * (ULID) made when the form is rendered: submitting twice (double tap, browser resend after a
 * dropped Wi-Fi) stores one item, and the same key goes upstream.
 */
const hidden = (name: string, value: string) => `<input type="hidden" name="${name}" value="${e(value)}">`;
/** Prefilled values (editing a rejected item before sending it again). */
export type FormValues = Record<string, string | undefined>;
/** Where the form posts and what it says; a rejected item is edited through /records/captures/retry. */
export interface FormTarget {
  action: string;
  submit: string;
  extra?: string;
}

const field = (v: FormValues, name: string, label: string, opts: { required?: boolean; rows?: number; max: number }) =>
  `<label for="${name}">${e(label)}${opts.required ? ' (required)' : ''}</label>` +
  `<textarea id="${name}" name="${name}" rows="${opts.rows ?? 4}" maxlength="${opts.max}"${opts.required ? ' required' : ''}>${e(v[name] ?? '')}</textarea>`;
const select = (v: FormValues, name: string, label: string, options: [string, string][]) =>
  `<label for="${name}">${e(label)}</label>` + `<select id="${name}" name="${name}">${options.map(([o, t]) => option(o, t, v[name] === o)).join('')}</select>`;
const option = (value: string, text: string, selected: boolean) => `<option value="${e(value)}"${selected ? ' selected' : ''}>${e(text)}</option>`;

export function noteForm(
  patientId: string,
  patientName: string,
  csrf: string,
  key: string,
  v: FormValues = {},
  t: FormTarget = { action: '/records/capture/note', submit: 'Save note' },
): string {
  return (
    `<h1>Consultation note</h1><p>For <strong>${e(patientName)}</strong>. Saved on this appliance and sent to the clinical system when the link ` +
    `is back.</p>
<form method="post" action="${e(t.action)}" class="card">${hidden('_csrf', csrf)}${hidden('key', key)}${hidden('patient', patientId)}${t.extra ?? ''}
${select(v, 'consultationType', 'Consultation type', [
  ['face-to-face', 'Face to face'],
  ['telephone', 'Telephone'],
  ['video', 'Video'],
  ['home-visit', 'Home visit'],
])}
${field(v, 'history', 'History', { required: true, rows: 5, max: 8000 })}
${field(v, 'examination', 'Examination', { max: 8000 })}
${field(v, 'assessment', 'Assessment', { max: 4000 })}
${field(v, 'plan', 'Plan', { max: 4000 })}
${field(v, 'medication', 'Medication given or prescribed (to be issued in the clinical system)', { max: 4000 })}
<p><button class="primary" type="submit">${e(t.submit)}</button></p></form>`
  );
}

export function callForm(
  patientId: string | null,
  patientName: string | null,
  csrf: string,
  key: string,
  v: FormValues = {},
  t: FormTarget = { action: '/records/capture/call', submit: 'Save call' },
): string {
  return `<h1>Call log</h1>${patientName ? `<p>For <strong>${e(patientName)}</strong>.</p>` : '<p>Not linked to a cached patient. Name the caller below.</p>'}
<form method="post" action="${e(t.action)}" class="card">${hidden('_csrf', csrf)}${hidden('key', key)}${hidden('patient', patientId ?? '')}${t.extra ?? ''}
${select(v, 'direction', 'Direction', [
  ['incoming', 'Incoming'],
  ['outgoing', 'Outgoing'],
])}
<label for="caller">Caller (name and number)</label><input id="caller" name="caller" maxlength="200" size="40" value="${e(v.caller ?? '')}">
${field(v, 'summary', 'What the call was about', { required: true, max: 4000 })}
${select(v, 'urgency', 'Urgency', [
  ['routine', 'Routine'],
  ['urgent', 'Urgent'],
])}
${field(v, 'actionNeeded', 'Action needed', { rows: 2, max: 2000 })}
<p><button class="primary" type="submit">${e(t.submit)}</button></p></form>`;
}

type Body = Record<string, unknown>;
const str = (b: Body, k: string): string | undefined => {
  const v = b[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new AppError('BAD_REQUEST', `${k} must be text`);
  // Browsers send CRLF in textareas; store LF.
  const t = v.replace(/\r\n/g, '\n').trim();
  return t === '' ? undefined : t;
};

/** Form body -> the structured payload of a capture kind (validated again by CaptureQueue). */
export function payloadFromForm(kind: CaptureKind, b: Body): Record<string, string> {
  const keys: Record<CaptureKind, string[]> = {
    arrival: ['appointmentId', 'note'],
    note: ['consultationType', 'history', 'examination', 'assessment', 'plan', 'medication'],
    call: ['direction', 'caller', 'summary', 'urgency', 'actionNeeded'],
  };
  const src: Body = kind === 'arrival' ? { appointmentId: b.appointment, note: b.note } : b;
  const out: Record<string, string> = {};
  for (const k of keys[kind]) {
    const v = str(src, k);
    if (v !== undefined) out[k] = v;
  }
  return out;
}
