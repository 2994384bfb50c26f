import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { requireRole, csrfToken } from '../../auth/index.js';
import type { Clock } from '../../../../common/clock.js';
import { AppError } from '../../../../common/errors.js';
import { escapeHtml as e, page } from '../../web/html.js';
import type { AuditAction, AuditLog } from '../audit.js';
import { CaptureQueue, type CaptureKind } from '../capture.js';
import type { Clinician } from '../model.js';
import type { RecordsStore } from '../store.js';
import { callForm, noteForm, payloadFromForm } from './forms.js';
import { isoDate } from '../../../../common/zoned-time.js';
import { clockBanner, freshnessBanner, VIEWER_CSS } from './format.js';
import {
  canSeeClinical,
  capturesTable,
  compileDayList,
  compileSummary,
  demographicsCard,
  renderSummary,
  searchBody,
  subNav,
  type CompiledSummary,
  type DayListRender,
} from './pages.js';
import { fieldsOf } from '../../../../common/fields.js';
import type { ClockTrust } from '../../platform/clock-sync.js';

/**
 * The records viewer's routes, all under /records, all behind a login (auth from agent/src/auth).
 * Patient ids travel in the query string, never the path: the web server logs refused requests'
 * paths (without query), and an NHS number in a log line would be patient data in the logs.
 *
 * Order inside every handler: authorise, read what the page needs, write the audit entry (awaited
 * until committed), then send. If the audit write fails the request fails (500) and nothing is
 * shown. A lookup of a patient who is not cached is audited too (`lookup.not-cached`, the id asked
 * for): probing for a patient leaves a trace.
 */
export interface RecordsServices {
  store: RecordsStore;
  audit: AuditLog;
  captures: CaptureQueue;
}

export interface ViewerDeps {
  /** null while the store is locked (no key yet after a reboot). */
  services(): RecordsServices | null;
  clock: Clock;
  staleAfterMs: number;
  timeZone: string;
  /** Whether the appliance clock is confirmed (platform/clock-sync.ts); absent: not checked. */
  clockTrust?(): ClockTrust;
  /** Wake the forwarder after a new capture. */
  captured(): void;
}

const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
/** Query values as single strings: `?id=a&id=b` arrives as an array, which SQLite cannot bind (a 500). */
const q = (r: FastifyRequest): Record<string, string | undefined> =>
  Object.fromEntries(Object.entries(fieldsOf(r.query)).map(([k, v]) => [k, Array.isArray(v) ? String(v[0] ?? '') : typeof v === 'string' ? v : undefined]));
const body = (r: FastifyRequest) => fieldsOf(r.body);
const device = (r: FastifyRequest) => `${r.ip} ${String(r.headers['user-agent'] ?? '').slice(0, 120)}`;

/**
 * The clinician picker is a GROUP BY over the whole day (the most expensive query of the page) and
 * the cached-days line a DISTINCT over every appointment; both only change when a day list is
 * replaced or purged, which bumps the store's dayListsVersion, so they are computed once per change.
 */
function dayListCache() {
  const memo = new WeakMap<RecordsStore, { stamp: string | null; dates: string[]; clinicians: Map<string, Clinician[]> }>();
  return (store: RecordsStore, date: string): { clinicians: Clinician[]; dates: string[] } => {
    const stamp = store.dayListsVersion();
    let m = memo.get(store);
    if (!m || m.stamp !== stamp) memo.set(store, (m = { stamp, dates: store.meta().dates, clinicians: new Map() }));
    let list = m.clinicians.get(date);
    if (!list) {
      if (m.clinicians.size > 30) m.clinicians.clear();
      m.clinicians.set(date, (list = store.clinicians(date)));
    }
    return { clinicians: list, dates: m.dates };
  };
}

/**
 * Rendered pages kept per store and key, each under the version stamp it was rendered from; a hit
 * needs the stamp read now to match, so a page is never older than the data it is built from (the
 * "as of" banner and the audit entry are always per request). Bounded by total size (oldest out
 * first; a summary is ~4 kB, a day list ~20 kB, so 2 MB holds a typical day's booked patients) and
 * dropped with the store when it is locked or re-keyed. Only in process memory, never on disk.
 */
function pageCache<T>(maxBytes: number, size: (v: T) => number) {
  const memo = new WeakMap<RecordsStore, { bytes: number; pages: Map<string, { stamp: string; value: T; size: number }> }>();
  return (store: RecordsStore, key: string, stamp: string, build: () => T | null): T | null => {
    let m = memo.get(store);
    if (!m) memo.set(store, (m = { bytes: 0, pages: new Map() }));
    const hit = m.pages.get(key);
    if (hit && hit.stamp === stamp) return hit.value;
    const value = build();
    if (hit) (m.pages.delete(key), (m.bytes -= hit.size));
    if (value === null) return null;
    const entry = { stamp, value, size: size(value) };
    m.pages.set(key, entry);
    m.bytes += entry.size;
    for (const [k, old] of m.pages) {
      if (m.bytes <= maxBytes || old === entry) break;
      m.pages.delete(k);
      m.bytes -= old.size;
    }
    return value;
  };
}

export function viewerPlugin(deps: ViewerDeps): FastifyPluginAsync {
  const dayCache = dayListCache();
  // Sizes in UTF-16 code units, near enough to bytes for a bound.
  const dayPages = pageCache<{ rows: number; render: DayListRender; size: number }>(1 << 20, (d) => d.size);
  const summaries = pageCache<CompiledSummary>(2 << 20, (c) => c.sections.length + c.warnings.join('').length + 200);
  return async (app) => {
    const anyone = { preHandler: requireRole() };
    /**
     * Sign-in and CSRF through auth's requireRole(); the role refusal here instead, so it is audited
     * (`access.denied`, the route in the detail) and the browser gets a readable page.
     */
    const only = (...roles: string[]) => ({
      preHandler: [
        requireRole(),
        async (req: FastifyRequest, reply: FastifyReply) => {
          if (roles.includes(req.user!.role)) return;
          const s = deps.services();
          if (s) await audit(s, req, 'access.denied', null, req.routeOptions.url ?? null);
          return send(
            req,
            reply,
            'Not allowed',
            `<h1>Not allowed</h1><p class="warn" role="alert">This needs the ${e(roles.join(' or '))} role; you are signed in as ${e(req.user!.role)}.</p>`,
            s,
            403,
          );
        },
      ],
    });
    const clinical = only('clinician', 'admin');

    const send = (req: FastifyRequest, reply: FastifyReply, title: string, inner: string, s: RecordsServices | null, status = 200) => {
      const user = req.user!;
      const asOf = s ? Number(s.store.getMeta('asOf') ?? NaN) : NaN;
      const banner = s
        ? freshnessBanner({ asOf: Number.isFinite(asOf) ? asOf : null, now: deps.clock.now(), staleAfterMs: deps.staleAfterMs, timeZone: deps.timeZone })
        : '';
      const clockWarn = s ? clockBanner(deps.clockTrust?.() ?? 'synced') : '';
      return reply
        .code(status)
        .type('text/html; charset=utf-8')
        .send(page(title, `${clockWarn}${banner}${subNav(user.role)}${inner}`, { user, csrf: csrfToken(req), css: VIEWER_CSS }));
    };
    const services = (req: FastifyRequest, reply: FastifyReply): RecordsServices | null => {
      const s = deps.services();
      if (!s) {
        void reply
          .code(503)
          .type('text/html; charset=utf-8')
          .send(
            page(
              'Records locked',
              '<h1>Records are locked</h1>' +
                '<p class="warn" role="alert">The records cache has not been unlocked since the appliance started. ' +
                'An admin must unlock it: <a href="/records/key">enter the passphrase</a> ' +
                '(or run <code>surgery-edge records unlock</code> on the appliance).</p>',
              { user: req.user, csrf: csrfToken(req), css: VIEWER_CSS },
            ),
          );
      }
      return s;
    };
    // Group-committed (see AuditLog.appendDurable): awaited, so the entry is on disk before any reply.
    const audit = (s: RecordsServices, req: FastifyRequest, action: AuditAction, patientId: string | null, detail: string | null = null) =>
      s.audit.appendDurable({ user: req.user!.username, role: req.user!.role, patientId, action, device: device(req), detail });

    app.get('/records', anyone, async (_req, reply) => reply.redirect('/records/day', 303));

    app.get('/records/day', anyone, async (req, reply) => {
      const s = services(req, reply);
      if (!s) return reply;
      const date = DATE_RE.test(q(req).date ?? '') ? q(req).date! : isoDate(deps.clock.now(), deps.timeZone);
      const clinicianId = (q(req).clinician ?? '').slice(0, 100);
      const role = canSeeClinical(req.user!.role) ? 'clinical' : 'reception';
      const day = dayPages(s.store, `${date}|${role}|${clinicianId}`, s.store.viewVersion(), () => {
        const entries = s.store.dayList(date, clinicianId || undefined);
        const compiled = compileDayList({ date, clinicianId, entries, role: req.user!.role, timeZone: deps.timeZone, ...dayCache(s.store, date) });
        return { ...compiled, size: 1000 + entries.length * 900 };
      })!;
      await audit(s, req, 'view.day-list', null, `date=${date};clinician=${clinicianId || '*'};rows=${day.rows}`);
      const body = day.render(csrfToken(req), () => CaptureQueue.newKey(deps.clock.now()), s.captures.arrivedAppointments());
      return send(req, reply, `Day list ${date}`, body, s);
    });

    app.get('/records/search', anyone, async (req, reply) => {
      const s = services(req, reply);
      if (!s) return reply;
      const text = (q(req).q ?? '').slice(0, 100);
      if (!text.trim()) return send(req, reply, 'Search', searchBody('', null, req.user!.role), s);
      const results = s.store.search(text);
      const by = /^\d[\d\s-]{9,}$/.test(text.trim()) ? 'nhs' : /\d/.test(text) ? 'dob' : 'name';
      await audit(s, req, 'view.search', null, `by=${by};results=${results.length}`);
      return send(req, reply, 'Search', searchBody(text, results, req.user!.role), s);
    });

    app.get('/records/patient', anyone, async (req, reply) => {
      const s = services(req, reply);
      if (!s) return reply;
      const id = (q(req).id ?? '').slice(0, 64);
      if (!canSeeClinical(req.user!.role)) {
        await audit(s, req, 'access.denied', id || null, 'summary');
        return send(
          req,
          reply,
          'Not allowed',
          `<h1>Not allowed</h1><p class="warn" role="alert">Your role (${e(req.user!.role)}) cannot see clinical records. You can see the patient's ` +
            `<a href="/records/patient/demographics?id=${encodeURIComponent(id)}">contact details</a>.</p>`,
          s,
          403,
        );
      }
      const stamp = id ? s.store.summaryStamp(id) : null;
      const summary = stamp
        ? summaries(s.store, id, stamp, () => {
            // Another process may commit between the two reads: then this content is newer than the
            // stamp it is kept under, and the next view (reading the newer stamp) renders it again.
            const r = s.store.patientSummaryStamped(id);
            return r ? compileSummary(r.summary, deps.timeZone) : null;
          })
        : null;
      if (!summary) {
        await audit(s, req, 'lookup.not-cached', id || null, 'summary');
        return send(
          req,
          reply,
          'Not cached',
          '<h1>Not cached</h1><p class="card">No cached summary for this patient. Only patients booked today or on the next working day are cached; ' +
            'sensitive records are never cached.</p>',
          s,
          404,
        );
      }
      await audit(s, req, 'view.summary', id);
      return send(req, reply, summary.name, renderSummary(summary, s.captures.list({ patientId: id, limit: 50 }), deps.timeZone), s);
    });

    app.get('/records/patient/demographics', anyone, async (req, reply) => {
      const s = services(req, reply);
      if (!s) return reply;
      const id = (q(req).id ?? '').slice(0, 64);
      const summary = id ? s.store.patientSummary(id) : null;
      if (!summary) {
        await audit(s, req, 'lookup.not-cached', id || null, 'demographics');
        return send(req, reply, 'Not cached', '<h1>Not cached</h1><p class="card">No cached record for this patient.</p>', s, 404);
      }
      await audit(s, req, 'view.demographics', id);
      const link =
        `<nav class="sub" aria-label="Patient">` +
        `<a href="/records/capture/call?patient=${encodeURIComponent(id)}">Log a call</a>` +
        `${canSeeClinical(req.user!.role) ? `<a href="/records/patient?id=${encodeURIComponent(id)}">Clinical summary</a>` : ''}</nav>`;
      return send(req, reply, summary.patient.name, demographicsCard(summary) + link, s);
    });

    const patientName = (s: RecordsServices, id: string | undefined) => (id ? (s.store.patientSummary(id)?.patient.name ?? null) : null);

    app.get('/records/capture/note', clinical, async (req, reply) => {
      const s = services(req, reply);
      if (!s) return reply;
      const id = (q(req).patient ?? '').slice(0, 64);
      const summary = id ? s.store.patientSummary(id) : null;
      if (!summary) {
        await audit(s, req, 'lookup.not-cached', id || null, 'note form');
        throw new AppError('NOT_FOUND', 'pick a cached patient first');
      }
      return send(req, reply, 'Consultation note', noteForm(id, summary.patient.name, csrfToken(req), CaptureQueue.newKey(deps.clock.now())), s);
    });

    app.get('/records/capture/call', anyone, async (req, reply) => {
      const s = services(req, reply);
      if (!s) return reply;
      const id = (q(req).patient ?? '').slice(0, 64) || null;
      const name = id ? patientName(s, id) : null;
      if (id && !name) await audit(s, req, 'lookup.not-cached', id, 'call form');
      return send(req, reply, 'Call log', callForm(name ? id : null, name, csrfToken(req), CaptureQueue.newKey(deps.clock.now())), s);
    });

    const capture = (kind: CaptureKind) => async (req: FastifyRequest, reply: FastifyReply) => {
      const s = services(req, reply);
      if (!s) return reply;
      const b = body(req);
      const patientId = typeof b.patient === 'string' && b.patient ? b.patient.slice(0, 64) : null;
      if (kind !== 'call' && !patientId) throw new AppError('BAD_REQUEST', 'a patient is required');
      const { item, created } = s.captures.create({
        id: typeof b.key === 'string' && b.key ? b.key : undefined,
        kind,
        patientId,
        payload: payloadFromForm(kind, b),
        author: req.user!.username,
        role: req.user!.role,
        device: device(req),
      });
      if (created) await audit(s, req, 'capture.create', patientId, `${kind} ${item.id}`);
      deps.captured();
      const back = typeof b.back === 'string' && b.back.startsWith('/records/') ? b.back : null;
      return reply.redirect(back ?? `/records/captures?saved=${item.id}`, 303);
    };
    app.post('/records/capture/note', clinical, capture('note'));
    app.post('/records/capture/call', anyone, capture('call'));
    app.post('/records/capture/arrival', anyone, capture('arrival'));

    app.get('/records/captures', anyone, async (req, reply) => {
      const s = services(req, reply);
      if (!s) return reply;
      await audit(s, req, 'view.captures', null);
      const role = req.user!.role;
      const csrf = csrfToken(req);
      const saved = q(req).saved;
      const open = s.captures.list({ state: 'rejected', unresolvedOnly: true });
      const all = s.captures.list({ limit: 200 });
      const c = s.captures.counts();
      const actions = canSeeClinical(role)
        ? (it: { id: string; kind: string; state: string; resolution: string | null }) =>
            it.state === 'rejected' && !it.resolution
              ? `<form method="post" action="/records/captures/retry"><input type="hidden" name="_csrf" value="${e(csrf)}">` +
                `<input type="hidden" name="id" value="${e(it.id)}"><button type="submit">Send again</button></form>` +
                `${it.kind !== 'arrival' ? `<a class="btn" href="/records/captures/edit?id=${e(it.id)}">Correct and send again</a>` : ''}
<form method="post" action="/records/captures/dismiss"><input type="hidden" name="_csrf" value="${e(csrf)}">` +
                `<input type="hidden" name="id" value="${e(it.id)}"><label for="n-${e(it.id)}">How was it resolved?</label>` +
                `<input id="n-${e(it.id)}" name="note" required maxlength="500"><button type="submit">Mark resolved</button></form>`
              : ''
        : undefined;
      const savedItem = saved ? s.captures.get(saved) : null;
      const inner = `<h1>Offline captures</h1>
${
  savedItem
    ? `<p class="card" role="status">Saved on this appliance (${e(savedItem.kind)}, state <strong>${e(savedItem.state.toUpperCase())}` +
      `</strong>). It will be sent to the clinical system when the link is back.</p>`
    : ''
}
<p>Pending ${c.pending + c.sent} &middot; accepted ${c.accepted} &middot; rejected ${c.rejected} (${c.unresolvedRejected} need a person)</p>
<h2>Rejected, needing a person</h2>${open.length ? capturesTable(open, deps.timeZone, true, actions) : '<p class="muted">None.</p>'}
<h2>All recent</h2>${all.length ? capturesTable(all, deps.timeZone, true) : '<p class="muted">Nothing captured.</p>'}`;
      return send(req, reply, 'Offline captures', inner, s);
    });

    app.get('/records/captures/edit', clinical, async (req, reply) => {
      const s = services(req, reply);
      if (!s) return reply;
      const item = s.captures.get((q(req).id ?? '').slice(0, 40));
      if (!item || item.state !== 'rejected' || item.resolution || item.kind === 'arrival')
        throw new AppError('NOT_FOUND', 'no rejected note or call with this id');
      await audit(s, req, 'view.captures', item.patientId, `edit ${item.id}`);
      const values = item.payload as Record<string, string | undefined>;
      const target = {
        action: '/records/captures/retry',
        submit: 'Send corrected version',
        extra: `<input type="hidden" name="id" value="${e(item.id)}"><input type="hidden" name="edit" value="1">`,
      };
      const name = item.patientId ? (s.store.patientSummary(item.patientId)?.patient.name ?? item.patientId) : null;
      const reason = `<p class="warn" role="alert">Rejected: ${e(item.reason ?? '')}. Correct it and send again; the rejected version is kept.</p>`;
      const form =
        item.kind === 'note'
          ? noteForm(item.patientId ?? '', name ?? '', csrfToken(req), item.id, values, target)
          : callForm(item.patientId, name, csrfToken(req), item.id, values, target);
      return send(req, reply, 'Correct and send again', reason + form, s);
    });

    app.post('/records/captures/retry', clinical, async (req, reply) => {
      const s = services(req, reply);
      if (!s) return reply;
      const b = body(req);
      const id = String(b.id ?? '');
      const old = s.captures.get(id);
      // A double-submitted retry: the first one already made the new item; show it.
      const done = /^retried as (\S+)$/.exec(old?.resolution ?? '');
      if (done) return reply.redirect(`/records/captures?saved=${done[1]}`, 303);
      const payload = b.edit === '1' && old ? payloadFromForm(old.kind, b) : undefined;
      const item = s.captures.retry(id, req.user!.username, payload);
      await audit(s, req, 'capture.retry', old?.patientId ?? null, `${id} -> ${item.id}${payload ? ' (edited)' : ''}`);
      deps.captured();
      return reply.redirect(`/records/captures?saved=${item.id}`, 303);
    });

    app.post('/records/captures/dismiss', clinical, async (req, reply) => {
      const s = services(req, reply);
      if (!s) return reply;
      const id = String(body(req).id ?? '');
      const item = s.captures.dismiss(id, req.user!.username, String(body(req).note ?? ''));
      await audit(s, req, 'capture.resolve', item.patientId, id);
      return reply.redirect('/records/captures', 303);
    });

    app.get('/records/audit', only('admin'), async (req, reply) => {
      const s = services(req, reply);
      if (!s) return reply;
      await audit(s, req, 'view.audit', null);
      const v = s.audit.verify();
      const rows = s.audit
        .recent(200)
        .map(
          (a) =>
            `<tr><td>${a.seq}</td><td>${e(new Date(a.at).toISOString().slice(0, 19).replace('T', ' '))}</td><td>${e(a.user)} (${e(a.role)})</td>` +
            `<td>${e(a.action)}</td><td>${e(a.patientId ?? '')}</td><td>${e(a.detail ?? '')}</td><td>${e(a.device)}</td></tr>`,
        )
        .join('');
      const status = v.ok
        ? `<p class="card" role="status">Chain intact: ${v.entries} entries, head ${e(v.head?.hash.slice(0, 16) ?? '')}&hellip;</p>`
        : `<p class="warn" role="alert">&#9888; Chain BROKEN at entry ${v.firstBrokenSeq}: ${e(v.reason)}</p>`;
      return send(
        req,
        reply,
        'Audit',
        `<h1>Audit trail</h1>${status}<div class="scroll"><table><thead><tr><th>Seq</th><th>Time (UTC)</th><th>User</th><th>Action</th>` +
          `<th>Patient</th><th>Detail</th><th>Device</th></tr></thead><tbody>${rows}</tbody></table></div>`,
        s,
      );
    });
  };
}
