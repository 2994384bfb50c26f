import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DUMMY_HASH, verifyPassword } from '../../../common/password.js';
// The appliance's own sign-in pieces, shared rather than copied: both are pure (no agent ctx).
import { LoginLimiter } from '../../../common/rate-limit.js';
import { safeNext } from '../../../common/safe-next.js';
import type { FleetCtx } from '../ctx.js';
import { sessionKey, type Role, type UserRow } from '../store/account-store.js';
import { totpSealer } from '../totp-key.js';
import { normalRecoveryCode, recoveryCodeHash, verifyTotp } from '../../../common/totp.js';
import { e, layout, type PageUser } from './html.js';
import { fieldOf } from '../../../common/fields.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** mustEnrol: an icb-admin without a second factor under auth.totp required-for-icb-admin (only /account is open). */
    fleetUser: (PageUser & { csrf: string; token: string; mustEnrol: boolean }) | null;
  }
}

const COOKIE = 'fl_session';
/** The half-signed-in state between a right password and the code (second factor on). */
const MFA_COOKIE = 'fl_mfa';
const MFA_MS = 5 * 60_000;
/** Fleet user names: as the appliance's (auth/accounts.ts USERNAME), so logs never echo a typed password. */
export const USERNAME = /^[a-z0-9][a-z0-9._-]{1,31}$/;

function cookie(req: FastifyRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

export function field(req: FastifyRequest, name: string): string | undefined {
  const v = fieldOf(req.body, name);
  return typeof v === 'string' ? v : undefined;
}

function sameToken(a: string | undefined, b: string): boolean {
  const x = Buffer.from(a ?? '');
  const y = Buffer.from(b);
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/**
 * Unknown user names lock exactly like real ones (in memory, bounded), so "locked after 10 tries"
 * does not tell an attacker which names exist (as the appliance's auth/accounts.ts).
 */
class PhantomLocks {
  private readonly m = new Map<string, { failed: number; lockedUntil: number }>();
  locked(name: string, now: number): boolean {
    return (this.m.get(name)?.lockedUntil ?? 0) > now;
  }
  fail(name: string, o: { now: number; maxFailed: number; lockoutMs: number }): number | null {
    let p = this.m.get(name);
    if (!p || (p.lockedUntil && p.lockedUntil <= o.now)) {
      if (this.m.size >= 1000) this.m.delete(this.m.keys().next().value!);
      this.m.set(name, (p = { failed: 0, lockedUntil: 0 }));
    }
    if (++p.failed < o.maxFailed) return null;
    p.failed = 0;
    p.lockedUntil = o.now + o.lockoutMs;
    return p.lockedUntil;
  }
}

/**
 * Sign-in with the agent's scrypt hashes (auth/password.ts), the appliance's per-address limit
 * (auth/rate-limit.ts) and its account lockout rule, an HttpOnly SameSite=Strict session cookie
 * (Secure on HTTPS) with idle and absolute timeouts, and a per-session CSRF token in every form.
 * Roles: icb-admin (everything), icb-viewer (read everything), practice-manager (read their own
 * practice only).
 */
export function registerAuth(app: FastifyInstance, ctx: FleetCtx, o: { secure: boolean }): void {
  const h = ctx.config.http;
  const log = ctx.log.child('auth');
  const limiter = new LoginLimiter(h.maxLoginAttemptsPerIp, h.loginWindowMs, () => ctx.clock.now());
  const phantoms = new PhantomLocks();
  const timeouts = { idleMs: h.idleTimeoutMs, maxAgeMs: h.sessionTtlMs, touchEveryMs: Math.min(60_000, Math.floor(h.idleTimeoutMs / 20)) };
  const setCookie = (value: string, maxAgeMs: number, name = COOKIE) =>
    `${name}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(maxAgeMs / 1000)}${o.secure ? '; Secure' : ''}`;
  /**
   * Half-signed-in sign-ins (password right, code not yet given), keyed by a hash of the fl_mfa
   * cookie: in memory, 5 minutes, bounded. A restart just asks for the password again.
   */
  const halfIn = new Map<string, { username: string; next: string; until: number }>();
  const halfOf = (req: FastifyRequest, now: number) => {
    const t = cookie(req, MFA_COOKIE);
    if (!t || t.length > 100) return undefined;
    const key = sessionKey(t);
    const p = halfIn.get(key);
    if (p && p.until <= now) halfIn.delete(key);
    return p && p.until > now ? { key, ...p } : undefined;
  };
  const totpOn = (u: UserRow) => ctx.config.auth.totp !== 'off' && !!u.totp_secret;

  app.decorateRequest('fleetUser', null);
  app.addHook('preHandler', async (req) => {
    const token = cookie(req, COOKIE);
    if (!token || token.length > 100) return;
    const s = await ctx.store.accounts.session(token, ctx.clock.now(), timeouts);
    if (!s) return;
    const u = await ctx.store.accounts.user(s.username);
    const mustEnrol = ctx.config.auth.totp === 'required-for-icb-admin' && u?.role === 'icb-admin' && !u.totp_secret;
    if (u && !u.disabled) req.fleetUser = { username: u.username, role: u.role, practice: u.practice, csrf: s.csrf, token, mustEnrol };
  });
  // Every state-changing request carries the session's CSRF token (the login form excepted).
  app.addHook('preHandler', async (req, reply) => {
    if (req.method !== 'POST' || req.routeOptions.url === '/login' || req.routeOptions.url === '/login/code') return;
    if (!req.fleetUser || !sameToken(field(req, 'csrf'), req.fleetUser.csrf)) return reply.code(403).type('text/plain').send('forbidden: sign in again');
  });

  const form = (msg = '', next = '/') =>
    layout(
      'Sign in',
      null,
      `<h1>Sign in</h1>${msg ? `<p class="bad" role="alert">${e(msg)}</p>` : ''}<form method="post" action="/login">` +
        `<input type="hidden" name="next" value="${e(next)}">
<p><label>User name <input name="username" autocomplete="username" required maxlength="32"></label></p><p>` +
        `<label>Password <input name="password" type="password" autocomplete="current-password" required maxlength="1024"></label></p>` +
        `<button>Sign in</button></form>`,
    );
  app.get('/login', async (req, reply) => reply.type('text/html').send(form('', safeNext((req.query as { next?: unknown }).next))));
  app.post('/login', async (req, reply) => {
    const username = field(req, 'username') ?? '';
    const password = field(req, 'password') ?? '';
    const next = safeNext(field(req, 'next'));
    const shownName = USERNAME.test(username) ? username : '(not a valid user name)';
    if (!username || !password || username.length > 64 || password.length > 1024)
      return reply.code(400).type('text/html').send(form('Enter a user name and password.', next));
    const slot = limiter.take(req.ip);
    if (!slot.ok) {
      if (slot.firstRefusal) log.warn('sign-in attempts rate limited', { ip: req.ip, retryAfterS: Math.ceil(slot.retryAfterMs / 1000) });
      reply.header('retry-after', String(Math.max(1, Math.ceil(slot.retryAfterMs / 1000))));
      return reply.code(429).type('text/html').send(form('Too many sign-in attempts from this address. Wait a few minutes and try again.', next));
    }
    const now = ctx.clock.now();
    const lk = { now, maxFailed: h.maxFailedAttempts, lockoutMs: h.lockoutMs };
    const u = await ctx.store.accounts.user(username);
    const lockedMsg = `This account is locked after ${h.maxFailedAttempts} wrong passwords or codes. Try again later, or ask an ICB admin to unlock it.`;
    // Locked: refused before the password is even checked, so the right password does not get in.
    if ((u && u.locked_until !== null && Number(u.locked_until) > now) || (!u && phantoms.locked(username, now))) {
      log.warn('sign-in refused', { user: shownName, reason: 'locked', ip: req.ip });
      return reply.code(429).type('text/html').send(form(lockedMsg, next));
    }
    const ok = await verifyPassword(password, u?.hash ?? DUMMY_HASH);
    if (!u || !ok || u.disabled) {
      const lockedUntil = !u ? phantoms.fail(username, lk) : !ok ? await ctx.store.accounts.loginFailed(u.username, lk) : null;
      log.warn('sign-in refused', { user: shownName, reason: u?.disabled && ok ? 'disabled' : lockedUntil ? 'locked' : 'bad-credentials', ip: req.ip });
      if (lockedUntil) return reply.code(429).type('text/html').send(form(lockedMsg, next));
      return reply.code(401).type('text/html').send(form('Wrong user name or password.', next));
    }
    limiter.refund(req.ip);
    if (totpOn(u)) {
      // The password alone does not sign in, and does not clear the failure count: wrong codes
      // add to the same lockout as wrong passwords, so a known password does not reset the guessing.
      const t = randomBytes(24).toString('base64url');
      if (halfIn.size >= 10_000) halfIn.delete(halfIn.keys().next().value!);
      halfIn.set(sessionKey(t), { username: u.username, next, until: now + MFA_MS });
      log.info('password accepted, code asked', { user: u.username, ip: req.ip });
      reply.header('set-cookie', setCookie(t, MFA_MS, MFA_COOKIE));
      return reply.redirect('/login/code', 303);
    }
    return signIn(req, reply, u, next, now);
  });

  const signIn = async (req: FastifyRequest, reply: FastifyReply, u: UserRow, next: string, now: number, cookies: string[] = []) => {
    await ctx.store.accounts.loginSucceeded(u.username, now);
    // A fresh session id on every sign-in, and the one the browser had is ended (no fixation).
    if (req.fleetUser) await ctx.store.accounts.dropSession(req.fleetUser.token);
    const token = randomBytes(24).toString('base64url');
    await ctx.store.accounts.createSession(token, u.username, randomBytes(16).toString('hex'), now);
    await ctx.store.accounts.pruneSessions(now, timeouts);
    log.info('signed in', { user: u.username, role: u.role, ip: req.ip, secondFactor: totpOn(u) });
    reply.header('set-cookie', [...cookies, setCookie(token, h.sessionTtlMs)]);
    return reply.redirect(next, 303);
  };

  const codeForm = (msg = '') =>
    layout(
      'Sign in: code',
      null,
      `<h1>Sign in: code</h1>${msg ? `<p class="bad" role="alert">${e(msg)}</p>` : ''}<form method="post" action="/login/code">` +
        `<p><label>Code from your authenticator app <input name="code" inputmode="numeric" autocomplete="one-time-code" ` +
        `pattern="[0-9 ]{6,7}" maxlength="7" required autofocus></label></p><button>Sign in</button></form>` +
        `<details id="use-recovery"><summary>No phone? Use a recovery code</summary><form method="post" action="/login/code">` +
        `<p><label>Recovery code <input name="recovery" autocomplete="off" autocapitalize="none" spellcheck="false" maxlength="40" required>` +
        `</label></p><button>Sign in with a recovery code</button></form></details>` +
        `<p class="muted">No recovery codes left? Ask an ICB admin to reset your second factor (<code>fleet user reset-totp</code>).</p>`,
    );
  app.get('/login/code', async (req, reply) => {
    if (!halfOf(req, ctx.clock.now())) return reply.redirect('/login', 303);
    return reply.type('text/html').send(codeForm());
  });
  app.post('/login/code', async (req, reply) => {
    const now = ctx.clock.now();
    const p = halfOf(req, now);
    const endHalf = () => {
      if (p) halfIn.delete(p.key);
      reply.header('set-cookie', setCookie('', 0, MFA_COOKIE));
    };
    if (!p) {
      endHalf();
      return reply.code(401).type('text/html').send(form('That sign-in has expired. Enter your user name and password again.'));
    }
    // Codes are guessed through the same per-address limit as passwords.
    const slot = limiter.take(req.ip);
    if (!slot.ok) {
      if (slot.firstRefusal) log.warn('sign-in attempts rate limited', { ip: req.ip, retryAfterS: Math.ceil(slot.retryAfterMs / 1000) });
      reply.header('retry-after', String(Math.max(1, Math.ceil(slot.retryAfterMs / 1000))));
      return reply.code(429).type('text/html').send(codeForm('Too many sign-in attempts from this address. Wait a few minutes and try again.'));
    }
    const u = await ctx.store.accounts.user(p.username);
    if (!u || u.disabled || !totpOn(u)) {
      endHalf();
      return reply.code(401).type('text/html').send(form('Sign in again.', p.next));
    }
    const lk = { now, maxFailed: h.maxFailedAttempts, lockoutMs: h.lockoutMs };
    const lockedMsg = `This account is locked after ${h.maxFailedAttempts} wrong passwords or codes. Try again later, or ask an ICB admin to unlock it.`;
    if (u.locked_until !== null && Number(u.locked_until) > now) {
      endHalf();
      log.warn('sign-in refused', { user: u.username, reason: 'locked', ip: req.ip });
      return reply.code(429).type('text/html').send(form(lockedMsg, p.next));
    }
    const fail = async (reason: string) => {
      const lockedUntil = await ctx.store.accounts.loginFailed(u.username, lk);
      log.warn('sign-in refused', { user: u.username, reason: lockedUntil ? 'locked' : reason, ip: req.ip });
      if (!lockedUntil) return null;
      endHalf();
      return reply.code(429).type('text/html').send(form(lockedMsg, p.next));
    };
    // A recovery code instead of a code: good once, counted in the same limit and lockout, audited.
    const recovery = field(req, 'recovery');
    if (recovery !== undefined) {
      const norm = normalRecoveryCode(recovery);
      if (!norm || !(await ctx.store.accounts.useRecoveryCode(u.username, recoveryCodeHash(u.username, norm), now)))
        return (
          (await fail('bad-recovery-code')) ??
          reply.code(401).type('text/html').send(codeForm('That recovery code is wrong or has been used. Each works once.'))
        );
      const left = await ctx.store.accounts.recoveryCodesLeft(u.username);
      await ctx.store.accounts.audit({
        at: now,
        username: u.username,
        device_id: null,
        action: 'user-recovery-code-used',
        args: null,
        outcome: 'ok',
        detail: `${left} left; from ${req.ip}`,
      });
      log.warn('signed in with a recovery code', { user: u.username, left, ip: req.ip });
      halfIn.delete(p.key);
      limiter.refund(req.ip);
      const msg = `You signed in with a recovery code: ${left} left.${left <= 2 ? ' Make new ones below.' : ''}`;
      return signIn(req, reply, u, `/account?done=${encodeURIComponent(msg)}`, now, [setCookie('', 0, MFA_COOKIE)]);
    }
    const secret = totpSealer(ctx.config).open(u.username, u.totp_secret!);
    if (secret === null) {
      log.error('second factor cannot be checked: the sealed secret does not open (another auth.totpKeyPath?)', { user: u.username });
      endHalf();
      return reply.code(500).type('text/html').send(form('Your second factor cannot be checked on this server. Ask an ICB admin to reset it.'));
    }
    const code = (field(req, 'code') ?? '').replace(/\s/g, '');
    const usedStep = u.totp_last_step === null ? null : Number(u.totp_last_step);
    const step = verifyTotp(secret, code, now, { usedStep });
    // Claimed in one UPDATE: the same code sent twice at once still signs in only once.
    if (step === null || !(await ctx.store.accounts.useTotpStep(u.username, step)))
      return (
        (await fail('bad-code')) ??
        reply.code(401).type('text/html').send(codeForm('Wrong code, or a code already used. Wait for the next code and try again.'))
      );
    halfIn.delete(p.key);
    limiter.refund(req.ip);
    return signIn(req, reply, u, p.next, now, [setCookie('', 0, MFA_COOKIE)]);
  });
  app.post('/logout', async (req, reply) => {
    if (req.fleetUser) await ctx.store.accounts.dropSession(req.fleetUser.token);
    reply.header('set-cookie', setCookie('', 0));
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
    if (req.fleetUser.mustEnrol) {
      if (req.method === 'GET') return reply.redirect('/account', 303);
      return reply.code(403).type('text/plain').send('set up your second factor first (Account page)');
    }
    if (roles.length && !roles.includes(req.fleetUser.role as Role)) return reply.code(403).type('text/plain').send('forbidden for your role');
  };
}

/** A practice manager sees only their own practice: this is the one place that says so. */
export function scopePractice(req: FastifyRequest, asked?: string): string | undefined {
  if (req.fleetUser?.role === 'practice-manager') return req.fleetUser.practice ?? '\u0000none';
  return asked || undefined;
}
