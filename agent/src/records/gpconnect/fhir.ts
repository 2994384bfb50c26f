import { AppError } from '../../../../common/errors.js';

/**
 * Minimal FHIR JSON helpers shared by the STU3 (GP Connect) and R4 (day list) adapters.
 * Resources are handled as loose JSON: upstream systems differ in which optional elements they
 * send, and the published GP Connect examples are themselves not always schema-valid, so every
 * accessor tolerates absence and wrong types instead of throwing.
 */
export type Json = Record<string, unknown>;
export type Resource = Json & { resourceType: string; id?: string };

export function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
}

export function objs(v: unknown): Json[] {
  return arr(v).filter(isObj);
}

export function str(v: unknown): string | null {
  if (typeof v === 'string') return v.trim() === '' ? null : v;
  if (typeof v === 'number') return String(v);
  return null;
}

export function num(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
}

/**
 * Parse a FHIR JSON document. The GP Connect spec site wraps examples in Liquid
 * `{% highlight json %}` ... `{% endhighlight %}` tags; those are stripped so the published files
 * can be served and parsed as-is. Anything that is not a JSON object with a resourceType is a
 * clear UPSTREAM_ERROR, never a crash.
 */
export function parseFhirJson(text: string, what = 'response'): Resource {
  const body = text
    .replace(/^\uFEFF/, '')
    .replace(/^\s*\{%\s*highlight[^%]*%\}\s*/, '')
    .replace(/\s*\{%\s*endhighlight\s*%\}\s*$/, '');
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch (e) {
    // V8's message quotes the body ("Unexpected token ... "SMITH, J"...") : keep only the position,
    // since errors reach logs, health and telemetry, which must never carry patient data.
    const pos = /position (\d+)/.exec((e as Error).message)?.[1];
    throw new AppError('UPSTREAM_ERROR', `${what} is not valid JSON${pos ? ` (at byte ${pos})` : ''}`);
  }
  if (!isObj(v) || typeof v.resourceType !== 'string') throw new AppError('UPSTREAM_ERROR', `${what} is not a FHIR resource`);
  return v as Resource;
}

/** Bundle entries' resources (skipping malformed entries). */
export function bundleResources(bundle: Resource): Resource[] {
  if (bundle.resourceType !== 'Bundle') return [bundle];
  return objs(bundle.entry)
    .map((e) => e.resource)
    .filter((r): r is Resource => isObj(r) && typeof r.resourceType === 'string');
}

/** "Type/id" of a reference, or null. */
export function ref(v: unknown): string | null {
  return isObj(v) ? str(v.reference) : null;
}

export function ext(resource: unknown, urlPart: string): Json[] {
  if (!isObj(resource)) return [];
  const needle = urlPart.toLowerCase();
  return objs(resource.extension).filter((e) => (str(e.url) ?? '').toLowerCase().includes(needle));
}

/** Remove anything that looks like an NHS number from upstream text before it reaches logs/health. */
export function redact(text: string): string {
  return text.replace(/\b\d{3}\s?\d{3}\s?\d{4}\b/g, '[redacted]').slice(0, 200);
}

/**
 * What an OperationOutcome issue may say in an error message: its issue code and the Spine error
 * code (details.coding[].code, or details.text when it is code-shaped, e.g. PATIENT_NOT_FOUND).
 * Free text (details.text, diagnostics) can name the patient ("SMITH not found"), and errors reach
 * logs, health and MQTT, so it is replaced by "[redacted]" rather than scrubbed of NHS numbers only.
 */
export function issueSummary(issue: Json | undefined): string {
  if (!issue) return 'error';
  const spineCode = (v: unknown) => (typeof v === 'string' && /^[A-Z][A-Z0-9_]{2,63}$/.test(v) ? v : null);
  const details = isObj(issue.details) ? issue.details : undefined;
  const code = typeof issue.code === 'string' && /^[a-z-]{1,40}$/.test(issue.code) ? issue.code : null;
  const spine =
    objs(details?.coding)
      .map((c) => spineCode(c.code))
      .find(Boolean) ?? spineCode(details?.text);
  const free = str(details?.text) ?? str(issue.diagnostics);
  return [code, spine, free && free !== spine ? '[redacted]' : null].filter(Boolean).join(' ') || 'error';
}

/** Display text of a CodeableConcept: text, else first coding's display, else code. */
export function conceptText(cc: unknown): string | null {
  if (!isObj(cc)) return null;
  const t = str(cc.text);
  if (t) return t;
  for (const c of objs(cc.coding)) {
    const d = str(c.display) ?? str(c.code);
    if (d) return d;
  }
  return null;
}

export function conceptCode(cc: unknown): string | null {
  if (!isObj(cc)) return null;
  for (const c of objs(cc.coding)) {
    const code = str(c.code);
    if (code) return code;
  }
  return null;
}

export function firstNote(r: Json): string | null {
  const notes = objs(r.note)
    .map((n) => str(n.text))
    .filter((t): t is string => t !== null);
  return notes.length ? notes.join(' | ') : null;
}

/** Quantity as "value unit". */
export function quantityText(q: unknown): string | null {
  if (!isObj(q)) return null;
  const v = str(q.value);
  const textExt = ext(q, 'QuantityText')[0];
  if (v === null) return textExt ? str(textExt.valueString) : null;
  const unit = str(q.unit) ?? str(q.code);
  return unit ? `${v} ${unit}` : v;
}
