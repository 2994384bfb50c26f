import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { practiceLabel } from '../alerts/alerts.js';
import type { FleetCtx } from '../ctx.js';
import { ALERT_STATUSES, type AlertFilter, type AlertListRow, type AlertStatus, type MaintenanceRow, type MaintenanceScope } from '../store/ops-store.js';
import { field, need, scopePractice } from './auth.js';
import { ago, e, layout, local, localInput, parseLocal, queryOf } from './html.js';
import { fieldsOf } from '../../../common/fields.js';

const PAGE = 200;
const HOUR = 3_600_000;
const SNOOZE_HOURS = [1, 4, 8, 24, 72];
const MAX_WINDOW_DAYS = 14;
const STATUS_LABEL: Record<AlertStatus, string> = {
  active: 'not cleared',
  open: 'open (needs someone)',
  acknowledged: 'acknowledged',
  snoozed: 'snoozed',
  cleared: 'cleared',
  all: 'all',
};
const SCOPES: MaintenanceScope[] = ['device', 'practice', 'icb'];

/** The filter part of an /alerts URL, from a query or a form's `back` field: only known keys survive. */
function alertsUrl(src: Record<string, unknown>, extra: Record<string, string> = {}): string {
  const p = new URLSearchParams();
  for (const k of ['status', 'kind', 'practice', 'page']) {
    const v = src[k];
    if (typeof v === 'string' && v && v.length <= 64) p.set(k, v);
  }
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  const s = p.toString();
  return `/alerts${s ? `?${s}` : ''}`;
}
const backFrom = (req: FastifyRequest) => Object.fromEntries(new URLSearchParams(field(req, 'back') ?? ''));

function stateText(a: AlertListRow, now: number): string {
  if (a.cleared_at) return `<span class="muted">cleared ${local(a.cleared_at)}</span>`;
  const parts: string[] = [];
  if (a.acked_at) parts.push(`acknowledged by ${e(a.acked_by)} ${ago(now, a.acked_at)} ago`);
  if (a.snoozed_until && a.snoozed_until > now) parts.push(`snoozed until ${local(a.snoozed_until)} by ${e(a.snoozed_by)}`);
  const open = parts.length ? parts.join('; ') : '<span class="bad">open</span>';
  // The one notice sent when a snooze ended with the alert still open (alerts/alerts.ts).
  if (a.renotified_at && a.snooze_notified_until && !(a.snoozed_until && a.snoozed_until > now))
    return (
      `${open}<br><span class="renotified">snooze (until ${local(a.snooze_notified_until)}, by ${e(a.snoozed_by)}) ended with it still open: ` +
      `notified again ${local(a.renotified_at)} (${e(a.renotified ?? 'sending')})</span>`
    );
  return open;
}

function windowScope(w: MaintenanceRow): string {
  return w.scope === 'icb' ? 'the whole ICB' : `${w.scope} ${e(w.scope_id)}`;
}

/**
 * Alerts triage: filters (state, kind, practice), each alert named by its practice, bulk acknowledge
 * and snooze, and maintenance windows. Every change is audited; only an icb-admin changes anything.
 */
export function registerAlertPages(app: FastifyInstance, ctx: FleetCtx): void {
  app.get('/alerts', { preHandler: need() }, async (req, reply) => {
    const q = queryOf(req);
    const u = req.fleetUser!;
    const admin = u.role === 'icb-admin';
    const now = ctx.clock.now();
    const status = ALERT_STATUSES.find((s) => s === q.status) ?? 'active';
    const page = Math.max(0, Number.parseInt(q.page ?? '0', 10) || 0);
    const f: AlertFilter = {
      status,
      kind: q.kind?.trim() || undefined,
      practice: scopePractice(req, q.practice?.trim().toUpperCase()),
      now,
      limit: PAGE,
      offset: page * PAGE,
    };
    const [rows, total, kinds, windows] = await Promise.all([
      ctx.store.ops.listAlerts(f),
      ctx.store.ops.countAlerts(f),
      ctx.store.ops.alertKinds(),
      ctx.store.ops.currentMaintenance(now),
    ]);
    const csrf = `<input type="hidden" name="csrf" value="${e(u.csrf)}">`;
    const back = `<input type="hidden" name="back" value="${e(new URLSearchParams(q as Record<string, string>).toString())}">`;
    const post = (action: string, label: string, extra = '') =>
      `<form class="inline" method="post" action="${action}">${csrf}${back}${extra}<button>${e(label)}</button></form>`;
    const flash = q.done ? `<p class="flash" role="status">${e(q.done)}</p>` : q.error ? `<p class="flash bad" role="alert">${e(q.error)}</p>` : '';

    const opt = (v: string, label: string, on: boolean) => `<option value="${e(v)}"${on ? ' selected' : ''}>${e(label)}</option>`;
    const practiceBox = `<label>Practice <input name="practice" value="${e(q.practice ?? '')}" size="8" placeholder="ODS code"></label>`;
    const filters = `<form method="get" action="/alerts" class="noprint filters" id="alert-filters">
<label>State <select name="status">${ALERT_STATUSES.map((s) => opt(s, STATUS_LABEL[s], s === status)).join('')}</select></label>
<label>Kind <select name="kind"><option value="">any</option>${kinds.map((k) => opt(k, k, k === f.kind)).join('')}</select></label>
${u.role === 'practice-manager' ? '' : practiceBox} <button>Show</button></form>`;

    const bulk = admin
      ? `<form id="bulk" method="post" action="/alerts/bulk" class="noprint actions">${csrf}${back}
<span id="select-all" hidden><label><input type="checkbox"> select all</label></span>
<label>With the selected <select name="action"><option value="ack">acknowledge</option><option value="snooze">snooze</option></select></label>
<label>for <select name="hours">${SNOOZE_HOURS.map((h) => opt(String(h), `${h} h`, h === 4)).join('')}</select> (snooze)</label>
<button>Apply</button></form>`
      : '';
    const body = rows
      .map((a) => {
        const live = !a.cleared_at;
        const pick = admin && live ? `<input type="checkbox" form="bulk" name="a${a.id}" value="1" aria-label="select alert ${a.id}">` : '';
        const ack = a.acked_at ? '' : post(`/alerts/${a.id}/ack`, 'Acknowledge');
        const acts = admin && live ? `${ack} ${post(`/alerts/${a.id}/snooze`, 'Snooze 4 h', '<input type="hidden" name="hours" value="4">')}` : '';
        const practice = a.practice ? e(practiceLabel({ practice: a.practice, practice_name: a.practice_name })) : '<span class="muted">unknown</span>';
        const st = a.cleared_at ? 'cleared' : a.acked_at ? 'acknowledged' : a.snoozed_until && a.snoozed_until > now ? 'snoozed' : 'open';
        return `<tr data-alert="${a.id}" data-state="${st}">
<td data-label="Select">${pick}</td><td data-label="Opened">${local(a.opened_at)}</td><td data-label="Practice" class="practice">${practice}</td>
<td data-label="Device"><a class="nw" href="/devices/${encodeURIComponent(a.device_id)}">${e(a.device_id)}</a></td>
<td data-label="Kind">${e(a.kind)}${a.level ? ` ${e(a.level)}%` : ''}</td>
<td data-label="What">${e(a.summary)}</td><td data-label="State" class="state">${stateText(a, now)}</td>
<td data-label="Delivered">${e(a.delivered ?? '')}</td><td data-label="Actions" class="acts">${acts}</td></tr>`;
      })
      .join('');
    const pages = Math.max(1, Math.ceil(total / PAGE));
    const pageLink = (n: number, label: string) => `<a href="${e(alertsUrl(q, { page: String(n) }))}">${label}</a>`;
    const nav = `<p>${total} alert(s)${pages > 1 ? `; page ${page + 1} of ${pages}` : ''} ${page > 0 ? pageLink(page - 1, 'previous') : ''} ${
      page + 1 < pages ? pageLink(page + 1, 'next') : ''
    }</p>`;

    const wrows = windows
      .map((w) => {
        const on = w.starts_at <= now;
        const end = admin ? post(`/maintenance/${w.id}/end`, on ? 'End now' : 'Cancel') : '';
        return `<tr data-window="${w.id}"><td data-label="Covers">${windowScope(w)}</td><td data-label="From">${local(w.starts_at)}</td>
<td data-label="Until">${local(w.ends_at)}</td><td data-label="Why">${e(w.reason)}</td><td data-label="By">${e(w.created_by)}</td>
<td data-label="">${on ? '<span class="badge">in force</span>' : 'planned'} ${end}</td></tr>`;
      })
      .join('');
    const addWindow = admin
      ? `<form method="post" action="/maintenance" id="add-window" class="noprint filters">${csrf}${back}
<label>Covers <select name="scope">${SCOPES.map((s) => `<option value="${s}">${s === 'icb' ? 'whole ICB' : s}</option>`).join('')}</select></label>
<label>Device id or ODS code <input name="id" size="12"></label>
<label>From <input type="datetime-local" name="from" value="${localInput(now)}"></label>
<label>Until <input type="datetime-local" name="until" value="${localInput(now + 2 * HOUR)}"></label>
<label>Why <input name="reason" required maxlength="200" placeholder="e.g. practice rewiring"></label> <button>Add window</button></form>`
      : '';
    const maint = `<section id="maintenance"><h2>Maintenance windows</h2>
<p class="muted">While a window is in force no new alert opens for the devices it covers (UK time shown).
A condition still true when the window ends alerts then.</p>
<table id="windows"><thead><tr><th>Covers</th><th>From</th><th>Until</th><th>Why</th><th>By</th>
<th></th></tr></thead><tbody>${wrows || '<tr><td colspan="6">None planned.</td></tr>'}</tbody></table>${addWindow}</section>`;

    const html = `<h1>Alerts</h1>${flash}${filters}${bulk}${nav}
<table id="alerts"><thead><tr><th></th><th>Opened</th><th>Practice</th><th>Device</th><th>Kind</th><th>What</th><th>State</th><th>Delivered</th>
<th></th></tr></thead>
<tbody>${body || '<tr><td colspan="9">No alerts match.</td></tr>'}</tbody></table>${maint}`;
    return reply.type('text/html').send(layout('Alerts', u, html, u.csrf));
  });

  const audit = (req: FastifyRequest, action: string, device: string | null, args: unknown, outcome: string, detail: string | null) =>
    ctx.store.accounts.audit({
      at: ctx.clock.now(),
      username: req.fleetUser!.username,
      device_id: device,
      action,
      args: JSON.stringify(args),
      outcome,
      detail,
    });
  const done = (req: FastifyRequest, reply: FastifyReply, k: 'done' | 'error', msg: string) => reply.redirect(alertsUrl(backFrom(req), { [k]: msg }), 303);
  const hoursOf = (req: FastifyRequest) => {
    const h = Number(field(req, 'hours') ?? 4);
    return Number.isInteger(h) && h >= 1 && h <= 168 ? h : null;
  };

  /** Acknowledge or snooze one alert, audited; false when it was not changed (cleared, already acknowledged, unknown). */
  const change = async (req: FastifyRequest, id: number, action: 'ack' | 'snooze', hours: number): Promise<boolean> => {
    const by = req.fleetUser!.username;
    const now = ctx.clock.now();
    const ok = action === 'ack' ? await ctx.store.ops.ackAlert(id, by, now) : await ctx.store.ops.snoozeAlert(id, by, now + hours * HOUR);
    const a = await ctx.store.ops.alert(id);
    const what = a ? `${a.practice_name ?? a.practice ?? ''} ${a.kind}${a.level ? ` ${a.level}%` : ''}`.trim() : 'no such alert';
    const args = action === 'ack' ? { id } : { id, hours };
    const why = !a ? 'no such alert' : a.cleared_at ? 'already cleared' : 'already acknowledged';
    await audit(req, action === 'ack' ? 'ack-alert' : 'snooze-alert', a?.device_id ?? null, args, ok ? 'ok' : 'refused', ok ? what : `${what}: ${why}`);
    return ok;
  };

  app.post('/alerts/:id/ack', { preHandler: need('icb-admin') }, async (req, reply) => {
    const ok = await change(req, Number((req.params as { id: string }).id), 'ack', 0);
    return done(req, reply, ok ? 'done' : 'error', ok ? 'alert acknowledged' : 'not acknowledged: the alert has cleared or was already acknowledged');
  });
  app.post('/alerts/:id/snooze', { preHandler: need('icb-admin') }, async (req, reply) => {
    const hours = hoursOf(req);
    if (!hours) return done(req, reply, 'error', 'snooze for 1 to 168 hours');
    const ok = await change(req, Number((req.params as { id: string }).id), 'snooze', hours);
    return done(req, reply, ok ? 'done' : 'error', ok ? `alert snoozed for ${hours} h` : 'not snoozed: the alert has cleared');
  });
  app.post('/alerts/bulk', { preHandler: need('icb-admin') }, async (req, reply) => {
    const body = fieldsOf(req.body);
    const ids = Object.keys(body)
      .flatMap((k) => (/^a\d{1,12}$/.test(k) && body[k] === '1' ? [Number(k.slice(1))] : []))
      .slice(0, 500);
    const action = field(req, 'action') === 'snooze' ? 'snooze' : field(req, 'action') === 'ack' ? 'ack' : null;
    const hours = hoursOf(req);
    if (!action) return done(req, reply, 'error', 'choose acknowledge or snooze');
    if (!ids.length) return done(req, reply, 'error', 'select at least one alert');
    if (action === 'snooze' && !hours) return done(req, reply, 'error', 'snooze for 1 to 168 hours');
    let n = 0;
    for (const id of ids) if (await change(req, id, action, hours ?? 4)) n++;
    const verb = action === 'ack' ? 'acknowledged' : `snoozed for ${hours} h`;
    return done(req, reply, 'done', `${n} of ${ids.length} alert(s) ${verb}${n < ids.length ? ' (the rest had cleared or were already acknowledged)' : ''}`);
  });

  app.post('/maintenance', { preHandler: need('icb-admin') }, async (req, reply) => {
    const now = ctx.clock.now();
    const scope = SCOPES.find((s) => s === field(req, 'scope'));
    const id = scope === 'icb' ? '' : (field(req, 'id') ?? '').trim();
    const fromRaw = field(req, 'from');
    const from = fromRaw ? parseLocal(fromRaw) : now;
    const until = parseLocal(field(req, 'until'));
    const reason = (field(req, 'reason') ?? '').trim().slice(0, 200);
    const problem = !scope
      ? 'choose what the window covers'
      : scope !== 'icb' && !id
        ? `enter the ${scope === 'device' ? 'device id' : "practice's ODS code"}`
        : scope === 'device' && !(await ctx.store.devices.get(id))
          ? `no device ${id}`
          : scope === 'practice' && !(await ctx.store.devices.count({ practice: id.toUpperCase() }))
            ? `no devices in practice ${id}`
            : from === null
              ? 'the start is not a valid UK time'
              : until === null
                ? 'enter when the window ends (UK time)'
                : until <= Math.max(from, now)
                  ? 'the window must end after it starts, and in the future'
                  : until - from > MAX_WINDOW_DAYS * 24 * HOUR
                    ? `a window may last at most ${MAX_WINDOW_DAYS} days`
                    : !reason
                      ? 'say why (it is shown to everyone and kept in the audit log)'
                      : null;
    if (problem || !scope || until === null || from === null) {
      await audit(req, 'maintenance-add', scope === 'device' ? id || null : null, { scope, id, from, until, reason }, 'refused', problem);
      return done(req, reply, 'error', problem ?? 'invalid window');
    }
    const scopeId = scope === 'practice' ? id.toUpperCase() : id;
    const wid = await ctx.store.ops.addMaintenance({
      scope,
      scope_id: scopeId,
      starts_at: from,
      ends_at: until,
      reason,
      created_by: req.fleetUser!.username,
      created_at: now,
    });
    await audit(
      req,
      'maintenance-add',
      scope === 'device' ? scopeId : null,
      { window: wid, scope, id: scopeId, from: new Date(from).toISOString(), until: new Date(until).toISOString(), reason },
      'ok',
      null,
    );
    return done(req, reply, 'done', `maintenance window added for ${scope === 'icb' ? 'the whole ICB' : `${scope} ${scopeId}`}`);
  });
  app.post('/maintenance/:id/end', { preHandler: need('icb-admin') }, async (req, reply) => {
    const id = Number((req.params as { id: string }).id);
    const ok = await ctx.store.ops.endMaintenance(id, req.fleetUser!.username, ctx.clock.now());
    const w = await ctx.store.ops.maintenance(id);
    await audit(
      req,
      'maintenance-end',
      w?.scope === 'device' ? w.scope_id : null,
      { window: id },
      ok ? 'ok' : 'refused',
      w ? `${w.scope} ${w.scope_id}: ${w.reason}` : 'no such window',
    );
    return done(req, reply, ok ? 'done' : 'error', ok ? 'maintenance window ended' : 'that window had already ended');
  });
}
