import { dayMonth, hhmm } from '../../../../common/zoned-time.js';
import { escapeHtml } from '../../web/html.js';

/**
 * Time formatting and the freshness banner. Every viewer page carries "as of HH:MM"; when the cache
 * is stale the line becomes a full-width banner with a warning sign, the word STALE and the age in
 * words, so it is unmistakable without relying on colour (WCAG 1.4.1).
 */
export interface Freshness {
  /** Epoch ms of the last complete sync, or null when there never was one. */
  asOf: number | null;
  now: number;
  staleAfterMs: number;
  timeZone: string;
}

export function isStale(f: Freshness): boolean {
  return f.asOf === null || f.now - f.asOf > f.staleAfterMs;
}

function age(ms: number): string {
  const min = Math.round(ms / 60_000);
  if (min < 90) return `${min} minute${min === 1 ? '' : 's'}`;
  const h = Math.round(min / 60);
  if (h < 48) return `${h} hours`;
  return `${Math.round(h / 24)} days`;
}

/** The line (or banner) at the top of every viewer page. */
export function freshnessBanner(f: Freshness): string {
  if (f.asOf === null) {
    return (
      `<div class="stale" role="alert">` +
      `<strong>&#9888; STALE: no complete copy yet.</strong> The records cache has not finished a sync; what is shown may be incomplete.</div>`
    );
  }
  const at = escapeHtml(hhmm(f.asOf, f.timeZone));
  if (isStale(f)) {
    return (
      `<div class="stale" role="alert" data-as-of="${f.asOf}">` +
      `<strong>&#9888; STALE: as of ${at}</strong> (${escapeHtml(dayMonth(f.asOf, f.timeZone))}, ${escapeHtml(age(f.now - f.asOf))} old). ` +
      'Changes made since then in the clinical system are not shown.</div>'
    );
  }
  return `<p class="asof" data-as-of="${f.asOf}">Records as of <strong>${at}</strong></p>`;
}

/** The appliance clock's warning, above the "as of" line (hazard H7); empty once NTP has confirmed it. */
export const CLOCK_UNCONFIRMED = "The appliance clock has not been confirmed since it started: times and 'as of' may be wrong. Check against a watch or phone.";
export const CLOCK_WRONG =
  "The appliance clock is wrong (it is set earlier than this software was made): times and 'as of' are wrong. " +
  'Check times against a watch or phone, and tell the practice manager.';

export function clockBanner(trust: 'synced' | 'unconfirmed' | 'wrong'): string {
  if (trust === 'synced') return '';
  const [head, text] = trust === 'wrong' ? ['CLOCK WRONG', CLOCK_WRONG] : ['Clock not confirmed', CLOCK_UNCONFIRMED];
  return `<div class="clock" role="alert" data-clock="${trust}"><strong>&#9888; ${head}:</strong> ${escapeHtml(text)}</div>`;
}

/** A clinical date as upstream gave it ("2019", "2019-03", "2019-03-04", full dateTime) made readable. */
export function clinicalDate(d: string | null | undefined): string {
  if (!d) return '';
  const m = /^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?/.exec(d);
  if (!m) return d;
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  if (!m[2]) return m[1]!;
  const mon = months[Number(m[2]) - 1] ?? m[2];
  return m[3] ? `${Number(m[3])} ${mon} ${m[1]}` : `${mon} ${m[1]}`;
}

export function nhsFormat(n: string | null | undefined): string {
  if (!n) return '';
  return /^\d{10}$/.test(n) ? `${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}` : n;
}

/** Tablet-first additions to the shared sheet: large tap targets, tables that scroll sideways. */
export const VIEWER_CSS =
  `
.stale{background:#fff4ce;border:3px solid #8a5a00;color:#111;padding:12px 16px;margin:0 0 12px;border-radius:6px;font-size:1.1rem}
.clock{background:#fff4ce;border:3px solid #8a5a00;color:#111;padding:12px 16px;margin:0 0 12px;border-radius:6px;font-size:1.1rem}
.asof{margin:0 0 8px;color:#333}
.warn{background:#fde8e8;border:2px solid #a4161a;padding:10px 14px;border-radius:6px;margin:0 0 12px}
.sub{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 12px}.sub a{padding:10px 14px;background:#fff;border:1px solid ` +
  `#1d2733;border-radius:6px;text-decoration:none;min-height:44px}
.scroll{overflow-x:auto}
.nowrap{white-space:nowrap}
form.inline{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-end;margin:0 0 12px}
form.inline label{margin:0}
button,.btn,select,input{min-height:44px}
textarea{font:inherit;width:100%;min-height:6em;padding:7px;border:1px solid #555;border-radius:4px}
td a{display:inline-block;padding:6px 0}
.state{font-weight:700}
.state-rejected{text-decoration:underline}
.allergy{font-weight:700}
dl.demo{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}dl.demo dt{font-weight:600}dl.demo dd{margin:0}
@media (max-width:700px){th.opt,td.opt{display:none}}
`;
