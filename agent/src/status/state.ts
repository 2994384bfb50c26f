import type { HealthMap } from '../core/capability.js';
import type { UplinkKind } from '../../../contract/kinds.js';

/**
 * The one plain-English line a receptionist reads, derived only from capabilities' health()
 * details (shapes in the cross-helper contract). Level drives colour, icon and LED; the text
 * alone carries the meaning (colour is never the only signal).
 */
export type StateLevel = 'normal' | 'attention' | 'backup' | 'offline' | 'unknown' | 'unenrolled';

export interface PracticeState {
  level: StateLevel;
  text: string;
  /** Epoch ms the current state began, when known. */
  since: number | null;
  /** Secondary plain lines shown under the state line ("4G backup not available", ...). */
  notes: string[];
}

export const ICONS: Record<StateLevel, string> = { normal: '✔', attention: '!', backup: '▲', offline: '✖', unknown: '?', unenrolled: '⚙' };

export type TimeFormat = (epochMs: number) => string;

/** Local wall-clock HH:MM (the box's time zone is the practice's). */
export const localTime: TimeFormat = (t) => new Date(t).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', hour12: false });

const BACKUP_NAME: Record<UplinkKind, string> = { cellular: '4G backup', wifi: 'Wi-Fi backup', wired: 'backup line' };

/**
 * A box that must be enrolled and is not says so first ("Not enrolled"), with the connection state
 * as its first note; but an outage (backup, offline) keeps the headline, because a practice using
 * the box needs to know that before anything else.
 */
export function deriveState(health: HealthMap, fmt: TimeFormat = localTime): PracticeState {
  const st = deriveConnectionState(health, fmt);
  const en = health.enrolment?.details;
  if (!en || !en.required || en.enrolled !== false) return st;
  if (st.level === 'backup' || st.level === 'offline') return { ...st, notes: ['Not enrolled with the ICB: not yet reporting to the fleet', ...st.notes] };
  return { level: 'unenrolled', text: 'Not enrolled - waiting for an ICB engineer to set up this box', since: null, notes: [st.text, ...st.notes] };
}

function deriveConnectionState(health: HealthMap, fmt: TimeFormat): PracticeState {
  const notes: string[] = [];
  const fo = health.failover?.details;
  const rec = health.records?.details;
  const recordsNote = (): string | null => {
    if (!rec || rec.asOf === null || rec.asOf === undefined) return null;
    return `records cache available, as of ${fmt(rec.asOf)}`;
  };

  for (const [name, h] of Object.entries(health)) {
    if (h.status === 'failed') notes.push(`${name}: ${h.summary}`);
  }
  const drill = health.drills?.details?.last;
  if (drill && !drill.passed) {
    const failed = drill.steps.find((st) => !st.passed);
    notes.push(`Last backup drill failed${failed ? `: ${failed.name}` : ''}`);
  }
  const tel = health.telephony?.details;
  if (tel?.mode === 'survivable') notes.push(tel.emergencyRoute === 'none' ? 'Phones on local backup: calls between desk phones only, 999 NOT from desk phones' : 'Phones on local backup: calls between desk phones and 999 work');
  if (rec?.stale && rec.asOf) notes.push(`Records cache is out of date (as of ${fmt(rec.asOf)})`);

  if (!fo) {
    return { level: 'unknown', text: 'Checking connections…', since: null, notes };
  }
  if (fo.forced && fo.forced.uplink) notes.push(`Maintenance: traffic forced onto ${fo.forced.uplink} until ${fmt(fo.forced.until)}`);
  // Names not resolving is offline in practice for the PCs: said in words, per line.
  for (const u of fo.uplinks) if (u.dns === 'failing') notes.unshift(`DNS not answering on ${u.label ?? u.name}`);

  if (fo.active === null) {
    if (fo.uplinks.every((u) => u.state === 'unknown')) return { level: 'unknown', text: 'Checking connections…', since: fo.since, notes };
    const r = recordsNote();
    const since = fo.since ? ` since ${fmt(fo.since)}` : '';
    return { level: 'offline', text: r ? `Offline - ${r}` : `Offline - no internet connection${since}`, since: fo.since, notes };
  }

  const active = fo.uplinks.find((u) => u.name === fo.active);
  const primary = [...fo.uplinks].find((u) => u.kind === 'wired') ?? fo.uplinks[0];
  if (active && primary && active.name !== primary.name) {
    const backup = BACKUP_NAME[active.kind] ?? `backup (${active.name})`;
    const since = fo.since ? ` since ${fmt(fo.since)}` : '';
    const forced = fo.forced?.uplink === active.name;
    if (!forced && fo.failbackAt) notes.push(`Back on ${primary.label ?? primary.name} at ${fmt(fo.failbackAt)} if it stays working`);
    return {
      level: 'backup',
      text: forced ? `Maintenance - running on ${backup}${since}` : `Internet down - running on ${backup}${since}`,
      since: fo.since,
      notes,
    };
  }

  // On the primary: normal, unless a backup would not be there when needed.
  for (const u of fo.uplinks) {
    if (u.name === fo.active) continue;
    if (u.state === 'down') notes.unshift(`${BACKUP_NAME[u.kind] ?? u.name} not available`);
  }
  if (active && active.state === 'degraded' && active.dns !== 'failing') notes.unshift(`Internet connection is unreliable (${active.label ?? active.name})`);
  if (active && active.state === 'slow')
    notes.unshift(`Internet connection is slow (${active.label ?? active.name}${active.latencyMs !== null ? `: ${Math.round(active.latencyMs)} ms round trip` : ''})`);
  const level: StateLevel = notes.length ? 'attention' : 'normal';
  return { level, text: level === 'normal' ? 'All systems normal' : `Internet working - ${notes[0]!}`, since: fo.since, notes };
}
