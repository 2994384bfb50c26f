import { configDiff } from '../config-templates/diff.js';
import type { Doc } from '../config-templates/merge.js';
import type { DesiredRow } from '../store/config-store.js';
import type { DeviceRow } from '../store/types.js';
import { e, stamp } from './html.js';

interface Reported {
  appliedRevision?: number;
  lastDesiredRevision?: number | null;
  status?: string;
  reasons?: { path: string; message: string }[];
  config?: Doc;
  at?: number;
}

const show = (v: unknown) => (v === undefined ? '(absent)' : JSON.stringify(v));

/** The device page's "desired vs reported": revisions, the device's rejection reasons, and a field-by-field diff. */
export function configSection(d: DeviceRow, desired: DesiredRow | undefined): string {
  let rep: Reported = {};
  try {
    rep = JSON.parse(d.reported_json ?? '{}') as Reported;
  } catch {
    /* unreadable: as if none */
  }
  const applied = rep.appliedRevision ?? d.config_revision;
  const rollout = desired?.rollout_id ? `, <a href="/rollouts/${desired.rollout_id}">rollout #${desired.rollout_id}</a>` : '';
  const head = desired
    ? `<p>Desired revision <b id="desired-revision">${desired.revision}</b> ` +
      `(published ${e(stamp(desired.published_at))}${rollout}); the device runs revision <b id="applied-revision">${e(applied ?? '-')}</b>, ` +
      `last report <b>${e(rep.status ?? '-')}</b>${rep.at ? ` at ${e(stamp(rep.at))}` : ''}.
 ${Number(applied) === desired.revision ? '<span class="ok">in sync</span>' : '<span class="warn">not in sync</span>'}</p>`
    : `<p>No desired config published; the device runs revision ${e(applied ?? '-')} (${e(rep.status ?? '-')}).</p>`;
  const rejected =
    (rep.status === 'rejected' || rep.status === 'ignored') && rep.reasons?.length
      ? `<div class="flash bad" id="rejection"><p>The device ${e(rep.status)} revision ${e(rep.lastDesiredRevision ?? '(unreadable document)')}:</p>` +
        `<ul>${rep.reasons.map((p) => `<li><code>${e(p.path)}</code> ${e(p.message)}</li>`).join('')}</ul></div>`
      : '';
  if (!desired) return head + rejected;
  if (!rep.config)
    return (
      `${head}${rejected}<p class="muted" id="no-diff">The device does not report its config (an agent from before the optional config/reported ` +
      `<code>config</code> field): revisions only.</p>`
    );
  const diff = configDiff(JSON.parse(desired.doc) as Doc, rep.config);
  const rows = diff.rows
    .map(
      (r) =>
        `<tr class="${r.state}" data-path="${e(r.path)}"><td>${e(r.path)}${r.managed ? '' : ' <span class="muted">(default)</span>'}</td>` +
        `<td>${e(show(r.desired))}</td><td class="r">${e(show(r.reported))}</td><td>${e(r.state === 'secret' ? 'secret: not compared' : r.state)}</td></tr>`,
    )
    .join('');
  return (
    `${head}${rejected}<p id="diff-summary">${diff.rows.filter((r) => r.state !== 'secret').length} field(s) differ, ${diff.equal} equal.</p>
<table class="diff" id="config-diff"><thead><tr><th>Field</th><th>Desired</th><th>Device reports</th><th></th></tr></thead>` +
    `<tbody>${rows || '<tr><td colspan="4">No differences.</td></tr>'}</tbody></table>`
  );
}
