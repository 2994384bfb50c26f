import { createHash } from 'node:crypto';
import { AppError } from '../../../common/errors.js';
import { devicesInScope } from '../config-templates/templates.js';
import { Resolver } from '../config-templates/resolve.js';
import type { FleetCtx } from '../ctx.js';
import type { Scope } from '../store/config-store.js';
import type { DeviceRow } from '../store/types.js';

/** 5 % of n, rounded up, at least one (a rollout with devices always has a canary), at most n. */
export function canaryCount(n: number, pct: number): number {
  if (n <= 0) return 0;
  return Math.min(n, Math.max(1, Math.ceil((n * pct) / 100 - 1e-9)));
}

/**
 * The order devices are taken as canaries: online ones first (an offline canary could only time
 * out), then by SHA-256 of scope and id, so the same scope and device set always gives the same
 * canaries, and they are spread across practices rather than the first ids alphabetically.
 */
export function rankDevices(key: string, devices: Pick<DeviceRow, 'id' | 'online'>[]): string[] {
  const h = (id: string) => createHash('sha256').update(`${key}\u0000${id}`).digest('hex');
  return devices
    .map((d) => ({ id: d.id, online: d.online ? 1 : 0, h: h(d.id) }))
    .sort((a, b) => b.online - a.online || (a.h < b.h ? -1 : a.h > b.h ? 1 : 0))
    .map((d) => d.id);
}

/** The next revision for a device: above anything it was sent or reports (revisions only go up). */
export function nextRevision(d: DeviceRow, desiredRevision: number | undefined): number {
  let lastDesired = 0;
  try {
    lastDesired = Number((JSON.parse(d.reported_json ?? '{}') as { lastDesiredRevision?: number | null }).lastDesiredRevision ?? 0);
  } catch {
    /* unreadable report: ignore */
  }
  return Math.max(desiredRevision ?? 0, d.config_revision ?? 0, d.reported_revision ?? 0, lastDesired) + 1;
}

export interface PlanOutcome {
  id: number;
  targets: number;
  canaries: string[];
  unchanged: number;
}

/**
 * A draft rollout: every device in scope resolved and validated (any problem refuses the whole
 * rollout, listing the devices), devices whose desired document would not change left out, the
 * canaries chosen, all written in one transaction. Nothing is published until it is started.
 */
export async function planRollout(ctx: FleetCtx, user: string, scope: Scope, scopeId: string, soakMin: number): Promise<PlanOutcome> {
  const resolver = await Resolver.load(ctx.store);
  const devices = await devicesInScope(ctx, resolver, scope, scope === 'icb' ? '' : scopeId);
  if (!devices.length) throw new AppError('BAD_REQUEST', `no devices in ${scope} ${scopeId}`.trim());
  const busy = await ctx.store.config.inActiveRollout(devices.map((d) => d.id));
  if (busy.length)
    throw new AppError(
      'BAD_REQUEST',
      `${busy.length} device(s) already in an unfinished rollout (e.g. ${busy[0]!.device_id} in #${busy[0]!.rollout_id}): finish or abort it first`,
    );
  const problems: string[] = [];
  const steps: { device_id: string; revision: number; doc: string; online: number }[] = [];
  let unchanged = 0;
  for (const d of devices) {
    const r = resolver.resolve(d);
    if (r.problems.length) {
      problems.push(...r.problems.slice(0, 3).map((p) => `${d.id} ${p.path}: ${p.message}`));
      continue;
    }
    const doc = JSON.stringify(r.doc);
    const desired = await ctx.store.config.desired(d.id);
    if (desired?.doc === doc) {
      unchanged++;
      continue;
    }
    steps.push({ device_id: d.id, revision: nextRevision(d, desired?.revision), doc, online: d.online });
  }
  if (problems.length) throw new AppError('CONFIG_INVALID', `refused: ${problems.length} problem(s)`, { problems: problems.slice(0, 50) });
  if (!steps.length) throw new AppError('BAD_REQUEST', `nothing to roll out: all ${unchanged} device(s) already have this config`);
  const key = `${scope}:${scopeId}`;
  const order = rankDevices(
    key,
    steps.map((s) => ({ id: s.device_id, online: s.online })),
  );
  const k = canaryCount(order.length, ctx.config.rollouts.canaryPct);
  const rank = new Map(order.map((id, i) => [id, i]));
  const canaries = order.slice(0, k);
  const now = ctx.clock.now();
  const id = await ctx.store.config.createRollout(
    {
      created_at: now,
      created_by: user,
      scope,
      scope_id: scope === 'icb' ? '' : scopeId,
      phase: 'draft',
      canary: JSON.stringify(canaries),
      targets: JSON.stringify(order),
      message: unchanged ? `${unchanged} device(s) already up to date, left out` : null,
      updated_at: now,
      soak_ms: Math.round(soakMin * 60_000),
    },
    steps.map((s) => ({ device_id: s.device_id, canary: rank.get(s.device_id)! < k ? 1 : 0, rank: rank.get(s.device_id)!, revision: s.revision, doc: s.doc })),
  );
  await ctx.store.accounts.audit({
    at: now,
    username: user,
    device_id: null,
    action: 'rollout-create',
    args: JSON.stringify({ rollout: id, scope, scopeId, soakMin }),
    outcome: 'ok',
    detail: `${order.length} device(s), canaries ${canaries.join(' ')}`.slice(0, 1000),
  });
  return { id, targets: order.length, canaries, unchanged };
}
