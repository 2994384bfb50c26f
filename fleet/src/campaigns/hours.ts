/**
 * A campaign's update hours: "HH:MM-HH:MM" in Europe/London wall-clock time, start included and end
 * excluded, possibly across midnight ("19:00-07:00"). A box reboots into the new version a few
 * seconds after its download, and it is the surgery's router and SIP proxy: outside the hours no
 * box is sent the command. The UK offset (GMT or BST) comes from Intl, so a window means the same
 * clock times all year.
 */
const HOURS = /^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$/;
const UK = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });

/** Start and end as minutes after UK midnight; undefined when `hours` is not "HH:MM-HH:MM" with start and end different. */
export function parseHours(hours: string): { start: number; end: number } | undefined {
  const m = HOURS.exec(hours);
  if (!m) return undefined;
  const start = Number(m[1]) * 60 + Number(m[2]);
  const end = Number(m[3]) * 60 + Number(m[4]);
  return start === end ? undefined : { start, end };
}

/** Problems with an update-hours value, in words (empty: fine; null or '' is "any time"). */
export function hoursProblems(hours: string | null | undefined): string[] {
  if (!hours) return [];
  if (!HOURS.test(hours)) return ['update hours must be two UK times like 19:00-07:00 (give both, or leave both empty for any time)'];
  if (!parseHours(hours)) return ['update hours: the start and end must differ (19:00-07:00 is overnight; leave both empty for any time)'];
  return [];
}

/** Minutes after midnight on a UK wall clock at `t` (epoch ms). */
export function ukMinutes(t: number): number {
  const parts = UK.formatToParts(t);
  const get = (k: string) => Number(parts.find((p) => p.type === k)?.value ?? 0);
  return get('hour') * 60 + get('minute');
}

/** Whether `t` falls within the update hours (null / empty: any time). An unparsable value allows nothing: planning refuses one. */
export function inHours(hours: string | null | undefined, t: number): boolean {
  if (!hours) return true;
  const w = parseHours(hours);
  if (!w) return false;
  const m = ukMinutes(t);
  return w.start < w.end ? m >= w.start && m < w.end : m >= w.start || m < w.end;
}
