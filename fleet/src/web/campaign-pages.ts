import type { FastifyInstance } from 'fastify';
import { describeError } from '../../../common/errors.js';
import { inHours, parseHours } from '../campaigns/hours.js';
import { ARCHES, planCampaign } from '../campaigns/plan.js';
import { holdReason, isPaused, stepGroup, stepWords } from '../campaigns/words.js';
import type { FleetCtx } from '../ctx.js';
import type { CampaignRow } from '../store/campaign-store.js';
import { field, need } from './auth.js';
import { e, layout, local, queryOf, TZ } from './html.js';
import { registerLive } from './live.js';

const PHASE: Record<string, [string, string]> = {
  draft: ['draft: not started', 'muted'],
  canary: ['canaries first', 'warn'],
  all: ['updating the rest', 'warn'],
  done: ['done', 'ok'],
  stopped: ['stopped by the stop rules', 'bad'],
  aborted: ['aborted', 'bad'],
};
const GROUP_CLASS: Record<string, string> = { healthy: 'ok', failed: 'bad', waiting: 'warn', 'in progress': 'warn', queued: 'muted', skipped: 'muted' };
const WRAP = 'style="overflow-wrap:anywhere"';
const INPUT = 'style="max-width:100%;box-sizing:border-box"';

function phaseText(c: CampaignRow): string {
  const [words, cls] = PHASE[c.phase] ?? [c.phase, ''];
  const paused = isPaused(c) ? ' <span class="warn" data-paused="yes">(paused)</span>' : '';
  return `<span class="${cls}" data-phase="${e(c.phase)}">${e(words)}</span>${paused}`;
}

const HHMM = new Intl.DateTimeFormat('en-GB', { timeZone: TZ, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
const DAY = new Intl.DateTimeFormat('en-GB', { timeZone: TZ, weekday: 'short', day: 'numeric', month: 'short' });

/** "14:02", or "14:02 on Fri 4 Dec" when not today (UK days), in a <time> carrying the instant. */
function ukTime(t: number, now: number): string {
  const day = DAY.format(t) === DAY.format(now) ? '' : ` on ${DAY.format(t)}`;
  return `<time datetime="${new Date(t).toISOString()}">${e(HHMM.format(t))}${e(day)}</time>`;
}

/** The paused line (empty when not paused): a live fragment, so everyone with the page open sees a pause. */
function pausedText(c: CampaignRow, now: number): string {
  if (!isPaused(c)) return '';
  return (
    `<p class="flash" role="status" data-paused-by="${e(c.paused_by)}"><b class="warn">Paused</b> by ${e(c.paused_by)} at ` +
    `${ukTime(c.paused_at!, now)} (UK time): no new boxes are sent the update; boxes already updating carry on.</p>`
  );
}
function practicesText(c: CampaignRow): string {
  const p = JSON.parse(c.practices) as string[];
  return p.length ? p.map((x) => e(x)).join(', ') : 'all practices';
}

const clock = (m: number) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;

/** The update hours in words, and whether boxes go now (that part changes with the time, so it is a live fragment). */
function hoursText(c: CampaignRow, now: number): string {
  if (!c.hours) return 'any time: a box restarts a few seconds after its download, whatever the time of day';
  const w = parseHours(c.hours);
  if (!w) return `${e(c.hours)}: not understood, so no box is sent the update`;
  if (!['draft', 'canary', 'all'].includes(c.phase)) return `${e(c.hours)} UK time`;
  return inHours(c.hours, now)
    ? `${e(c.hours)} UK time; <span class="ok" data-hours="inside">now inside: boxes are sent the update until ${clock(w.end)}</span>`
    : `${e(c.hours)} UK time; <span class="warn" data-hours="outside">now outside: boxes wait until ${clock(w.start)}</span>`;
}

/** The changing parts of a campaign's page (also sent live): the summary's progress line and message, and the per-box table body. */
async function fragments(ctx: FleetCtx, c: CampaignRow): Promise<Record<string, string>> {
  const steps = await ctx.store.campaigns.steps(c.id);
  const devices = await ctx.store.devices.getMany(steps.map((s) => s.device_id));
  const now = ctx.clock.now();
  const groups: Record<string, number> = {};
  const rows = steps.map((s) => {
    const d = devices.get(s.device_id);
    const hold = s.state === 'pending' ? holdReason(c, d, now, ctx.config.campaigns.uplinkFreshMs) : null;
    const g = stepGroup(s, hold);
    groups[g] = (groups[g] ?? 0) + 1;
    const when = s.settled_at ?? s.sent_at ?? s.claimed_at;
    const practice = `${e(d?.practice ?? '')}${d?.practice_name ? ` ${e(d.practice_name)}` : ''}`;
    const status = `<td class="status ${GROUP_CLASS[g] ?? ''}" ${WRAP}>${e(stepWords(c, s, hold))}</td>`;
    return (
      `<tr data-step="${e(s.device_id)}" data-state="${e(s.state)}" data-group="${e(g)}">` +
      `<td><a href="/devices/${encodeURIComponent(s.device_id)}">${e(s.device_id)}</a></td><td>${practice}</td>` +
      `<td>${s.canary ? '<b>canary</b>' : 'second'}</td><td>${e(s.from_version ?? 'unknown')}</td>${status}<td>${when ? local(when) : '-'}</td></tr>`
    );
  });
  const order = ['healthy', 'in progress', 'queued', 'waiting', 'failed', 'skipped'];
  const progress = `${steps.length} box(es): ${order.map((g) => `<span data-count="${g}">${groups[g] ?? 0} ${g}</span>`).join(', ')}`;
  return {
    'campaign-phase': phaseText(c),
    'campaign-paused': pausedText(c, now),
    'campaign-progress': progress,
    'campaign-hours': hoursText(c, now),
    'campaign-message': e(c.message ?? ''),
    'campaign-steps': rows.join('') || '<tr><td colspan="6">No boxes.</td></tr>',
  };
}

/** The form's two type=time inputs as "HH:MM-HH:MM" (null when both are empty; one alone is refused by inputProblems). */
function hoursField(from: string | undefined, to: string | undefined): string | null {
  const t = (x: string | undefined) => (x ?? '').trim().replace(/^(\d\d:\d\d):\d\d(\.\d+)?$/, '$1');
  return t(from) || t(to) ? `${t(from)}-${t(to)}` : null;
}

/**
 * Software update campaigns (nav "Updates"): plan (a draft, nothing sent), review, a confirmed
 * start, live progress per box, pause and resume, a confirmed abort. icb-admin changes; icb-viewer reads.
 */
export function registerCampaignPages(app: FastifyInstance, ctx: FleetCtx): void {
  const audit = (user: string, action: string, id: number, outcome: string, detail: string | null = null) =>
    ctx.store.accounts.audit({ at: ctx.clock.now(), username: user, device_id: null, action, args: JSON.stringify({ campaign: id }), outcome, detail });

  app.get('/campaigns', { preHandler: need('icb-admin', 'icb-viewer') }, async (req, reply) => {
    const u = req.fleetUser!;
    const q = queryOf(req);
    const list = await ctx.store.campaigns.list(100);
    const counts = await ctx.store.campaigns.counts(list.map((c) => c.id));
    const rows = list
      .map((c) => {
        const n = counts.get(c.id) ?? {};
        const total = Object.values(n).reduce((a, b) => a + b, 0);
        const failed = (n.failed ?? 0) + (n['rolled-back'] ?? 0);
        return (
          `<tr data-campaign="${c.id}"><td><a href="/campaigns/${c.id}">#${c.id}</a></td><td>${e(c.version)} (${e(c.arch)})</td>` +
          `<td ${WRAP}>${practicesText(c)}</td><td>${total}</td><td>${n.healthy ?? 0} healthy, ${failed} failed</td><td class="phase">${phaseText(c)}</td>` +
          `<td>${local(c.created_at)} by ${e(c.created_by)}</td></tr>`
        );
      })
      .join('');
    const form =
      u.role === 'icb-admin'
        ? `<section class="noprint"><h2>Plan an update</h2><form method="post" action="/campaigns" id="new-campaign">` +
          `<input type="hidden" name="csrf" value="${e(u.csrf)}">
<p><label>Bundle URL<br><input name="url" size="60" required ${INPUT} placeholder="https://updates.icb.example/surgery-edge-0.2.0-amd64.seb"></label></p>
<p><label>Version <input name="version" size="10" required placeholder="0.2.0"></label>
<label>Processor <select name="arch">${ARCHES.map((a) => `<option>${a}</option>`).join('')}</select></label></p>
<p><label>Practices (ODS codes, space or comma separated; empty: all)<br><textarea name="practices" rows="2" cols="40" ${INPUT}></textarea></label></p>
<p><label>Canaries (%) <input name="canary" size="4" value="${ctx.config.rollouts.canaryPct}"></label>
<label>Soak (minutes) <input name="soak" size="4" value="${ctx.config.campaigns.soakMin}"></label></p>
<p><label>Only send between <input type="time" name="hours_from"></label> <label>and <input type="time" name="hours_to"></label>
(UK time; leave empty for any time)<br><span class="muted">A box restarts into the new version a few seconds after its download, which drops
the surgery's phone calls and network for about a minute. Between 19:00 and 07:00: overnight only. Boxes already sent carry on.</span></p>
<p><label><input type="checkbox" name="cellular" value="yes"> Allow downloads over 4G</label><br><span class="muted">Off: a box on 4G (or a backup
link) waits until it is back on its primary link. The bundle is a whole system image (about 240 MB) and 4G data counts against the
practice's allowance.</span></p>
<p><button>Plan campaign</button></p></form>
<p class="muted">Planning sends nothing: it lists the boxes, leaves out those already on that version, and picks the canaries. You review the
plan and then start it.</p></section>`
        : '';
    const flash = q.error ? `<p class="flash bad" role="alert" ${WRAP}>${e(q.error)}</p>` : '';
    const html =
      `<h1>Software updates</h1>${flash}${form}<h2>Campaigns</h2><table id="campaigns"><thead><tr><th>Id</th><th>Version</th><th>Practices</th>` +
      `<th>Boxes</th><th>Result</th><th>Phase</th><th>Created</th></tr></thead>` +
      `<tbody>${rows || '<tr><td colspan="7">No campaigns yet.</td></tr>'}</tbody></table>`;
    return reply.type('text/html').send(layout('Software updates', u, html, u.csrf));
  });

  app.post('/campaigns', { preHandler: need('icb-admin') }, async (req, reply) => {
    const fail = (msg: string) => reply.redirect(`/campaigns?error=${encodeURIComponent(msg.slice(0, 1500))}`, 303);
    try {
      const p = await planCampaign(ctx, req.fleetUser!.username, {
        url: (field(req, 'url') ?? '').trim(),
        version: (field(req, 'version') ?? '').trim(),
        arch: field(req, 'arch') ?? '',
        practices: [
          ...new Set(
            (field(req, 'practices') ?? '')
              .toUpperCase()
              .split(/[\s,;]+/)
              .filter(Boolean),
          ),
        ],
        canaryPct: Number(field(req, 'canary') || ctx.config.rollouts.canaryPct),
        soakMin: Number(field(req, 'soak') || ctx.config.campaigns.soakMin),
        allowCellular: field(req, 'cellular') === 'yes',
        hours: hoursField(field(req, 'hours_from'), field(req, 'hours_to')),
      });
      return reply.redirect(`/campaigns/${p.id}`, 303);
    } catch (err) {
      return fail(describeError(err).message);
    }
  });

  app.get('/campaigns/:id', { preHandler: need('icb-admin', 'icb-viewer') }, async (req, reply) => {
    const u = req.fleetUser!;
    const q = queryOf(req);
    const c = await ctx.store.campaigns.get(Number((req.params as { id: string }).id));
    if (!c)
      return reply
        .code(404)
        .type('text/html')
        .send(layout('Not found', u, '<h1>No such campaign</h1><p><a href="/campaigns">All campaigns</a></p>', u.csrf));
    const f = await fragments(ctx, c);
    const steps = await ctx.store.campaigns.steps(c.id);
    const canaries = steps.filter((s) => s.canary).map((s) => e(s.device_id));
    const csrf = `<input type="hidden" name="csrf" value="${e(u.csrf)}">`;
    const stopPct = ctx.config.rollouts.stopFailPct;
    const paused = isPaused(c);
    const soakLeft = c.soak_from === null ? null : Math.max(0, Math.ceil((c.soak_from + c.soak_ms - ctx.clock.now()) / 60_000));
    const soak =
      c.soak_from !== null
        ? `started ${local(c.soak_from)}, ${soakLeft} min left${paused && c.phase === 'canary' && !soakLeft ? ': the rest wait for the resume' : ''}`
        : `${Math.round(c.soak_ms / 60_000)} min once every canary runs the new version`;
    const cellular = c.allow_cellular
      ? '<b>allowed</b>: boxes on 4G download over 4G (counts against their data allowance)'
      : 'not allowed: a box on 4G or another backup link waits, shown as "waiting: on 4G", and goes when it is back on its primary link';
    let actions = '';
    if (u.role === 'icb-admin' && c.phase === 'draft')
      actions =
        `<section id="review" class="confirm"><h2>Review before starting</h2><p>Starting sends the <code>update</code> command for <b>${e(c.version)}</b> ` +
        `(${e(c.arch)}) to the ${canaries.length} canary box(es) first: ${canaries.join(', ')}. Each downloads the bundle, checks its signature, ` +
        `installs it into its spare slot, restarts into it and keeps it only if it passes its health check (otherwise it rolls back by itself). ` +
        `When every canary is healthy on the new version and stays so for the soak, the other ${steps.length - canaries.length} box(es) follow, at most ` +
        `${ctx.config.campaigns.maxInFlight} at a time. A canary failing, or ${stopPct} % of the rest failing, stops it automatically.` +
        `${c.hours ? ` Boxes are sent it only between ${e(c.hours.replace('-', ' and '))} UK time; outside those hours they wait.` : ''}</p>` +
        `<form method="post" action="/campaigns/${c.id}/start">${csrf}<p><label><input type="checkbox" name="confirm" value="yes" required> ` +
        `I have checked the bundle, the version and the boxes listed below</label></p><p><button>Start campaign</button></p></form>` +
        `<form method="post" action="/campaigns/${c.id}/abort">${csrf}<input type="hidden" name="confirm" value="yes">` +
        `<button>Discard draft</button></form></section>`;
    else if (u.role === 'icb-admin' && (c.phase === 'canary' || c.phase === 'all'))
      actions =
        (paused
          ? `<section id="pause"><h2>Resume</h2><p>Resuming carries on from where the campaign was: boxes not sent the update yet are ` +
            `sent it in their turn${c.phase === 'canary' && soakLeft === 0 ? ', and the soak being over, the rest follow' : ''}.</p>` +
            `<form method="post" action="/campaigns/${c.id}/resume">${csrf}<p><button>Resume campaign</button></p></form></section>`
          : `<section id="pause"><h2>Pause</h2><p>Pausing sends the update to no more boxes until you resume, for example while you look ` +
            `into a report from a practice. Boxes already downloading or installing carry on and are still followed; a failure still stops ` +
            `the campaign, and the soak runs on. Nothing is lost: Resume carries on from where it was.</p>` +
            `<form method="post" action="/campaigns/${c.id}/pause">${csrf}<p><button>Pause campaign</button></p></form></section>`) +
        `<section id="abort" class="confirm"><h2>Abort</h2><p>Aborting stops sending the update to more boxes. A box already downloading or ` +
        `installing carries on by itself: it keeps the new version if it passes its health check, or rolls back to the old one. Their outcome ` +
        `still shows below.</p><form method="post" action="/campaigns/${c.id}/abort">${csrf}<p><label><input type="checkbox" name="confirm" ` +
        `value="yes" required> Yes, stop sending this update</label></p><p><button>Abort campaign</button></p></form></section>`;
    const running = ['canary', 'all'].includes(c.phase) || steps.some((s) => s.state === 'sending' || s.state === 'sent');
    const flash = q.error ? `<p class="flash bad" role="alert">${e(q.error)}</p>` : q.done ? `<p class="flash ok" role="status">${e(q.done)}</p>` : '';
    const html =
      `<h1>Update campaign #${c.id} <span id="campaign-phase">${f['campaign-phase']}</span></h1>${flash}
<div id="campaign-paused">${f['campaign-paused']}</div>
<table id="campaign-summary"><tbody><tr><th>Bundle</th><td ${WRAP}><code>${e(c.bundle_url)}</code></td></tr>
<tr><th>Version</th><td>${e(c.version)} for ${e(c.arch)}</td></tr><tr><th>Practices</th><td ${WRAP}>${practicesText(c)}</td></tr>
<tr><th>Canaries</th><td ${WRAP}>${c.canary_pct} %: ${canaries.join(', ') || 'none'}</td></tr><tr><th>Soak</th><td>${soak}</td></tr>
<tr><th>Update hours</th><td id="campaign-hours">${f['campaign-hours']}</td></tr>
<tr><th>Download over 4G</th><td id="campaign-cellular">${cellular}</td></tr>
<tr><th>Stop rules</th><td>any canary failing; or ${stopPct} % of the rest failing (failed, rolled back, or unhealthy after updating)</td></tr>
<tr><th>Created</th><td>${local(c.created_at)} by ${e(c.created_by)}${c.started_at ? `; started ${local(c.started_at)} by ${e(c.started_by)}` : ''}` +
      `${c.ended_by ? `; aborted by ${e(c.ended_by)}` : ''}</td></tr>
<tr><th>Progress</th><td id="campaign-progress">${f['campaign-progress']}</td></tr><tr><th>Message</th><td id="campaign-message" ${WRAP}>` +
      `${f['campaign-message']}</td></tr></tbody></table>
${running ? `<p><span class="live muted" id="live" data-live="/live/campaigns/${c.id}" role="status">updates live</span></p>` : ''}${actions}
<h2>Boxes</h2><table id="steps"><thead><tr><th>Box</th><th>Practice</th><th>Wave</th><th>From</th><th>Status</th><th>Since</th></tr></thead>` +
      `<tbody id="campaign-steps">${f['campaign-steps']}</tbody></table><p><a href="/campaigns">All campaigns</a></p>`;
    return reply.type('text/html').send(layout(`Update campaign #${c.id}`, u, html, u.csrf));
  });

  registerLive(app, ctx, '/live/campaigns/:id', async (req) => {
    if (req.fleetUser?.role === 'practice-manager') return {};
    const c = await ctx.store.campaigns.get(Number((req.params as { id: string }).id));
    return c ? fragments(ctx, c) : {};
  });

  app.post('/campaigns/:id/:action', { preHandler: need('icb-admin') }, async (req, reply) => {
    const { id: raw, action } = req.params as { id: string; action: string };
    const id = Number(raw);
    const user = req.fleetUser!.username;
    const c = await ctx.store.campaigns.get(id);
    if (!c || !['start', 'abort', 'pause', 'resume'].includes(action)) return reply.code(404).type('text/plain').send('no such campaign or action');
    const back = (k: 'done' | 'error', msg: string) => reply.redirect(`/campaigns/${id}?${k}=${encodeURIComponent(msg)}`, 303);
    if (action === 'pause' || action === 'resume') {
      // No typed confirmation: a pause sends nothing and is undone by a resume. A POST with the CSRF token as every change.
      const now = ctx.clock.now();
      const changed = action === 'pause' ? await ctx.store.campaigns.pause(id, user, now) : await ctx.store.campaigns.resume(id, user, now);
      await audit(user, `campaign-${action}`, id, changed ? 'ok' : 'no-op', `${c.version} (${c.arch}) ${c.bundle_url}`.slice(0, 1000));
      if (!changed) {
        const is = !['canary', 'all'].includes(c.phase) ? c.phase : isPaused(c) ? 'already paused' : 'not paused';
        return back('error', `Nothing done: the campaign is ${is} (someone else may have changed it).`);
      }
      if (action === 'pause') return back('done', 'Paused: no new boxes are sent the update until you resume; boxes already updating carry on.');
      void ctx.campaigns?.tick();
      return back('done', 'Resumed: boxes not sent the update yet are sent it in their turn.');
    }
    if (field(req, 'confirm') !== 'yes') return back('error', `Not ${action === 'start' ? 'started' : 'aborted'}: tick the box to confirm first.`);
    const now = ctx.clock.now();
    let changed: boolean;
    if (action === 'start') changed = await ctx.store.campaigns.setPhase(id, ['draft'], 'canary', `started by ${user}: sending to the canaries`, now, user);
    else changed = await ctx.store.campaigns.setPhase(id, ['draft', 'canary', 'all'], 'aborted', `aborted by ${user}`, now, user);
    await audit(user, `campaign-${action}`, id, changed ? 'ok' : 'no-op', `${c.version} (${c.arch}) ${c.bundle_url}`.slice(0, 1000));
    if (!changed) return back('error', `Nothing done: the campaign is ${c.phase} (someone else may have changed it).`);
    if (action === 'start') void ctx.campaigns?.tick();
    return back('done', action === 'start' ? 'Started: the canaries are being sent the update.' : 'Aborted: no more boxes will be sent the update.');
  });
}
