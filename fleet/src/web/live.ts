import type { FastifyInstance, FastifyRequest } from 'fastify';
import { describeError } from '../../../common/errors.js';
import type { TimerHandle } from '../../../common/clock.js';
import type { FleetCtx } from '../ctx.js';
import { need } from './auth.js';

/** Open live streams per server: each re-renders every liveMs, so they are bounded (503 beyond). */
export const MAX_LIVE_STREAMS = 200;

/**
 * A page that stays current without a reload: server-sent events (text/event-stream) carrying the
 * page's changing fragments as JSON ({element id: html}), rendered by the same server code as the
 * page itself, sent only when something changed (a comment every ~25 s keeps proxies from cutting
 * an idle stream). The session is re-checked on every tick without touching it, so an open tab does
 * not keep a session alive past its idle or absolute timeout, and a signed-out, disabled or demoted
 * user's stream ends at once (`signed-out`, and the page reloads to the sign-in form).
 */
export function registerLive(app: FastifyInstance, ctx: FleetCtx, path: string, render: (req: FastifyRequest) => Promise<Record<string, string>>): void {
  const streams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of [...streams]) end();
  });
  const h = ctx.config.http;
  // Streams showing the same view (same query, same practice scope) share one render per tick, so
  // a service desk with the list open on many screens costs one query, not one per screen.
  const shared = new Map<string, { at: number; out: Promise<Record<string, string>> }>();
  // A stream's first render is its own (fresh = true): a shared one may predate the page it updates
  // (rendered just after a change, such as a pause, the same user made) and would put it back.
  const renderShared = (req: FastifyRequest, fresh: boolean) => {
    const u = req.fleetUser!;
    const key = `${u.role === 'practice-manager' ? `pm:${u.practice}` : '*'}|${req.url}`;
    const now = ctx.clock.now();
    const hit = shared.get(key);
    if (hit && !fresh && now - hit.at < h.liveMs / 2) return hit.out;
    for (const [k, v] of shared) if (now - v.at >= h.liveMs) shared.delete(k);
    const out = render(req);
    shared.set(key, { at: now, out });
    out.catch(() => shared.delete(key));
    return out;
  };
  const peek = { idleMs: h.idleTimeoutMs, maxAgeMs: h.sessionTtlMs, touchEveryMs: Number.MAX_SAFE_INTEGER };
  app.get(path, { preHandler: need() }, async (req, reply) => {
    if (streams.size >= MAX_LIVE_STREAMS) return reply.code(503).header('retry-after', '30').type('text/plain').send('too many live views open; reload later');
    const user = req.fleetUser!;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
      ...(req.protocol === 'https' ? { 'strict-transport-security': 'max-age=31536000' } : {}),
    });
    res.write('retry: 3000\n\n');
    let last = '';
    let quiet = 0;
    let timer: TimerHandle | undefined;
    let busy = false;
    let first = true;
    const end = () => {
      if (!streams.delete(end)) return;
      ctx.clock.clearInterval(timer);
      res.end();
    };
    streams.add(end);
    req.raw.on('close', end);
    const tick = async () => {
      if (busy) return;
      busy = true;
      try {
        if (!(await ctx.store.accounts.session(user.token, ctx.clock.now(), peek))) {
          res.write('event: signed-out\ndata: {}\n\n');
          return end();
        }
        const data = JSON.stringify(await renderShared(req, first));
        first = false;
        if (data !== last) {
          last = data;
          quiet = 0;
          res.write(`event: update\ndata: ${data}\n\n`);
        } else if (++quiet * h.liveMs >= 25_000) {
          quiet = 0;
          res.write(': still here\n\n');
        }
      } catch (err) {
        ctx.log.warn('live update failed', { path, ...describeError(err) });
      } finally {
        busy = false;
      }
    };
    timer = ctx.clock.setInterval(() => void tick(), h.liveMs);
    void tick();
  });
}
