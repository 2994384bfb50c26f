import type { DeviceRow } from '../store/types.js';
import { ago, e, local } from './html.js';

/**
 * The state columns, shared by the list and the device page. A device that is offline has no live
 * values: what it last reported is shown greyed as "last known" with its age, never as a live green
 * "current" or "cloud" (an ICB engineer must not read a dead box as a healthy one).
 */
type Cell = { html: string; cls?: 'ok' | 'warn' | 'bad' | 'muted' };

function live(d: DeviceRow, now: number, c: Cell | null): string {
  if (!c) return '<span class="muted">-</span>';
  if (d.online) return c.cls ? `<span class="${c.cls}">${c.html}</span>` : c.html;
  const at = d.telemetry_at ?? d.last_seen;
  return `<span class="lk" title="last known value: the device is offline">${c.html} <span class="age">(last known, ${ago(now, at)} ago)</span></span>`;
}

export function stateCell(d: DeviceRow, now: number): string {
  return d.online
    ? `<span class="ok">online</span> <span class="muted">${ago(now, d.state_since)}</span>`
    : `<span class="bad">offline</span> for ${ago(now, d.state_since)} <span class="muted">since ${local(d.state_since)}</span>`;
}
export function uplinkCell(d: DeviceRow, now: number): string {
  if (!d.active_uplink && !d.active_kind) return live(d, now, null);
  if (d.active_kind === 'cellular')
    return live(d, now, { html: `on 4G (${e(d.active_uplink)})${d.online ? ` ${ago(now, d.cellular_since)}` : ''}`, cls: 'warn' });
  return live(d, now, { html: e(d.active_uplink ?? '-') + (d.active_kind ? ` <span class="muted">${e(d.active_kind)}</span>` : '') });
}
export function telephonyCell(d: DeviceRow, now = Date.now()): string {
  if (!d.telephony_mode) return live(d, now, null);
  const cls = d.telephony_mode === 'cloud' ? 'ok' : d.telephony_mode === 'survivable' ? 'warn' : d.telephony_mode === 'down' ? 'bad' : 'muted';
  return live(d, now, { html: `${e(d.telephony_mode)}${d.telephony_calls ? ` ${d.telephony_calls} call(s)` : ''}`, cls });
}
export function recordsCell(d: DeviceRow, now = Date.now()): string {
  if (d.records_stale === null) return live(d, now, null);
  return live(
    d,
    now,
    d.records_stale ? { html: `stale <span class="muted">as of ${local(d.records_as_of)}</span>`, cls: 'bad' } : { html: 'current', cls: 'ok' },
  );
}
export function dataCell(d: DeviceRow, now = Date.now()): string {
  if (d.data_pct === null) return live(d, now, null);
  const p = Math.round(d.data_pct);
  return live(d, now, { html: `${p}%`, ...(p >= 95 ? { cls: 'bad' as const } : p >= 75 ? { cls: 'warn' as const } : {}) });
}
export function drillCell(d: DeviceRow, now: number): string {
  if (d.drill_at === null) return '<span class="muted">none</span>';
  const r = d.drill_passed ? '<span class="ok">passed</span>' : '<span class="bad">FAILED</span>';
  return `${d.online ? r : `<span class="lk">${r}</span>`} <span class="muted">${ago(now, d.drill_at)} ago</span>`;
}
/** When the fleet last heard anything from the device (any message). */
export function seenCell(d: DeviceRow, now: number): string {
  if (d.last_seen === null) return '<span class="muted">never</span>';
  return `<span title="${e(new Date(d.last_seen).toISOString())}">${ago(now, d.last_seen)} ago</span>`;
}
