import { e, localInput, parseLocal, TZ } from './html.js';

/**
 * Inline SVG charts drawn on the server: no scripts and no chart library, so a page is one
 * response and prints as it shows.
 */
const W = 720;
const H = 140;
const PAD = 30;

const x = (t: number, from: number, to: number) => PAD + ((t - from) / Math.max(1, to - from)) * (W - 2 * PAD);

const DAY_LABEL = new Intl.DateTimeFormat('en-GB', { timeZone: TZ, weekday: 'short', day: 'numeric', month: 'short' });
const DATE_LABEL = new Intl.DateTimeFormat('en-GB', { timeZone: TZ, day: 'numeric', month: 'short' });

/** UK midnights after `from` up to `to`, every `stepDays` days (DST-proof: each is parsed as a London wall time). */
export function midnights(from: number, to: number, stepDays: number): number[] {
  const [y, m, d] = localInput(from).slice(0, 10).split('-').map(Number) as [number, number, number];
  const out: number[] = [];
  for (let i = 1; ; i += stepDays) {
    const t = parseLocal(`${new Date(Date.UTC(y, m - 1, d + i)).toISOString().slice(0, 10)}T00:00`);
    if (t === null || t > to) return out;
    out.push(t);
  }
}

/**
 * A time axis that reads as dates: a tick at each UK midnight, labelled "Mon 30 Nov" over a week
 * or "30 Nov" every few days over a month (at most eight labels).
 */
export function axis(from: number, to: number): string {
  const days = (to - from) / 86_400_000;
  const step = Math.max(1, Math.ceil(days / 8));
  const fmt = step === 1 ? DAY_LABEL : DATE_LABEL;
  let s = `<line x1="${PAD}" y1="${H - PAD}" x2="${W - PAD}" y2="${H - PAD}" stroke="#999"/>`;
  for (const t of midnights(from, to, step)) {
    const tx = x(t, from, to).toFixed(0);
    s += `<line x1="${tx}" x2="${tx}" y1="${H - PAD}" y2="${H - PAD + 4}" stroke="#999"/>`;
    s += `<text x="${tx}" y="${H - PAD + 16}" font-size="12" text-anchor="middle" class="tick">${e(fmt.format(t))}</text>`;
  }
  return s;
}

const KIND_COLOUR: Record<string, string> = { wired: '#007f3b', wifi: '#41b6e6', cellular: '#ed8b00', offline: '#d5281b' };

/** Which uplink carried traffic over time: one coloured band per sample interval (gaps = offline). */
export function uplinkBand(samples: { at: number; active_kind: string | null }[], from: number, to: number, gapMs: number): string {
  let s = '';
  for (let i = 0; i < samples.length; i++) {
    const a = samples[i]!;
    const end = Math.min(samples[i + 1]?.at ?? to, a.at + gapMs, to);
    const kind = a.active_kind ?? 'offline';
    s +=
      `<rect x="${x(a.at, from, to).toFixed(1)}" y="${PAD}" width="${Math.max(0.5, x(end, from, to) - x(a.at, from, to)).toFixed(1)}" ` +
      `height="${H - 2 * PAD}" fill="${KIND_COLOUR[kind] ?? '#888'}"><title>${e(kind)}</title></rect>`;
  }
  const legend = Object.entries(KIND_COLOUR)
    .map(
      ([k, c], i) =>
        `<rect x="${PAD + i * 90}" y="4" width="10" height="10" fill="${c}"/>` +
        `<text x="${PAD + i * 90 + 14}" y="13" font-size="11">${k === 'cellular' ? '4G' : k}</text>`,
    )
    .join('');
  return `<svg role="img" aria-label="Active uplink over time" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">${legend}${s}${axis(from, to)}</svg>`;
}

/** 4G data used (% of the allowance) against the 75/95/100 % cap lines. */
export function dataUse(samples: { at: number; data_pct: number | null }[], from: number, to: number): string {
  const pts = samples.filter((p) => p.data_pct !== null);
  const max = Math.max(110, ...pts.map((p) => p.data_pct!));
  const y = (v: number) => H - PAD - (v / max) * (H - 2 * PAD);
  const line = pts.map((p) => `${x(p.at, from, to).toFixed(1)},${y(p.data_pct!).toFixed(1)}`).join(' ');
  const caps = [75, 95, 100]
    .map(
      (c) =>
        `<line x1="${PAD}" x2="${W - PAD}" y1="${y(c).toFixed(1)}" y2="${y(c).toFixed(1)}" stroke="${c === 100 ? '#d5281b' : '#ed8b00'}" ` +
        `stroke-dasharray="4 3"/><text x="${W - PAD + 2}" y="${(y(c) + 4).toFixed(1)}" font-size="10">${c}%</text>`,
    )
    .join('');
  const plot = pts.length
    ? `<polyline fill="none" stroke="#005eb8" stroke-width="2" points="${line}"/>`
    : `<text x="${W / 2}" y="${H / 2}" text-anchor="middle" font-size="12">no 4G usage reported</text>`;
  return `<svg role="img" aria-label="4G data use against the cap" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">${caps}${plot}${axis(from, to)}</svg>`;
}

/** Failovers per month (bar per month). */
export function bars(items: { label: string; value: number }[], label: string): string {
  const max = Math.max(1, ...items.map((i) => i.value));
  const bw = (W - 2 * PAD) / Math.max(1, items.length);
  const s = items
    .map((it, i) => {
      const h = (it.value / max) * (H - 2 * PAD);
      const bx = PAD + i * bw;
      return (
        `<rect x="${(bx + 2).toFixed(1)}" y="${(H - PAD - h).toFixed(1)}" width="${(bw - 4).toFixed(1)}" height="${h.toFixed(1)}" fill="#005eb8">` +
        `<title>${e(it.label)}: ${it.value}</title></rect>` +
        `<text x="${(bx + bw / 2).toFixed(1)}" y="${H - PAD + 16}" font-size="12" text-anchor="middle" class="tick">${e(it.label)}</text>` +
        `<text x="${(bx + bw / 2).toFixed(1)}" y="${(H - PAD - h - 3).toFixed(1)}" font-size="10" text-anchor="middle">${it.value}</text>`
      );
    })
    .join('');
  return (
    `<svg role="img" aria-label="${e(label)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">` +
    `<line x1="${PAD}" y1="${H - PAD}" x2="${W - PAD}" y2="${H - PAD}" stroke="#999"/>${s}</svg>`
  );
}
