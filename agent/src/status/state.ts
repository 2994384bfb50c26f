import { hhmm } from '../../../common/zoned-time.js';
import type { HealthMap } from '../core/capability.js';
import type { UplinkKind } from '../../../contract/kinds.js';
import type { RecordsReport } from '../../../contract/reports/index.js';

/**
 * The one plain-English line a receptionist reads, derived only from capabilities' health()
 * details (shapes in the cross-helper contract). Level drives colour, icon and LED; the text
 * alone carries the meaning (colour is never the only signal).
 */
export type StateLevel = 'normal' | 'attention' | 'backup' | 'offline' | 'unknown' | 'unenrolled' | 'setup';

export interface PracticeState {
  level: StateLevel;
  text: string;
  /** Epoch ms the current state began, when known. */
  since: number | null;
  /** Secondary plain lines shown under the state line ("4G backup not available", ...). */
  notes: string[];
  /** One line in reception's words: what to do now (docs/operator-guide.md, section 6). */
  todo: string;
  /** The page that fixes it, shown as a link after the headline ("Unlock"). */
  action?: { label: string; href: string };
}

export const ICONS: Record<StateLevel, string> = {
  normal: '✔',
  attention: '!',
  backup: '▲',
  offline: '✖',
  unknown: '?',
  unenrolled: '⚙',
  setup: '✎',
};

export type TimeFormat = (epochMs: number) => string;

/** Local wall-clock HH:MM (the box's time zone is the practice's: the agent adopts records.timeZone, cli/run.ts). */
export const localTime: TimeFormat = (t) => hhmm(t);

const BACKUP_NAME: Record<UplinkKind, string> = { cellular: '4G backup', wifi: 'Wi-Fi backup', wired: 'backup line' };

/** What reception should do, per state (the same words as docs/operator-guide.md section 6). */
export const TODO = {
  normal: 'Nothing to do.',
  attention: 'Carry on. Tell the practice manager, who can contact the ICB IT service desk.',
  backupMissing: 'Carry on. Tell the practice manager: the next internet outage would not be covered.',
  backup: 'Carry on as normal: phones and the clinical system work over the backup. Avoid video calls and big downloads.',
  maintenance: 'Carry on: someone is working on the internet connection.',
  offline: "Use the Records page for today's list and summaries. Ring the ICB IT service desk from a mobile.",
  offlineLocked: 'Ask an admin to unlock the records cache now (Unlock). Use paper until then; ring the ICB IT service desk from a mobile.',
  offlineNoRecords: 'Use paper for now. Ring the ICB IT service desk from a mobile.',
  unknown: 'Wait a minute while the appliance checks its connections.',
  unenrolled: 'Nothing for reception. The ICB engineer must claim this box in the fleet dashboard.',
  setup: 'The practice manager must set up this box (Set up this box), using the set-up code from the ICB engineer.',
  locked: 'Ask an admin to unlock the records cache now, before an internet outage needs it.',
  noKey: 'The practice manager must create the records key (Set up records) before the cache can fill.',
  clockUnconfirmed: 'Carry on, but check times against a watch or phone. If this line stays over an hour, tell the practice manager.',
  clockWrong: 'Check times against a watch or phone, not this box. Tell the practice manager, who can contact the ICB IT service desk.',
  neverSynced: "Nothing yet: today's records arrive within 15 minutes. If this line stays, tell the practice manager.",
} as const;

const UNLOCK = { label: 'Unlock', href: '/records/key' };
const SET_UP = { label: 'Set up this box', href: '/setup' };

/** The one problem with the records cache that makes "All systems normal" a lie, if any. */
function recordsProblem(rec: RecordsReport | undefined, setUp: boolean): Pick<PracticeState, 'text' | 'todo' | 'action'> | null {
  if (!rec) return null;
  if (rec.locked && rec.provisioned === false)
    return {
      text: 'Records cache not set up - no records key yet',
      todo: TODO.noKey,
      action: setUp ? { label: 'Set up records', href: '/records/key' } : SET_UP,
    };
  if (rec.locked) return { text: 'Records cache locked after a restart - an admin must unlock it', todo: TODO.locked, action: UNLOCK };
  if (rec.asOf === null || rec.asOf === undefined) return { text: 'Records cache has never synced - no records copy yet', todo: TODO.neverSynced };
  return null;
}

/**
 * A clock not confirmed by NTP since boot (a Pi has no real-time clock) makes every "as of" and every
 * time on this page suspect (hazard H7). Only said when the records cache is on: that is where a
 * wrong time misleads a clinician. Absent (older agent, fake) reads as confirmed.
 */
function clockProblem(rec: RecordsReport | undefined): Pick<PracticeState, 'text' | 'todo'> | null {
  if (rec?.clock === 'wrong') return { text: 'Clock wrong - the appliance time is wrong, so times and "as of" are wrong', todo: TODO.clockWrong };
  if (rec?.clock === 'unconfirmed') return { text: 'Clock not confirmed since start - times and "as of" may be wrong', todo: TODO.clockUnconfirmed };
  return null;
}

/**
 * The headline, in order of what a practice must know first: an outage (backup, offline) always
 * keeps the headline, because a practice using the box needs that before anything else; then a box
 * not yet enrolled or set up; then a records cache that would fail in the next outage (locked,
 * never initialised, never synced); then a clock not confirmed (H7); then the connection state.
 * Only when none of these applies can the line (and the LED) be the green "All systems normal".
 */
export function deriveState(health: HealthMap, fmt: TimeFormat = localTime): PracticeState {
  const st = deriveConnectionState(health, fmt);
  const en = health.enrolment?.details;
  const setup = health.setup?.details;
  const setUp = setup?.setUp !== false;
  const rec = health.records?.details;
  const recProblem = recordsProblem(rec, setUp);
  const clock = clockProblem(rec);
  const unenrolled = !!en && en.required && en.enrolled === false;
  if (st.level === 'backup' || st.level === 'offline') {
    const pre = [
      ...(unenrolled ? ['Not enrolled with the ICB: not yet reporting to the fleet'] : []),
      // Offline already names the records state in its headline.
      ...(recProblem && st.level === 'backup' ? [recProblem.text] : []),
      ...(clock ? [clock.text] : []),
    ];
    return { ...st, notes: [...pre, ...st.notes] };
  }
  if (unenrolled)
    return {
      level: 'unenrolled',
      text: 'Not enrolled - waiting for an ICB engineer to claim this box',
      since: null,
      notes: [st.text, ...st.notes],
      todo: TODO.unenrolled,
    };
  if (!setUp)
    return {
      level: 'setup',
      text: 'Not set up yet - the practice manager must set up this box',
      since: null,
      notes: [st.text, ...st.notes],
      todo: TODO.setup,
      action: SET_UP,
    };
  const below = st.level === 'normal' ? st.notes : [st.text, ...st.notes];
  if (recProblem) return { level: 'attention', since: null, ...recProblem, notes: [...(clock ? [clock.text] : []), ...below] };
  if (clock) return { level: 'attention', since: null, ...clock, notes: below };
  return st;
}

const uplinkName = (u: { name: string; label?: string }) => u.label ?? u.name;
/** The practice's own name for an uplink, only when one was configured (reports carry label = name otherwise). */
export const ownLabel = (u: { name: string; label?: string }): string | undefined => (u.label && u.label !== u.name ? u.label : undefined);

function deriveConnectionState(health: HealthMap, fmt: TimeFormat): PracticeState {
  const notes: string[] = [];
  const fo = health.failover?.details;
  const rec = health.records?.details;

  for (const [name, h] of Object.entries(health)) {
    if (h.status === 'failed') notes.push(`${name}: ${h.summary}`);
  }
  const drill = health.drills?.details?.last;
  if (drill && !drill.passed) {
    const failed = drill.steps.find((st) => !st.passed);
    notes.push(`Last backup drill failed${failed ? `: ${failed.name}` : ''}`);
  }
  const tel = health.telephony?.details;
  if (tel?.mode === 'survivable')
    notes.push(
      tel.emergencyRoute === 'none'
        ? 'Phones on local backup: calls between desk phones only, 999 NOT from desk phones'
        : 'Phones on local backup: calls between desk phones and 999 work',
    );
  if (rec?.stale && rec.asOf) notes.push(`Records cache is out of date (as of ${fmt(rec.asOf)})`);

  if (!fo) {
    return { level: 'unknown', text: 'Checking connections…', since: null, notes, todo: TODO.unknown };
  }
  const label = (name: string) => {
    const u = fo.uplinks.find((x) => x.name === name);
    return u ? uplinkName(u) : name;
  };
  if (fo.forced && fo.forced.uplink) notes.push(`Maintenance: traffic forced onto ${label(fo.forced.uplink)} until ${fmt(fo.forced.until)}`);
  // Names not resolving is offline in practice for the PCs: said in words, per line.
  for (const u of fo.uplinks) if (u.dns === 'failing') notes.unshift(`DNS not answering on ${uplinkName(u)}`);

  if (fo.active === null) {
    if (fo.uplinks.every((u) => u.state === 'unknown'))
      return {
        level: 'unknown',
        text: 'Checking connections…',
        since: fo.since,
        notes,
        todo: TODO.unknown,
      };
    // The outage start and the records' "as of" are two different times: both are given, apart.
    const since = fo.since ? ` since ${fmt(fo.since)}` : '';
    const base = { level: 'offline' as const, since: fo.since, notes };
    if (!rec) return { ...base, text: `Offline - no internet connection${since}`, todo: TODO.offlineNoRecords };
    if (rec.locked) return { ...base, text: `Offline${since} - records cache LOCKED: an admin must unlock it`, todo: TODO.offlineLocked, action: UNLOCK };
    if (rec.asOf === null || rec.asOf === undefined) return { ...base, text: `Offline${since} - no records copy yet`, todo: TODO.offlineNoRecords };
    return { ...base, text: `Offline${since} - records cache available, as of ${fmt(rec.asOf)}`, todo: TODO.offline };
  }

  const active = fo.uplinks.find((u) => u.name === fo.active);
  const primary = [...fo.uplinks].find((u) => u.kind === 'wired') ?? fo.uplinks[0];
  if (active && primary && active.name !== primary.name) {
    const backup = ownLabel(active) ?? BACKUP_NAME[active.kind] ?? `backup (${active.name})`;
    const since = fo.since ? ` since ${fmt(fo.since)}` : '';
    const forced = fo.forced?.uplink === active.name;
    if (!forced && fo.failbackAt) notes.push(`Back on ${primary.label ?? primary.name} at ${fmt(fo.failbackAt)} if it stays working`);
    return {
      level: 'backup',
      text: forced ? `Maintenance - running on ${backup}${since}` : `Internet down - running on ${backup}${since}`,
      since: fo.since,
      notes,
      todo: forced ? TODO.maintenance : TODO.backup,
    };
  }

  // On the primary: normal, unless a backup would not be there when needed.
  let backupMissing = false;
  for (const u of fo.uplinks) {
    if (u.name === fo.active) continue;
    if (u.state === 'down') {
      notes.unshift(`${ownLabel(u) ?? BACKUP_NAME[u.kind] ?? u.name} not available`);
      backupMissing = true;
    }
  }
  if (active && active.state === 'degraded' && active.dns !== 'failing') notes.unshift(`Internet connection is unreliable (${uplinkName(active)})`);
  if (active && active.state === 'slow')
    notes.unshift(`Internet connection is slow (${uplinkName(active)}${active.latencyMs !== null ? `: ${Math.round(active.latencyMs)} ms round trip` : ''})`);
  const level: StateLevel = notes.length ? 'attention' : 'normal';
  if (level === 'normal') return { level, text: 'All systems normal', since: fo.since, notes, todo: TODO.normal };
  return { level, text: `Internet working - ${notes[0]!}`, since: fo.since, notes, todo: backupMissing ? TODO.backupMissing : TODO.attention };
}
