import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { newRecoveryCodes, newTotpSecret, otpauthUri, RECOVERY_CODES, recoveryCodeHash, verifyTotp } from '../../../common/totp.js';
import type { FleetCtx } from '../ctx.js';
import { totpSealer } from '../totp-key.js';
import { field } from './auth.js';
import { e, layout } from './html.js';
import { qrSvg } from './qr.js';

/**
 * The signed-in user's own account page: setting up a TOTP second factor (auth.totp). The secret
 * is shown as a QR code (inline SVG, qr.ts) of the otpauth:// URI and as text for typing in, and
 * only switched on once a current code from the app is entered, so a mistyped secret cannot lock
 * the user out. Switching it on shows ten one-time recovery codes, once (only their hashes are
 * kept); a new set needs a current code. A factor in use is not replaced here: an ICB admin resets
 * it (`fleet user reset-totp`), so a stolen session cannot swap the owner's phone for the thief's.
 */
const CODE_INPUT = '<input name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" maxlength="7" required>';

/** The codes, shown once: on the answer to the POST that made them (never in a URL, never stored in clear). */
function recoveryCodesPage(codes: string[], why: string): string {
  return (
    `<h1>Your recovery codes</h1><p class="ok" role="status">${e(why)}</p>` +
    `<p>Keep these somewhere safe away from your phone (print them, or a password manager). Each signs you in once instead of a code. ` +
    `<strong>They are shown only now.</strong></p><ol id="recovery-codes" style="font-family:monospace;font-size:1.2rem">` +
    `${codes.map((c) => `<li>${e(c)}</li>`).join('')}</ol><p><a href="/account">Done: back to your account</a></p>`
  );
}

export function registerAccountPages(app: FastifyInstance, ctx: FleetCtx): void {
  const log = ctx.log.child('account');
  // Any signed-in user, including an icb-admin who must set up a second factor before anything else.
  const signedIn = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!req.fleetUser) {
      if (req.method === 'GET') return reply.redirect('/login?next=%2Faccount', 303);
      return reply.code(401).send('sign in first');
    }
  };
  const mode = () => ctx.config.auth.totp;

  app.get('/account', { preHandler: signedIn }, async (req, reply) => {
    const me = req.fleetUser!;
    const u = (await ctx.store.accounts.user(me.username))!;
    const q = req.query as { done?: unknown; error?: unknown };
    const flash =
      (typeof q.done === 'string' ? `<p class="ok" role="status">${e(q.done.slice(0, 300))}</p>` : '') +
      (typeof q.error === 'string' ? `<p class="bad" role="alert">${e(q.error.slice(0, 300))}</p>` : '');
    const csrf = `<input type="hidden" name="csrf" value="${e(me.csrf)}">`;
    let body: string;
    if (mode() === 'off') body = '<p>Second factors are turned off on this fleet (<code>auth.totp: off</code>): you sign in with your password only.</p>';
    else if (u.totp_secret) {
      const left = await ctx.store.accounts.recoveryCodesLeft(u.username);
      body =
        '<p><strong>On.</strong> Signing in asks for a code from your authenticator app after your password.</p>' +
        `<h3>Recovery codes</h3><p id="recovery-left"${left <= 2 ? ' class="bad"' : ''}>${left} of ${RECOVERY_CODES} unused.</p>` +
        '<p>Each works once instead of a code, for a phone that is lost or flat. A new set replaces all the old ones.</p>' +
        `<form method="post" action="/account/totp/recovery" id="recovery-new">${csrf}` +
        `<p><label>Current code from your app ${CODE_INPUT}</label></p><button>Make new recovery codes</button></form>` +
        '<p class="muted">New phone or lost it? Sign in with a recovery code, or ask an ICB admin to reset your second factor ' +
        `(<code>fleet user reset-totp ${e(u.username)}</code>), then set it up again here.</p>`;
    } else {
      const secret = u.totp_pending ? totpSealer(ctx.config).open(u.username, u.totp_pending) : null;
      if (secret) {
        const uri = otpauthUri({ issuer: ctx.config.auth.totpIssuer, account: u.username, secret });
        const grouped = secret.match(/.{1,4}/g)!.join(' ');
        body =
          '<ol><li>In your authenticator app (Microsoft or Google Authenticator, or any TOTP app), add an account by scanning this code:' +
          `<p id="totp-qr">${qrSvg(uri, { label: 'QR code to add this account to an authenticator app' })}</p>` +
          `<p>Or type this key instead (time-based, 6 digits, 30 seconds): <code id="totp-secret">${e(grouped)}</code></p>` +
          `<details><summary>The same as a link</summary><p><code id="totp-uri" style="word-break:break-all">${e(uri)}</code></p></details></li>` +
          `<li>Enter the code the app now shows:<form method="post" action="/account/totp/confirm">${csrf}` +
          `<p><label>Code ${CODE_INPUT}</label></p><button>Turn on</button></form></li></ol>` +
          `<form method="post" action="/account/totp/cancel">${csrf}<button>Cancel</button></form>`;
      } else
        body =
          `<p><strong>Off.</strong> A second factor means a stolen password alone does not get in.</p>` +
          `<form method="post" action="/account/totp/start">${csrf}<button>Set up a second factor</button></form>`;
    }
    const must = me.mustEnrol ? '<p class="bad" role="alert">An ICB admin must have a second factor on this fleet: set it up to carry on.</p>' : '';
    const html =
      `<h1>Your account</h1>${must}${flash}<p>${e(u.username)}, ${e(u.role)}${u.practice ? ` of ${e(u.practice)}` : ''}</p>` +
      `<section><h2>Second factor (TOTP)</h2>${body}</section>`;
    return reply.type('text/html').send(layout('Your account', me, html, me.csrf));
  });

  const back = (reply: FastifyReply, k: 'done' | 'error', msg: string) => reply.redirect(`/account?${k}=${encodeURIComponent(msg)}`, 303);
  app.post('/account/totp/start', { preHandler: signedIn }, async (req, reply) => {
    const me = req.fleetUser!;
    if (mode() === 'off') return back(reply, 'error', 'second factors are turned off on this fleet');
    const u = await ctx.store.accounts.user(me.username);
    if (u?.totp_secret) return back(reply, 'error', 'you already have a second factor; an ICB admin can reset it');
    await ctx.store.accounts.setTotpPending(me.username, totpSealer(ctx.config).seal(me.username, newTotpSecret()));
    return reply.redirect('/account', 303);
  });
  app.post('/account/totp/cancel', { preHandler: signedIn }, async (req, reply) => {
    await ctx.store.accounts.setTotpPending(req.fleetUser!.username, null);
    return reply.redirect('/account', 303);
  });
  app.post('/account/totp/confirm', { preHandler: signedIn }, async (req, reply) => {
    const me = req.fleetUser!;
    const now = ctx.clock.now();
    const u = await ctx.store.accounts.user(me.username);
    if (mode() === 'off' || !u?.totp_pending || u.totp_secret) return back(reply, 'error', 'nothing being set up: start again');
    const secret = totpSealer(ctx.config).open(u.username, u.totp_pending);
    const step = secret ? verifyTotp(secret, (field(req, 'code') ?? '').replace(/\s/g, ''), now) : null;
    if (step === null) return back(reply, 'error', 'that code does not match: check the key in the app and the phone clock, then try the next code');
    if (!(await ctx.store.accounts.confirmTotp(u.username, u.totp_pending, step))) return back(reply, 'error', 'nothing being set up: start again');
    await ctx.store.accounts.audit({
      at: now,
      username: me.username,
      device_id: null,
      action: 'user-totp-on',
      args: JSON.stringify({ user: me.username }),
      outcome: 'ok',
      detail: `with ${RECOVERY_CODES} recovery codes`,
    });
    log.info('second factor turned on', { user: me.username });
    const codes = await newCodes(u.username, now);
    return showCodes(reply, me, codes, 'Second factor on: signing in now asks for a code after your password.');
  });

  const newCodes = async (username: string, now: number) => {
    const codes = newRecoveryCodes();
    await ctx.store.accounts.setRecoveryCodes(
      username,
      codes.map((c) => recoveryCodeHash(username, c)),
      now,
    );
    return codes;
  };
  const showCodes = (reply: FastifyReply, me: NonNullable<FastifyRequest['fleetUser']>, codes: string[], why: string) =>
    reply
      .header('cache-control', 'no-store')
      .type('text/html')
      .send(layout('Your recovery codes', me, recoveryCodesPage(codes, why), me.csrf));

  // A new set needs a current code (and spends its time step), so a session left open cannot be used to take them.
  app.post('/account/totp/recovery', { preHandler: signedIn }, async (req, reply) => {
    const me = req.fleetUser!;
    const now = ctx.clock.now();
    const u = await ctx.store.accounts.user(me.username);
    if (mode() === 'off' || !u?.totp_secret) return back(reply, 'error', 'you have no second factor to make recovery codes for');
    const secret = totpSealer(ctx.config).open(u.username, u.totp_secret);
    const usedStep = u.totp_last_step === null ? null : Number(u.totp_last_step);
    const step = secret ? verifyTotp(secret, (field(req, 'code') ?? '').replace(/\s/g, ''), now, { usedStep }) : null;
    const audit = (outcome: string, detail: string | null) =>
      ctx.store.accounts.audit({ at: now, username: me.username, device_id: null, action: 'user-recovery-codes-new', args: null, outcome, detail });
    if (step === null || !(await ctx.store.accounts.useTotpStep(u.username, step))) {
      // Counted like a wrong code at sign-in: guessing here ends in the same lockout, and the lock ends this session too.
      const h = ctx.config.http;
      const locked = await ctx.store.accounts.loginFailed(u.username, { now, maxFailed: h.maxFailedAttempts, lockoutMs: h.lockoutMs });
      await audit('refused', locked ? 'wrong code; account locked' : 'wrong code');
      if (locked) {
        await ctx.store.accounts.dropSession(me.token);
        return reply.redirect('/login', 303);
      }
      return back(reply, 'error', 'that code does not match (or was used already): wait for the next code and try again');
    }
    const codes = await newCodes(u.username, now);
    await audit('ok', `${codes.length} codes; the earlier ones no longer work`);
    log.info('recovery codes replaced', { user: me.username });
    return showCodes(reply, me, codes, 'New recovery codes made: the earlier ones no longer work.');
  });
}
