import type { FastifyInstance } from 'fastify';
import { AppError, describeError } from '../../../common/errors.js';
import type { FleetCtx } from '../ctx.js';
import { planRollout } from '../rollouts/plan.js';
import type { RolloutRow } from '../store/config-store.js';
import { SCOPES, type Scope } from '../store/config-store.js';
import { field, need } from './auth.js';
import { e, layout, stamp } from './html.js';

const PHASE_CLASS: Record<string, string> = { draft: 'muted', canary: 'warn', all: 'warn', done: 'ok', stopped: 'bad', aborted: 'bad' };

function phaseText(r: RolloutRow): string {
  return `<span class="${PHASE_CLASS[r.phase] ?? ''}">${e(r.phase)}</span>${r.paused ? ' <span class="warn">(paused)</span>' : ''}`;
}

/** Staged rollouts: list, plan (draft, canaries shown), start, pause, resume, abort. */
export function registerRolloutPages(app: FastifyInstance, ctx: FleetCtx): void {
  app.get('/rollouts', { preHandler: need('icb-admin', 'icb-viewer') }, async (req, reply) => {
    const u = req.fleetUser!;
    const q = req.query as { error?: string };
    const rows = (await ctx.store.config.rollouts(false, 100))
      .map(
        (r) =>
          `<tr data-rollout="${r.id}"><td><a href="/rollouts/${r.id}">#${r.id}</a></td><td>${e(stamp(r.created_at))} by ${e(r.created_by)}</td>` +
          `<td>${e(r.scope)} ${e(r.scope_id)}</td><td>${(JSON.parse(r.targets) as string[]).length}</td><td class="phase">${phaseText(r)}</td>` +
          `<td>${e(r.message ?? '')}</td></tr>`,
      )
      .join('');
    const form =
      u.role === 'icb-admin'
        ? `<section class="noprint"><h2>New rollout</h2><form method="post" action="/rollouts" id="new-rollout">` +
          `<input type="hidden" name="csrf" value="${e(u.csrf)}">
<label>Scope <select name="scope">${SCOPES.map((s) => `<option value="${s}">${s === 'icb' ? 'whole ICB' : s}</option>`).join('')}</select>` +
          `</label> <label>PCN or ODS code <input name="id" size="12"></label>
<label>Soak (minutes) <input name="soak" size="4" value="${ctx.config.rollouts.soakMin}"></label> <button>Plan rollout</button></form>
<p class="muted">Planning resolves and validates every device's config and picks ${ctx.config.rollouts.canaryPct} % as canaries (at least one); ` +
          `nothing is published until you start it.</p></section>`
        : '';
    const html =
      `<h1>Rollouts</h1>${q.error ? `<p class="flash bad" role="alert">${e(q.error)}</p>` : ''}${form}<table id="rollouts"><thead><tr>` +
      `<th>Id</th><th>Created</th><th>Scope</th><th>Devices</th><th>Phase</th><th>Message</th></tr></thead>` +
      `<tbody>${rows || '<tr><td colspan="6">No rollouts.</td></tr>'}</tbody></table>`;
    return reply.type('text/html').send(layout('Rollouts', u, html, u.csrf));
  });

  app.post('/rollouts', { preHandler: need('icb-admin') }, async (req, reply) => {
    const scope = SCOPES.find((s) => s === field(req, 'scope')) as Scope | undefined;
    const soak = Number(field(req, 'soak') ?? ctx.config.rollouts.soakMin);
    const fail = (msg: string) => reply.redirect(`/rollouts?error=${encodeURIComponent(msg)}`, 303);
    if (!scope) return fail('choose a scope');
    if (!Number.isFinite(soak) || soak < 0 || soak > 7 * 24 * 60) return fail('soak must be 0 to 10080 minutes');
    try {
      const p = await planRollout(ctx, req.fleetUser!.username, scope, (field(req, 'id') ?? '').trim(), soak);
      return reply.redirect(`/rollouts/${p.id}`, 303);
    } catch (err) {
      const d = describeError(err);
      const problems = (err as AppError).details?.problems as string[] | undefined;
      return fail(`${d.message}${problems ? `: ${problems.slice(0, 10).join(' | ')}` : ''}`.slice(0, 1500));
    }
  });

  app.get('/rollouts/:id', { preHandler: need('icb-admin', 'icb-viewer') }, async (req, reply) => {
    const u = req.fleetUser!;
    const r = await ctx.store.config.rollout(Number((req.params as { id: string }).id));
    if (!r)
      return reply
        .code(404)
        .type('text/html')
        .send(layout('Not found', u, '<h1>No such rollout</h1>', u.csrf));
    const steps = await ctx.store.config.steps(r.id);
    const csrf = `<input type="hidden" name="csrf" value="${e(u.csrf)}">`;
    const act = (a: string, label: string) => `<form class="inline" method="post" action="/rollouts/${r.id}/${a}">${csrf}<button>${e(label)}</button></form>`;
    const live = ['draft', 'canary', 'all'].includes(r.phase);
    const actions =
      u.role === 'icb-admin' && live
        ? `<p class="noprint" id="rollout-actions">${r.phase === 'draft' ? act('start', 'Start rollout') : ''} ` +
          `${r.phase !== 'draft' ? (r.paused ? act('resume', 'Resume') : act('pause', 'Pause')) : ''} ${act('abort', 'Abort')}</p>`
        : '';
    const soak = r.soak_from
      ? `soak started ${e(stamp(r.soak_from))}, ${Math.max(0, Math.ceil((r.soak_from + r.soak_ms - ctx.clock.now()) / 60_000))} min left`
      : `soak ${Math.round(r.soak_ms / 60_000)} min once every canary has applied`;
    const count = (st: string) => steps.filter((s) => s.state === st).length;
    const rows = steps
      .map(
        (s) =>
          `<tr data-step="${e(s.device_id)}" data-state="${e(s.state)}"><td>` +
          `<a href="/devices/${encodeURIComponent(s.device_id)}">${e(s.device_id)}</a></td><td>${s.canary ? '<b>canary</b>' : ''}</td>` +
          `<td>${s.revision}</td><td class="state">${e(s.state)}</td><td>${e(stamp(s.published_at))}</td><td>${e(s.detail ?? '')}</td></tr>`,
      )
      .join('');
    const html =
      `<h1>Rollout #${r.id} <span class="phase">${phaseText(r)}</span></h1>
<table id="rollout-summary"><tr><th>Scope</th><td>${e(r.scope)} ${e(r.scope_id)}</td><th>Created</th>` +
      `<td>${e(stamp(r.created_at))} by ${e(r.created_by)}</td></tr>
<tr><th>Canaries</th><td id="canaries">${(JSON.parse(r.canary) as string[]).map((c) => e(c)).join(', ')}</td><th>Soak</th><td>${soak}</td></tr>
<tr><th>Progress</th><td colspan="3">${steps.length} device(s): ${count('pending')} untouched, ${count('published') + count('publishing')} ` +
      `published, ${count('applied')} applied, ${count('rejected')} rejected, ${count('unhealthy')} unhealthy</td></tr>
<tr><th>Message</th><td colspan="3" id="rollout-message">${e(r.message ?? '')}</td></tr></table>${actions}
<table id="steps"><thead><tr><th>Device</th><th></th><th>Revision</th><th>State</th><th>Published</th><th>Detail</th></tr></thead>` +
      `<tbody>${rows}</tbody></table><p><a href="/rollouts">All rollouts</a></p>`;
    return reply.type('text/html').send(layout(`Rollout #${r.id}`, u, html, u.csrf));
  });

  app.post('/rollouts/:id/:action', { preHandler: need('icb-admin') }, async (req, reply) => {
    const { id: raw, action } = req.params as { id: string; action: string };
    const id = Number(raw);
    const now = ctx.clock.now();
    let changed = false;
    if (action === 'start') changed = await ctx.store.config.setPhase(id, ['draft'], 'canary', 'started: publishing to the canaries', now);
    else if (action === 'pause') changed = await ctx.store.config.setPaused(id, true, now);
    else if (action === 'resume') changed = await ctx.store.config.setPaused(id, false, now);
    else if (action === 'abort')
      changed = await ctx.store.config.setPhase(id, ['draft', 'canary', 'all'], 'aborted', `aborted by ${req.fleetUser!.username}`, now);
    else return reply.code(404).send('unknown action');
    await ctx.store.accounts.audit({
      at: now,
      username: req.fleetUser!.username,
      device_id: null,
      action: `rollout-${action}`,
      args: JSON.stringify({ rollout: id }),
      outcome: changed ? 'ok' : 'no-op',
      detail: null,
    });
    if (changed && action !== 'abort' && action !== 'pause') void ctx.rollouts?.tick();
    return reply.redirect(`/rollouts/${id}`, 303);
  });
}
