/** HTML escaping and the one page layout: server-rendered, no scripts, no CDN, one inline stylesheet. */
export function e(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
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

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#f4f6f8}
header{background:#005eb8;color:#fff;padding:.5rem 1rem;display:flex;gap:1rem;align-items:center;flex-wrap:wrap}
header a{color:#fff}header nav{display:flex;gap:.3rem 1rem;flex:1;flex-wrap:wrap}
main{padding:1rem;max-width:1300px;margin:auto}
table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:.3rem .5rem;border-bottom:1px solid #dde;text-align:left;vertical-align:top}
th{background:#e8edf2}.ok{color:#007f3b}.bad{color:#d5281b;font-weight:600}.warn{color:#a55d00;font-weight:600}.muted{color:#667}
.cards{display:flex;gap:.5rem;flex-wrap:wrap;margin:.5rem 0}.cards a,.cards div{background:#fff;padding:.5rem 1rem;border-radius:4px;text-decoration:none;color:inherit;border:1px solid #dde}
.cards b{display:block;font-size:1.4rem}form.inline{display:inline}section{background:#fff;padding:.5rem 1rem;margin:.5rem 0;border:1px solid #dde}
.diff td{font-family:monospace}.diff tr.differs td.r,.diff tr.missing td.r{color:#d5281b}textarea{width:100%;font-family:monospace}
.user h2{margin:.3rem 0;font-size:1.1rem}.user-act{margin:.3rem 0}input,select{max-width:100%}
.flash{background:#fff3bf;padding:.5rem 1rem;border:1px solid #e0c200}svg{background:#fff;max-width:100%}pre{white-space:pre-wrap;word-break:break-all}
@media print{header,form,.noprint{display:none}body{background:#fff}section{border:0}}
`;

export interface PageUser {
  username: string;
  role: string;
  practice: string | null;
}

export function layout(title: string, user: PageUser | null, body: string, csrf = ''): string {
  const nav = user
    ? `<nav><a href="/">Devices</a><a href="/alerts">Alerts</a><a href="/reports/outages">Outage report</a>${user.role !== 'practice-manager' ? '<a href="/audit">Audit</a>' : ''}<a href="/config">Config</a>${user.role !== 'practice-manager' ? '<a href="/rollouts">Rollouts</a>' : ''}${user.role === 'icb-admin' ? '<a href="/users">Accounts</a><a href="/claim">Claim a box</a>' : ''}</nav>
       <span>${e(user.username)} (${e(user.role)}${user.practice ? ` ${e(user.practice)}` : ''})</span>
       <form class="inline" method="post" action="/logout"><input type="hidden" name="csrf" value="${e(csrf)}"><button>Sign out</button></form>`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${e(title)} - surgery-edge fleet</title><style>${CSS}</style></head>
<body><header><strong>surgery-edge fleet</strong>${nav}</header><main>${body}</main></body></html>`;
}
