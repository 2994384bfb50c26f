import { fieldsOf } from '../../../common/fields.js';
/** HTML escaping and the one page layout: server-rendered, no scripts, no CDN, one inline stylesheet. */
export function e(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A query string's values, the first of any repeated key (`?q=a&q=b`), so handlers only ever see strings. */
export function queryOf(req: { query: unknown }): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(fieldsOf(req.query))) {
    const one = Array.isArray(v) ? v[0] : v;
    if (typeof one === 'string') out[k] = one;
  }
  return out;
}

export function ago(now: number, t: number | null | undefined): string {
  if (t === null || t === undefined) return '-';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 90) return `${s} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

export function stamp(t: number | null | undefined): string {
  return t === null || t === undefined ? '-' : new Date(t).toISOString().slice(0, 16).replace('T', ' ') + 'Z';
}

/** ICB staff read UK wall-clock time: every time a person reads on the triage pages is Europe/London. */
export const TZ = 'Europe/London';
const LOCAL = new Intl.DateTimeFormat('en-GB', {
  timeZone: TZ,
  weekday: 'short',
  day: 'numeric',
  month: 'short',
  year: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  timeZoneName: 'short',
});
const INPUT = new Intl.DateTimeFormat('en-GB', {
  timeZone: TZ,
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
});

/** "Sun 6 Dec 2026, 09:05 GMT" (BST in summer), in a <time> element carrying the exact instant. */
export function local(t: number | null | undefined): string {
  if (t === null || t === undefined) return '-';
  return `<time datetime="${new Date(t).toISOString()}">${e(LOCAL.format(t))}</time>`;
}

/** For an input type=datetime-local: "2026-12-06T09:05" in Europe/London. */
export function localInput(t: number): string {
  const p = Object.fromEntries(INPUT.formatToParts(t).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

/** The instant of a Europe/London wall-clock time "YYYY-MM-DDTHH:MM" (either side of a clock change), or null. */
export function parseLocal(v: string | undefined): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(v ?? '');
  if (!m) return null;
  const wall = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]));
  if (Number.isNaN(wall)) return null;
  // London is UTC+0 or UTC+1: take the offset that round-trips to the same wall time.
  for (const off of [0, 3600_000]) if (localInput(wall - off) === v) return wall - off;
  return null;
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#f4f6f8}
header{background:#005eb8;color:#fff;padding:.5rem 1rem;display:flex;gap:1rem;align-items:center;flex-wrap:wrap}
header a{color:#fff}header nav{display:flex;gap:.3rem 1rem;flex:1;flex-wrap:wrap}
main{padding:1rem;max-width:1300px;margin:auto}
table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:.3rem .5rem;border-bottom:1px solid #dde;text-align:left;vertical-align:top}
th{background:#e8edf2}.ok{color:#007f3b}.bad{color:#d5281b;font-weight:600}.warn{color:#a55d00;font-weight:600}.muted{color:#667}
.cards{display:flex;gap:.5rem;flex-wrap:wrap;margin:.5rem 0}
.cards a,.cards div{background:#fff;padding:.5rem 1rem;border-radius:4px;text-decoration:none;color:inherit;border:1px solid #dde}
.cards b{display:block;font-size:1.4rem}form.inline{display:inline}section{background:#fff;padding:.5rem 1rem;margin:.5rem 0;border:1px solid #dde}
.diff td{font-family:monospace}.diff tr.differs td.r,.diff tr.missing td.r{color:#d5281b}textarea{width:100%;font-family:monospace}
.user h2{margin:.3rem 0;font-size:1.1rem}.user-act{margin:.3rem 0}input,select{max-width:100%}
.flash{background:#fff3bf;padding:.5rem 1rem;border:1px solid #e0c200}svg{background:#fff;max-width:100%}pre{white-space:pre-wrap;word-break:break-all}
td{overflow-wrap:break-word}td code{overflow-wrap:anywhere}.nw{white-space:nowrap}
.lk,.lk *{color:#6b6b6b!important;font-weight:normal!important}.lk .age{font-size:.85em}
th a{color:inherit}th[aria-sort=ascending] a::after{content:" \\25B4"}th[aria-sort=descending] a::after{content:" \\25BE"}
.live{font-size:.85em}.badge{background:#fff3bf;border:1px solid #e0c200;border-radius:3px;padding:0 .3rem;font-size:.85em}
.filters label{display:inline-block;margin:.2rem .5rem .2rem 0}.actions{margin:.5rem 0}.confirm{border-color:#d5281b}
@media (max-width:700px){
main{padding:.5rem}h1{font-size:1.3rem}header{padding:.5rem;gap:.3rem .8rem}header nav{order:3;flex-basis:100%}
table,thead,tbody,tr,th,td{display:block}table{width:auto}thead tr{display:none}
tr{border-bottom:2px solid #c8ccd0;padding:.2rem 0}th,td{border:0;padding:.15rem .5rem}
td[data-label]::before{content:attr(data-label) ": ";color:#667;font-weight:600}
th,a{overflow-wrap:anywhere}textarea{max-width:100%;box-sizing:border-box}svg{height:auto}
}
@media print{header,form,.noprint{display:none}body{background:#fff}section{border:0}}
`;

export interface PageUser {
  username: string;
  role: string;
  practice: string | null;
}

function navLinks(user: PageUser): string {
  const icb = user.role !== 'practice-manager';
  return (
    '<a href="/">Devices</a><a href="/alerts">Alerts</a><a href="/reports/outages">Outage report</a>' +
    (icb ? '<a href="/audit">Audit</a>' : '') +
    '<a href="/config">Config</a>' +
    (icb ? '<a href="/rollouts">Rollouts</a><a href="/campaigns">Updates</a>' : '') +
    (user.role === 'icb-admin' ? '<a href="/users">Accounts</a><a href="/claim">Claim a box</a>' : '') +
    '<a href="/account">Your account</a>'
  );
}

export function layout(title: string, user: PageUser | null, body: string, csrf = ''): string {
  const nav = user
    ? `<nav>${navLinks(user)}</nav>
       <span>${e(user.username)} (${e(user.role)}${user.practice ? ` ${e(user.practice)}` : ''})</span>
       <form class="inline" method="post" action="/logout"><input type="hidden" name="csrf" value="${e(csrf)}"><button>Sign out</button></form>`
    : '';
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>${e(title)} - surgery-edge fleet</title><style>${CSS}</style><script src="/static/fleet.js" defer></script></head>
<body><header><strong>surgery-edge fleet</strong>${nav}</header><main>${body}</main></body></html>`
  );
}
