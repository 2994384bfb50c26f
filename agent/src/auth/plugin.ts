import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { Ctx } from '../core/capability.js';
import { escapeHtml, page } from '../web/html.js';
import { checkLogin, migrateAuth, USERNAME, type Role } from './accounts.js';
import { LoginLimiter } from '../../../common/rate-limit.js';
import { safeNext } from '../../../common/safe-next.js';
import { SessionStore, type SessionUser } from './sessions.js';
import { fieldsOf } from '../../../common/fields.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in user, set by the auth hook for every request with a live session. */
    user?: SessionUser;
    /** The session's CSRF token (read it through csrfToken()). */
    sessionCsrf?: string;
  }
}

export { safeNext };
export const SESSION_COOKIE = 'se_sid';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface AuthOptions {
  secureCookie: boolean;
  idleTimeoutMs: number;
  maxAgeMs: number;
  maxFailedAttempts: number;
  lockoutMs: number;
  /** Login attempts one source address may make per `loginWindowMs` (successful ones are not counted). */
  maxLoginAttemptsPerIp: number;
  loginWindowMs: number;
  /**
   * Token for the local CLI (`surgery-edge drill`), written 0600 into runDir by the web
   * server (agent/src/web/server.ts): accepted as `authorization: Bearer <token>` from loopback only, as an admin.
   */
  localToken?: string;
}

function readCookie(req: FastifyRequest, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

const isLoopback = (a: string | undefined) => a === '127.0.0.1' || a === '::1' || a === '::ffff:127.0.0.1';

const wantsHtml = (req: FastifyRequest) => req.method === 'GET' && /text\/html/.test(req.headers.accept ?? '');

/** The CSRF token to put in a form's `_csrf` field (or the `x-csrf-token` header). */
export function csrfToken(request: FastifyRequest): string {
  return request.sessionCsrf ?? '';
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** True (and logged) when a state-changing request from a signed-in user lacks the session's CSRF token. */
function csrfRefused(request: FastifyRequest): boolean {
  if (SAFE_METHODS.has(request.method) || !request.user) return false;
  const body = fieldsOf(request.body);
  const header = request.headers['x-csrf-token'];
  const sent = (typeof header === 'string' ? header : undefined) ?? (typeof body?._csrf === 'string' ? body._csrf : '');
  if (sameToken(sent, request.sessionCsrf ?? '')) return false;
  request.log.warn({ user: request.user.username, url: request.routeOptions.url }, 'CSRF token missing or wrong');
  return true;
}

/**
 * preHandler for routes behind a login. 401 (HTML GETs are redirected to /login?next=...),
 * 403 when the role is not allowed, and 403 for any non-GET without the session's CSRF token
 * (header `x-csrf-token` or form field `_csrf`).
 */
export function requireRole(...roles: Role[]): preHandlerAsyncHookHandler {
  return async function authGuard(request: FastifyRequest, reply: FastifyReply) {
    const user = request.user;
    if (!user) {
      if (wantsHtml(request)) return reply.redirect(`/login?next=${encodeURIComponent(request.url)}`, 303);
      return reply.code(401).send({ error: 'UNAUTHORIZED', message: 'sign in first' });
    }
    if (roles.length > 0 && !roles.includes(user.role)) {
      request.log.warn({ user: user.username, role: user.role, url: request.routeOptions.url }, 'role refused');
      return reply.code(403).send({ error: 'FORBIDDEN', message: `needs role ${roles.join(' or ')}` });
    }
    if (csrfRefused(request)) return reply.code(403).send({ error: 'FORBIDDEN', message: 'missing or wrong CSRF token' });
  };
}

function loginForm(next: string, message = '', status = ''): string {
  return page(
    'Sign in',
    `<h1>Sign in</h1>
${message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : ''}${status}
<form method="post" action="/login" class="card">
<input type="hidden" name="next" value="${escapeHtml(next)}">
<label for="username">Username</label><input id="username" name="username" autocomplete="username" required maxlength="32" autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
<p><button class="primary" type="submit">Sign in</button></p></form>`,
  );
}

/**
 * Installs the session hook (sets request.user) and /login, /logout on the root instance, so
 * every plugin registered afterwards sees request.user.
 */
export function registerAuth(app: FastifyInstance, ctx: Ctx, opts: AuthOptions): SessionStore {
  migrateAuth(ctx.db);
  const sessions = new SessionStore(ctx.db, () => ctx.clock.now(), opts);
  const log = ctx.log.child('auth');
  const limiter = new LoginLimiter(opts.maxLoginAttemptsPerIp, opts.loginWindowMs, () => ctx.clock.now());
  const cookie = (value: string, maxAge: number) =>
    `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(maxAge / 1000)}${opts.secureCookie ? '; Secure' : ''}`;

  app.decorateRequest('user', undefined);
  app.decorateRequest('sessionCsrf', undefined);
  app.addHook('onRequest', async (request) => {
    const auth = request.headers.authorization;
    if (opts.localToken && auth?.startsWith('Bearer ') && isLoopback(request.socket.remoteAddress)) {
      if (sameToken(auth.slice(7), opts.localToken)) {
        request.user = { username: 'local-cli', role: 'admin', sessionId: 'local' };
        request.sessionCsrf = opts.localToken;
      }
      return;
    }
    const id = readCookie(request, SESSION_COOKIE);
    if (!id || id.length > 100) return;
    const s = sessions.touch(id);
    if (!s) return;
    request.user = { username: s.username, role: s.role, sessionId: s.sessionId };
    request.sessionCsrf = s.csrf;
  });

  // Every state-changing request made with a session needs its CSRF token, whatever plugin
  // registered the route and whether or not it used requireRole (defence in depth: a route that
  // forgets the guard is still not forgeable). /login is exempt: its form is shown signed out.
  app.addHook('preHandler', async (request, reply) => {
    if (request.routeOptions.url === '/login') return;
    if (csrfRefused(request)) return reply.code(403).send({ error: 'FORBIDDEN', message: 'missing or wrong CSRF token' });
  });

  app.get('/login', async (request, reply) => {
    const q = fieldsOf(request.query);
    return reply.type('text/html; charset=utf-8').send(loginForm(safeNext(q.next)));
  });

  app.post('/login', async (request, reply) => {
    const body = fieldsOf(request.body);
    const json = !/x-www-form-urlencoded/.test(request.headers['content-type'] ?? '');
    const next = safeNext(body.next);
    const { username, password } = body;
    if (typeof username !== 'string' || typeof password !== 'string' || username.length > 64 || password.length > 1024) {
      log.warn('malformed login request', { ip: request.ip });
      return json
        ? reply.code(400).send({ error: 'BAD_REQUEST', message: 'username and password (strings) are required' })
        : reply.code(400).type('text/html; charset=utf-8').send(loginForm(next, 'Enter a username and password.'));
    }
    const slot = limiter.take(request.ip);
    if (!slot.ok) {
      if (slot.firstRefusal) log.warn('login attempts rate limited', { ip: request.ip, retryAfterS: Math.ceil(slot.retryAfterMs / 1000) });
      const msg = 'Too many sign-in attempts from this device. Wait a few minutes and try again.';
      reply.header('retry-after', String(Math.max(1, Math.ceil(slot.retryAfterMs / 1000))));
      return json ? reply.code(429).send({ error: 'RATE_LIMITED', message: msg }) : reply.code(429).type('text/html; charset=utf-8').send(loginForm(next, msg));
    }
    const r = await checkLogin(ctx.db, username, password, {
      now: ctx.clock.now(),
      maxFailed: opts.maxFailedAttempts,
      lockoutMs: opts.lockoutMs,
    });
    if (!r.ok) {
      // Only a well-formed username is logged: people type their password into the username box.
      log.warn('login refused', { user: USERNAME.test(username) ? username : '(not a valid username)', reason: r.reason, ip: request.ip });
      const locked = r.reason === 'locked';
      const until = r.lockedUntil ? new Date(r.lockedUntil).toTimeString().slice(0, 5) : '';
      const msg = locked
        ? `This account is locked after ${opts.maxFailedAttempts} wrong passwords. Try again after ${until}, or ask an admin to unlock it.`
        : 'Wrong username or password.';
      const code = locked ? 429 : 401;
      return json
        ? reply.code(code).send({ error: locked ? 'LOCKED_OUT' : 'UNAUTHORIZED', message: msg, ...(r.lockedUntil ? { lockedUntil: r.lockedUntil } : {}) })
        : reply.code(code).type('text/html; charset=utf-8').send(loginForm(next, msg));
    }
    limiter.refund(request.ip);
    // A fresh session id on every sign-in, and the one the browser had is ended: a session id
    // planted or seen before sign-in is never the one that carries the signed-in user.
    if (request.user && request.user.sessionId !== 'local') sessions.destroy(request.user.sessionId);
    const s = sessions.create(r.account.username);
    sessions.sweep();
    log.info('signed in', { user: s.username, role: s.role });
    reply.header('set-cookie', cookie(s.sessionId, opts.maxAgeMs));
    return json ? reply.send({ ok: true, username: s.username, role: s.role, csrf: s.csrf }) : reply.redirect(next, 303);
  });

  app.post('/logout', { preHandler: requireRole() }, async (request, reply) => {
    if (request.user) {
      sessions.destroy(request.user.sessionId);
      log.info('signed out', { user: request.user.username });
    }
    reply.header('set-cookie', cookie('', 0));
    return reply.redirect('/', 303);
  });

  return sessions;
}
