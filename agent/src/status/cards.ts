import { ukDate, weekdayName } from '../../../common/zoned-time.js';
import type { Health, HealthMap } from '../core/capability.js';
import { reportLines } from '../../../contract/read.js';
import type { SystemHealth } from '../../../contract/mqtt.js';
import { claimCard } from './claim-card.js';
import { escapeHtml as e } from '../web/html.js';
import { ICONS, localTime, ownLabel, type PracticeState, type TimeFormat } from './state.js';
import type { CellularReport, DrillsReport, FailoverReport, TelemetryReport, TelephonyReport } from '../../../contract/reports/index.js';
import type { Outage } from '../../../contract/operations.js';

/**
 * Server-rendered cards. The live update pushes this same HTML over SSE, so there is one
 * renderer and the browser script stays a few lines. Known capabilities get a tailored card;
 * every other capability gets the generic card (summary + lines), so a new capability shows up
 * without touching this file.
 */

const STATUS_WORD: Record<string, string> = { ok: 'OK', degraded: 'Warning', failed: 'Failed', starting: 'Starting', stopped: 'Stopped', disabled: 'Off' };
const UPLINK_WORD: Record<string, string> = { up: 'Up', slow: 'Slow', degraded: 'Unreliable', down: 'Down', unknown: 'Checking' };

const gb = (b: number) => (b / 1e9).toFixed(b < 1e10 ? 2 : 1) + ' GB';
const num = (v: number | null | undefined, unit: string, dp = 0) => (v === null || v === undefined ? '—' : `${v.toFixed(dp)} ${unit}`);

function card(id: string, title: string, status: string | undefined, body: string, cls = ''): string {
  const badge = status ? `<span class="badge b-${e(status)}">${e(STATUS_WORD[status] ?? status)}</span>` : '';
  return `<section class="card${cls ? ' ' + cls : ''}" aria-labelledby="c-${e(id)}"><h2 id="c-${e(id)}">${e(title)} ${badge}</h2>${body}</section>`;
}

function lines(h: Health): string {
  const ls = reportLines(h.details);
  return `<p>${e(h.summary)}</p>${ls.length ? `<ul>${ls.map((l) => `<li>${e(l)}</li>`).join('')}</ul>` : ''}`;
}

function uplinksCard(h: Health<FailoverReport>, fo: FailoverReport, cell: CellularReport | undefined, fmt: TimeFormat): string {
  const rows = fo.uplinks
    .map((u) => {
      const active = u.name === fo.active ? ' <strong>(in use)</strong>' : '';
      let extra = u.dns === 'failing' ? '<strong>DNS not answering</strong>; ' : '';
      if (u.kind === 'cellular' && cell) {
        const s = cell.signal;
        const network = `${cell.operator ? `, ${e(cell.operator)}` : ''}${cell.accessTech ? ` ${e(cell.accessTech)}` : ''}`;
        extra += `Signal ${num(s.rsrp, 'dBm')}${s.quality !== null ? ` (${s.quality}%)` : ''}${network}; `;
        extra += `data ${gb(cell.usage.usedBytes)} of ${gb(cell.usage.allowanceBytes)} (${Math.round(cell.usage.usedPct)}%)`;
      }
      return (
        `<tr><th scope="row">${e(u.label ?? u.name)}${active}<br>` +
        `<span class="muted">${ownLabel(u) ? `${e(u.name)} · ` : ''}${e(u.kind)}${u.interface ? ` · ${e(u.interface)}` : ''}</span></th>
<td><span class="st st-${e(u.state)}">${e(UPLINK_WORD[u.state] ?? u.state)}</span></td><td>${num(u.latencyMs, 'ms')}</td>` +
        `<td>${num(u.lossPct, '%')}</td><td>${extra}</td></tr>`
      );
    })
    .join('');
  const forced = fo.forced?.uplink ? `<p>Maintenance: forced onto <strong>${e(fo.forced.uplink)}</strong> until ${e(fmt(fo.forced.until))}</p>` : '';
  return card(
    'uplinks',
    'Internet connections',
    h.status,
    `${forced}<div class="scroll"><table><thead><tr><th scope="col">Link</th><th scope="col">State</th><th scope="col">Latency</th>` +
      `<th scope="col">Loss</th><th scope="col">Detail</th></tr></thead><tbody>${rows}</tbody></table></div>`,
    'wide',
  );
}

function telemetryCard(h: Health<TelemetryReport>, fmt: TimeFormat): string {
  const t = h.details;
  if (!t) return card('telemetry', 'ICB reporting', h.status, lines(h));
  return card(
    'telemetry',
    'ICB reporting',
    h.status,
    `<p>Broker ${t.connected ? 'connected' : 'not connected'}${t.broker ? ` (${e(t.broker)})` : ''}. Outbox: ${t.outboxDepth} ` +
      `message${t.outboxDepth === 1 ? '' : 's'} waiting${t.lastPublishAt ? `; last sent ${e(fmt(t.lastPublishAt))}` : ''}.</p>`,
  );
}

function drillsCard(h: Health<DrillsReport>, fmt: TimeFormat): string {
  const d = h.details;
  if (!d) return card('drills', 'Backup drills', h.status, lines(h));
  const last = d.last
    ? `<p>Last drill ${e(ukDate(d.last.at))} ${e(fmt(d.last.at))}: <strong>${d.last.passed ? 'PASSED' : 'FAILED'}</strong></p>
<ul>${d.last.steps.map((s) => `<li>${s.passed ? '✔ passed' : '✖ FAILED'}: ${e(s.name)} - ${e(s.detail)}</li>`).join('')}</ul>`
    : '<p>No drill has run yet.</p>';
  const next = d.next ? `<p class="muted">Next scheduled: ${e(weekdayName(d.next))} ${e(fmt(d.next))}</p>` : '';
  return card('drills', 'Backup drills', h.status, `${d.running ? '<p><strong>A drill is running now…</strong></p>' : ''}${last}${next}`);
}

function boxCard(box: SystemHealth | null): string {
  if (!box) return card('box', 'This appliance', undefined, '<p>Reading…</p>');
  const disk = box.disks.map((d) => `${e(d.mount)} ${d.usedPct}% used`).join(', ') || '—';
  const throttle = box.throttled?.underVoltageNow ? '<li class="error">Power supply too weak (under-voltage)</li>' : '';
  return card(
    'box',
    'This appliance',
    undefined,
    `<ul><li>CPU ${num(box.cpuLoadPct, '%')}</li><li>Memory ${num(box.memUsedPct, '%')} used</li><li>Disk ${disk}</li>` +
      `<li>Temperature ${num(box.cpuTempC, '°C', 1)}</li>${throttle}</ul>`,
  );
}

const PHONE_MODE: Record<TelephonyReport['mode'], string> = {
  cloud: 'Normal - calls go through the cloud phone system',
  survivable: 'BACKUP - the cloud phone system cannot be reached; phones work locally',
  down: 'Not working - the local phone server is being restarted',
  disabled: 'Off',
};
const OUTSIDE: Record<TelephonyReport['outsideCalls'], string> = {
  pbx: 'yes, through the cloud phone system',
  trunk: 'yes, through the backup line',
  none: 'no (no backup line set up) - use a mobile',
};
const EMERGENCY: Record<TelephonyReport['emergencyRoute'], string> = {
  pbx: 'yes, through the cloud phone system',
  trunk: 'yes, through the backup line',
  'pbx-then-trunk': 'yes (cloud phone system, backup line if it fails)',
  none: 'NOT AVAILABLE from desk phones - use a mobile',
};

/** Phones in words reception understands: is it normal, how many phones, calls now, can I dial out, 999. */
function phonesCard(h: Health<TelephonyReport>): string {
  const t = h.details;
  if (!t) return card('telephony', 'Phones', h.status, lines(h));
  if (t.mode === 'disabled') return card('telephony', 'Phones', h.status, `<p>${e(h.summary)}</p>`);
  const n = (x: number, one: string, many: string) => `${x} ${x === 1 ? one : many}`;
  const rows: [string, string][] = [
    ['Phones', PHONE_MODE[t.mode]],
    ['Desk phones connected', n(t.registered, 'phone', 'phones')],
    ['Calls in progress', n(t.callsInProgress, 'call', 'calls')],
  ];
  if (t.mode !== 'down') {
    rows.push(['Calls between desk phones', 'yes']);
    rows.push(['Outside calls', OUTSIDE[t.outsideCalls]]);
    rows.push(['999 / 112', EMERGENCY[t.emergencyRoute]]);
  }
  const body = `<ul>${rows.map(([k, v]) => `<li><strong>${e(k)}:</strong> ${e(v)}</li>`).join('')}</ul>`;
  return card('telephony', 'Phones', h.status, body);
}

export function renderState(st: PracticeState): string {
  const act = st.action ? ` <a class="act" href="${e(st.action.href)}">${e(st.action.label)}</a>` : '';
  return (
    `<span class="icon" aria-hidden="true">${ICONS[st.level]}</span><span class="body">` +
    `<span class="text">${e(st.text)}</span>${act}<span class="todo">What to do now: ${e(st.todo)}</span></span>`
  );
}

/** Today's outages from the failover switch history (agent/src/failover/history.ts). */
export function outagesCard(outages: Outage[], labels: Record<string, string>, now: number, fmt: TimeFormat): string {
  if (!outages.length) return card('outages', "Today's outages", undefined, '<p>No outages today.</p>');
  const mins = (a: number, b: number) => Math.max(0, Math.round((b - a) / 60_000));
  const items = outages.map((o) => {
    const end = o.end === null ? 'now' : fmt(o.end);
    const via = o.via.map((v) => labels[v] ?? v);
    const what = o.maintenance
      ? `maintenance on ${via.join(', ') || 'a backup'}`
      : [via.length ? `on ${via.join(', then ')}` : '', o.offline ? 'offline for part of it' : ''].filter(Boolean).join('; ') || 'offline';
    const still = o.end === null ? ' <strong>(still going on)</strong>' : '';
    return (
      `<li>${e(fmt(o.start))} - ${e(end)} (${mins(o.start, o.end ?? now)} ` +
      `min): ${e(o.offline && !via.length ? 'offline, no internet at all' : what)}${still}</li>`
    );
  });
  return card('outages', "Today's outages", undefined, `<ul class="outages">${items.join('')}</ul>`);
}

export function renderNotes(st: PracticeState): string {
  // The headline already says the first note when the state is "attention".
  return st.notes
    .filter((n) => !st.text.endsWith(n))
    .map((n) => `<li>${e(n)}</li>`)
    .join('');
}

export function renderCards(health: HealthMap, box: SystemHealth | null, fmt: TimeFormat = localTime, outages?: { list: Outage[]; now: number }): string {
  const out: string[] = [];
  const claim = claimCard(health.enrolment);
  if (claim) out.push(claim);
  const fo = health.failover;
  if (fo?.details) out.push(uplinksCard(fo, fo.details, health.cellular?.details, fmt));
  if (outages && fo?.details) {
    const labels = Object.fromEntries(fo.details.uplinks.map((u) => [u.name, u.label]));
    out.push(outagesCard(outages.list, labels, outages.now, fmt));
  }
  if (health.telemetry) out.push(telemetryCard(health.telemetry, fmt));
  if (health.drills) out.push(drillsCard(health.drills, fmt));
  if (health.telephony) out.push(phonesCard(health.telephony));
  for (const [name, h] of Object.entries(health)) {
    if (['failover', 'telemetry', 'drills', 'status', 'telephony'].includes(name)) continue;
    out.push(card(name, name.charAt(0).toUpperCase() + name.slice(1), h.status, lines(h)));
  }
  out.push(boxCard(box));
  return out.join('\n');
}
