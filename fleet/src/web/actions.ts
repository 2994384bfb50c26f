import type { FastifyInstance, FastifyReply } from 'fastify';
import type { BackupAccepted } from '../../../contract/operations.js';
import type { CommandOutcome, Commander, FleetCommand } from '../commands/commander.js';
import type { FleetCtx } from '../ctx.js';
import { field, need } from './auth.js';
import { confirmPage, needsConfirm } from './confirm.js';
import { visibleDevice } from './device-page.js';
import { e, layout, stamp } from './html.js';
import { reloadDesired } from '../rollouts/reload.js';

/**
 * The device's answer to "back up now" (contract/operations.ts BackupAccepted), in words. A refusal
 * because of the link policy (CONFLICT: on 4G with no capture pending) comes back with `offer=force`,
 * which puts a "back up over 4G anyway" button (confirmed again) on the device page.
 */
function backupAnswer(reply: FastifyReply, id: string, out: CommandOutcome): FastifyReply {
  const to = (q: Record<string, string>) => reply.redirect(`/devices/${encodeURIComponent(id)}?${new URLSearchParams(q).toString()}`, 303);
  if (out.response?.ok) {
    const r = (out.response.result ?? {}) as Partial<BackupAccepted>;
    const how = r.forced ? `forced (${r.link ?? 'not the primary link'})` : `over the ${r.link ?? 'primary link'}`;
    const more = r.alreadyRunning ? '; one was already running, so another follows it' : '';
    return to({ done: `Back up now: the box started a backup ${how}${more}. Its result shows under Capabilities (backup) when it reports.` });
  }
  const code = out.response?.error?.code;
  if (code === 'CONFLICT') return to({ error: `Back up now: the box did not start it. ${out.response!.error!.message}`, offer: 'force' });
  if (code === 'NOT_FOUND') return to({ error: 'Back up now: this box runs software too old for the command (update it first).' });
  return to({ error: `Back up now: ${out.error ?? 'no answer'}` });
}

/** Commands (icb-admin; the disruptive ones confirmed first, confirm.ts) and the audit log. Alerts: alert-pages.ts. */
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
    if (needsConfirm(req, cmd)) return confirmPage(req, reply, d, cmd);
    const out = await commander.send(req.fleetUser!.username, id, cmd as FleetCommand, args);
    if (cmd === 'backup-now') return backupAnswer(reply, id, out);
    if (out.error) return back('error', `${cmd}: ${out.error}`);
    const r = out.response?.result as { passed?: boolean } | undefined;
    return back('done', `${cmd}: ok${cmd === 'drill' ? (r?.passed ? ' - drill passed' : ' - drill FAILED') : ''}`);
  });

  // Re-send the stored desired document (same revision) to one device or a whole practice.
  app.post('/devices/:id/reload', { preHandler: need('icb-admin') }, async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const d = await visibleDevice(ctx, req, id);
    if (!d) return reply.code(404).send('no such device');
    if (needsConfirm(req, 'reload')) return confirmPage(req, reply, d, 'reload');
    const out = await reloadDesired(ctx, req.fleetUser!.username, [id]);
    const msg = out.sent.length
      ? 'reload: desired config re-sent'
      : out.skipped.length
        ? 'reload: no desired config for this device (start a rollout first)'
        : 'reload: not sent (broker not connected)';
    return reply.redirect(`/devices/${encodeURIComponent(id)}?${out.sent.length ? 'done' : 'error'}=${encodeURIComponent(msg)}`, 303);
  });
  app.post('/practices/:ods/reload', { preHandler: need('icb-admin') }, async (req, reply) => {
    const ods = (req.params as { ods: string }).ods;
    const ids = (await ctx.store.devices.list({ practice: ods, limit: 100_000 })).map((d) => d.id);
    if (needsConfirm(req, 'practice-reload')) return confirmPage(req, reply, { practice: ods, count: ids.length }, 'practice-reload');
    const out = await reloadDesired(ctx, req.fleetUser!.username, ids);
    const msg = `reload ${ods}: re-sent to ${out.sent.length}, ${out.skipped.length} without desired config, ${out.failed.length} failed`;
    const back = (req.headers.referer ?? '').match(/\/devices\/[^?]+/)?.[0] ?? '/';
    return reply.redirect(`${back}?${out.failed.length ? 'error' : 'done'}=${encodeURIComponent(msg)}`, 303);
  });

  app.get('/audit', { preHandler: need('icb-admin', 'icb-viewer') }, async (req, reply) => {
    const rows = (await ctx.store.accounts.auditLog(500))
      .map(
        (a) =>
          `<tr><td>${e(stamp(a.at))}</td><td>${e(a.username)}</td><td>${e(a.device_id ?? '')}</td><td>${e(a.action)}</td><td>` +
          `<code>${e(a.args ?? '')}</code></td><td>${e(a.outcome)}</td><td>${e((a.detail ?? '').slice(0, 200))}</td></tr>`,
      )
      .join('');
    return reply
      .type('text/html')
      .send(
        layout(
          'Audit',
          req.fleetUser,
          `<h1>Audit log</h1><table id="audit"><thead><tr><th>When</th><th>Who</th><th>Device</th><th>Action</th><th>Args</th><th>Outcome</th>` +
            `<th>Detail</th></tr></thead><tbody>${rows}</tbody></table>`,
          req.fleetUser!.csrf,
        ),
      );
  });
}
