import { REDACTED, type ConfigProblem } from '../../../agent/src/config/public.js';
import type { FleetCtx } from '../ctx.js';
import type { Scope } from '../store/config-store.js';
import type { DeviceRow } from '../store/types.js';
import { isSecretPath, keepSecrets, leaves, redactForDisplay, type Doc } from './merge.js';
import { Resolver, templateProblems, type Target } from './resolve.js';

/** One problem, named once, with every device it affects (empty when checked against a stand-in only). */
export interface TemplateProblem extends ConfigProblem {
  devices?: string[];
}
export type SaveOutcome = { ok: true; version: number; checked: number } | { ok: false; problems: TemplateProblem[] };

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
export async function checkTemplate(ctx: FleetCtx, scope: Scope, id: string, doc: Doc): Promise<{ problems: TemplateProblem[]; checked: number }> {
  const own = templateProblems(doc);
  if (own.length) return { problems: own, checked: 0 };
  const resolver = await Resolver.load(ctx.store, { scope, scope_id: id, doc });
  const devices = await devicesInScope(ctx, resolver, scope, id);
  const perPractice = new Map<string, { target: Target; ids: string[] }>();
  for (const d of devices) {
    const entry = perPractice.get(d.practice);
    if (entry) entry.ids.push(d.id);
    else perPractice.set(d.practice, { target: d, ids: [d.id] });
  }
  if (!perPractice.size) {
    const practice = scope === 'practice' ? id : 'A00000';
    perPractice.set(practice, { target: { id: `${practice}-template-check`, practice, practice_name: null, pcn: scope === 'pcn' ? id : null }, ids: [] });
  }
  // Grouped by problem: a base that breaks 200 practices alike says so once, with the device list.
  const groups = new Map<string, { path: string; message: string; devices: string[]; standIn: boolean }>();
  for (const { target, ids } of perPractice.values()) {
    for (const p of resolver.resolve(target).problems) {
      const key = `${p.path}\u0000${p.message}`;
      const g = groups.get(key) ?? groups.set(key, { path: p.path, message: p.message, devices: [], standIn: false }).get(key)!;
      g.devices.push(...ids);
      if (!ids.length) g.standIn = true;
    }
  }
  const problems = [...groups.values()].slice(0, MAX_LISTED).map((g) => {
    const n = g.devices.length;
    const who = n
      ? `affects ${n} ${n === 1 ? 'device' : 'devices'}`
      : `checked against a stand-in device (${scope === 'practice' ? id : 'no device'} has no devices yet)`;
    return { path: g.path, message: `${g.message} (${who})`, devices: g.devices.sort() };
  });
  return { problems, checked: perPractice.size };
}

/** The editor's text as a template: parsed, with "[redacted]" secrets restored from the stored version. */
async function parseEdited(ctx: FleetCtx, scope: Scope, id: string, text: string): Promise<{ doc: Doc; prevDoc?: Doc } | { problems: TemplateProblem[] }> {
  let edited: unknown;
  try {
    edited = JSON.parse(text);
  } catch (e) {
    return { problems: [{ path: '/', message: `not JSON: ${(e as Error).message}` }] };
  }
  if (typeof edited !== 'object' || edited === null || Array.isArray(edited)) return { problems: [{ path: '/', message: 'a template must be a JSON object' }] };
  const prev = await ctx.store.config.template(scope, id);
  const prevDoc = prev ? (JSON.parse(prev.doc) as Doc) : undefined;
  const kept = keepSecrets(edited as Doc, prevDoc);
  if (kept.problems.length) return { problems: kept.problems };
  return { doc: kept.doc, prevDoc };
}

export type PreviewOutcome =
  { ok: true; device: string; layers: string[]; /** secrets redacted */ doc: Doc; problems: ConfigProblem[] } | { ok: false; problems: TemplateProblem[] };

/**
 * What one device would be sent if the edited (unsaved) template were saved: the layers merged
 * and substituted for that device, checked by the agent's validator. Secrets come back redacted.
 * Nothing is saved; the device must be one the template reaches.
 */
export async function previewTemplate(ctx: FleetCtx, scope: Scope, id: string, text: string, deviceId: string): Promise<PreviewOutcome> {
  const parsed = await parseEdited(ctx, scope, id, text);
  if ('problems' in parsed) return { ok: false, problems: parsed.problems };
  const own = templateProblems(parsed.doc);
  if (own.length) return { ok: false, problems: own };
  const resolver = await Resolver.load(ctx.store, { scope, scope_id: id, doc: parsed.doc });
  const device = (await devicesInScope(ctx, resolver, scope, id)).find((d) => d.id === deviceId);
  if (!device) return { ok: false, problems: [{ path: '/', message: `${deviceId || '(no device chosen)'} is not a device this template reaches` }] };
  const r = resolver.resolve(device);
  return { ok: true, device: device.id, layers: r.layers, doc: redactForDisplay(r.doc), problems: r.problems };
}

/** Parse, restore kept secrets, validate every reached device, save a new version, audit. */
export async function saveTemplate(ctx: FleetCtx, user: string, scope: Scope, id: string, text: string, expected: number): Promise<SaveOutcome> {
  const parsed = await parseEdited(ctx, scope, id, text);
  if ('problems' in parsed) return { ok: false, problems: parsed.problems };
  return saveChecked(ctx, user, scope, id, parsed.doc, parsed.prevDoc, expected, 'template-save', {});
}

/**
 * One-click restore: an older version's document (secrets and all, straight from the store) saved
 * as a new version, after the same check as any save (the layers around it may have changed since).
 */
export async function restoreTemplate(ctx: FleetCtx, user: string, scope: Scope, id: string, from: number, expected: number): Promise<SaveOutcome> {
  const old = (await ctx.store.config.templateVersions(scope, id, 100_000)).find((v) => v.version === from);
  if (!old) return { ok: false, problems: [{ path: '/', message: `there is no version ${from} of this template` }] };
  const prev = await ctx.store.config.template(scope, id);
  const prevDoc = prev ? (JSON.parse(prev.doc) as Doc) : undefined;
  return saveChecked(ctx, user, scope, id, JSON.parse(old.doc) as Doc, prevDoc, expected, 'template-restore', { from });
}

async function saveChecked(
  ctx: FleetCtx,
  user: string,
  scope: Scope,
  id: string,
  doc: Doc,
  prevDoc: Doc | undefined,
  expected: number,
  action: string,
  extra: Record<string, unknown>,
): Promise<SaveOutcome> {
  const { problems, checked } = await checkTemplate(ctx, scope, id, doc);
  const now = ctx.clock.now();
  const auditBase = { at: now, username: user, device_id: null, action };
  if (problems.length) {
    await ctx.store.accounts.audit({
      ...auditBase,
      args: JSON.stringify({ scope, id, ...extra }),
      outcome: 'refused',
      detail: `${problems.length} problem(s): ${problems
        .slice(0, 3)
        .map((p) => `${p.path} ${p.message}`)
        .join('; ')}`.slice(0, 1000),
    });
    return { ok: false, problems };
  }
  const saved = await ctx.store.config.saveTemplate(scope, id, JSON.stringify(doc), user, now, expected);
  if (!saved.ok)
    return { ok: false, problems: [{ path: '/', message: `changed by someone else meanwhile (now version ${saved.current}); reload and edit again` }] };
  // Changed paths only, never values: a secret's path is fine in the audit log, its value is not.
  const changed = changedPaths(prevDoc ?? {}, doc);
  await ctx.store.accounts.audit({
    ...auditBase,
    args: JSON.stringify({ scope, id, ...extra, version: saved.version }),
    outcome: 'ok',
    detail: `changed: ${changed.join(', ') || '(nothing)'}`.slice(0, 1000),
  });
  return { ok: true, version: saved.version, checked };
}

export interface VersionDiffRow {
  path: string;
  /** undefined: absent in that version; secrets show only as REDACTED (set) or '' (empty). */
  before: unknown;
  after: unknown;
}

/** Field by field between two versions of one template; a changed secret says "changed", never its value. */
export function versionDiff(a: Doc, b: Doc): VersionDiffRow[] {
  const la = leaves(a);
  const lb = leaves(b);
  const shown = (path: string, v: unknown) => (v !== undefined && v !== '' && v !== null && isSecretPath(path) ? REDACTED : v);
  return changedPaths(a, b).map((path) => {
    const before = shown(path, la.get(path));
    const after = shown(path, lb.get(path));
    return before === REDACTED && after === REDACTED ? { path, before: REDACTED, after: `${REDACTED} (changed)` } : { path, before, after };
  });
}

export function changedPaths(a: Doc, b: Doc): string[] {
  const la = leaves(a);
  const lb = leaves(b);
  const out: string[] = [];
  for (const k of new Set([...la.keys(), ...lb.keys()])) if (JSON.stringify(la.get(k)) !== JSON.stringify(lb.get(k))) out.push(k);
  return out.sort();
}
