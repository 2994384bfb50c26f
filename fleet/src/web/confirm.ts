import type { FastifyReply, FastifyRequest } from 'fastify';
import { practiceLabel } from '../alerts/alerts.js';
import type { DeviceRow } from '../store/types.js';
import { field } from './auth.js';
import { e, layout } from './html.js';
import { fieldsOf } from '../../../common/fields.js';

type Target = Pick<DeviceRow, 'id' | 'practice' | 'practice_name'> | { practice: string; count: number };

/**
 * What each disruptive command does, in words, for the confirmation step. A click on "Run drill" or
 * "Force uplink" on a phone must not move a surgery's traffic by accident, so these go through a
 * page that says what will happen and needs a second, deliberate press (no script: it works and is
 * tested the same everywhere). Ping is harmless and is sent at once.
 */
const WHAT: Record<string, (t: Target, req: FastifyRequest) => string> = {
  drill: (t) => `Run a failover drill on ${name(t)}? The box tests its backup paths (4G, survivable telephony, the records cache); calls and
    clinical system sessions at the practice may pause for a few seconds while it does.`,
  'force-uplink': (t, req) => {
    const up = field(req, 'uplink');
    return up
      ? `Force ${name(t)} onto uplink "${e(up)}" for ${e(field(req, 'minutes') ?? '60')} minutes? Automatic failover is off meanwhile: if that uplink fails,
    the practice is cut off until the time runs out.${up === '4g' ? ' Traffic on 4G counts against the data allowance.' : ''}`
      : `Return ${name(t)} to automatic uplink choice? If a forced uplink is in place it ends now, and traffic may move at once.`;
  },
  'set-config': (t) => `Send the desired config to ${name(t)}? The box applies it at once; services it changes restart.`,
  'backup-now': (t, req) =>
    field(req, 'force') === 'yes'
      ? `Back up ${name(t)} off-box now, <b>over 4G if that is the link it is on</b>? The box held it back because it is not on its primary link
    and no capture is waiting. The backup counts against the practice's 4G data allowance; the nightly backup on the primary link would not.`
      : `Back up ${name(t)} off-box now? The box sends an encrypted backup to the practice's backup target at once, on its primary link.
    If it is on 4G with nothing waiting to be sent, it says so and does nothing; you can then choose to force it.`,
  reload: (t) => `Re-send the stored desired config to ${name(t)}? The box applies it again; services it changes restart.`,
  'practice-reload': (t) => `Re-send the stored desired config to every box of practice ${e(t.practice)}${'count' in t ? ` (${t.count} device(s))` : ''}?
    Each applies it at once; services it changes restart.`,
};

/** The confirming button's words, where the command's name does not read as a verb. */
const YES: Record<string, string> = { 'practice-reload': 'reload the practice', 'backup-now': 'back up now' };

function name(t: Target): string {
  return 'id' in t ? `<b>${e(t.id)}</b> at ${e(practiceLabel(t))}` : `practice ${e(t.practice)}`;
}

/** True when `what` is disruptive and the request has not been confirmed yet. */
export function needsConfirm(req: FastifyRequest, what: string): boolean {
  return what in WHAT && field(req, 'confirm') !== 'yes';
}

/** The confirmation page: the same POST again (same fields, same CSRF token) with confirm=yes, or cancel. */
export function confirmPage(req: FastifyRequest, reply: FastifyReply, t: Target, what: string): FastifyReply {
  const body = fieldsOf(req.body);
  const keep = Object.entries(body)
    .filter(([k, v]) => typeof v === 'string' && k !== 'csrf' && k !== 'confirm' && /^[a-z]{1,20}$/.test(k))
    .map(([k, v]) => `<input type="hidden" name="${e(k)}" value="${e(v)}">`)
    .join('');
  const cancel = 'id' in t ? `/devices/${encodeURIComponent(t.id)}` : '/';
  const question = WHAT[what]!(t, req).replace(/\s+/g, ' ');
  const html = `<h1>Are you sure?</h1><section class="confirm" id="confirm" role="alertdialog" aria-labelledby="confirm-q"><p id="confirm-q">${question}</p>
<form method="post" action="${e(req.url)}"><input type="hidden" name="csrf" value="${e(req.fleetUser!.csrf)}">${keep}
<input type="hidden" name="confirm" value="yes">
<button>Yes, ${e(YES[what] ?? what.replace('-', ' '))}</button> <a href="${e(cancel)}">No, go back</a></form>
</section>`;
  return reply.type('text/html').send(layout('Confirm', req.fleetUser, html, req.fleetUser!.csrf));
}
