import type { FastifyInstance, FastifyRequest } from 'fastify';
import { redactForDisplay, type Doc } from '../config-templates/merge.js';
import { Resolver } from '../config-templates/resolve.js';
import {
  devicesInScope,
  previewTemplate,
  restoreTemplate,
  saveTemplate,
  versionDiff,
  type PreviewOutcome,
  type TemplateProblem,
} from '../config-templates/templates.js';
import type { FleetCtx } from '../ctx.js';
import { SCOPES, type Scope } from '../store/config-store.js';
import { field, need } from './auth.js';
import { e, layout, stamp } from './html.js';

const SCOPE_LABEL: Record<Scope, string> = { icb: 'ICB base', pcn: 'PCN', practice: 'Practice' };
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const PREVIEW_CHOICES = 500;

/** Who may change a template: ICB admins any; a practice manager only their own practice's. */
function mayEdit(req: FastifyRequest, scope: Scope, id: string): boolean {
  const u = req.fleetUser!;
  return u.role === 'icb-admin' || (u.role === 'practice-manager' && scope === 'practice' && id === u.practice);
}
function mayView(req: FastifyRequest, scope: Scope, id: string): boolean {
  const u = req.fleetUser!;
  return u.role !== 'practice-manager' || (scope === 'practice' && id === u.practice);
}

function parseScope(q: { scope?: string; id?: string }): { scope: Scope; id: string } | undefined {
  const scope = SCOPES.find((s) => s === q.scope);
  if (!scope) return undefined;
  const id = scope === 'icb' ? '' : (q.id ?? '').trim();
  if (scope !== 'icb' && !ID.test(id)) return undefined;
  return { scope, id };
}

const LISTED_DEVICES = 30;
const deviceList = (ids: string[] | undefined) =>
  ids?.length
    ? ` <details class="affected"><summary>Devices</summary>${ids
        .slice(0, LISTED_DEVICES)
        .map((d) => `<a href="/devices/${encodeURIComponent(d)}">${e(d)}</a>`)
        .join(', ')}${ids.length > LISTED_DEVICES ? ` and ${ids.length - LISTED_DEVICES} more` : ''}</details>`
    : '';

/** Each problem once, with the devices it affects (a list that folds away: it may be hundreds long). */
export const problemList = (problems: { path: string; message: string; devices?: string[] }[]) =>
  `<div class="flash bad" role="alert" id="problems"><p>Refused: nothing was saved or published.</p>` +
  `<ul>${problems.map((p) => `<li data-path="${e(p.path)}"><code>${e(p.path)}</code> ${e(p.message)}${deviceList(p.devices)}</li>`).join('')}</ul></div>`;

/** Templates (ICB base -> PCN -> practice), the practice -> PCN map, the template editor. */
export function registerConfigPages(app: FastifyInstance, ctx: FleetCtx): void {
  app.get('/config', { preHandler: need() }, async (req, reply) => {
    const u = req.fleetUser!;
    const all = (await ctx.store.config.templates()).filter((t) => mayView(req, t.scope, t.scope_id));
    const csrf = `<input type="hidden" name="csrf" value="${e(u.csrf)}">`;
    const rows = all
      .map(
        (t) =>
          `<tr data-template="${e(`${t.scope}:${t.scope_id}`)}"><td>${e(SCOPE_LABEL[t.scope])}</td><td>${e(t.scope_id || '(all devices)')}</td>` +
          `<td>v${t.version}</td><td>${e(stamp(t.updated_at))} by ${e(t.updated_by)}</td>
<td><a href="/config/template?${new URLSearchParams({ scope: t.scope, id: t.scope_id })}">${mayEdit(req, t.scope, t.scope_id) ? 'Edit' : 'View'}</a></td></tr>`,
      )
      .join('');
    const pcns = u.role === 'practice-manager' ? [] : await ctx.store.config.pcnMap();
    const scopeOptions = (u.role === 'practice-manager' ? ['practice'] : SCOPES)
      .map((s) => `<option value="${s}">${SCOPE_LABEL[s as Scope]}</option>`)
      .join('');
    const newForm =
      u.role === 'icb-viewer'
        ? ''
        : `<form method="get" action="/config/template" class="noprint" id="new-template">` +
          `<label>Scope <select name="scope">${scopeOptions}</select></label>
 <label>PCN or ODS code <input name="id" size="12" value="${e(u.role === 'practice-manager' ? (u.practice ?? '') : '')}"></label> <button>Open</button></form>`;
    const pcnRows =
      pcns
        .map(
          (m) =>
            `<tr data-practice="${e(m.practice)}"><td>${e(m.practice)}</td><td>${e(m.pcn)}</td>` +
            `<td>${e(stamp(m.updated_at))} by ${e(m.updated_by)}</td></tr>`,
        )
        .join('') || '<tr><td colspan="3">No mappings.</td></tr>';
    const pcnForm =
      u.role === 'icb-admin'
        ? `<form method="post" action="/config/pcn" class="noprint">${csrf}<label>Practice ODS <input name="practice" size="8" required></label> ` +
          '<label>PCN <input name="pcn" size="12" placeholder="empty: remove"></label> <button>Save mapping</button></form>'
        : '';
    const pcnSection =
      u.role === 'practice-manager'
        ? ''
        : `<section id="pcn-map"><h2>Practice to PCN</h2>` +
          `<p class="muted">Which PCN's template a practice's devices take (overrides the fleet config's inventory).</p>
<table><thead><tr><th>Practice</th><th>PCN</th><th>Changed</th></tr></thead>` +
          `<tbody>${pcnRows}</tbody></table>
${pcnForm}</section>`;
    const q = req.query as { done?: string; error?: string };
    const flash = q.done ? `<p class="flash" role="status">${e(q.done)}</p>` : q.error ? `<p class="flash bad" role="alert">${e(q.error)}</p>` : '';
    const html =
      `<h1>Desired config</h1>${flash}<p>Each device's desired config is the ICB base, overlaid by its PCN's template, overlaid by its ` +
      `practice's: objects merge key by key, arrays and values replace, <code>null</code> removes an inherited key (the agent's default applies). The ` +
      `fleet sets <code>site.deviceId</code> and <code>site.odsCode</code>. Changes reach devices through <a href="/rollouts">rollouts</a>.</p>
<table id="templates"><thead><tr><th>Scope</th><th>For</th><th>Version</th><th>Saved</th><th></th></tr></thead>` +
      `<tbody>${rows || '<tr><td colspan="5">No templates yet.</td></tr>'}</tbody></table>${newForm}${pcnSection}`;
    return reply.type('text/html').send(layout('Config', u, html, u.csrf));
  });

  const editor = async (
    req: FastifyRequest,
    scope: Scope,
    id: string,
    opts: { text?: string; problems?: TemplateProblem[]; done?: string; preview?: PreviewOutcome & { ok: true } } = {},
  ) => {
    const u = req.fleetUser!;
    const t = await ctx.store.config.template(scope, id);
    const versions = await ctx.store.config.templateVersions(scope, id, 20);
    const shown = opts.text ?? JSON.stringify(redactForDisplay(t ? (JSON.parse(t.doc) as Doc) : {}), null, 2);
    const edit = mayEdit(req, scope, id);
    const title = `${SCOPE_LABEL[scope]}${id ? ` ${id}` : ''}`;
    const reached = (await devicesInScope(ctx, await Resolver.load(ctx.store), scope, id)).slice(0, PREVIEW_CHOICES);
    const q = new URLSearchParams({ scope, id });
    const chosen = opts.preview?.device;
    const previewControls = reached.length
      ? `<p class="noprint" id="preview-controls"><label>Preview the merged result for <select name="device">${reached
          .map((d) => `<option${d.id === chosen ? ' selected' : ''}>${e(d.id)}</option>`)
          .join('')}</select></label> <button formaction="/config/template/preview?${q}">Preview (nothing is saved)</button></p>`
      : '<p class="muted">No device takes this template yet: nothing to preview.</p>';
    const pv = opts.preview;
    const previewSection = pv
      ? `<section id="preview" data-device="${e(pv.device)}"><h2>Merged result for ${e(pv.device)} (not saved)</h2>` +
        `<p>Layers: ${pv.layers.map((l) => `<code>${e(l)}</code>`).join(' → ')}. Secrets are shown as <code>"[redacted]"</code>.</p>` +
        (pv.problems.length
          ? `<ul class="bad" id="preview-problems">${pv.problems.map((p) => `<li><code>${e(p.path)}</code> ${e(p.message)}</li>`).join('')}</ul>`
          : '<p id="preview-ok">The agent would accept this.</p>') +
        `<pre id="preview-doc">${e(JSON.stringify(pv.doc, null, 2))}</pre></section>`
      : '';
    const form =
      `<form method="post" action="/config/template?${new URLSearchParams({ scope, id })}" id="template-form">` +
      `<input type="hidden" name="csrf" value="${e(u.csrf)}"><input type="hidden" name="version" value="${t?.version ?? 0}">
<p><label for="doc">Template (JSON; secrets show as <code>"[redacted]"</code>: leave that to keep the stored value)</label></p>
<textarea id="doc" name="doc" rows="24" cols="100" ` +
      `spellcheck="false"${edit ? '' : ' readonly'}>${e(shown)}</textarea>${edit ? '<p><button>Validate and save</button></p>' : ''}` +
      `${previewControls}</form>${previewSection}`;
    const admin = u.role === 'icb-admin';
    const hist = versions
      .map((v) => {
        const current = v.version === t?.version;
        const diff = current
          ? '<td>current</td>'
          : `<td><a href="/config/template/diff?${q}&from=${v.version}&to=${t?.version ?? v.version}">Diff with current</a></td>`;
        const restore =
          admin && !current
            ? `<td><form method="post" action="/config/template/restore?${q}" class="noprint restore"><input type="hidden" name="csrf" value="${e(u.csrf)}">` +
              `<input type="hidden" name="from" value="${v.version}"><input type="hidden" name="version" value="${t?.version ?? 0}">` +
              `<button>Restore v${v.version}</button></form></td>`
            : admin
              ? '<td></td>'
              : '';
        return `<tr data-version="${v.version}"><td>v${v.version}</td><td>${e(stamp(v.at))}</td><td>${e(v.by_user)}</td>${diff}${restore}</tr>`;
      })
      .join('');
    const html =
      `<h1>${e(title)} <span class="muted">${t ? `v${t.version}` : 'new'}</span>` +
      `</h1>${opts.done ? `<p class="flash" role="status">${e(opts.done)}</p>` : ''}${opts.problems?.length ? problemList(opts.problems) : ''}${form}
<section><h2>Versions</h2><table id="versions">${hist || '<tr><td>None yet.</td></tr>'}</table></section><p><a href="/config">All templates</a></p>`;
    return layout(title, u, html, u.csrf);
  };

  app.get('/config/template', { preHandler: need() }, async (req, reply) => {
    const s = parseScope(req.query as { scope?: string; id?: string });
    if (!s)
      return reply
        .code(400)
        .type('text/html')
        .send(layout('Bad request', req.fleetUser, '<h1>Unknown scope or id</h1>', req.fleetUser!.csrf));
    if (!mayView(req, s.scope, s.id)) return reply.code(403).type('text/plain').send('forbidden for your role');
    const saved = Number((req.query as { saved?: string }).saved);
    return reply
      .type('text/html')
      .send(
        await editor(req, s.scope, s.id, saved ? { done: `Saved version ${saved}: every device it reaches validated. Start a rollout to publish it.` } : {}),
      );
  });

  app.post('/config/template', { preHandler: need('icb-admin', 'practice-manager') }, async (req, reply) => {
    const s = parseScope(req.query as { scope?: string; id?: string });
    if (!s) return reply.code(400).send('unknown scope or id');
    if (!mayEdit(req, s.scope, s.id)) return reply.code(403).type('text/plain').send('forbidden: you may edit only your own practice');
    const text = field(req, 'doc') ?? '';
    const out = await saveTemplate(ctx, req.fleetUser!.username, s.scope, s.id, text, Number(field(req, 'version') ?? 0));
    if (out.ok) return reply.redirect(`/config/template?${new URLSearchParams({ scope: s.scope, id: s.id })}&saved=${out.version}`, 303);
    // Shown back redacted: a refused save must not echo a typed secret into the page.
    let back = text;
    try {
      back = JSON.stringify(redactForDisplay(JSON.parse(text) as Doc), null, 2);
    } catch {
      /* not JSON: shown as typed so it can be fixed */
    }
    return reply
      .code(422)
      .type('text/html')
      .send(await editor(req, s.scope, s.id, { text: back, problems: out.problems }));
  });

  app.get('/config/template/diff', { preHandler: need() }, async (req, reply) => {
    const query = req.query as { scope?: string; id?: string; from?: string; to?: string };
    const s = parseScope(query);
    const from = Number(query.from);
    const to = Number(query.to);
    if (!s || !Number.isInteger(from) || !Number.isInteger(to)) return reply.code(400).type('text/plain').send('unknown scope, id or versions');
    if (!mayView(req, s.scope, s.id)) return reply.code(403).type('text/plain').send('forbidden for your role');
    const versions = await ctx.store.config.templateVersions(s.scope, s.id, 100_000);
    const a = versions.find((v) => v.version === from);
    const b = versions.find((v) => v.version === to);
    if (!a || !b) return reply.code(404).type('text/plain').send('no such version');
    const rows = versionDiff(JSON.parse(a.doc) as Doc, JSON.parse(b.doc) as Doc);
    const show = (v: unknown) => (v === undefined ? '<span class="muted">(absent)</span>' : `<code>${e(JSON.stringify(v))}</code>`);
    const u = req.fleetUser!;
    const q = new URLSearchParams({ scope: s.scope, id: s.id });
    const title = `${SCOPE_LABEL[s.scope]}${s.id ? ` ${s.id}` : ''}: v${from} → v${to}`;
    const restore =
      u.role === 'icb-admin' && from !== versions[0]?.version
        ? `<form method="post" action="/config/template/restore?${q}" class="noprint restore"><input type="hidden" name="csrf" value="${e(u.csrf)}">` +
          `<input type="hidden" name="from" value="${from}"><input type="hidden" name="version" value="${versions[0]?.version ?? 0}">` +
          `<button>Restore v${from}</button></form>`
        : '';
    const html =
      `<h1>${e(title)}</h1><p>${rows.length} field(s) differ. Secrets are never shown: a changed one reads <code>"[redacted] (changed)"</code>.</p>` +
      `<table id="version-diff"><thead><tr><th>Field</th><th>v${from}</th><th>v${to}</th></tr></thead><tbody>${
        rows.map((r) => `<tr data-path="${e(r.path)}"><td><code>${e(r.path)}</code></td><td>${show(r.before)}</td><td>${show(r.after)}</td></tr>`).join('') ||
        '<tr><td colspan="3">No differences.</td></tr>'
      }</tbody></table>${restore}<p><a href="/config/template?${q}">Back to the template</a></p>`;
    return reply.type('text/html').send(layout(title, u, html, u.csrf));
  });

  // ICB admins only: a restore is a save (checked, versioned, audited as template-restore); CSRF is checked for every POST.
  app.post('/config/template/restore', { preHandler: need('icb-admin') }, async (req, reply) => {
    const s = parseScope(req.query as { scope?: string; id?: string });
    const from = Number(field(req, 'from'));
    if (!s || !Number.isInteger(from) || from < 1) return reply.code(400).type('text/plain').send('unknown scope, id or version');
    const out = await restoreTemplate(ctx, req.fleetUser!.username, s.scope, s.id, from, Number(field(req, 'version') ?? 0));
    if (out.ok) return reply.redirect(`/config/template?${new URLSearchParams({ scope: s.scope, id: s.id })}&saved=${out.version}`, 303);
    return reply
      .code(422)
      .type('text/html')
      .send(await editor(req, s.scope, s.id, { problems: out.problems }));
  });

  // Any signed-in role that may see the template may preview it: it changes nothing (CSRF still checked, as for every POST).
  app.post('/config/template/preview', { preHandler: need() }, async (req, reply) => {
    const s = parseScope(req.query as { scope?: string; id?: string });
    if (!s) return reply.code(400).send('unknown scope or id');
    if (!mayView(req, s.scope, s.id)) return reply.code(403).type('text/plain').send('forbidden for your role');
    const text = field(req, 'doc') ?? '';
    const out = await previewTemplate(ctx, s.scope, s.id, text, field(req, 'device') ?? '');
    let back = text;
    try {
      back = JSON.stringify(redactForDisplay(JSON.parse(text) as Doc), null, 2);
    } catch {
      /* not JSON: shown as typed so it can be fixed */
    }
    if (!out.ok)
      return reply
        .code(422)
        .type('text/html')
        .send(await editor(req, s.scope, s.id, { text: back, problems: out.problems }));
    return reply.type('text/html').send(await editor(req, s.scope, s.id, { text: back, preview: out }));
  });

  app.post('/config/pcn', { preHandler: need('icb-admin') }, async (req, reply) => {
    const practice = (field(req, 'practice') ?? '').trim().toUpperCase();
    const pcn = (field(req, 'pcn') ?? '').trim();
    if (!/^[A-Z0-9]{3,10}$/.test(practice) || (pcn && !ID.test(pcn)))
      return reply.redirect(`/config?error=${encodeURIComponent('practice must be an ODS code and PCN a plain id')}`, 303);
    await ctx.store.config.setPcn(practice, pcn || null, req.fleetUser!.username, ctx.clock.now());
    await ctx.store.accounts.audit({
      at: ctx.clock.now(),
      username: req.fleetUser!.username,
      device_id: null,
      action: 'pcn-map',
      args: JSON.stringify({ practice, pcn: pcn || null }),
      outcome: 'ok',
      detail: null,
    });
    return reply.redirect(`/config?done=${encodeURIComponent(pcn ? `${practice} is in ${pcn}` : `${practice} unmapped`)}`, 303);
  });
}
