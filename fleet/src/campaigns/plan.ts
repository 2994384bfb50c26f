import { TypeCompiler } from '@sinclair/typebox/compiler';
import { AppError } from '../../../common/errors.js';
import { CommandArgs } from '../../../contract/mqtt.js';
import type { FleetCtx } from '../ctx.js';
import { canaryCount, rankDevices } from '../rollouts/plan.js';
import { hoursProblems } from './hours.js';

const checkArgs = TypeCompiler.Compile(CommandArgs.update);
export const ARCHES = ['amd64', 'arm64'] as const;
const ODS = /^[A-Z0-9]{3,10}$/;

/** Semantic version order (pre-releases before their release); NaN-free for anything the contract's pattern accepts. */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const [core, pre] = v.split('-', 2) as [string, string | undefined];
    return { n: core.split('.').map((x) => Number(x) || 0), pre };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < 3; i++) if ((x.n[i] ?? 0) !== (y.n[i] ?? 0)) return (x.n[i] ?? 0) - (y.n[i] ?? 0);
  if (x.pre === y.pre) return 0;
  if (x.pre === undefined) return 1;
  if (y.pre === undefined) return -1;
  return x.pre < y.pre ? -1 : 1;
}

export interface CampaignInput {
  url: string;
  version: string;
  arch: string;
  /** ODS codes; empty: every practice. */
  practices: string[];
  canaryPct: number;
  soakMin: number;
  allowCellular: boolean;
  /** Update hours, "19:00-07:00" UK time (hours.ts); null, empty or absent: any time. */
  hours?: string | null;
}

/** Every problem with a campaign's form, in words (empty: fine). */
export function inputProblems(i: CampaignInput): string[] {
  const out: string[] = [];
  if (!checkArgs.Check({ url: i.url, version: i.version })) {
    if (!/^(https?:\/\/|file:\/\/\/|\/)/.test(i.url) || i.url.length > 2048) out.push('bundle URL must start with https://, http://, file:/// or /');
    if (!/^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$/.test(i.version)) out.push('version must look like 1.2.3');
    if (!out.length) out.push('bundle URL or version not accepted by the update command');
  }
  if (!(ARCHES as readonly string[]).includes(i.arch)) out.push(`processor type must be one of ${ARCHES.join(', ')}`);
  const bad = i.practices.filter((p) => !ODS.test(p));
  if (bad.length) out.push(`not an ODS code: ${bad.slice(0, 5).join(', ')}`);
  if (!Number.isFinite(i.canaryPct) || i.canaryPct < 0.1 || i.canaryPct > 100) out.push('canary share must be 0.1 to 100 %');
  if (!Number.isFinite(i.soakMin) || i.soakMin < 0 || i.soakMin > 7 * 24 * 60) out.push('soak must be 0 to 10080 minutes');
  out.push(...hoursProblems(i.hours));
  return out;
}

export interface CampaignPlan {
  id: number;
  targets: number;
  canaries: string[];
  upToDate: number;
}

/**
 * A draft campaign: the boxes of the chosen practices (all when none are named) that do not already
 * run this version or a newer one, ranked as config rollouts rank them (boxes online and on their
 * primary link first, so a canary is not one that must wait), the canaries chosen, all written in
 * one transaction. Nothing is sent until it is started.
 */
export async function planCampaign(ctx: FleetCtx, user: string, i: CampaignInput): Promise<CampaignPlan> {
  const problems = inputProblems(i);
  if (problems.length) throw new AppError('BAD_REQUEST', problems.join('; '));
  const wanted = new Set(i.practices);
  const all = await ctx.store.devices.all();
  const inScope = wanted.size ? all.filter((d) => wanted.has(d.practice)) : all;
  const unknown = [...wanted].filter((p) => !all.some((d) => d.practice === p));
  if (unknown.length) throw new AppError('BAD_REQUEST', `no boxes at practice(s) ${unknown.slice(0, 10).join(', ')}`);
  if (!inScope.length) throw new AppError('BAD_REQUEST', 'no boxes to update');
  const todo = inScope.filter((d) => !d.version || compareVersions(d.version, i.version) < 0);
  const upToDate = inScope.length - todo.length;
  if (!todo.length) throw new AppError('BAD_REQUEST', `nothing to do: all ${upToDate} box(es) already run ${i.version} or newer`);
  const busy = await ctx.store.campaigns.inActive(todo.map((d) => d.id));
  if (busy.length)
    throw new AppError(
      'BAD_REQUEST',
      `${busy.length} box(es) already in an unfinished campaign (e.g. ${busy[0]!.device_id} in #${busy[0]!.campaign_id}): finish or abort it first`,
    );
  const key = `campaign:${i.version}:${[...wanted].sort().join(',')}`;
  const ready = (d: (typeof todo)[number]) => d.online === 1 && (i.allowCellular || d.active_kind === 'wired');
  const order = rankDevices(
    key,
    todo.map((d) => ({ id: d.id, online: ready(d) ? 1 : 0 })),
  );
  const k = canaryCount(order.length, i.canaryPct);
  const byId = new Map(todo.map((d) => [d.id, d]));
  const now = ctx.clock.now();
  const id = await ctx.store.campaigns.create(
    {
      created_at: now,
      created_by: user,
      bundle_url: i.url,
      version: i.version,
      arch: i.arch,
      practices: JSON.stringify([...wanted].sort()),
      canary_pct: i.canaryPct,
      soak_ms: Math.round(i.soakMin * 60_000),
      allow_cellular: i.allowCellular ? 1 : 0,
      hours: i.hours || null,
      message: upToDate ? `${upToDate} box(es) already on ${i.version} or newer, left out` : null,
      updated_at: now,
    },
    order.map((device_id, rank) => ({ device_id, rank, canary: rank < k ? 1 : 0, from_version: byId.get(device_id)!.version })),
  );
  await ctx.store.accounts.audit({
    at: now,
    username: user,
    device_id: null,
    action: 'campaign-create',
    args: JSON.stringify({
      campaign: id,
      version: i.version,
      arch: i.arch,
      url: i.url,
      practices: [...wanted],
      allowCellular: i.allowCellular,
      hours: i.hours || null,
    }),
    outcome: 'ok',
    detail: `${order.length} box(es), canaries ${order.slice(0, k).join(' ')}`.slice(0, 1000),
  });
  return { id, targets: order.length, canaries: order.slice(0, k), upToDate };
}
