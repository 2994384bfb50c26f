import { http } from '../../../common/node-builtins.js';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Ctx } from '../core/capability.js';
import type { WebPlugin } from '../core/web.js';
import { isAppError, type ErrorCode } from '../../../common/errors.js';
import type { Logger } from '../../../common/log.js';
import { registerAuth } from '../auth/plugin.js';
import { ensureTls } from './tls.js';

/**
 * The one LAN web server: every capability's routes (ctx.web) behind one set of protections.
 * Order matters: security headers, body parsing and the session hook are installed on the root
 * instance first so every plugin registered afterwards inherits them.
 */
const STATUS_FOR: Partial<Record<ErrorCode, number>> = {
  BAD_REQUEST: 400,
  CONFIG_INVALID: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  LOCKED_OUT: 429,
  UNAVAILABLE: 503,
  UPSTREAM_ERROR: 502,
};

// No external sources at all; scripts only from our own /assets (no inline script), styles inline
// (the shared sheet is inlined in every page for a one-request first render).
export const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Only flat, primitive fields from fastify's own log calls reach ctx.log. Fastify passes whole
 * request/response objects ({ req }, { res }): those carry the query string (patient search
 * terms, NHS numbers), the session cookie and the socket; none of that may be logged.
 */
function safeFields(o: unknown): Record<string, unknown> {
  if (o instanceof Error) return { error: o.message };
  if (!o || typeof o !== 'object') return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
    if (v instanceof Error) out[k] = v.message;
    else if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) out[k] = k === 'url' && typeof v === 'string' ? pathOnly(v) : v;
  }
  return out;
}

/** Fastify logs through ctx.log (pino-style calls: (obj, msg) or (msg)). */
export function fastifyLogger(log: Logger): FastifyBaseLogger {
  const level = (fn: (m: string, f?: Record<string, unknown>) => void) => (a: unknown, b?: unknown) => {
    if (typeof a === 'string') fn(a);
    else fn(typeof b === 'string' ? b : 'web', safeFields(a));
  };
  const l = {
    level: 'info',
    fatal: level(log.error),
    error: level(log.error),
    warn: level(log.warn),
    info: level(log.debug),
    debug: level(log.debug),
    trace: () => {},
    silent: () => {},
    child: () => l,
  };
  return l as unknown as FastifyBaseLogger;
}

/** Path without the query string: queries may carry search terms (patient names) and must not be logged. */
const pathOnly = (url: string) => url.split('?')[0]!.slice(0, 200);

/** The schema compilers fastify gets: a route that declares a schema fails at start-up, in words. */
function noRouteSchemas(): never {
  throw new Error('the LAN web server compiles no route schemas (agent/src/web/app.ts): read the fields by hand as the other routes do');
}

export interface WebAppOptions {
  /** Plain HTTP whatever config.status.https says (tests). */
  https?: false;
  /** The local CLI's loopback-only bearer token (auth/plugin.ts). */
  localToken?: string;
  /** The route plugins to serve, in order; default every plugin registered in ctx.web. */
  plugins?: readonly WebPlugin[];
}

/** The fastify instance with every protection and every plugin; web/server.ts makes it listen. */
export async function buildWebApp(ctx: Ctx, opts: WebAppOptions = {}): Promise<FastifyInstance> {
  const cfg = ctx.config.status;
  const log = ctx.log.child('web');
  const useHttps = opts.https !== false && cfg.https;
  const tls = useHttps ? await ensureTls(ctx) : undefined;
  const app = Fastify({
    ...(tls ? { https: { key: tls.key, cert: tls.cert } } : {}),
    loggerInstance: fastifyLogger(log),
    // fastify's per-request lines would dump the whole request (query, cookie); refusals and
    // failures are logged by the onResponse hook below, path only.
    logController: new LogController({ disableRequestLogging: true }),
    // No route here declares a schema (forms are read field by field), so fastify is given
    // compilers that refuse one instead of loading Ajv and fast-json-stringify for nothing (1 MB on a
    // bare node with the npm packages; inside the minified bundle it is below make bench-memory's noise).
    schemaController: { compilersFactory: { buildValidator: noRouteSchemas, buildSerializer: noRouteSchemas } },
    bodyLimit: cfg.bodyLimitBytes,
    routerOptions: { maxParamLength: 200 },
    connectionTimeout: 0,
    requestTimeout: 30_000,
    return503OnClosing: true,
    // Requests Node cannot even parse (garbage request line, oversized headers): answer, log, carry on.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      if (err.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      log.warn('malformed request refused', { code: err.code ?? 'unknown', status, ip: (socket as { remoteAddress?: string }).remoteAddress });
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    },
  }) as unknown as FastifyInstance;

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: cfg.bodyLimitBytes }, (_req, body, done) => {
    try {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    } catch (e) {
      done(e as Error, undefined);
    }
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('content-security-policy', CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    // same-origin, not no-referrer: with no-referrer Chrome sends `Origin: null` on our own form posts.
    reply.header('referrer-policy', 'same-origin');
    reply.header('cross-origin-opener-policy', 'same-origin');
    reply.header('cross-origin-resource-policy', 'same-origin');
    reply.header('permissions-policy', 'camera=(), microphone=(), geolocation=()');
    // Pages may show patient data: never let a shared PC's browser cache them.
    reply.header('cache-control', 'no-store');
    // Forged cross-site requests: a browser always sends Origin on cross-site POSTs; refuse any
    // state-changing request whose Origin is not this server (CSRF tokens are the second layer).
    if (!SAFE.has(request.method)) {
      const origin = request.headers.origin ?? request.headers.referer;
      if (origin && origin !== 'null') {
        let same = false;
        try {
          same = new URL(origin).host === new URL(`${request.protocol}://${request.headers.host ?? ''}`).host;
        } catch {
          same = false;
        }
        if (!same) {
          return reply.code(403).send({ error: 'FORBIDDEN', message: 'cross-site request refused' });
        }
      } else if (origin === 'null') {
        return reply.code(403).send({ error: 'FORBIDDEN', message: 'cross-site request refused' });
      }
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode >= 400) {
      const fields = { method: request.method, path: pathOnly(request.url), status: reply.statusCode, ip: request.ip, user: request.user?.username };
      if (reply.statusCode >= 500) log.error('request failed', fields);
      else log.warn('request refused', fields);
    }
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (isAppError(error)) {
      const status = STATUS_FOR[error.code] ?? 500;
      if (status >= 500) log.error('handler error', { code: error.code, message: error.message, path: pathOnly(request.url) });
      return reply.code(status).send({ error: error.code, message: error.message });
    }
    const status = error.validation ? 400 : error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status >= 500) {
      log.error('handler error', { message: error.message, path: pathOnly(request.url) });
      return reply.code(500).send({ error: 'INTERNAL', message: 'internal error' });
    }
    return reply.code(status).send({ error: error.code ?? 'BAD_REQUEST', message: error.message });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: 'NOT_FOUND', message: `no route ${request.method} ${pathOnly(request.url)}` });
  });

  registerAuth(app, ctx, {
    secureCookie: !!tls,
    idleTimeoutMs: cfg.auth.idleTimeoutMs,
    maxAgeMs: cfg.auth.maxAgeMs,
    maxFailedAttempts: cfg.auth.maxFailedAttempts,
    lockoutMs: cfg.auth.lockoutMs,
    maxLoginAttemptsPerIp: cfg.auth.maxLoginAttemptsPerIp,
    loginWindowMs: cfg.auth.loginWindowMs,
    ...(opts.localToken ? { localToken: opts.localToken } : {}),
  });

  for (const p of opts.plugins ?? ctx.web.plugins()) {
    await app.register(p.plugin);
    log.debug('web plugin registered', { plugin: p.name });
  }
  await app.ready();
  // A LAN client opening connections without end: refuse the excess instead of running out of
  // file descriptors (an accept error on a server with no 'error' listener would end the process).
  app.server.maxConnections = cfg.maxConnections;
  let connWarned = 0;
  app.server.on('drop', (d?: { remoteAddress?: string }) => {
    const t = ctx.clock.now();
    if (t - connWarned < 60_000) return;
    connWarned = t;
    log.warn('too many connections: refusing new ones', { max: cfg.maxConnections, ip: d?.remoteAddress });
  });
  app.server.on('error', (e: Error) => log.error('web server error', { message: e.message }));
  return app;
}
