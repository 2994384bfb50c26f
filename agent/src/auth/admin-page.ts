import { hhmm, ukDate } from '../../../common/zoned-time.js';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../core/capability.js';
import { AppError, describeError, isAppError } from '../../../common/errors.js';
import { escapeHtml as e, page } from '../web/html.js';
import { accountAudit, auditAccount, createUser, listUsers, ROLES, setDisabled, setPassword, unlockUser, type Role } from './accounts.js';
import { csrfToken, requireRole } from './plugin.js';
import { fieldOf } from '../../../common/fields.js';

/**
 * /admin/users: the practice's admins manage accounts from the LAN page, so no shell is ever
 * needed (issue 16): list, add, disable/enable, reset a password, clear a lockout. Every change is
 * written to the account audit (auth_audit, state db) and the log, never with a password.
 * requireRole('admin') checks the session's CSRF token on every POST.
 */
const ROLE_WORDS: Record<Role, string> = { admin: 'Admin (practice manager)', clinician: 'Clinician', reception: 'Reception' };
const FLASH: Record<string, string> = {
  added: 'Account added. Give the person their username and password in person.',
  disabled: 'Account disabled: it cannot sign in, and any open session has ended.',
  enabled: 'Account enabled again.',
  password: 'Password changed. The person is signed out everywhere and uses the new password.',
  unlocked: 'Lock cleared: the person can sign in again.',
};

const str = (r: FastifyRequest, k: string): string => {
  const v = fieldOf(r.body, k);
  return typeof v === 'string' ? v : '';
};
const when = (t: number | null) => (t ? `${ukDate(t)} ${hhmm(t)}` : 'never');

const CSS = `.scroll{overflow-x:auto}.users td,.users th{vertical-align:top}.users form{display:inline-block;margin:0 6px 6px 0}
.users input[type=password]{width:12em}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:0 16px}
.flash{background:#e8f0fb;border:1px solid #0b4f9c;padding:8px 12px;border-radius:6px}
@media (max-width:640px){.users thead{display:none}.users tr{display:block;border-bottom:2px solid #d0d4da;padding:6px 0}
.users td,.users th{display:block;border:0;padding:2px 0}}`;

function render(ctx: Ctx, req: FastifyRequest, opts: { flash?: string; error?: string; form?: { username: string; role: string } } = {}): string {
  const csrf = `<input type="hidden" name="_csrf" value="${e(csrfToken(req))}">`;
  const rows = listUsers(ctx.db)
    .map((u) => {
      const state = u.disabledAt
        ? `<strong>Disabled</strong> since ${e(when(u.disabledAt))}`
        : u.lockedUntil && u.lockedUntil > ctx.clock.now()
          ? '<strong>Locked</strong> (too many wrong passwords)'
          : 'Active';
      const self = u.username === req.user?.username;
      const act = `/admin/users/${encodeURIComponent(u.username)}`;
      const toggle = self
        ? '<span class="muted">(you)</span>'
        : `<form method="post" action="${act}/${u.disabledAt ? 'enable' : 'disable'}">${csrf}` +
          `<button type="submit"${u.disabledAt ? '' : ' class="danger"'}>${u.disabledAt ? 'Enable' : 'Disable'}</button></form>`;
      const unlock =
        u.lockedUntil && u.lockedUntil > ctx.clock.now()
          ? `<form method="post" action="${act}/unlock">${csrf}<button type="submit">Clear lock</button></form>`
          : '';
      const reset =
        `<form method="post" action="${act}/password">${csrf}<label class="sr-only" for="pw-${e(u.username)}">New password ` +
        `for ${e(u.username)}</label><input id="pw-${e(u.username)}" name="password" type="password" autocomplete="new-password" minlength="10" ` +
        `maxlength="1024" required placeholder="new password"> <button type="submit">Reset password</button></form>`;
      return (
        `<tr><th scope="row">${e(u.username)}</th><td>${e(ROLE_WORDS[u.role] ?? u.role)}</td><td>${state}</td><td>${e(when(u.lastLoginAt))}</td>` +
        `<td>${toggle}${unlock}${reset}</td></tr>`
      );
    })
    .join('');
  const audit = accountAudit(ctx.db, 20)
    .map((a) => `<li>${e(when(a.at))}: ${e(a.actor)} ${e(a.action)} ${e(a.target)}${a.detail ? ` (${e(a.detail)})` : ''}</li>`)
    .join('');
  const f = opts.form ?? { username: '', role: 'reception' };
  const roleOpts = ROLES.map((r) => `<option value="${r}"${r === f.role ? ' selected' : ''}>${e(ROLE_WORDS[r])}</option>`).join('');
  return (
    `<h1>Staff accounts</h1>
${opts.flash ? `<p class="flash" role="status">${e(opts.flash)}</p>` : ''}${opts.error ? `<p class="error" role="alert">${e(opts.error)}</p>` : ''}
<section class="card"><h2>Everyone who can sign in</h2><div class="scroll"><table class="users"><thead><tr><th scope="col">Username</th>` +
    `<th scope="col">Role</th><th scope="col">State</th><th scope="col">Last sign-in</th><th scope="col">Change</th></tr></thead>` +
    `<tbody>${rows}</tbody></table></div></section>
<section class="card"><h2>Add someone</h2>` +
    `<p class="muted">Give each person their own account: the records audit trail names it. Reception sees the day list and contact details; ` +
    `clinicians also see summaries; admins manage accounts, unlock the records cache and run drills.</p>
<form method="post" action="/admin/users">${csrf}<div class="grid">
<div><label for="n-user">Username</label>` +
    `<input id="n-user" name="username" required maxlength="32" pattern="[a-z0-9][a-z0-9._\\-]{1,31}" autocomplete="off" value="${e(f.username)}">` +
    `<p class="muted">Lower case, e.g. jsmith</p></div>
<div><label for="n-role">Role</label><select id="n-role" name="role">${roleOpts}</select></div>
<div><label for="n-pw">Password</label><input id="n-pw" name="password" type="password" required minlength="10" maxlength="1024" ` +
    `autocomplete="new-password"><p class="muted">At least 10 characters</p></div>
</div><p><button class="primary" type="submit">Add account</button></p></form></section>
<section class="card"><h2>Recent account changes</h2>${audit ? `<ul>${audit}</ul>` : '<p>None yet.</p>'}</section>`
  );
}

export function adminUsersPlugin(ctx: Ctx): FastifyPluginAsync {
  const log = ctx.log.child('admin');
  const admin = { preHandler: requireRole('admin') };
  const send = (req: FastifyRequest, reply: FastifyReply, body: string, code = 200) =>
    reply
      .code(code)
      .type('text/html; charset=utf-8')
      .send(page('Staff accounts', body, { user: req.user, csrf: csrfToken(req), css: CSS + '.sr-only{position:absolute;left:-9999px}' }));
  const audit = (req: FastifyRequest, action: string, target: string, detail = '') => {
    auditAccount(ctx.db, { at: ctx.clock.now(), actor: req.user?.username ?? 'unknown', action, target, detail });
    log.info(`account ${action}`, { actor: req.user?.username, target, detail });
  };
  /** Run a change; a bad request re-renders the page with the reason (never a 500 for bad input). */
  const change = async (req: FastifyRequest, reply: FastifyReply, fn: () => string, form?: { username: string; role: string }) => {
    try {
      const flash = fn();
      return reply.redirect(`/admin/users?msg=${flash}`, 303);
    } catch (err) {
      if (isAppError(err) && ['BAD_REQUEST', 'CONFLICT', 'NOT_FOUND', 'FORBIDDEN'].includes(err.code)) {
        const code = { BAD_REQUEST: 400, CONFLICT: 409, NOT_FOUND: 404, FORBIDDEN: 403 }[err.code as 'BAD_REQUEST'];
        return send(req, reply, render(ctx, req, { error: describeError(err).message, ...(form ? { form } : {}) }), code);
      }
      throw err;
    }
  };
  const target = (req: FastifyRequest) => String((req.params as { name: string }).name);

  return async (app) => {
    app.get('/admin/users', admin, async (req, reply) => {
      const k = fieldOf(req.query, 'msg');
      const flash = typeof k === 'string' && Object.hasOwn(FLASH, k) ? FLASH[k] : undefined;
      return send(req, reply, render(ctx, req, flash ? { flash } : {}));
    });
    app.post('/admin/users', admin, async (req, reply) => {
      const username = str(req, 'username').trim();
      const role = str(req, 'role') as Role;
      return change(
        req,
        reply,
        () => {
          createUser(ctx.db, username, str(req, 'password'), role, ctx.clock.now());
          audit(req, 'added', username, `role ${role}`);
          return 'added';
        },
        { username, role },
      );
    });
    app.post('/admin/users/:name/disable', admin, async (req, reply) =>
      change(req, reply, () => {
        const name = target(req);
        if (name === req.user?.username) throw new AppError('FORBIDDEN', 'You cannot disable your own account: ask another admin.');
        const admins = listUsers(ctx.db).filter((u) => u.role === 'admin' && !u.disabledAt);
        if (admins.length === 1 && admins[0]!.username === name) throw new AppError('FORBIDDEN', 'This is the last admin: add another admin first.');
        setDisabled(ctx.db, name, true, ctx.clock.now());
        audit(req, 'disabled', name);
        return 'disabled';
      }),
    );
    app.post('/admin/users/:name/enable', admin, async (req, reply) =>
      change(req, reply, () => {
        setDisabled(ctx.db, target(req), false);
        audit(req, 'enabled', target(req));
        return 'enabled';
      }),
    );
    app.post('/admin/users/:name/unlock', admin, async (req, reply) =>
      change(req, reply, () => {
        unlockUser(ctx.db, target(req));
        audit(req, 'cleared the lock of', target(req));
        return 'unlocked';
      }),
    );
    app.post('/admin/users/:name/password', admin, async (req, reply) =>
      change(req, reply, () => {
        setPassword(ctx.db, target(req), str(req, 'password'));
        audit(req, 'reset the password of', target(req));
        return 'password';
      }),
    );
  };
}
