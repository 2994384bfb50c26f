import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import { auditAccount, createUser, validatePassword, validateUsername } from '../auth/accounts.js';
import { LoginLimiter } from '../../../common/rate-limit.js';
import { validateConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Ctx } from '../core/capability.js';
import { describeError, isAppError } from '../../../common/errors.js';
import { createKey, keyFileExists, writeRuntimeKey } from '../records/key.js';
import { tpmAvailable } from '../platform/tpm.js';
import { recordsPaths } from '../records/sources.js';
import { escapeHtml as e, page } from '../web/html.js';
import type { SetupCodeStore } from './code.js';
import { wizardForm, type WizardValues } from './wizard-html.js';
import { fieldOf } from '../../../common/fields.js';

/**
 * /setup: the first-run wizard. GET shows the code form (or, with a live wizard session, the
 * wizard); POST /setup/code redeems the one-time code (rate limited per device and overall);
 * POST /setup validates everything first, through the config file's own validator, then creates
 * the first admin, the records key, marks set-up done and applies the config with
 * AgentControl.reconfigure (after answering: reconfigure restarts this web server).
 * Once set up, every /setup route answers 404.
 */
const COOKIE = 'se_setup';

function readCookie(req: FastifyRequest): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === COOKIE) return part.slice(i + 1).trim();
  }
  return undefined;
}

const str = (r: FastifyRequest, k: string): string => {
  const v = fieldOf(r.body, k);
  return typeof v === 'string' ? v : '';
};

const CODE_WORDS = {
  wrong: 'That set-up code is not right. Check it on the device page of the ICB fleet dashboard (ask your ICB engineer) and type it again.',
  malformed: 'A set-up code is 10 letters and numbers, like 7KQ2M-XW9PA. Check it and type it again.',
  spent: 'That set-up code has already been used. Ask your ICB engineer for the new code on the fleet dashboard.',
  limited: 'Too many wrong set-up codes. Wait 15 minutes, then try again.',
} as const;

function codePage(message = ''): string {
  return (
    `<h1>Set up this box</h1>
${message ? `<p class="error" role="alert">${e(message)}</p>` : ''}
<section class="card"><p>Type the <strong>set-up code</strong> for this box. Your ICB engineer sees it on this box's page in the ICB fleet dashboard ` +
    `and can read it to you. It works once.</p>
<form method="post" action="/setup/code"><label for="code">Set-up code</label>
<input id="code" name="code" required maxlength="20" autocomplete="off" autocapitalize="characters" spellcheck="false" inputmode="text" ` +
    `placeholder="XXXXX-XXXXX" autofocus>
<p><button class="primary" type="submit">Continue</button></p></form></section>`
  );
}

const notFound = (reply: FastifyReply) =>
  reply
    .code(404)
    .type('text/html; charset=utf-8')
    .send(
      page(
        'Set up',
        '<h1>This box is already set up</h1>' +
          '<p>Set-up can be done only once. <a href="/login">Sign in</a> to manage staff accounts, or go to the <a href="/">status page</a>.</p>',
      ),
    );

/**
 * What the wizard needs from the set-up capability (setup.ts implements it). Declared here, not
 * imported from setup.ts, so the capability and its routes do not import each other.
 */
export interface WizardHost {
  readonly codes: SetupCodeStore;
  isSetUp(): boolean;
  openSession(): { id: string; token: string };
  session(id: string | undefined): { id: string; token: string } | null;
  finish(): void;
}

export function wizardPlugin(ctx: Ctx, cap: WizardHost): FastifyPluginAsync {
  const log = ctx.log.child('setup');
  const cfg = ctx.config.status.setup;
  const perIp = new LoginLimiter(cfg.maxCodeAttemptsPerIp, cfg.codeWindowMs, () => ctx.clock.now());
  const overall = new LoginLimiter(cfg.maxCodeAttempts, cfg.codeWindowMs, () => ctx.clock.now());
  const html = (reply: FastifyReply, body: string, code = 200) =>
    reply
      .code(code)
      .type('text/html; charset=utf-8')
      .send(page('Set up this box', body, { css: WIZARD_CSS }));
  const tpm = () => tpmAvailable(ctx.config.records.tpmTcti, ctx.platform.hostPath);

  return async (app) => {
    app.get('/setup', async (req, reply) => {
      if (cap.isSetUp()) return notFound(reply);
      const s = cap.session(readCookie(req));
      if (!s) return html(reply, codePage());
      return html(reply, wizardForm(ctx.config, s.token, { tpm: tpm(), keyExists: keyFileExists(recordsPaths(ctx.config).key) }));
    });

    app.post('/setup/code', async (req, reply) => {
      if (cap.isSetUp()) return notFound(reply);
      const ip = req.ip;
      const a = perIp.take(ip);
      const b = a.ok ? overall.take('all') : a;
      if (!a.ok || !b.ok) {
        if (a.ok) perIp.refund(ip);
        const slot = !a.ok ? a : b;
        if (!slot.ok && slot.firstRefusal) log.warn('set-up code attempts rate limited', { ip, scope: !a.ok ? 'device' : 'all devices' });
        reply.header('retry-after', String(Math.max(1, Math.ceil((slot.ok ? 60_000 : slot.retryAfterMs) / 1000))));
        return html(reply, codePage(CODE_WORDS.limited), 429);
      }
      const r = await cap.codes.redeem(str(req, 'code').slice(0, 40));
      if (r === 'done') return notFound(reply);
      if (r !== 'ok') {
        // The typed text is never logged: it may be the right code with one typo.
        log.warn('set-up code refused', { ip, reason: r });
        return html(reply, codePage(CODE_WORDS[r]), r === 'spent' ? 409 : 401);
      }
      perIp.refund(ip);
      overall.refund('all');
      const s = cap.openSession();
      log.info('set-up code accepted: wizard opened', { ip });
      reply.header(
        'set-cookie',
        `${COOKIE}=${s.id}; Path=/setup; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(cfg.sessionMs / 1000)}${ctx.config.status.https ? '; Secure' : ''}`,
      );
      return reply.redirect('/setup', 303);
    });

    app.post('/setup', async (req, reply) => {
      if (cap.isSetUp()) return notFound(reply);
      const s = cap.session(readCookie(req));
      if (!s) return html(reply, codePage('Your set-up session has ended. Type the set-up code again (ask your ICB engineer for the new one).'), 401);
      const sent = Buffer.from(str(req, '_setup'));
      const want = Buffer.from(s.token);
      if (sent.length !== want.length || !timingSafeEqual(sent, want))
        return reply.code(403).send({ error: 'FORBIDDEN', message: 'missing or wrong set-up form token' });

      const v: WizardValues = {
        username: str(req, 'username').trim(),
        password: str(req, 'password'),
        password2: str(req, 'password2'),
        labels: Object.fromEntries(ctx.config.uplinks.map((u) => [u.name, str(req, `label_${u.name}`).trim().replace(/\s+/g, ' ')])),
        passphrase: str(req, 'passphrase'),
        passphrase2: str(req, 'passphrase2'),
        tpm: str(req, 'tpm') === 'yes',
        understood: str(req, 'understood') === 'yes',
        gpBase: str(req, 'gp_base').trim(),
        gpSsp: str(req, 'gp_ssp').trim(),
        gpFrom: str(req, 'gp_from').trim(),
        gpTo: str(req, 'gp_to').trim(),
        dayList: str(req, 'day_list').trim(),
      };
      const keyExists = keyFileExists(recordsPaths(ctx.config).key);
      const errors = checkValues(v, keyExists);
      const next = buildConfig(ctx.config, v, tpm());
      const r = validateConfig(next);
      if (!r.ok) for (const p of r.problems) errors.push({ field: fieldFor(p.path), message: `${p.path}: ${p.message}` });
      if (errors.length || !r.ok) {
        return html(reply, wizardForm(ctx.config, s.token, { tpm: tpm(), keyExists, values: v, errors }), 400);
      }

      // Everything is valid: now write, in an order that a failure part way through can be re-run.
      try {
        createUser(ctx.db, v.username, v.password, 'admin', ctx.clock.now());
      } catch (err) {
        if (isAppError(err))
          return html(
            reply,
            wizardForm(ctx.config, s.token, { tpm: tpm(), keyExists, values: v, errors: [{ field: 'username', message: describeError(err).message }] }),
            400,
          );
        throw err;
      }
      auditAccount(ctx.db, { at: ctx.clock.now(), actor: 'set-up wizard', action: 'created the first admin', target: v.username, detail: '' });
      let keyMade = false;
      if (!keyExists) {
        const paths = recordsPaths(ctx.config);
        const key = await createKey(paths.key, v.passphrase);
        // Handed over like `records unlock` does: the records capability opens the cache from here
        // (and seals it to the TPM when one is used).
        writeRuntimeKey(paths.runtimeKey, key);
        keyMade = true;
      }
      cap.finish();
      const changed = JSON.stringify(r.config) !== JSON.stringify(ctx.config);
      log.info('box set up', { admin: v.username, uplinksNamed: Object.values(v.labels).filter(Boolean).length, recordsKey: keyMade, gpConnect: !!v.gpBase });
      if (changed) {
        // After the answer: reconfigure restarts every capability, this web server included.
        ctx.clock.setTimeout(() => {
          ctx.control.reconfigure(r.config, 'file').catch((err: unknown) => log.error('could not apply the set-up config', describeError(err)));
        }, 300);
      }
      reply.header('set-cookie', `${COOKIE}=; Path=/setup; HttpOnly; SameSite=Strict; Max-Age=0`);
      return html(
        reply,
        `<h1>This box is set up</h1>
<section class="card"><p>Done. The box is now restarting its services with your settings: this takes about 10 seconds.</p>
<ol><li>Sign in as <strong>${e(v.username)}</strong> with the password you just chose.</li><li>Add your staff: Staff accounts.</li>` +
          `<li>Keep the records passphrase in the practice safe.</li></ol>
<p><a class="btn" href="/login?next=%2Fadmin%2Fusers">Sign in</a></p></section>`,
      );
    });
  };
}

function checkValues(v: WizardValues, keyExists: boolean): Array<{ field: string; message: string }> {
  const out: Array<{ field: string; message: string }> = [];
  const tryIt = (field: string, fn: () => void) => {
    try {
      fn();
    } catch (err) {
      out.push({ field, message: describeError(err).message });
    }
  };
  tryIt('username', () => validateUsername(v.username));
  tryIt('password', () => validatePassword(v.password));
  if (v.password !== v.password2) out.push({ field: 'password2', message: 'The two passwords are not the same.' });
  if (!keyExists) {
    if (v.passphrase.length < 10) out.push({ field: 'passphrase', message: 'The records passphrase must be at least 10 characters.' });
    else if (v.passphrase === v.password) out.push({ field: 'passphrase', message: 'Use a different passphrase from the admin password.' });
    if (v.passphrase !== v.passphrase2) out.push({ field: 'passphrase2', message: 'The two passphrases are not the same.' });
    if (!v.understood) out.push({ field: 'understood', message: 'Tick the box to confirm the passphrase is written down and kept safe.' });
  }
  for (const [field, url] of [
    ['gp_base', v.gpBase],
    ['gp_ssp', v.gpSsp],
    ['day_list', v.dayList],
  ] as const) {
    if (!url) continue;
    let ok = false;
    try {
      ok = new URL(url).protocol === 'https:';
    } catch {
      ok = false;
    }
    if (!ok) out.push({ field, message: `${url.slice(0, 80)} is not an https:// address.` });
  }
  if (v.gpBase && (!v.gpFrom || !v.gpTo))
    out.push({ field: 'gp_from', message: 'With a GP Connect address, both ASIDs are needed (from the GP Connect onboarding letter).' });
  if (v.gpBase && !v.dayList)
    out.push({ field: 'day_list', message: 'With GP Connect, give the day list address too (GP Connect has no "today\'s appointments" call).' });
  return out;
}

/** The candidate config: the one in force, plus what the wizard sets. Validated by validateConfig. */
function buildConfig(current: Config, v: WizardValues, tpm: boolean): Record<string, unknown> {
  const next = structuredClone(current) as unknown as Record<string, unknown> & {
    uplinks: Array<Record<string, unknown>>;
    records: Record<string, unknown> & { gpconnect: Record<string, unknown>; dayList: Record<string, unknown> };
  };
  for (const u of next.uplinks) {
    const label = v.labels[u.name as string];
    if (label) u.label = label;
    else delete u.label;
  }
  if (tpm) next.records.tpm = v.tpm ? 'auto' : 'off';
  if (v.gpBase) {
    next.records.enabled = true;
    Object.assign(next.records.gpconnect, { baseUrl: v.gpBase, sspUrl: v.gpSsp, fromAsid: v.gpFrom, toAsid: v.gpTo });
    Object.assign(next.records.dayList, { source: 'fhir', fhirBaseUrl: v.dayList });
  }
  return next;
}

/** /uplinks/1/label -> label_<name> is resolved by the form; everything else maps to its section. */
function fieldFor(path: string): string {
  if (path.startsWith('/uplinks/')) return 'labels';
  if (path.startsWith('/records/gpconnect')) return 'gp_base';
  if (path.startsWith('/records/dayList')) return 'day_list';
  return 'general';
}

const WIZARD_CSS = `fieldset{border:1px solid #d0d4da;border-radius:8px;padding:8px 16px 12px;margin:0 0 14px;background:#fff;min-width:0}
legend{font-weight:700;font-size:1.1rem;padding:0 6px}input:not([type=checkbox]){width:100%}
.rules{background:#fff5d6;border:1px solid #a87600;border-radius:6px;padding:8px 12px}.rules li{margin:.2em 0}
.err{color:#a4161a;font-weight:600;margin:.2em 0}label.inline{display:flex;gap:.5em;align-items:flex-start;font-weight:400}
.btn{display:inline-block;text-decoration:none}`;
