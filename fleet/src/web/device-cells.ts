import type { DeviceRow } from '../store/types.js';
import { ago, e, stamp } from './html.js';

/** The state columns, shared by the list and the device page. */
export function stateCell(d: DeviceRow, now: number): string {
  return d.online ? `<span class="ok">online</span> <span class="muted">${ago(now, d.state_since)}</span>` : `<span class="bad">offline</span> since ${e(stamp(d.state_since))} (${ago(now, d.state_since)})`;
}
export function uplinkCell(d: DeviceRow, now: number): string {
  if (!d.online) return '<span class="muted">-</span>';
  if (d.active_kind === 'cellular') return `<span class="warn">on 4G</span> (${e(d.active_uplink)}) ${ago(now, d.cellular_since)}`;
  return e(d.active_uplink ?? '-') + (d.active_kind ? ` <span class="muted">${e(d.active_kind)}</span>` : '');
}
export function telephonyCell(d: DeviceRow): string {
  if (!d.telephony_mode) return '<span class="muted">-</span>';
  const cls = d.telephony_mode === 'cloud' ? 'ok' : d.telephony_mode === 'survivable' ? 'warn' : d.telephony_mode === 'down' ? 'bad' : 'muted';
  return `<span class="${cls}">${e(d.telephony_mode)}</span>${d.telephony_calls ? ` ${d.telephony_calls} call(s)` : ''}`;
}
export function recordsCell(d: DeviceRow): string {
  if (d.records_stale === null) return '<span class="muted">-</span>';
  return d.records_stale ? `<span class="bad">stale</span> <span class="muted">${e(stamp(d.records_as_of))}</span>` : '<span class="ok">current</span>';
}
export function dataCell(d: DeviceRow): string {
  if (d.data_pct === null) return '<span class="muted">-</span>';
  const p = Math.round(d.data_pct);
  return `<span class="${p >= 95 ? 'bad' : p >= 75 ? 'warn' : ''}">${p}%</span>`;
}
export function drillCell(d: DeviceRow, now: number): string {
  if (d.drill_at === null) return '<span class="muted">none</span>';
  return `${d.drill_passed ? '<span class="ok">passed</span>' : '<span class="bad">FAILED</span>'} <span class="muted">${ago(now, d.drill_at)} ago</span>`;
}
