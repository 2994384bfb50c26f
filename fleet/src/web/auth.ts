import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DUMMY_HASH, verifyPassword } from '../../../agent/src/auth/password.js';
import type { FleetCtx } from '../ctx.js';
import type { Role } from '../store/account-store.js';
import { e, layout, type PageUser } from './html.js';

declare module 'fastify' {
  interface FastifyRequest {
    fleetUser: (PageUser & { csrf: string; token: string }) | null;
  }
}

const COOKIE = 'fl_session';

function cookie(req: FastifyRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

export function field(req: FastifyRequest, name: string): string | undefined {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : undefined;
}

/**
 * Sign-in with the agent's scrypt hashes (auth/password.ts), an HttpOnly SameSite=Strict session
 * cookie, and a per-session CSRF token in every form. Roles: icb-admin (everything), icb-viewer
 * (read everything), practice-manager (read their own practice only).
 */
export function registerAuth(app: FastifyInstance, ctx: FleetCtx): void {
  app.decorateRequest("fleetUser", null);
  app.addHook('preHandler', async (req) => {
    const token = cookie(req, COOKIE);
    if (!token) return;
    const s = await ctx.store.accounts.session(token, ctx.clock.now());
    if (!s) return;
    const u = await ctx.store.accounts.user(s.username);
    if (u) req.fleetUser = { username: u.username, role: u.role, practice: u.practice, csrf: s.csrf, token };
  });
  // Every state-changing request carries the session's CSRF token (the login form excepted).
  app.addHook('preHandler', async (req, reply) => {
    if (req.method !== 'POST' || req.url === '/login') return;
    if (!req.fleetUser || field(req, 'csrf') !== req.fleetUser.csrf) return reply.code(403).type('text/plain').send('forbidden: sign in again');
  });

  const form = (msg = '', next = '/') =>
    layout('Sign in', null, `<h1>Sign in</h1>${msg ? `<p class="bad" role="alert">${e(msg)}</p>` : ''}<form method="post" action="/login"><input type="hidden" name="next" value="${e(next)}">
<p><label>User name <input name="username" autocomplete="username" required></label></p><p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p><button>Sign in</button></form>`);
  app.get('/login', async (req, reply) => reply.type('text/html').send(form('', String((req.query as { next?: string }).next ?? '/'))));
  app.post('/login', async (req, reply) => {
    const username = field(req, 'username') ?? '';
    const password = field(req, 'password') ?? '';
    const u = await ctx.store.accounts.user(username);
    const ok = await verifyPassword(password, u?.hash ?? DUMMY_HASH);
    if (!u || !ok) return reply.code(401).type('text/html').send(form('Wrong user name or password.'));
    const token = randomBytes(24).toString('base64url');
    await ctx.store.accounts.createSession(token, u.username, randomBytes(16).toString('hex'), ctx.clock.now() + ctx.config.http.sessionTtlMs);
    const next = field(req, 'next') ?? '/';
    reply.header('set-cookie', `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.round(ctx.config.http.sessionTtlMs / 1000)}`);
    return reply.redirect(next.startsWith('/') && !next.startsWith('//') ? next : '/', 303);
  });
  app.post('/logout', async (req, reply) => {
    if (req.fleetUser) await ctx.store.accounts.dropSession(req.fleetUser.token);
    reply.header('set-cookie', `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`);
    return reply.redirect('/login', 303);
  });
}

/** preHandler: signed in with one of `roles` (any role when empty), else sign-in page / 403. */
export function need(...roles: Role[]) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    if (!req.fleetUser) {
      if (req.method === 'GET') return reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 303);
      return reply.code(401).send('sign in first');
    }
    if (roles.length && !roles.includes(req.fleetUser.role as Role)) return reply.code(403).type('text/plain').send('forbidden for your role');
  };
}

/** A practice manager sees only their own practice: this is the one place that says so. */
export function scopePractice(req: FastifyRequest, asked?: string): string | undefined {
  if (req.fleetUser?.role === 'practice-manager') return req.fleetUser.practice ?? '\u0000none';
  return asked || undefined;
}
