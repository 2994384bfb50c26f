import { createHash, randomUUID } from 'node:crypto';
import type { Clock } from '../../../common/clock.js';
import { AppError, describeError, isAppError } from '../../../common/errors.js';
import type { Logger } from '../../../common/log.js';
import { retry } from '../../../common/retry.js';
import type { DayListSource } from './day-list.js';
import { isoDate } from '../../../common/zoned-time.js';
import type { FetchedRecord } from './gpconnect/client.js';
import type { DayListEntry } from './model.js';
import type { RecordsStore } from './store.js';

/**
 * One sync: refresh the day lists of today and the next working day, then fetch the summary of
 * every patient booked on them. Invariants:
 * - a day list is replaced only by a complete one; a failed fetch keeps yesterday's good copy;
 * - each patient is written in its own transaction, together with its queue mark, so a kill -9
 *   leaves every patient at its old or new version and the queue says exactly what is left;
 * - nothing is deleted on error: only the purge of patients outside the booking window deletes;
 * - a run interrupted by a crash is resumed (same run id, only its pending patients) next time.
 */
export interface SummarySource {
  fetchPatient(nhsNumber: string, fetchedAt: number): Promise<FetchedRecord>;
}

export interface SyncOptions {
  timeZone: string;
  workingDays: readonly number[];
  concurrency: number;
  summaryMaxAgeMs: number;
  retries: number;
  clock: Clock;
  log: Logger;
  onProgress?: (p: SyncProgress) => void;
  /** Stop early (agent stopping); progress is kept for the next run. */
  signal?: AbortSignal;
}

export interface SyncProgress {
  runId: string;
  phase: 'day-list' | 'summaries' | 'done';
  done: number;
  total: number;
  errors: number;
}

export interface SyncResult {
  runId: string;
  resumed: boolean;
  dates: string[];
  dayListErrors: string[];
  fetched: number;
  changed: number;
  unchanged: number;
  withheld: number;
  errors: number;
  skippedFresh: number;
  purged: number;
  patients: number;
  appointments: number;
  durationMs: number;
  asOf: number | null;
  lastError: string | null;
}

/** Today and the next working day (YYYY-MM-DD, practice time zone). */
export function bookingWindow(now: number, timeZone: string, workingDays: readonly number[]): string[] {
  const today = isoDate(now, timeZone);
  const days = workingDays.length ? workingDays : [1, 2, 3, 4, 5];
  for (let i = 1; i <= 14; i++) {
    const d = new Date(`${today}T12:00:00Z`);
    d.setUTCDate(d.getUTCDate() + i);
    if (days.includes(d.getUTCDay())) return [today, d.toISOString().slice(0, 10)];
  }
  return [today];
}

/** Content hash of a summary, independent of when it was fetched. */
export function summaryHash(rec: FetchedRecord): string {
  const { fetchedAt: _f, ...rest } = rec.summary;
  void _f;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex');
}

export async function runSync(store: RecordsStore, dayList: DayListSource, summaries: SummarySource, o: SyncOptions): Promise<SyncResult> {
  const t0 = o.clock.monotonic();
  const startedAt = o.clock.now();
  const dates = bookingWindow(startedAt, o.timeZone, o.workingDays);

  // Resume an interrupted run (its queue is in the store) or start a new one.
  const prev = store.getMeta('syncRun');
  const resumed = prev !== null;
  const runId = prev ?? randomUUID();
  if (!resumed) {
    store.queueClear();
    store.setMeta('syncRun', runId);
  }
  const progress: SyncProgress = { runId, phase: 'day-list', done: 0, total: 0, errors: 0 };
  o.onProgress?.({ ...progress });

  const dayListErrors: string[] = [];
  for (const date of dates) {
    try {
      const rows = await dayList.fetchDay(date);
      // An empty answer where we hold a list is far likelier a failing upstream (an empty search
      // result, an extract written mid-export) than a day whose every booking vanished: applying it
      // would wipe the day and purge its patients. Keep the cached list and report an error instead.
      const cached = rows.length === 0 ? store.dayList(date).length : 0;
      if (cached > 0) throw new AppError('UPSTREAM_ERROR', `day list came back empty; keeping the ${cached} cached appointments`);
      const at = o.clock.now();
      const entries: DayListEntry[] = rows.map((r) => ({ ...r, date, hasSummary: false, withheld: false, fetchedAt: at }));
      store.replaceDayList(date, entries, at);
    } catch (e) {
      dayListErrors.push(`${date}: ${describeError(e).message}`);
      o.log.warn('day list fetch failed; keeping cached list', { date, error: describeError(e).message });
    }
  }
  // Purging only ever removes patients outside the window; a failed day list keeps its old rows.
  const purged = store.purgeOutside(dates);

  const booked = store.bookedPatients(dates);
  const already = new Set(resumed ? store.queuePending(runId) : []);
  const due = booked.filter((id) => {
    if (already.has(id)) return false;
    const last = store.lastFetched(id);
    return last === null || startedAt - last >= o.summaryMaxAgeMs;
  });
  store.queueAdd(runId, due, startedAt);
  const pending = store.queuePending(runId).filter((id) => booked.includes(id));
  const skippedFresh = booked.length - pending.length;
  progress.phase = 'summaries';
  progress.total = pending.length;
  o.onProgress?.({ ...progress });

  let changed = 0;
  let unchanged = 0;
  let withheld = 0;
  let lastError: string | null = dayListErrors[0] ?? null;
  let next = 0;
  const worker = async () => {
    while (next < pending.length && !o.signal?.aborted) {
      const id = pending[next++]!;
      try {
        const fetchedAt = o.clock.now();
        const rec = await retry(() => summaries.fetchPatient(id, fetchedAt), {
          retries: o.retries,
          initialMs: 500,
          maxMs: 5000,
          clock: o.clock,
          shouldRetry: (e) => isAppError(e) && e.details?.transient === true,
        });
        if (rec.restricted) {
          store.transaction(() => {
            store.withholdPatient(id, rec.restricted!, fetchedAt);
            store.queueMark(id, 'withheld', fetchedAt);
          });
          withheld++;
        } else {
          const hash = summaryHash(rec);
          const before = store.patientVersion(id);
          store.transaction(() => {
            if (before?.hash === hash) store.touchPatient(id, fetchedAt);
            else store.putPatient({ summary: { ...rec.summary, patient: { ...rec.summary.patient, id } }, hash, etag: rec.etag, lastUpdated: rec.lastUpdated });
            store.queueMark(id, 'done', fetchedAt);
          });
          if (before?.hash === hash) unchanged++;
          else changed++;
        }
      } catch (e) {
        progress.errors++;
        lastError = describeError(e).message;
        store.queueMark(id, 'error', o.clock.now(), lastError);
      }
      progress.done++;
      o.onProgress?.({ ...progress });
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, Math.max(1, pending.length)) }, worker));

  const complete = !o.signal?.aborted;
  if (complete) store.deleteMeta('syncRun');
  // asOf moves only when the whole picture is current: every day list and every patient fetched.
  if (complete && dayListErrors.length === 0 && progress.errors === 0) store.setMeta('asOf', String(startedAt));
  progress.phase = 'done';
  o.onProgress?.({ ...progress });
  const meta = store.meta();
  return {
    runId,
    resumed,
    dates,
    dayListErrors,
    fetched: changed + unchanged + withheld,
    changed,
    unchanged,
    withheld,
    errors: progress.errors,
    skippedFresh,
    purged,
    patients: meta.patients,
    appointments: meta.appointments,
    durationMs: Math.round(o.clock.monotonic() - t0),
    asOf: meta.asOf,
    lastError,
  };
}
