import type { ConfigProblem } from '../../../agent/src/config/public.js';
import type { FleetCtx } from '../ctx.js';
import type { Scope } from '../store/config-store.js';
import type { DeviceRow } from '../store/types.js';
import { keepSecrets, leaves, type Doc } from './merge.js';
import { Resolver, templateProblems, type Target } from './resolve.js';

export type SaveOutcome = { ok: true; version: number; checked: number } | { ok: false; problems: ConfigProblem[] };

const MAX_LISTED = 50;

/** Devices a template at this scope reaches (with the PCN map applied). */
export async function devicesInScope(ctx: FleetCtx, resolver: Resolver, scope: Scope, id: string): Promise<DeviceRow[]> {
  const all = scope === 'practice' ? await ctx.store.devices.list({ practice: id, limit: 1_000_000 }) : await ctx.store.devices.all();
  if (scope === 'pcn') return all.filter((d) => resolver.pcnOf(d) === id);
  return all;
}

/**
 * Validates what saving this template would make of every device it reaches, one device per
 * practice (devices of one practice differ only in their id), or a stand-in device when the scope
 * has none yet; nothing is saved unless every merged result passes the agent's validator.
 */
export async function checkTemplate(ctx: FleetCtx, scope: Scope, id: string, doc: Doc): Promise<{ problems: ConfigProblem[]; checked: number }> {
  const own = templateProblems(doc);
  if (own.length) return { problems: own, checked: 0 };
  const resolver = await Resolver.load(ctx.store, { scope, scope_id: id, doc });
  const devices = await devicesInScope(ctx, resolver, scope, id);
  const perPractice = new Map<string, Target>();
  for (const d of devices) if (!perPractice.has(d.practice)) perPractice.set(d.practice, d);
  if (!perPractice.size) {
    const practice = scope === 'practice' ? id : 'A00000';
    perPractice.set(practice, { id: `${practice}-template-check`, practice, practice_name: null, pcn: scope === 'pcn' ? id : null });
  }
  const problems: ConfigProblem[] = [];
  for (const t of perPractice.values()) {
    for (const p of resolver.resolve(t).problems) problems.push({ path: p.path, message: `${t.practice} (as ${t.id}): ${p.message}` });
    if (problems.length >= MAX_LISTED) break;
  }
  return { problems: problems.slice(0, MAX_LISTED), checked: perPractice.size };
}

/** Parse, restore kept secrets, validate every reached device, save a new version, audit. */
export async function saveTemplate(ctx: FleetCtx, user: string, scope: Scope, id: string, text: string, expected: number): Promise<SaveOutcome> {
  let edited: unknown;
  try {
    edited = JSON.parse(text);
  } catch (e) {
    return { ok: false, problems: [{ path: '/', message: `not JSON: ${(e as Error).message}` }] };
  }
  if (typeof edited !== 'object' || edited === null || Array.isArray(edited))
    return { ok: false, problems: [{ path: '/', message: 'a template must be a JSON object' }] };
  const prev = await ctx.store.config.template(scope, id);
  const prevDoc = prev ? (JSON.parse(prev.doc) as Doc) : undefined;
  const kept = keepSecrets(edited as Doc, prevDoc);
  if (kept.problems.length) return { ok: false, problems: kept.problems };
  const { problems, checked } = await checkTemplate(ctx, scope, id, kept.doc);
  const now = ctx.clock.now();
  const auditBase = { at: now, username: user, device_id: null, action: 'template-save' };
  if (problems.length) {
    await ctx.store.accounts.audit({
      ...auditBase,
      args: JSON.stringify({ scope, id }),
      outcome: 'refused',
      detail: `${problems.length} problem(s): ${problems
        .slice(0, 3)
        .map((p) => `${p.path} ${p.message}`)
        .join('; ')}`.slice(0, 1000),
    });
    return { ok: false, problems };
  }
  const saved = await ctx.store.config.saveTemplate(scope, id, JSON.stringify(kept.doc), user, now, expected);
  if (!saved.ok)
    return { ok: false, problems: [{ path: '/', message: `changed by someone else meanwhile (now version ${saved.current}); reload and edit again` }] };
  // Changed paths only, never values: a secret's path is fine in the audit log, its value is not.
  const changed = changedPaths(prevDoc ?? {}, kept.doc);
  await ctx.store.accounts.audit({
    ...auditBase,
    args: JSON.stringify({ scope, id, version: saved.version }),
    outcome: 'ok',
    detail: `changed: ${changed.join(', ') || '(nothing)'}`.slice(0, 1000),
  });
  return { ok: true, version: saved.version, checked };
}

export function changedPaths(a: Doc, b: Doc): string[] {
  const la = leaves(a);
  const lb = leaves(b);
  const out: string[] = [];
  for (const k of new Set([...la.keys(), ...lb.keys()])) if (JSON.stringify(la.get(k)) !== JSON.stringify(lb.get(k))) out.push(k);
  return out.sort();
}
