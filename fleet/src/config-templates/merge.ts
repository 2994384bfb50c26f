import { isSecretKey, REDACTED } from '../../../agent/src/config/public.js';

export type Doc = Record<string, unknown>;

const isObj = (v: unknown): v is Doc => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * One overlay over a lower layer (ICB base -> PCN -> practice), with three rules:
 * - objects merge key by key, recursively;
 * - arrays and scalars replace what is below them whole (an uplinks list is an ordered set the
 *   overlay states in full; element-wise merging would silently keep a lower layer's entries);
 * - `null` deletes the key inherited from below, so the agent's own default applies again.
 * Neither input is modified.
 */
export function overlay(base: Doc, over: Doc): Doc {
  const out: Doc = structuredClone(base);
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else if (isObj(v) && isObj(out[k])) out[k] = overlay(out[k] as Doc, v);
    else out[k] = isObj(v) ? stripNulls(v) : structuredClone(v);
  }
  return out;
}

/** A null inside an object that had nothing below it deletes nothing: drop it. */
function stripNulls(d: Doc): Doc {
  const out: Doc = {};
  for (const [k, v] of Object.entries(d)) if (v !== null) out[k] = isObj(v) ? stripNulls(v) : structuredClone(v);
  return out;
}

export function layered(layers: Doc[]): Doc {
  return layers.reduce((acc, l) => overlay(acc, l), {});
}

/** JSON-pointer leaves of a document (arrays are leaves: they are replaced whole, so compared whole). */
export function leaves(doc: unknown, path = ''): Map<string, unknown> {
  const out = new Map<string, unknown>();
  if (isObj(doc)) {
    for (const [k, v] of Object.entries(doc)) for (const [p, x] of leaves(v, `${path}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`)) out.set(p, x);
    if (!Object.keys(doc).length && path) out.set(path, {});
  } else out.set(path || '/', doc);
  return out;
}

const lastKey = (pointer: string) => pointer.slice(pointer.lastIndexOf('/') + 1);
export const isSecretPath = (pointer: string): boolean => isSecretKey(lastKey(pointer));

/** A copy for showing back: every non-empty secret replaced by the agent's REDACTED marker. */
export function redactForDisplay(doc: Doc): Doc {
  const walk = (v: unknown, key: string | null): unknown => {
    if (key !== null && isSecretKey(key) && v !== null && v !== '') return REDACTED;
    if (Array.isArray(v)) return v.map((x) => walk(x, null));
    if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    return v;
  };
  return walk(doc, null) as Doc;
}

/**
 * The editor shows secrets as REDACTED; saving REDACTED back means "keep the stored value". Each
 * such value is replaced with the one at the same path in the previous version; a REDACTED with no
 * stored value behind it is a problem (the editor cannot invent a secret).
 */
export function keepSecrets(edited: Doc, previous: Doc | undefined): { doc: Doc; problems: { path: string; message: string }[] } {
  const problems: { path: string; message: string }[] = [];
  const walk = (v: unknown, prev: unknown, path: string): unknown => {
    if (v === REDACTED) {
      if (typeof prev === 'string' && prev !== '' && prev !== REDACTED && isSecretKey(lastKey(path))) return prev;
      problems.push({ path, message: `"${REDACTED}" keeps a stored secret, and there is none here: type the value` });
      return v;
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, Array.isArray(prev) ? prev[i] : undefined, `${path}/${i}`));
    if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, isObj(prev) ? prev[k] : undefined, `${path}/${k}`)]));
    return v;
  };
  return { doc: walk(edited, previous, '') as Doc, problems };
}
