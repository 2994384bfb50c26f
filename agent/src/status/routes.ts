import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { csrfToken, requireRole } from '../auth/plugin.js';
import type { Capability, Ctx, Health, HealthMap } from '../core/capability.js';
import { AppError } from '../../../common/errors.js';
import type { SystemHealth } from '../../../contract/mqtt.js';
import { STATUS_CSS, STATUS_JS } from './assets.js';
import { renderCards, renderNotes, renderState } from './cards.js';
import { escapeHtml as e, page } from '../web/html.js';
import { renderMetrics } from './metrics.js';
import { localTime, type PracticeState } from './state.js';
import type { Outage } from '../../../contract/operations.js';
import { fieldOf } from '../../../common/fields.js';

export interface StatusSnapshot {
  at: number;
  state: PracticeState;
  health: HealthMap;
  box: SystemHealth | null;
  /** Today's outages (failover switch history); absent when failover keeps none. */
  outages?: Outage[];
}

/** What the routes need from the status capability (kept narrow so tests can drive it). */
export interface StatusModel {
  snapshot(): StatusSnapshot;
  /** SSE subscribers get a JSON payload on every bus event (debounced) and every refresh tick. */
  subscribe(fn: (json: string) => void): () => void;
  payload(s?: StatusSnapshot): string;
  readonly maxStreams: number;
  readonly maxStreamsPerIp: number;
}

/** A live page whose browser stopped reading: beyond this much unsent data it is dropped. */
const MAX_UNSENT_BYTES = 256 * 1024;

type DrillsCap = Capability & {
  runNow?(trigger: 'schedule' | 'manual' | 'remote'): Promise<unknown>;
  history?(limit: number): unknown[];
};

// Fixed flash messages: the page never reflects request text back.
const FLASH: Record<string, string> = {
  'drill-started': 'Drill started. The result appears below when it finishes.',
  forced: 'Uplink forced for maintenance. It returns to automatic when the time is up.',
  cleared: 'Uplink choice is back to automatic.',
  rebooting: 'The appliance is restarting. This page will reconnect by itself.',
};

const isForm = (r: FastifyRequest) => /x-www-form-urlencoded/.test(r.headers['content-type'] ?? '');
const field = (r: FastifyRequest, k: string): unknown => fieldOf(r.body, k);
const done = (r: FastifyRequest, reply: FastifyReply, flash: string, json: Record<string, unknown>) =>
  isForm(r) ? reply.redirect(`/?msg=${flash}#actions`, 303) : reply.send(json);

function adminSection(req: FastifyRequest, snap: StatusSnapshot): string {
  if (!req.user)
    return (
      `<section class="card" id="actions" aria-labelledby="adm"><h2 id="adm">Actions</h2><p>` +
      `<a href="/login?next=%2F">Sign in as an admin</a> to run a drill, force an uplink for maintenance or restart the appliance.</p></section>`
    );
  if (req.user.role !== 'admin') return '';
  const csrf = `<input type="hidden" name="_csrf" value="${e(csrfToken(req))}">`;
  const fo = snap.health.failover?.details;
  const options = (fo?.uplinks ?? []).map((u) => `<option value="${e(u.name)}">${e(u.name)} (${e(u.kind)})</option>`).join('');
  return (
    `<section class="card actions" id="actions" aria-labelledby="adm"><h2 id="adm">Actions</h2>
<p><a href="/admin/users">Staff accounts</a>: add people, disable an account, reset a password.</p>
<form method="post" action="/api/actions/drill">${csrf}<button class="primary" type="submit">Run a drill now</button></form>
<form method="post" action="/api/actions/force">${csrf}<label for="f-up">Force uplink</label><select id="f-up" name="uplink">` +
    `<option value="">Automatic (clear)</option>${options}</select>
<label for="f-min">For</label><select id="f-min" name="minutes"><option value="15">15 minutes</option><option value="60" selected>1 hour</option>` +
    `<option value="240">4 hours</option></select> <button type="submit">Apply</button></form>
<form method="post" action="/api/actions/reboot">${csrf}<label class="inline">` +
    `<input type="checkbox" name="confirm" value="yes" required> Yes, restart (phones and internet drop for about 2 minutes)</label> <button ` +
    `class="danger" type="submit">Restart the appliance</button></form></section>`
  );
}

export function statusRoutes(ctx: Ctx, model: StatusModel): FastifyPluginAsync {
  const log = ctx.log.child('status');
  let streams = 0;
  // Open streams per source address: one device must not hold every slot.
  const perSource = new Map<string, number>();
  return async (app) => {
    app.get('/', async (req, reply) => {
      const snap = model.snapshot();
      const key = fieldOf(req.query, 'msg');
      // Own keys only: ?msg=constructor must not print Object's source.
      const msg = typeof key === 'string' && Object.hasOwn(FLASH, key) ? FLASH[key] : undefined;
      const body =
        `<h1 class="sr-only">Practice status</h1>
<div id="state" class="state s-${snap.state.level}" data-level="${snap.state.level}" role="status" aria-live="polite" ` +
        `aria-atomic="true">${renderState(snap.state)}</div>
<ul id="notes" aria-label="Details">${renderNotes(snap.state)}</ul>
<p class="muted" id="updated">Updated ${e(localTime(snap.at))}</p>
${msg ? `<p class="flash" role="alert">${e(msg)}</p>` : ''}
<div id="cards">${renderCards(snap.health, snap.box, localTime, snap.outages ? { list: snap.outages, now: snap.at } : undefined)}</div>
${adminSection(req, snap)}`;
      return reply.type('text/html; charset=utf-8').send(
        page('Status', body, {
          user: req.user,
          csrf: csrfToken(req),
          scripts: ['/assets/status.js'],
          css: STATUS_CSS + '.sr-only{position:absolute;left:-9999px}',
        }),
      );
    });

    app.get('/assets/status.js', async (_req, reply) =>
      reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=3600').send(STATUS_JS),
    );

    app.get('/api/status', async () => {
      const s = model.snapshot();
      return { at: s.at, state: s.state, capabilities: s.health, box: s.box };
    });

    app.get('/metrics', async (_req, reply) => {
      const s = model.snapshot();
      return reply.type('text/plain; version=0.0.4; charset=utf-8').send(renderMetrics(s.health, s.state, s.box, s.at));
    });

    app.get('/api/drills', async (req) => {
      const drills = ctx.capabilities.get('drills');
      const limit = Math.min(100, Math.max(1, Number(fieldOf(req.query, 'limit')) || 20));
      return { drills: typeof drills?.history === 'function' ? drills.history(limit) : [] };
    });

    // Server-sent events: the connection stays open; each frame is the whole rendered state.
    app.get('/api/events', async (req, reply) => {
      const ip = req.ip;
      if (streams >= model.maxStreams) throw new AppError('UNAVAILABLE', 'too many live status pages open');
      const mine = perSource.get(ip) ?? 0;
      if (mine >= model.maxStreamsPerIp) {
        return reply.code(429).send({ error: 'RATE_LIMITED', message: `at most ${model.maxStreamsPerIp} live status pages per device` });
      }
      streams++;
      perSource.set(ip, mine + 1);
      let closed = false;
      let off: () => void = () => {};
      const release = () => {
        if (closed) return;
        closed = true;
        off();
        streams--;
        const n = (perSource.get(ip) ?? 1) - 1;
        if (n > 0) perSource.set(ip, n);
        else perSource.delete(ip);
      };
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      const send = (json: string) => {
        // A client that stops reading would make the agent buffer every frame for ever.
        if (raw.writableLength > MAX_UNSENT_BYTES) {
          log.warn('live status page not reading: dropped', { ip, unsentBytes: raw.writableLength });
          release();
          raw.destroy();
          return;
        }
        raw.write(`event: status\ndata: ${json}\n\n`);
      };
      raw.write('retry: 2000\n\n');
      send(model.payload());
      off = model.subscribe(send);
      // The response's close fires when the connection goes, whoever ends it.
      raw.on('close', release);
      raw.on('error', release);
      if (raw.destroyed) release();
    });

    app.post('/api/actions/drill', { preHandler: requireRole('admin') }, async (req, reply) => {
      const drills = ctx.capabilities.get('drills');
      if (typeof drills?.runNow !== 'function') throw new AppError('UNAVAILABLE', 'the drills capability is not running');
      log.info('drill requested', { user: req.user?.username });
      const run = drills.runNow('manual');
      if (isForm(req)) {
        run.catch((err: unknown) => log.error('drill failed to run', { error: (err as Error).message }));
        return done(req, reply, 'drill-started', {});
      }
      return reply.send(await run);
    });

    app.post('/api/actions/force', { preHandler: requireRole('admin') }, async (req, reply) => {
      const fo = ctx.capabilities.get('failover');
      if (typeof fo?.force !== 'function') throw new AppError('UNAVAILABLE', 'the failover capability is not running');
      const uplink = field(req, 'uplink');
      const minutes = Number(field(req, 'minutes') ?? 60);
      const names = (fo.health().details?.uplinks ?? []).map((u) => u.name);
      if (uplink !== null && uplink !== '' && (typeof uplink !== 'string' || !names.includes(uplink)))
        throw new AppError('BAD_REQUEST', `uplink must be one of: ${names.join(', ')} (or empty for automatic)`);
      if (!Number.isInteger(minutes) || minutes < 1 || minutes > 24 * 60) throw new AppError('BAD_REQUEST', 'minutes must be a whole number from 1 to 1440');
      const name = uplink ? (uplink as string) : null;
      fo.force(name, minutes * 60_000);
      log.warn('uplink forced for maintenance', { user: req.user?.username, uplink: name, minutes });
      return done(req, reply, name ? 'forced' : 'cleared', { ok: true, uplink: name, until: name ? ctx.clock.now() + minutes * 60_000 : null });
    });

    app.post('/api/actions/reboot', { preHandler: requireRole('admin') }, async (req, reply) => {
      if (field(req, 'confirm') !== 'yes') throw new AppError('BAD_REQUEST', 'confirm must be "yes"');
      log.warn('reboot requested from the status page', { user: req.user?.username });
      // Answer first, then reboot: the browser should see the confirmation.
      ctx.clock.setTimeout(() => {
        ctx.control
          .reboot(`status page (${req.user?.username ?? 'unknown'})`)
          .catch((err: unknown) => log.error('reboot failed', { error: (err as Error).message }));
      }, 200);
      return done(req, reply, 'rebooting', { ok: true });
    });
  };
}
