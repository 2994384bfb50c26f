import type { FastifyInstance } from 'fastify';
import type { FleetCtx } from '../ctx.js';
import { monthlyOutages, toCsv } from '../reports/outages.js';
import { need, scopePractice } from './auth.js';
import { e, layout } from './html.js';

/** Monthly outage report, per practice and an ICB total row; CSV and a printable page. */
export function registerReports(app: FastifyInstance, ctx: FleetCtx): void {
  const parse = (q: { month?: string }) => {
    const now = new Date(ctx.clock.now());
    const m = /^(\d{4})-(\d{2})$/.exec(q.month ?? '') ?? [null, String(now.getUTCFullYear()), String(now.getUTCMonth() + 1).padStart(2, '0')];
    return { year: Number(m[1]), month: Number(m[2]) };
  };
  app.get('/reports/outages.csv', { preHandler: need() }, async (req, reply) => {
    const { year, month } = parse(req.query as { month?: string });
    const rows = await monthlyOutages(ctx.store, year, month, scopePractice(req), ctx.config.icb);
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="outages-${year}-${String(month).padStart(2, '0')}.csv"`)
      .send(toCsv(rows));
  });
  app.get('/reports/outages', { preHandler: need() }, async (req, reply) => {
    const { year, month } = parse(req.query as { month?: string });
    const label = `${year}-${String(month).padStart(2, '0')}`;
    const rows = await monthlyOutages(ctx.store, year, month, scopePractice(req), ctx.config.icb);
    const body = rows
      .map(
        (r) =>
          `<tr${r.practice === '(ICB total)' ? ' style="font-weight:600"' : ''}><td>${e(r.practice)}</td><td>${e(r.practiceName)}</td>` +
          `<td>${e(r.pcn)}</td><td>${r.devices}</td><td>${r.minutesOn4g}</td><td>${r.outagesSurvived}</td><td>${r.minutesOffline}</td>` +
          `<td>${r.clinicalSystem ? e(r.clinicalSystem) : '-'}</td><td>${r.clinicalOutages}</td><td>${r.drillsFailed}</td></tr>`,
      )
      .join('');
    const html =
      `<h1>Outage report ${e(label)} <span class="muted">${e(ctx.config.icb)}</span></h1>
<form method="get" class="noprint"><label>Month <input name="month" value="${e(label)}" pattern="\\d{4}-\\d{2}" size="8">` +
      `</label> <button>Show</button> <a href="/reports/outages.csv?month=${e(label)}">Download CSV</a></form>
<table id="report"><thead><tr><th>Practice</th><th>Name</th><th>PCN</th><th>Devices</th><th>Minutes on 4G</th><th>Outages survived</th>` +
      `<th>Minutes offline</th><th>Clinical system</th><th>Clinical system outages seen</th><th>Drills failed</th></tr></thead><tbody>${body}</tbody></table>
<p class="muted">Minutes on 4G: telemetry samples taken while on a cellular uplink (one per minute at the default cellular interval). Outages ` +
      `survived: failovers to a backup uplink. Clinical system outages: records syncs that ended with upstream errors, as seen from the practice.</p>`;
    return reply.type('text/html').send(layout(`Outages ${label}`, req.fleetUser, html, req.fleetUser!.csrf));
  });
}
