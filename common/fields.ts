/**
 * Reading what comes from outside (a request body or query, parsed JSON or YAML) without casting at
 * every use: anything that is not a plain object reads as having no fields, so a handler's own
 * checks then refuse it with a clear error instead of crashing on `null.x` or an array.
 */
export type Fields = Readonly<Record<string, unknown>>;

export function fieldsOf(v: unknown): Fields {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Fields) : {};
}

/** One field of a body, query or parsed document; undefined when absent or when `v` is not an object. */
export function fieldOf(v: unknown, k: string): unknown {
  const f = fieldsOf(v);
  return Object.hasOwn(f, k) ? f[k] : undefined;
}

/** JSON text to its fields (throws SyntaxError on bad JSON, as JSON.parse does; a non-object reads as {}). */
export function parseFields(text: string): Fields {
  return fieldsOf(JSON.parse(text));
}
