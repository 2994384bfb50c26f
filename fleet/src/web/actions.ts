import type { FastifyInstance } from 'fastify';
import type { Commander, FleetCommand } from '../commands/commander.js';
import type { FleetCtx } from '../ctx.js';
import { field, need, scopePractice } from './auth.js';
import { visibleDevice } from './device-page.js';
import { e, layout, stamp } from './html.js';
import { reloadDesired } from '../rollouts/reload.js';

/** Commands (icb-admin), the alerts list with acknowledge, and the audit log. */
export function registerActions(app: FastifyInstance, ctx: FleetCtx, commander: Commander): void {
  app.post('/devices/:id/commands/:cmd', { preHandler: need('icb-admin') }, async (req, reply) => {
    const { id, cmd } = req.params as { id: string; cmd: string };
    const d = await visibleDevice(ctx, req, id);
    if (!d) return reply.code(404).send('no such device');
    const back = (k: 'done' | 'error', msg: string) => reply.redirect(`/devices/${encodeURIComponent(id)}?${k}=${encodeURIComponent(msg)}`, 303);
    let args: Record<string, unknown> = {};
    if (cmd === 'force-uplink') {
      const minutes = Number(field(req, 'minutes') ?? 60);
      if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440) return back('error', 'minutes must be a whole number from 1 to 1440');
      args = { uplink: field(req, 'uplink') || null, minutes };
    } else if (cmd === 'set-config') {
      const desired = await ctx.store.config.desired(id);
      if (!desired) return back('error', 'no desired config for this device: publish one from Config first');
      args = { revision: desired.revision, config: JSON.parse(desired.doc) as Record<string, unknown> };
    } else if (cmd === 'backup-now') {
      args = { force: field(req, 'force') === 'yes' }; // over 4G only when asked for explicitly
    } else if (!['drill', 'ping'].includes(cmd)) return back('error', `unknown command ${cmd}`);
    const out = await commander.send(req.fleetUser!.username, id, cmd as FleetCommand, args);
    if (out.error) return back('error', `${cmd}: ${out.error}`);
    const r = out.response?.result as { passed?: boolean } | undefined;
    return back('done', `${cmd}: ok${cmd === 'drill' ? (r?.passed ? ' - drill passed' : ' - drill FAILED') : ''}`);
  });

  // Re-send the stored desired document (same revision) to one device or a whole practice.
  app.post('/devices/:id/reload', { preHandler: need('icb-admin') }, async (req, reply) => {
    const id = (req.params as { id: string }).id;
    if (!(await visibleDevice(ctx, req, id))) return reply.code(404).send('no such device');
    const out = await reloadDesired(ctx, req.fleetUser!.username, [id]);
    const msg = out.sent.length ? 'reload: desired config re-sent' : out.skipped.length ? 'reload: no desired config for this device (start a rollout first)' : 'reload: not sent (broker not connected)';
    return reply.redirect(`/devices/${encodeURIComponent(id)}?${out.sent.length ? 'done' : 'error'}=${encodeURIComponent(msg)}`, 303);
  });
  app.post('/practices/:ods/reload', { preHandler: need('icb-admin') }, async (req, reply) => {
    const ods = (req.params as { ods: string }).ods;
    const ids = (await ctx.store.devices.list({ practice: ods, limit: 100_000 })).map((d) => d.id);
    const out = await reloadDesired(ctx, req.fleetUser!.username, ids);
    const msg = `reload ${ods}: re-sent to ${out.sent.length}, ${out.skipped.length} without desired config, ${out.failed.length} failed`;
    const back = (req.headers.referer ?? '').match(/\/devices\/[^?]+/)?.[0] ?? '/';
    return reply.redirect(`${back}?${out.failed.length ? 'error' : 'done'}=${encodeURIComponent(msg)}`, 303);
  });

  app.get('/alerts', { preHandler: need() }, async (req, reply) => {
    const practice = scopePractice(req);
    const all = await ctx.store.ops.alerts(500);
    const visible = practice ? await filterPractice(ctx, all, practice) : all;
    const csrf = `<input type="hidden" name="csrf" value="${e(req.fleetUser!.csrf)}">`;
    const rows = visible
      .map((a) => `<tr data-alert="${a.id}"><td>${e(stamp(a.opened_at))}</td><td><a href="/devices/${encodeURIComponent(a.device_id)}">${e(a.device_id)}</a></td><td>${e(a.kind)}${a.level ? ` ${e(a.level)}%` : ''}</td><td>${e(a.summary)}</td>
<td>${a.cleared_at ? `cleared ${e(stamp(a.cleared_at))}` : '<span class="bad">open</span>'}</td><td>${e(a.delivered ?? '')}</td>
<td>${a.acked_at ? `acknowledged by ${e(a.acked_by)}` : req.fleetUser!.role === 'icb-admin' ? `<form class="inline" method="post" action="/alerts/${a.id}/ack">${csrf}<button>Acknowledge</button></form>` : ''}</td></tr>`)
      .join('');
    return reply.type('text/html').send(layout('Alerts', req.fleetUser, `<h1>Alerts</h1><table id="alerts"><thead><tr><th>Opened</th><th>Device</th><th>Kind</th><th>What</th><th>State</th><th>Delivered</th><th></th></tr></thead><tbody>${rows || '<tr><td colspan="7">No alerts.</td></tr>'}</tbody></table>`, req.fleetUser!.csrf));
  });

  app.post('/alerts/:id/ack', { preHandler: need('icb-admin') }, async (req, reply) => {
    const id = Number((req.params as { id: string }).id);
    if (await ctx.store.ops.ackAlert(id, req.fleetUser!.username, ctx.clock.now())) {
      const a = await ctx.store.ops.alert(id);
      await ctx.store.accounts.audit({ at: ctx.clock.now(), username: req.fleetUser!.username, device_id: a?.device_id ?? null, action: 'ack-alert', args: JSON.stringify({ id }), outcome: 'ok', detail: a ? `${a.kind} ${a.level}` : null });
    }
    return reply.redirect('/alerts', 303);
  });

  app.get('/audit', { preHandler: need('icb-admin', 'icb-viewer') }, async (req, reply) => {
    const rows = (await ctx.store.accounts.auditLog(500))
      .map((a) => `<tr><td>${e(stamp(a.at))}</td><td>${e(a.username)}</td><td>${e(a.device_id ?? '')}</td><td>${e(a.action)}</td><td><code>${e(a.args ?? '')}</code></td><td>${e(a.outcome)}</td><td>${e((a.detail ?? '').slice(0, 200))}</td></tr>`)
      .join('');
    return reply.type('text/html').send(layout('Audit', req.fleetUser, `<h1>Audit log</h1><table id="audit"><thead><tr><th>When</th><th>Who</th><th>Device</th><th>Action</th><th>Args</th><th>Outcome</th><th>Detail</th></tr></thead><tbody>${rows}</tbody></table>`, req.fleetUser!.csrf));
  });
}

async function filterPractice<T extends { device_id: string }>(ctx: FleetCtx, rows: T[], practice: string): Promise<T[]> {
  const ids = new Set((await ctx.store.devices.list({ practice, limit: 100_000 })).map((d) => d.id));
  return rows.filter((r) => ids.has(r.device_id));
}
