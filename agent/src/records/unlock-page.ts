import type { FastifyPluginAsync } from 'fastify';
import { csrfToken, requireRole } from '../auth/index.js';
import type { Clock } from '../../../common/clock.js';
import { describeError, isAppError } from '../../../common/errors.js';
import { escapeHtml as e, page } from '../web/html.js';
import { fieldOf } from '../../../common/fields.js';

/**
 * GET/POST /records/key: an admin enters the records passphrase after a reboot (the "status page"
 * unlock path of the key policy; see docs/threat-model.md). Admin only, CSRF-protected by
 * requireRole. After 5 wrong passphrases further attempts wait 30 s, on top of scrypt's cost.
 */
export interface UnlockTarget {
  unlock(passphrase: string): Promise<void>;
  provision(passphrase: string): Promise<void>;
  isLocked(): boolean;
  isProvisioned(): boolean;
}

export function unlockPagePlugin(target: UnlockTarget, clock: Clock): FastifyPluginAsync {
  let failures = 0;
  let blockedUntil = 0;
  const LOCKED_TEXT = 'The records cache is locked since the appliance started. Enter the records passphrase to unlock it.';
  const NO_KEY_TEXT = 'No records key yet. Choose a passphrase (at least 10 characters) to create one; keep it safe: it is needed after every reboot.';
  const form = (csrf: string, provisioned: boolean, message = '') => `
    <h1>Records cache</h1>
    ${message}
    <p>${provisioned ? LOCKED_TEXT : NO_KEY_TEXT}</p>
    <form method="post" action="/records/key">
      <input type="hidden" name="_csrf" value="${e(csrf)}">
      <label>Passphrase <input type="password" name="passphrase" autocomplete="off" required minlength="10"></label>
      <button type="submit">${provisioned ? 'Unlock' : 'Create key'}</button>
    </form>`;

  return async (app) => {
    const admin = { preHandler: requireRole('admin') };
    app.get('/records/key', admin, async (req, reply) => {
      const body = target.isLocked()
        ? form(csrfToken(req), target.isProvisioned())
        : '<h1>Records cache</h1><p>The records cache is unlocked.</p><p><a href="/records/day">Day list</a></p>';
      return reply.type('text/html').send(page('Records key', body, { user: req.user, csrf: csrfToken(req) }));
    });
    app.post('/records/key', admin, async (req, reply) => {
      const passphrase = String(fieldOf(req.body, 'passphrase') ?? '');
      const send = (status: number, msg: string) =>
        reply
          .code(status)
          .type('text/html')
          .send(
            page('Records key', form(csrfToken(req), target.isProvisioned(), `<p class="warn" role="alert">${e(msg)}</p>`), {
              user: req.user,
              csrf: csrfToken(req),
            }),
          );
      if (!target.isLocked()) return reply.redirect('/records/day', 303);
      if (clock.now() < blockedUntil) return send(429, 'Too many wrong passphrases; wait 30 seconds and try again.');
      try {
        if (target.isProvisioned()) await target.unlock(passphrase);
        else await target.provision(passphrase);
        failures = 0;
        return reply.redirect('/records/day', 303);
      } catch (err) {
        if (isAppError(err, 'UNAUTHORIZED')) {
          if (++failures >= 5) ((blockedUntil = clock.now() + 30_000), (failures = 0));
          return send(401, 'Wrong passphrase.');
        }
        if (isAppError(err, 'BAD_REQUEST')) return send(400, describeError(err).message);
        throw err;
      }
    });
  };
}
