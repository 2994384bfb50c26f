import type { FastifyInstance } from 'fastify';
import { Claims } from '../claim/claims.js';
import type { FleetCtx } from '../ctx.js';
import { field, need } from './auth.js';
import { ago, e, layout, stamp } from './html.js';

/**
 * "Waiting to be claimed" (icb-admin): type the code from the box's page or label (or scan its QR,
 * which opens /claim?code=...), pick the practice, and the fleet signs the box's CSR. No scripts,
 * CSRF token as every dashboard form.
 */
export function registerClaimPages(app: FastifyInstance, ctx: FleetCtx): void {
  if (!ctx.config.claim.enabled) return;
  const claims = new Claims(ctx);

  const page = async (
    u: NonNullable<import('fastify').FastifyRequest['fleetUser']>,
    o: { code?: string; ods?: string; name?: string; id?: string; done?: string; error?: string },
  ) => {
    const now = ctx.clock.now();
    const [waiting, claimed] = await Promise.all([claims.waiting(), claims.store.list('claimed', 20)]);
    const flash = o.done
      ? `<p class="flash" role="status" id="claim-done">${e(o.done)}</p>`
      : o.error
        ? `<p class="flash bad" role="alert" id="claim-error">${e(o.error)}</p>`
        : '';
    const rows = waiting
      .map(
        (r) =>
          `<tr data-fingerprint="${e(r.fingerprint)}"><td><code>${e(r.fingerprint)}</code></td><td>${e(ago(now, r.created_at))} ago</td>` +
          `<td>${e(r.address)}</td><td>${e(stamp(r.expires_at))}</td></tr>`,
      )
      .join('');
    const done = claimed
      .map(
        (r) =>
          `<tr data-claimed="${e(r.device_id)}"><td><a href="/devices/${encodeURIComponent(r.device_id ?? '')}">${e(r.device_id)}</a></td>` +
          `<td>${e(r.ods_code)} ${e(r.practice_name ?? '')}</td><td>${e(stamp(r.claimed_at))} by ${e(r.claimed_by)}</td>` +
          `<td>${r.delivered_at ? 'collected by the box' : '<span class="warn">box not collected yet</span>'}</td></tr>`,
      )
      .join('');
    const body =
      `<h1>Claim a box</h1>${flash}
<section><h2>Claim</h2><p>Type the claim code shown on the box's status page or printed on its label, and the practice it is for.</p>
<form method="post" action="/claim" id="claim-form"><input type="hidden" name="csrf" value="${e(u.csrf)}">
<p><label>Claim code <input name="code" value="${e(o.code ?? '')}" required autocomplete="off" autocapitalize="characters" spellcheck="false" ` +
      `placeholder="7KQ4-M2XD" size="11" maxlength="20"></label></p>
<p><label>Practice ODS code <input name="ods" value="${e(o.ods ?? '')}" required autocapitalize="characters" placeholder="P81001" size="10" ` +
      `maxlength="10"></label></p>
<p><label>Practice name <input name="practiceName" value="${e(o.name ?? '')}" placeholder="High Street Surgery" maxlength="120"></label></p>
<p><label>Device id <input name="deviceId" value="${e(o.id ?? '')}" placeholder="next free, e.g. P81001-01" size="16" maxlength="64">` +
      `</label> <span class="muted">leave empty for the practice's next number</span></p>
<button>Claim</button></form></section>
<section><h2>Waiting to be claimed</h2><p class="muted">Each box also shows its key fingerprint on its status page: after claiming, check the one you ` +
      `installed is gone from this list.</p>
<div style="overflow-x:auto"><table id="waiting"><thead><tr><th>Key fingerprint</th><th>Waiting</th><th>From</th><th>Code expires</th></tr></thead>` +
      `<tbody>${rows || '<tr><td colspan="4">No box is waiting.</td></tr>'}</tbody></table></div></section>
<section><h2>Recently claimed</h2><div style="overflow-x:auto"><table id="claimed"><thead><tr><th>Device</th><th>Practice</th><th>Claimed</th>` +
      `<th>Box</th></tr></thead><tbody>${done || '<tr><td colspan="4">None yet.</td></tr>'}</tbody></table></div></section>`;
    return layout('Claim a box', u, body, u.csrf);
  };

  app.get('/claim', { preHandler: need('icb-admin') }, async (req, reply) => {
    const q = req.query as { code?: string; done?: string };
    return reply.type('text/html').send(await page(req.fleetUser!, { code: q.code?.slice(0, 20), done: q.done?.slice(0, 300) }));
  });

  app.post('/claim', { preHandler: need('icb-admin') }, async (req, reply) => {
    const input = {
      code: field(req, 'code') ?? '',
      ods: field(req, 'ods') ?? '',
      practiceName: field(req, 'practiceName') ?? '',
      deviceId: field(req, 'deviceId') ?? '',
    };
    const out = await claims.claim({ ...input, username: req.fleetUser!.username, address: req.ip });
    if (out.ok) {
      const done = `Claimed: box ${out.fingerprint} is now ${out.deviceId}. It collects its certificate within a minute and then appears online.`;
      return reply.redirect(`/claim?done=${encodeURIComponent(done)}`, 303);
    }
    // The form comes back with what was typed and the reason, so the engineer can correct it.
    return reply
      .code(out.status)
      .type('text/html')
      .send(await page(req.fleetUser!, { code: input.code, ods: input.ods, name: input.practiceName, id: input.deviceId, error: out.reason }));
  });
}
