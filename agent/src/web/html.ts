/**
 * Page chrome shared by the status page, the login page and the records viewer: plain
 * server-rendered HTML with inline CSS and no external assets (the page must work when the
 * internet is down, and load fast on a phone). Scripts are served from /assets/ (CSP script-src
 * 'self'): no inline script, so an injected <script> cannot run.
 */
const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: unknown): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ESC[c]!);
}

export interface PageOptions {
  /** Signed-in user: shows their name and a sign-out button. */
  user?: { username: string; role: string } | undefined;
  /** The session's CSRF token, needed for the sign-out form. */
  csrf?: string | undefined;
  /** Local script URLs (under /assets/) to load with defer. */
  scripts?: string[];
  /** Extra CSS appended to the shared sheet. */
  css?: string;
}

// Colours checked for WCAG AA contrast (>= 4.5:1) against their backgrounds.
export const BASE_CSS = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Ubuntu,sans-serif;color:#111;background:#f4f5f7}
a{color:#0b4f9c}
a:focus,button:focus,input:focus,select:focus,summary:focus{outline:3px solid #ffb000;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:6px;z-index:9}
header.top{display:flex;flex-wrap:wrap;align-items:center;gap:12px;padding:8px 16px;background:#1d2733;color:#fff}
header.top a{color:#fff}header.top .brand{font-weight:700;margin-right:auto}
header.top nav a{margin-right:12px}
header.top form{display:inline;margin:0}
main{max-width:1100px;margin:0 auto;padding:16px}
h1{font-size:1.5rem;margin:.2em 0 .6em}
button,.btn{font:inherit;padding:8px 14px;border-radius:6px;border:1px solid #1d2733;background:#fff;color:#111;cursor:pointer}
button.primary{background:#0b4f9c;color:#fff;border-color:#0b4f9c}
button.danger{background:#a4161a;color:#fff;border-color:#a4161a}
input,select{font:inherit;padding:7px;border:1px solid #555;border-radius:4px;max-width:100%}
label{display:block;margin:.6em 0 .2em;font-weight:600}
.card{background:#fff;border:1px solid #d0d4da;border-radius:8px;padding:12px 16px;margin:0 0 12px}
.muted{color:#4a5260}
.error{color:#a4161a;font-weight:600}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e1e4e8}
`;

export function page(title: string, body: string, opts: PageOptions = {}): string {
  const who = opts.user
    ? `<span>${escapeHtml(opts.user.username)} (${escapeHtml(opts.user.role)})</span>
<form method="post" action="/logout"><input type="hidden" name="_csrf" value="${escapeHtml(opts.csrf ?? '')}"><button type="submit">Sign out</button></form>`
    : `<a href="/login">Sign in</a>`;
  const scripts = (opts.scripts ?? []).map((s) => `<script src="${escapeHtml(s)}" defer></script>`).join('');
  return `<!doctype html>
<html lang="en-GB"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)} - surgery-edge</title><link rel="icon" href="data:,"><style>${BASE_CSS}${opts.css ?? ''}</style>${scripts}</head>
<body><a class="skip" href="#main">Skip to content</a>
<header class="top"><span class="brand">surgery-edge</span><nav aria-label="Main"><a href="/">Status</a><a href="/records">Records</a></nav>${who}</header>
<main id="main">${body}</main></body></html>`;
}
