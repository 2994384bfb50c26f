import { validateConfig, type ConfigProblem, remoteConfigProblems } from '../../../agent/src/config/public.js';
import type { Scope, TemplateRow } from '../store/config-store.js';
import type { Store } from '../store/store.js';
import { layered, type Doc } from './merge.js';

export interface Target {
  id: string;
  practice: string;
  practice_name: string | null;
  pcn: string | null;
}

export interface Resolved {
  doc: Doc;
  /** Which template versions went in, e.g. ["icb@3", "pcn:PCN-N@1", "practice:P81001@2"]. */
  layers: string[];
  problems: ConfigProblem[];
}

/**
 * `{{deviceId}}`, `{{odsCode}}` and `{{pcn}}` inside any string value are replaced per device, so one
 * ICB-wide template can name per-device files (e.g. certPath "/etc/mqtt/{{deviceId}}.crt").
 */
export function substitute(v: unknown, vars: Record<string, string>): unknown {
  if (typeof v === 'string') return v.replace(/\{\{(deviceId|odsCode|pcn)\}\}/g, (_m, k: string) => vars[k] ?? '');
  if (Array.isArray(v)) return v.map((x) => substitute(x, vars));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substitute(x, vars)]));
  return v;
}

/** Keys a template may not set: the fleet sets them per device (identity) or per publish (revision). */
const FLEET_OWNED = [['site', 'deviceId'], ['site', 'odsCode'], ['revision']] as const;

export function templateProblems(doc: unknown): ConfigProblem[] {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return [{ path: '/', message: 'a template must be a JSON object' }];
  const out: ConfigProblem[] = [];
  for (const path of FLEET_OWNED) {
    let v: unknown = doc;
    for (const k of path) v = v && typeof v === 'object' ? (v as Doc)[k] : undefined;
    if (v !== undefined) out.push({ path: `/${path.join('/')}`, message: 'set by the fleet for each device; remove it from the template' });
  }
  return out;
}

/**
 * A snapshot of the templates and the practice -> PCN map that resolves any device's desired
 * document synchronously (a rollout over thousands of devices reads the database once), and
 * validates it with the agent's own validator (agent/src/config/load.ts) plus the device's own
 * remote-config rules (agent/src/telemetry/remote-config.ts): what passes here is what the agent
 * accepts, unless the agent is of another version.
 */
export class Resolver {
  private constructor(
    private readonly byKey: Map<string, TemplateRow>,
    private readonly pcns: Map<string, string>,
  ) {}

  static async load(store: Store, override?: { scope: Scope; scope_id: string; doc: Doc }): Promise<Resolver> {
    const byKey = new Map((await store.config.templates()).map((t) => [`${t.scope}:${t.scope_id}`, t]));
    if (override) {
      const k = `${override.scope}:${override.scope_id}`;
      const cur = byKey.get(k);
      byKey.set(k, {
        scope: override.scope,
        scope_id: override.scope_id,
        doc: JSON.stringify(override.doc),
        version: (cur?.version ?? 0) + 1,
        updated_at: 0,
        updated_by: '(draft)',
      });
    }
    const pcns = new Map((await store.config.pcnMap()).map((m) => [m.practice, m.pcn]));
    return new Resolver(byKey, pcns);
  }

  pcnOf(t: Target): string | null {
    return this.pcns.get(t.practice) ?? t.pcn;
  }

  resolve(t: Target): Resolved {
    const pcn = this.pcnOf(t);
    const rows = [this.byKey.get('icb:'), pcn ? this.byKey.get(`pcn:${pcn}`) : undefined, this.byKey.get(`practice:${t.practice}`)].filter(
      (r): r is TemplateRow => !!r,
    );
    const merged = layered(rows.map((r) => JSON.parse(r.doc) as Doc));
    const site: Doc = { ...((merged.site as Doc | undefined) ?? {}), deviceId: t.id, odsCode: t.practice };
    if (t.practice_name && site.practiceName === undefined) site.practiceName = t.practice_name;
    const doc = substitute({ ...merged, site }, { deviceId: t.id, odsCode: t.practice, pcn: pcn ?? '' }) as Doc;
    delete doc.revision;
    const layers = rows.map((r) => `${r.scope === 'icb' ? 'icb' : `${r.scope}:${r.scope_id}`}@${r.version}`);
    if (!rows.length) return { doc, layers, problems: [{ path: '/', message: 'no template applies to this device (save an ICB base first)' }] };
    // Revision 1 stands in for the real one, which the publish step sets in the envelope.
    const v = validateConfig({ ...doc, revision: 1 });
    const problems = v.ok ? remoteConfigProblems(v.config, t.id) : v.problems;
    return { doc, layers, problems };
  }
}
