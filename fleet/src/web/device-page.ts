import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { FleetCtx } from '../ctx.js';
import type { DeviceRow } from '../store/types.js';
import { need } from './auth.js';
import { bars, dataUse, uplinkBand } from './charts.js';
import { dataCell, drillCell, recordsCell, stateCell, telephonyCell, uplinkCell } from './device-cells.js';
import { configSection } from './config-section.js';
import { ago, e, layout, local, queryOf } from './html.js';
import { eventWords } from './event-words.js';

const DAY = 86_400_000;

/** A device, or undefined when it does not exist or the user may not see it (the same 404 for both). */
export async function visibleDevice(ctx: FleetCtx, req: FastifyRequest, id: string): Promise<DeviceRow | undefined> {
  const d = await ctx.store.devices.get(id);
  if (!d) return undefined;
  if (req.fleetUser?.role === 'practice-manager' && d.practice !== req.fleetUser.practice) return undefined;
  return d;
}

function months(now: number, n: number): { label: string; from: number; to: number }[] {
  const d = new Date(now);
  const out = [];
  for (let i = n - 1; i >= 0; i--) {
    const from = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - i, 1);
    const to = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - i + 1, 1);
    // "Jan", with the year on the first bar and on each January: "Dec 2025", "Jan 2026".
    const mon = new Date(from).toLocaleString('en-GB', { month: 'short', timeZone: 'UTC' });
    out.push({ label: i === n - 1 || new Date(from).getUTCMonth() === 0 ? `${mon} ${new Date(from).getUTCFullYear()}` : mon, from, to });
  }
  return out;
}

export function registerDevicePage(app: FastifyInstance, ctx: FleetCtx): void {
  app.get('/devices/:id', { preHandler: need() }, async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const d = await visibleDevice(ctx, req, id);
    if (!d)
      return reply
        .code(404)
        .type('text/html')
        .send(layout('Not found', req.fleetUser, '<h1>No such device</h1>', req.fleetUser!.csrf));
    const now = ctx.clock.now();
    const [week, month, failovers, recent, alerts, audit, desired] = await Promise.all([
      ctx.store.devices.samples(id, now - 7 * DAY, now + 1),
      ctx.store.devices.samples(id, now - 30 * DAY, now + 1),
      ctx.store.devices.events(id, months(now, 12)[0]!.from, now + 1, ['failover.switched'], 5000),
      ctx.store.devices.events(id, 0, now + 1, [], 30),
      ctx.store.ops.alerts(20, id),
      req.fleetUser!.role === 'practice-manager' ? Promise.resolve([]) : ctx.store.accounts.auditLog(20, id),
      ctx.store.config.desired(id),
    ]);
    const perMonth = months(now, 12).map((m) => ({
      label: m.label,
      value: failovers.filter((f) => f.at >= m.from && f.at < m.to && (JSON.parse(f.payload ?? '{}') as { kind?: string }).kind === 'failover').length,
    }));
    const health = Object.entries(JSON.parse(d.health_json ?? '{}') as Record<string, { status: string; summary: string }>)
      .map(
        ([k, h]) =>
          `<tr><td>${e(k)}</td><td class="${h.status === 'ok' ? 'ok' : h.status === 'disabled' ? 'muted' : 'warn'}">${e(h.status)}</td>` +
          `<td>${e(h.summary)}</td></tr>`,
      )
      .join('');
    const q = queryOf(req);
    const admin = req.fleetUser!.role === 'icb-admin';
    const csrf = `<input type="hidden" name="csrf" value="${e(req.fleetUser!.csrf)}">`;
    const act = (cmd: string, label: string, extra = '') =>
      `<form class="inline" method="post" action="/devices/${encodeURIComponent(id)}/commands/${cmd}">${csrf}${extra}<button>${e(label)}</button></form>`;
    // "Back up now" refused by the link policy: the choice to force it (confirmed again) sits with the reason.
    const force =
      admin && q.error && q.offer === 'force' ? ` ${act('backup-now', 'Back up over 4G anyway', '<input type="hidden" name="force" value="yes">')}` : '';
    const flash = q.done
      ? `<p class="flash" role="status">${e(q.done)}</p>`
      : q.error
        ? `<p class="flash bad" role="alert" id="command-answer">${e(q.error)}${force}</p>`
        : '';
    const uplinks = ['', ...new Set([d.active_uplink, 'wan', '4g'].filter(Boolean) as string[])];
    const uplinkOptions = uplinks.map((u) => `<option value="${e(u)}">${u ? e(u) : 'automatic'}</option>`).join('');
    const uplinkSelect = `<select name="uplink" aria-label="uplink">${uplinkOptions}</select>`;
    const commands = admin
      ? `<section class="noprint" id="commands">` +
        `<h2>Commands</h2>${act('drill', 'Run drill')} ${act('ping', 'Ping')} ${act('backup-now', 'Back up now')} ` +
        `${act('set-config', 'Send desired (set-config)')}
 <form class="inline" method="post" action="/devices/${encodeURIComponent(id)}/reload">${csrf}<button>Reload config</button></form>
 <form class="inline" method="post" action="/practices/${encodeURIComponent(d.practice)}/reload">${csrf}<button>Reload config for ` +
        `practice ${e(d.practice)}</button></form>
 ${act('force-uplink', 'Force uplink', `${uplinkSelect}<input name="minutes" value="60" size="4" aria-label="minutes"> min `)}</section>`
      : '';
    const diff = configSection(d, desired);
    const setup = setupCodeSection(d, req.fleetUser!);
    const dataText = d.data_used !== null ? `${(d.data_used / 1e6).toFixed(0)} MB of ${((d.data_allowance ?? 0) / 1e6).toFixed(0)} MB` : '';
    const alertState = (a: (typeof alerts)[number]) =>
      a.cleared_at ? 'cleared' : a.acked_at ? `acknowledged by ${e(a.acked_by)}` : '<span class="bad">open</span>';
    const alertRows =
      alerts
        .map((a) => `<tr><td>${local(a.opened_at)}</td><td>${e(a.kind)} ${e(a.level)}</td><td>${e(a.summary)}</td><td>${alertState(a)}</td></tr>`)
        .join('') || '<tr><td>None.</td></tr>';
    const eventRows =
      recent
        .map(
          (v) =>
            `<tr data-event="${e(v.name)}"><td data-label="When">${local(v.at)}</td>` +
            `<td data-label="What" class="what">${eventWords(v.name, v.payload)}</td>
<td data-label="Details"><details><summary>${e(v.name)}</summary><code>${e((v.payload ?? '').slice(0, 400))}</code></details></td></tr>`,
        )
        .join('') || '<tr><td colspan="3">None.</td></tr>';
    const auditRows = audit
      .map(
        (a) =>
          `<tr><td>${local(a.at)}</td><td>${e(a.username)}</td><td>${e(a.action)} ${e(a.args)}</td><td>${e(a.outcome)}</td>` +
          `<td>${e((a.detail ?? '').slice(0, 160))}</td></tr>`,
      )
      .join('');
    const html =
      `<h1>${e(d.id)} <span class="muted">${e(d.practice)} ${e(d.practice_name ?? '')}</span></h1>${flash}
<table id="summary"><tr><th>State</th><td class="state">${stateCell(d, now)}</td><th>Uplink</th><td class="uplink">${uplinkCell(d, now)}</td></tr>
<tr><th>Telephony</th><td class="telephony">${telephonyCell(d, now)}</td><th>Records</th><td class="records">${recordsCell(d, now)}</td></tr>
<tr><th>4G data</th><td class="data">${dataCell(d, now)} ${dataText}</td><th>Drill</th><td>${drillCell(d, now)}</td></tr>
<tr><th>Version</th><td>${e(d.version ?? '-')}</td><th>Last seen</th>` +
      `<td class="seen">${local(d.last_seen)} <span class="muted">(${ago(now, d.last_seen)} ago)</span></td></tr></table>
${setup}${commands}
<section><h2>Uplink, last 7 days <span class="muted">(UK time)</span></h2>${uplinkBand(week, now - 7 * DAY, now, 5 * 60_000)}</section>
<section><h2>4G data use against the cap, last 30 days <span class="muted">(UK time)</span></h2>${dataUse(month, now - 30 * DAY, now)}</section>
<section><h2>Failovers per month</h2>${bars(perMonth, 'Failovers per month')}</section>
<section><h2>Capabilities</h2><table>${health || '<tr><td>No telemetry yet.</td></tr>'}</table></section>
<section id="config"><h2>Config: desired vs reported</h2>${diff}</section>
<section><h2>Alerts</h2><table>${alertRows}</table></section>
<section><h2>Recent events <span class="muted">(UK time)</span></h2><table id="events"><thead><tr><th>When</th><th>What happened</th><th>Details</th>` +
      `</tr></thead><tbody>${eventRows}</tbody></table></section>
${audit.length ? `<section id="audit"><h2>Commands sent</h2><table>${auditRows}</table></section>` : ''}`;
    return reply.type('text/html').send(layout(d.id, req.fleetUser, html, req.fleetUser!.csrf));
  });
}

/**
 * The box's one-time set-up code, when it reports one (enrolment or setup health details,
 * `setupCode`): an ICB admin, or the practice's own manager, reads it out to whoever sets the box up.
 */
function setupCodeSection(d: DeviceRow, u: { role: string; practice: string | null }): string {
  if (u.role !== 'icb-admin' && !(u.role === 'practice-manager' && u.practice === d.practice)) return '';
  const h = JSON.parse(d.health_json ?? '{}') as Record<string, { setupCode?: string }>;
  const code = h.setup?.setupCode ?? h.enrolment?.setupCode;
  if (!code) return '';
  return (
    `<section id="setup-code"><h2>One-time set-up code</h2>` +
    `<p>Give this to the practice manager (read it over the phone): they type it into the box's set-up page to create the first admin account.</p>` +
    `<p style="font-size:1.6rem;font-family:monospace;letter-spacing:.1em"><b>${e(code)}</b></p></section>`
  );
}
