import type { FastifyInstance } from 'fastify';
import type { FleetCtx } from '../ctx.js';
import type { DeviceFilter } from '../store/types.js';
import { need, scopePractice } from './auth.js';
import { dataCell, drillCell, recordsCell, stateCell, telephonyCell, uplinkCell } from './device-cells.js';
import { e, layout } from './html.js';

const STATES = ['online', 'offline', 'cellular', 'survivable', 'stale', 'alerting'] as const;
const STATE_LABEL: Record<string, string> = { online: 'Online', offline: 'Offline', cellular: 'On 4G', survivable: 'Survivable telephony', stale: 'Records stale', alerting: 'With open alerts' };

/** The fleet list: headline counts (each a filter link), filters, one row per device, paged. */
export function registerListPage(app: FastifyInstance, ctx: FleetCtx): void {
  app.get('/', { preHandler: need() }, async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const state = STATES.find((s) => s === q.state);
    const page = Math.max(0, Number.parseInt(q.page ?? '0', 10) || 0);
    const size = ctx.config.http.pageSize;
    const practice = scopePractice(req, q.practice?.trim());
    const f: DeviceFilter = { practice, pcn: q.pcn?.trim() || undefined, q: q.q?.trim() || undefined, state, limit: size, offset: page * size };
    const [rows, total, sum] = await Promise.all([ctx.store.devices.list(f), ctx.store.devices.count(f), ctx.store.devices.summary({ practice })]);
    const now = ctx.clock.now();
    const link = (s?: string) => `/?${new URLSearchParams({ ...(s ? { state: s } : {}), ...(f.q ? { q: f.q } : {}), ...(f.pcn ? { pcn: f.pcn } : {}), ...(q.practice ? { practice: q.practice } : {}) })}`;
    const cards = [['', 'All devices', sum.total], ['online', 'Online', sum.online], ['offline', 'Offline', sum.offline], ['cellular', 'On 4G', sum.cellular], ['survivable', 'Survivable telephony', sum.survivable], ['stale', 'Records stale', sum.stale]]
      .map(([s, label, n]) => `<a href="${e(link(s as string))}" data-card="${e(s || 'all')}"><b>${n}</b>${e(label)}</a>`).join('');
    const body = rows
      .map((d) => `<tr data-device="${e(d.id)}"><td><a href="/devices/${encodeURIComponent(d.id)}">${e(d.id)}</a></td><td>${e(d.practice)}${d.practice_name ? ` <span class="muted">${e(d.practice_name)}</span>` : ''}</td><td>${e(d.pcn ?? '')}</td>
<td class="state">${stateCell(d, now)}</td><td class="uplink">${uplinkCell(d, now)}</td><td class="telephony">${telephonyCell(d)}</td><td class="records">${recordsCell(d)}</td><td class="data">${dataCell(d)}</td><td>${drillCell(d, now)}</td></tr>`)
      .join('');
    const pages = Math.max(1, Math.ceil(total / size));
    const nav = `<p>${total} device(s); page ${page + 1} of ${pages} ${page > 0 ? `<a href="${e(link(state))}&page=${page - 1}">previous</a>` : ''} ${page + 1 < pages ? `<a href="${e(link(state))}&page=${page + 1}">next</a>` : ''}</p>`;
    const filters = `<form method="get" action="/" class="noprint"><label>State <select name="state"><option value="">any</option>${STATES.map((s) => `<option value="${s}"${s === state ? ' selected' : ''}>${STATE_LABEL[s]}</option>`).join('')}</select></label>
 <label>Search <input name="q" value="${e(f.q ?? '')}" placeholder="device, ODS code, name"></label> <label>PCN <input name="pcn" value="${e(f.pcn ?? '')}" size="10"></label>
 ${req.fleetUser!.role === 'practice-manager' ? '' : `<label>Practice <input name="practice" value="${e(q.practice ?? '')}" size="8"></label>`} <button>Filter</button></form>`;
    const html = `<h1>Devices${state ? `: ${e(STATE_LABEL[state])}` : ''}</h1><div class="cards">${cards}</div>${filters}${nav}
<table id="devices"><thead><tr><th>Device</th><th>Practice</th><th>PCN</th><th>State</th><th>Uplink</th><th>Telephony</th><th>Records</th><th>4G data</th><th>Drill</th></tr></thead><tbody>${body || '<tr><td colspan="9">No devices match.</td></tr>'}</tbody></table>`;
    return reply.type('text/html').send(layout('Devices', req.fleetUser, html, req.fleetUser!.csrf));
  });
}
