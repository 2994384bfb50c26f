import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { describeError } from '../../../common/errors.js';
import { userCommand } from '../cli/users.js';
import type { FleetCtx } from '../ctx.js';
import { ROLES } from '../store/account-store.js';
import { field, need } from './auth.js';
import { e, layout, stamp } from './html.js';

const PASSWORD_FIELD = '<label>New password <input name="password" type="password" autocomplete="new-password" minlength="10" required></label> ';
const REMOVE_CONFIRM = '<label><input type="checkbox" name="confirm" value="yes" required> really remove</label> ';
const ACTIONS = ['reset-password', 'set-role', 'disable', 'enable', 'unlock', 'reset-totp', 'remove'] as const;

/**
 * Account management for icb-admins (`/users`): the same rules and audit as `fleet user ...`
 * (cli/users.ts does the work for both; the audit names the signed-in admin). One card per account
 * rather than a wide table, so it reads on a phone.
 */
export function registerUserPages(app: FastifyInstance, ctx: FleetCtx): void {
  app.get('/users', { preHandler: need('icb-admin') }, async (req, reply) => {
    const u = req.fleetUser!;
    const q = req.query as { error?: string; done?: string };
    const now = ctx.clock.now();
    const csrf = `<input type="hidden" name="csrf" value="${e(u.csrf)}">`;
    const roleSelect = (cur = 'icb-viewer') =>
      `<select name="role">${ROLES.map((r) => `<option${r === cur ? ' selected' : ''}>${r}</option>`).join('')}</select>`;
    const act = (name: string, a: string, label: string, extra = '') =>
      `<form method="post" action="/users/${encodeURIComponent(name)}/${a}" class="user-act">${csrf}${extra}<button>${e(label)}</button></form>`;
    const cards = (await ctx.store.accounts.users())
      .map((x) => {
        const state = x.disabled
          ? '<span class="bad">disabled</span>'
          : x.locked_until && Number(x.locked_until) > now
            ? '<span class="warn">locked</span>'
            : '<span class="ok">active</span>';
        const roleFields = `<label>Role ${roleSelect(x.role)}</label> <label>Practice <input name="practice" size="8" value="${e(x.practice ?? '')}"></label> `;
        const resetTotp = x.totp_secret ? act(x.username, 'reset-totp', 'Reset second factor') : '';
        const toggle = x.disabled ? act(x.username, 'enable', 'Enable') : act(x.username, 'disable', 'Disable');
        return (
          `<section class="user" data-user="${e(x.username)}"><h2>${e(x.username)}</h2>` +
          `<p>${e(x.role)}${x.practice ? ` of ${e(x.practice)}` : ''} · ${state} · last ` +
          `sign-in ${e(x.last_login_at ? stamp(Number(x.last_login_at)) : 'never')} · second factor ${x.totp_secret ? 'on' : 'off'}</p>
<details><summary>Change</summary>
${act(x.username, 'set-role', 'Set role', roleFields)}
${act(x.username, 'reset-password', 'Reset password', PASSWORD_FIELD)}
${toggle} ${x.locked_until ? act(x.username, 'unlock', 'Unlock') : ''} ${resetTotp} ${act(x.username, 'remove', 'Remove account', REMOVE_CONFIRM)}
</details></section>`
        );
      })
      .join('');
    const add =
      `<section><h2>Add an account</h2><form method="post" action="/users" id="add-user">${csrf}
<p><label>User name <input name="username" required pattern="[a-z0-9][a-z0-9._-]{1,31}" maxlength="32"></label></p><p>` +
      `<label>Role ${roleSelect()}</label> <label>Practice (practice managers) <input name="practice" size="8"></label></p>
<p><label>Password <input name="password" type="password" autocomplete="new-password" minlength="10" required></label></p><button>Add account</button>` +
      `</form></section>`;
    const flash = q.error ? `<p class="flash bad" role="alert">${e(q.error)}</p>` : q.done ? `<p class="flash" role="status">${e(q.done)}</p>` : '';
    const html =
      `<h1>Accounts</h1>${flash}<p class="muted">Every change is in the audit log and ends that account's sessions. The last enabled ` +
      `icb-admin cannot be removed, disabled or demoted.</p>${cards}${add}`;
    return reply.type('text/html').send(layout('Accounts', u, html, u.csrf));
  });

  const run = async (req: FastifyRequest, reply: FastifyReply, action: string, name: string | undefined) => {
    try {
      const done = await userCommand(ctx.store, {
        action,
        name,
        role: field(req, 'role'),
        practice: field(req, 'practice') || undefined,
        password: () => field(req, 'password') ?? '',
        actor: req.fleetUser!.username,
        now: ctx.clock.now(),
      });
      return reply.redirect(`/users?done=${encodeURIComponent(done.trim())}`, 303);
    } catch (err) {
      return reply.redirect(`/users?error=${encodeURIComponent(describeError(err).message.slice(0, 500))}`, 303);
    }
  };
  app.post('/users', { preHandler: need('icb-admin') }, async (req, reply) => run(req, reply, 'add', field(req, 'username')?.trim()));
  app.post('/users/:name/:action', { preHandler: need('icb-admin') }, async (req, reply) => {
    const { name, action } = req.params as { name: string; action: string };
    if (!(ACTIONS as readonly string[]).includes(action)) return reply.code(404).type('text/plain').send('no such action');
    // Removing is the one change that cannot be undone: the form's checkbox must be ticked.
    if (action === 'remove' && field(req, 'confirm') !== 'yes')
      return reply.redirect(`/users?error=${encodeURIComponent('tick "really remove" to remove an account')}`, 303);
    return run(req, reply, action, name);
  });
}
