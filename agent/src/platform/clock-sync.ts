import { existsSync } from 'node:fs';

/**
 * Is the system clock trustworthy? A Raspberry Pi has no real-time clock: it boots with the time it
 * last saved (systemd-timesyncd's /var/lib/systemd/timesync/clock) and only learns the real time from
 * NTP. Until then every "as of", every staleness check and every time on the status page may be wrong
 * (clinical hazard H7, docs/clinical-safety.md).
 *
 * Two signals, both cheap enough to read on every health() call:
 *  - systemd-timesyncd (the image's only time daemon, image/build.sh) creates
 *    /run/systemd/timesync/synchronized each time it synchronises with a server
 *    (systemd-timesyncd.service(8)). /run is tmpfs, so the file's presence means "synchronised at
 *    least once since this boot". No other signal is needed: the image runs no chrony or ntpd.
 *  - A floor: a time earlier than the date this check was written is certainly wrong, whatever a
 *    flag file says (a clock reset to 1970 or to a years-old saved time).
 */
export type ClockTrust = 'synced' | 'unconfirmed' | 'wrong';

export const TIMESYNC_FLAG = '/run/systemd/timesync/synchronized';

/** 2026-11-01T00:00:00Z, weeks before the first line of this software (27 Nov 2026): a clock reading earlier is wrong. */
export const CLOCK_FLOOR_MS = Date.UTC(2026, 10, 1);

export interface ClockCheck {
  hostPath(p: string): string;
  /** The time to judge, epoch ms (the agent's clock). */
  now: number;
  floorMs?: number;
}

export function clockTrust(o: ClockCheck): ClockTrust {
  if (!Number.isFinite(o.now) || o.now < (o.floorMs ?? CLOCK_FLOOR_MS)) return 'wrong';
  try {
    return existsSync(o.hostPath(TIMESYNC_FLAG)) ? 'synced' : 'unconfirmed';
  } catch {
    return 'unconfirmed';
  }
}

/**
 * clockTrust for the records viewer's every page: the flag file is stat'ed at most once per
 * `everyMs` (default 1 s; timesyncd's flag appears once per boot and never goes away), while the
 * floor is judged against the current time on every call, so a clock that jumps back is "wrong" at once.
 */
export function cachedClockTrust(o: { hostPath(p: string): string; now(): number; everyMs?: number; floorMs?: number }): () => ClockTrust {
  let checkedAt = -Infinity;
  let flag: ClockTrust = 'unconfirmed';
  return () => {
    const now = o.now();
    if (!Number.isFinite(now) || now < (o.floorMs ?? CLOCK_FLOOR_MS)) return 'wrong';
    const t = performance.now();
    if (t - checkedAt >= (o.everyMs ?? 1000)) {
      flag = clockTrust({ hostPath: o.hostPath, now });
      checkedAt = t;
    }
    return flag;
  };
}
