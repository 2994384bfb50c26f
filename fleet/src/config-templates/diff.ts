import { validateConfig, REDACTED } from '../../../agent/src/config/public.js';
import { isSecretPath, leaves, type Doc } from './merge.js';

export interface DiffRow {
  path: string;
  desired: unknown;
  reported: unknown;
  /** differs: values differ; missing: one side lacks the field (e.g. an older agent's schema); secret: set, values never compared or shown. */
  state: 'differs' | 'missing' | 'secret';
  /** Set by a template (as opposed to an agent default on both sides). */
  managed: boolean;
}

export interface Diff {
  rows: DiffRow[];
  equal: number;
}

const IGNORED = new Set(['/revision', '/version']);

/**
 * Field by field: the desired document with the agent's defaults filled (what the device would
 * run) against the config the device reports it runs (config/reported `config`, secrets already
 * redacted by the agent). Arrays compare whole, as templates replace them whole.
 */
export function configDiff(desired: Doc, reported: Doc): Diff {
  const v = validateConfig({ ...desired, revision: 1 });
  const full = v.ok ? (v.config as unknown as Doc) : desired;
  const want = leaves(full);
  const have = leaves(reported);
  const managed = new Set(leaves(desired).keys());
  const rows: DiffRow[] = [];
  let equal = 0;
  for (const path of [...new Set([...want.keys(), ...have.keys()])].sort()) {
    if (IGNORED.has(path)) continue;
    const isManaged = [...managed].some((m) => path === m || path.startsWith(`${m}/`));
    if (isSecretPath(path)) {
      if (want.get(path) !== undefined && want.get(path) !== '')
        rows.push({
          path,
          desired: REDACTED,
          reported: have.get(path) === REDACTED ? REDACTED : have.get(path) ? 'set' : '(empty)',
          state: 'secret',
          managed: isManaged,
        });
      continue;
    }
    const a = want.get(path);
    const b = have.get(path);
    if (JSON.stringify(a) === JSON.stringify(b)) equal++;
    else rows.push({ path, desired: a, reported: b, state: a === undefined || b === undefined ? 'missing' : 'differs', managed: isManaged });
  }
  return { rows, equal };
}
