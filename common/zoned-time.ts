/**
 * An instant's wall-clock time in a time zone, and the few formats the box shows staff: 14:05,
 * "Fri 14 Jul", 14/07/2017, 2017-07-14, Friday.
 *
 * Why not Intl.DateTimeFormat everywhere: the first DateTimeFormat (or toLocale*String) a process
 * builds loads ICU's locale and pattern data, and it stays resident: on a bare node with the unit's
 * flags, 42.9 -> 51.4 MB RSS, against +0.7 MB for Date's local-time getters with TZ set (make
 * bench-memory; docs/architecture.md, memory). The agent makes the practice time zone its own local
 * zone when it starts (`adoptTimeZone`, agent/src/cli/run.ts), so the wall clock in that zone is
 * Date's local getters: the same tz rules (V8 takes them from ICU's zone data either way), none of
 * the formatting data. Any other zone, or a process that did not adopt one (tests, tools), goes
 * through Intl: correct, only larger.
 */

export interface WallClock {
  year: number;
  /** 1-12 */
  month: number;
  day: number;
  hour: number;
  minute: number;
  /** 0 = Sunday */
  weekday: number;
}

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sept', 'Oct', 'Nov', 'Dec'];

// Node's canonical zone names, read once: the fleet validates a merged config per device.
let canonical: Set<string> | undefined;
const isCanonicalTimeZone = (timeZone: string) => (canonical ??= new Set(Intl.supportedValuesOf('timeZone'))).has(timeZone);

/**
 * Make `timeZone` (an IANA name, e.g. Europe/London) this process's local zone. False, with TZ left
 * as it was, when Node does not list it as a canonical zone (an alias such as GB, or a typo): the
 * formatters below then use Intl for it, which knows aliases and refuses typos with a clear error.
 */
export function adoptTimeZone(timeZone: string): boolean {
  if (!isCanonicalTimeZone(timeZone)) return false;
  process.env.TZ = timeZone;
  return true;
}

/**
 * Whether Node knows `timeZone`: a canonical name is looked up in a list (cheap); only an alias
 * (GB, Europe/Belfast) or a typo costs building an Intl formatter to find out.
 */
export function isKnownTimeZone(timeZone: string): boolean {
  if (isCanonicalTimeZone(timeZone)) return true;
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone });
    return true;
  } catch {
    return false;
  }
}

const viaIntl = new Map<string, Intl.DateTimeFormat>();

/** The wall clock of `ms` in `timeZone`; without a zone, in the process's local zone. */
export function wallClock(ms: number, timeZone?: string): WallClock {
  if (timeZone === undefined || timeZone === process.env.TZ) {
    const d = new Date(ms);
    return { year: d.getFullYear(), month: d.getMonth() + 1, day: d.getDate(), hour: d.getHours(), minute: d.getMinutes(), weekday: d.getDay() };
  }
  let f = viaIntl.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      weekday: 'short',
    });
    viaIntl.set(timeZone, f);
  }
  const p: Record<string, string> = {};
  for (const part of f.formatToParts(ms)) p[part.type] = part.value;
  const weekday = WEEKDAYS.findIndex((d) => d.startsWith(p.weekday ?? '-'));
  return { year: Number(p.year), month: Number(p.month), day: Number(p.day), hour: Number(p.hour), minute: Number(p.minute), weekday };
}

const two = (n: number) => String(n).padStart(2, '0');

/** 14:05 (24-hour). */
export function hhmm(ms: number, timeZone?: string): string {
  const w = wallClock(ms, timeZone);
  return `${two(w.hour)}:${two(w.minute)}`;
}

/** 2017-07-14: the local calendar date (day boundaries of the day list). */
export function isoDate(ms: number, timeZone?: string): string {
  const w = wallClock(ms, timeZone);
  return `${String(w.year).padStart(4, '0')}-${two(w.month)}-${two(w.day)}`;
}

/** 14/07/2017, as en-GB writes a date. */
export function ukDate(ms: number, timeZone?: string): string {
  const w = wallClock(ms, timeZone);
  return `${two(w.day)}/${two(w.month)}/${w.year}`;
}

/** Fri 14 Jul (and "Sept", as en-GB writes it) */
export function dayMonth(ms: number, timeZone?: string): string {
  const w = wallClock(ms, timeZone);
  return `${WEEKDAYS[w.weekday]!.slice(0, 3)} ${w.day} ${MONTHS[w.month - 1]}`;
}

/** Friday */
export function weekdayName(ms: number, timeZone?: string): string {
  return WEEKDAYS[wallClock(ms, timeZone).weekday]!;
}
