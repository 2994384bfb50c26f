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
        const data = JSON.stringify(await render(req));
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
