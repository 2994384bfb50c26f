import type { FastifyInstance, FastifyRequest } from 'fastify';
import { covers } from '../alerts/alerts.js';
import type { FleetCtx } from '../ctx.js';
import { DEVICE_SORTS, type DeviceFilter, type DeviceSort } from '../store/types.js';
import { need, scopePractice } from './auth.js';
import { dataCell, drillCell, recordsCell, seenCell, stateCell, telephonyCell, uplinkCell } from './device-cells.js';
import { e, layout, queryOf } from './html.js';
import { registerLive } from './live.js';

const STATES = ['online', 'offline', 'cellular', 'survivable', 'stale', 'alerting'] as const;
const STATE_LABEL: Record<string, string> = {
  online: 'Online',
  offline: 'Offline',
  cellular: 'On 4G',
  survivable: 'Survivable telephony',
  stale: 'Records stale',
  alerting: 'With open alerts',
};
const COLUMNS: [DeviceSort, string][] = [
  ['device', 'Device'],
  ['practice', 'Practice'],
  ['pcn', 'PCN'],
  ['state', 'State'],
  ['seen', 'Last seen'],
  ['uplink', 'Uplink'],
  ['telephony', 'Telephony'],
  ['records', 'Records'],
  ['data', '4G data'],
  ['drill', 'Drill'],
];
const SORT_LABEL: Record<DeviceSort, string> = { ...(Object.fromEntries(COLUMNS) as Record<DeviceSort, string>), state: 'Worst first' };

interface ListQuery {
  f: DeviceFilter;
  page: number;
  /** The query as the user gave it (for links), without page. */
  params: Record<string, string>;
}

function parseQuery(ctx: FleetCtx, req: FastifyRequest): ListQuery {
  const q = queryOf(req);
  const state = STATES.find((s) => s === q.state);
  const sort = DEVICE_SORTS.find((s) => s === q.sort) ?? 'state';
  const dir = q.dir === 'desc' ? 'desc' : 'asc';
  const page = Math.max(0, Number.parseInt(q.page ?? '0', 10) || 0);
  const size = ctx.config.http.pageSize;
  const f: DeviceFilter = {
    practice: scopePractice(req, q.practice?.trim()),
    pcn: q.pcn?.trim() || undefined,
    q: q.q?.trim() || undefined,
    state,
    sort,
    dir,
    limit: size,
    offset: page * size,
  };
  const params: Record<string, string> = {};
  for (const k of ['state', 'q', 'pcn', 'practice'] as const) if (q[k]?.trim()) params[k] = q[k]!.trim();
  if (sort !== 'state' || dir !== 'asc') Object.assign(params, { sort, dir });
  return { f, page, params };
}

const href = (p: Record<string, string>) => `/?${new URLSearchParams(p)}`;

/** The parts of the list that change with the data: rendered the same for the page and the live stream. */
export async function listFragments(ctx: FleetCtx, req: FastifyRequest): Promise<Record<'cards' | 'pager' | 'rows', string>> {
  const { f, page, params } = parseQuery(ctx, req);
  const [rows, total, sum, windows] = await Promise.all([
    ctx.store.devices.list(f),
    ctx.store.devices.count(f),
    ctx.store.devices.summary({ practice: f.practice }),
    ctx.store.ops.currentMaintenance(ctx.clock.now()),
  ]);
  const now = ctx.clock.now();
  const { state: _s, ...noState } = params;
  void _s;
  const cards = [
    ['', 'All devices', sum.total],
    ['online', 'Online', sum.online],
    ['offline', 'Offline', sum.offline],
    ['cellular', 'On 4G', sum.cellular],
    ['survivable', 'Survivable telephony', sum.survivable],
    ['stale', 'Records stale', sum.stale],
  ]
    .map(
      ([s, label, n]) => `<a href="${e(href({ ...noState, ...(s ? { state: s as string } : {}) }))}" data-card="${e(s || 'all')}"><b>${n}</b>${e(label)}</a>`,
    )
    .join('');
  const body = rows
    .map((d) => {
      const maint = windows.some((w) => w.starts_at <= now && covers(w, d)) ? ' <span class="badge">maintenance</span>' : '';
      const cells: [string, string, string][] = [
        ['Device', '', `<a class="nw" href="/devices/${encodeURIComponent(d.id)}">${e(d.id)}</a>`],
        ['Practice', 'practice', `${e(d.practice)}${d.practice_name ? ` <span class="muted">${e(d.practice_name)}</span>` : ''}`],
        ['PCN', '', e(d.pcn ?? '')],
        ['State', 'state', stateCell(d, now) + maint],
        ['Last seen', 'seen', seenCell(d, now)],
        ['Uplink', 'uplink', uplinkCell(d, now)],
        ['Telephony', 'telephony', telephonyCell(d, now)],
        ['Records', 'records', recordsCell(d, now)],
        ['4G data', 'data', dataCell(d, now)],
        ['Drill', 'drill', drillCell(d, now)],
      ];
      const tds = cells.map(([l, c, h]) => `<td data-label="${l}"${c ? ` class="${c}"` : ''}>${h}</td>`).join('');
      return `<tr data-device="${e(d.id)}"${d.online ? '' : ' class="offline"'}>${tds}</tr>`;
    })
    .join('');
  const size = f.limit!;
  const pages = Math.max(1, Math.ceil(total / size));
  const pageLink = (n: number, label: string) => `<a href="${e(href({ ...params, page: String(n) }))}">${label}</a>`;
  const prev = page > 0 ? pageLink(page - 1, 'previous') : '';
  const pager = `${total} device(s); page ${page + 1} of ${pages} ${prev} ${page + 1 < pages ? pageLink(page + 1, 'next') : ''}`;
  return { cards, pager, rows: body || `<tr><td colspan="${COLUMNS.length}">No devices match.</td></tr>` };
}

/**
 * The fleet list: headline counts (each a filter link), filters, one row per device, worst first
 * unless a column header says otherwise, paged. It stays current without a reload: a small script
 * (client.ts) listens to /live/devices (server-sent events) and swaps in the fragments that changed.
 */
export function registerListPage(app: FastifyInstance, ctx: FleetCtx): void {
  app.get('/', { preHandler: need() }, async (req, reply) => {
    const { f, params } = parseQuery(ctx, req);
    const frag = await listFragments(ctx, req);
    const sortHead = ([key, label]: [DeviceSort, string]) => {
      const on = f.sort === key;
      const dir = on && f.dir === 'asc' ? 'desc' : 'asc';
      const aria = on ? ` aria-sort="${f.dir === 'desc' ? 'descending' : 'ascending'}"` : '';
      return `<th${aria} data-sort="${key}"><a href="${e(href({ ...params, sort: key, dir }))}">${e(label)}</a></th>`;
    };
    const pm = req.fleetUser!.role === 'practice-manager';
    const opt = (v: string, label: string, on: boolean) => `<option value="${e(v)}"${on ? ' selected' : ''}>${e(label)}</option>`;
    const states = STATES.map((s) => opt(s, STATE_LABEL[s]!, s === f.state)).join('');
    const worst = f.sort === 'state';
    const filters = `<form method="get" action="/" class="noprint filters">
 <label>State <select name="state"><option value="">any</option>${states}</select></label>
 <label>Search <input name="q" value="${e(f.q ?? '')}" placeholder="device, ODS code, name"></label>
<label>PCN <input name="pcn" value="${e(f.pcn ?? '')}" size="10"></label>
 ${pm ? '' : `<label>Practice <input name="practice" value="${e(params.practice ?? '')}" size="8"></label>`}
 <label>Sort <select name="sort">${DEVICE_SORTS.map((s) => opt(s, SORT_LABEL[s], s === f.sort)).join('')}</select></label>
 <label>Order <select name="dir">${opt('asc', worst ? 'worst first' : 'ascending', f.dir !== 'desc')}
 ${opt('desc', worst ? 'best first' : 'descending', f.dir === 'desc')}</select></label>
 <button>Show</button></form>`;
    const live = `/live/devices?${new URLSearchParams(queryOf(req) as Record<string, string>)}`;
    const html = `<h1>Devices${f.state ? `: ${e(STATE_LABEL[f.state])}` : ''}</h1><div class="cards" id="cards">${frag.cards}</div>${filters}
<p><span id="pager">${frag.pager}</span> <span class="live muted" id="live" data-live="${e(live)}" role="status">updates live</span></p>
<table id="devices"><thead><tr>${COLUMNS.map(sortHead).join('')}</tr></thead><tbody id="rows">${frag.rows}</tbody></table>`;
    return reply.type('text/html').send(layout('Devices', req.fleetUser, html, req.fleetUser!.csrf));
  });
  registerLive(app, ctx, '/live/devices', (req) => listFragments(ctx, req));
}
