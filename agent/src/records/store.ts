import type Database from 'better-sqlite3-multiple-ciphers';
import { Sqlite } from '../core/sqlite.js';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { migrate, type Db } from '../core/db.js';
import { AppError } from '../../../common/errors.js';
import type { Clinician, DayListEntry, PatientListItem, PatientSummary, StoreMeta } from './model.js';

/**
 * The encrypted records cache: SQLite with SQLCipher-compatible page encryption
 * (better-sqlite3-multiple-ciphers, `cipher=sqlcipher`, SQLCipher 4 defaults). The WAL is
 * encrypted too, so nothing readable lands on the SD card at any moment.
 *
 * The key is a raw 256-bit data key (see key.ts); it is passed as `x'hex'` so SQLCipher does not
 * run its own PBKDF2 on every open (the KEK derivation already did the slow part).
 *
 * Each patient's summary is one JSON row written in its own transaction: a sync that dies half way
 * leaves every patient either at its old or its new version, never half of each.
 */
export const RECORDS_OWNER = 'records';

const migrations = [
  {
    version: 1,
    up: `
      CREATE TABLE rec_patients (
        id TEXT PRIMARY KEY,
        nhs_number TEXT,
        name TEXT NOT NULL,
        name_lc TEXT NOT NULL,
        dob TEXT,
        sex TEXT,
        summary TEXT NOT NULL,
        hash TEXT NOT NULL,
        etag TEXT,
        last_updated TEXT,
        fetched_at INTEGER NOT NULL
      );
      CREATE INDEX rec_patients_nhs ON rec_patients(nhs_number);
      CREATE INDEX rec_patients_dob ON rec_patients(dob);
      CREATE TABLE rec_appointments (
        id TEXT PRIMARY KEY,
        date TEXT NOT NULL,
        start INTEGER NOT NULL,
        end INTEGER,
        clinician_id TEXT,
        clinician_name TEXT,
        patient_id TEXT,
        patient_name TEXT,
        nhs_number TEXT,
        dob TEXT,
        status TEXT NOT NULL,
        type TEXT,
        location TEXT,
        fetched_at INTEGER NOT NULL
      );
      CREATE INDEX rec_appointments_day ON rec_appointments(date, clinician_id, start);
      CREATE INDEX rec_appointments_patient ON rec_appointments(patient_id);
      CREATE TABLE rec_withheld (patient_id TEXT PRIMARY KEY, reason TEXT NOT NULL, at INTEGER NOT NULL);
      CREATE TABLE rec_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE rec_sync_queue (
        patient_id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending','done','error','withheld')),
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        updated_at INTEGER NOT NULL
      );
    `,
  },
  {
    // The viewer checks a cached page against the record's version on every view: a covering index
    // answers that from a few index pages, without decrypting the row's summary overflow pages.
    version: 2,
    up: `CREATE INDEX rec_patients_version ON rec_patients(id, hash, fetched_at);`,
  },
];

export interface OpenStoreOptions {
  /** 32-byte data key. */
  key: Buffer;
}

export interface PatientWrite {
  summary: PatientSummary;
  hash: string;
  etag: string | null;
  lastUpdated: string | null;
}

type AppointmentRow = {
  id: string;
  date: string;
  start: number;
  end: number | null;
  clinician_id: string | null;
  clinician_name: string | null;
  patient_id: string | null;
  patient_name: string | null;
  nhs_number: string | null;
  dob: string | null;
  status: string;
  type: string | null;
  location: string | null;
  fetched_at: number;
  has_summary: number;
  withheld: number;
};

export class RecordsStore {
  private constructor(
    readonly db: Db,
    readonly path: string,
  ) {}

  /** Open (creating when absent) the encrypted store. Throws UNAUTHORIZED when the key is wrong. */
  static open(path: string, opts: OpenStoreOptions): RecordsStore {
    if (opts.key.length !== 32) throw new AppError('BAD_REQUEST', 'records data key must be 32 bytes');
    if (path !== ':memory:') {
      mkdirSync(dirname(path), { recursive: true });
      // Owner-only from the first byte (SQLite gives -wal/-shm the main file's mode).
      if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
      chmodSync(path, 0o600);
    }
    const raw = new Sqlite(path);
    try {
      raw.pragma(`cipher='sqlcipher'`);
      raw.pragma('legacy=4');
      raw.pragma(`key="x'${opts.key.toString('hex')}'"`);
      // The first read proves the key: a wrong key makes the header undecryptable.
      raw.prepare('SELECT count(*) FROM sqlite_master').get();
    } catch (e) {
      raw.close();
      throw new AppError('UNAUTHORIZED', 'records store cannot be opened with this key', undefined, { cause: e });
    }
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = FULL');
    raw.pragma('busy_timeout = 5000');
    // A 512 KiB page cache. better-sqlite3 (and this fork) build SQLite with a 16 MB default, and this
    // connection stays open in the resident agent: with the cache holding every decrypted page it
    // touched, the bench's small synced store already cost ~3 MB RSS (make bench-memory 98.1-99.5 ->
    // 95.1 MB at 1 MiB; 1 MiB -> 512 KiB took ~1 MB more, 79.2-78.9 -> 78.0-78.4 MB) and a practice's
    // full store could hold 16 MB. A miss is a read from the OS page cache and one page decrypt; make
    // bench-records at 512 KiB: day list p99 12.7-13.1 ms, patient summary 11.0-12.1 ms under the stress shapes.
    raw.pragma('cache_size = -512');
    // Freed pages are zeroed so purged patients do not linger in the file (encrypted anyway).
    raw.pragma('secure_delete = ON');
    raw.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      owner TEXT NOT NULL, version INTEGER NOT NULL, applied_at INTEGER NOT NULL, PRIMARY KEY (owner, version))`);
    // Same API as better-sqlite3 (it is a fork); core/db.ts types against that.
    const db = raw as unknown as Db;
    migrate(db, RECORDS_OWNER, migrations);
    return new RecordsStore(db, path);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // ---- queries (the viewer's contract: add, don't break) ----

  /** The appointments of one day (YYYY-MM-DD), optionally one clinician's, in start order. */
  dayList(date: string, clinicianId?: string): DayListEntry[] {
    const sql = `SELECT a.*, (p.id IS NOT NULL) AS has_summary, (w.patient_id IS NOT NULL) AS withheld
      FROM rec_appointments a
      LEFT JOIN rec_patients p ON p.id = a.patient_id
      LEFT JOIN rec_withheld w ON w.patient_id = a.patient_id
      WHERE a.date = ? ${clinicianId ? 'AND a.clinician_id = ?' : ''}
      ORDER BY a.start, a.clinician_name, a.id`;
    const rows = (clinicianId ? this.stmt(sql).all(date, clinicianId) : this.stmt(sql).all(date)) as AppointmentRow[];
    return rows.map(toDayListEntry);
  }

  /** Clinicians with appointments on a day, by name. */
  clinicians(date: string): Clinician[] {
    return this.stmt(
      `SELECT clinician_id AS id, COALESCE(MAX(clinician_name), clinician_id) AS name, count(*) AS appointments
       FROM rec_appointments WHERE date = ? AND clinician_id IS NOT NULL GROUP BY clinician_id ORDER BY name`,
    ).all(date) as Clinician[];
  }

  patientSummary(patientId: string): PatientSummary | null {
    return this.patientSummaryStamped(patientId)?.summary ?? null;
  }

  /**
   * A summary with its version stamp (content hash + fetch time), read in one statement so the two
   * always belong together: the viewer keeps a rendered page under the stamp.
   */
  patientSummaryStamped(patientId: string): { summary: PatientSummary; stamp: string } | null {
    type Row = { summary: string; hash: string; fetched_at: number };
    const row = this.stmt('SELECT summary, hash, fetched_at FROM rec_patients WHERE id = ?').get(patientId) as Row | undefined;
    if (!row) return null;
    // fetched_at is the truth: an unchanged re-fetch only bumps the column (see touchPatient).
    const s = JSON.parse(row.summary) as PatientSummary;
    s.fetchedAt = row.fetched_at;
    return { summary: s, stamp: `${row.hash}|${row.fetched_at}` };
  }

  /** The current version stamp of a patient's summary (null when not cached), from the covering index only. */
  summaryStamp(patientId: string): string | null {
    const sql = 'SELECT hash, fetched_at FROM rec_patients INDEXED BY rec_patients_version WHERE id = ?';
    const r = this.stmt(sql).get(patientId) as { hash: string; fetched_at: number } | undefined;
    return r ? `${r.hash}|${r.fetched_at}` : null;
  }

  /**
   * Changes whenever anything a day list shows may have changed: a write through this store object
   * (sync, purge, withhold) or a commit by another connection to the file (PRAGMA data_version; a
   * CLI restore, say). Audit and capture writes on this connection do not change it: the viewer
   * reads those per request.
   */
  viewVersion(): string {
    return `${this.writes}|${(this.stmt('PRAGMA data_version').get() as { data_version: number }).data_version}`;
  }

  private writes = 0;

  /**
   * Search by NHS number (10 digits, spaces allowed), date of birth (YYYY-MM-DD or DD/MM/YYYY) or
   * name (every word must match the start of a name part, case-insensitive).
   */
  search(q: string, limit = 50): PatientListItem[] {
    const text = q.trim();
    if (!text) return [];
    const cols = 'id, nhs_number AS nhsNumber, name, dob, sex, fetched_at AS fetchedAt';
    const digits = text.replace(/[\s-]/g, '');
    if (/^\d{10}$/.test(digits)) {
      return this.stmt(`SELECT ${cols} FROM rec_patients WHERE nhs_number = ? ORDER BY name LIMIT ?`).all(digits, limit) as PatientListItem[];
    }
    const dob = parseDob(text);
    if (dob) return this.stmt(`SELECT ${cols} FROM rec_patients WHERE dob = ? ORDER BY name LIMIT ?`).all(dob, limit) as PatientListItem[];
    const words = text
      .toLowerCase()
      .split(/[\s,]+/)
      .filter(Boolean)
      .slice(0, 4);
    // name_lc is " family given1 given2 " so " word" matches the start of any name part.
    const where = words.map(() => `name_lc LIKE ? ESCAPE '\\'`).join(' AND ');
    const args = words.map((w) => `% ${w.replace(/[\\%_]/g, (c) => '\\' + c)}%`);
    return this.stmt(`SELECT ${cols} FROM rec_patients WHERE ${where} ORDER BY name LIMIT ?`).all(...args, limit) as PatientListItem[];
  }

  meta(): StoreMeta {
    const count = (sql: string) => (this.stmt(sql).get() as { n: number }).n;
    const dates = (this.stmt('SELECT DISTINCT date FROM rec_appointments ORDER BY date').all() as { date: string }[]).map((r) => r.date);
    const num = (k: string) => {
      const v = this.getMeta(k);
      return v === null ? null : Number(v);
    };
    return {
      asOf: num('asOf'),
      dayListAsOf: num('dayListAsOf'),
      patients: count('SELECT count(*) AS n FROM rec_patients'),
      appointments: count('SELECT count(*) AS n FROM rec_appointments'),
      withheld: count('SELECT count(*) AS n FROM rec_withheld'),
      dates,
    };
  }

  // ---- writes (sync only) ----

  /** Change detection for incremental sync: what we stored last time for this patient. */
  patientVersion(patientId: string): { hash: string; etag: string | null; lastUpdated: string | null; fetchedAt: number } | null {
    const r = this.stmt('SELECT hash, etag, last_updated AS lastUpdated, fetched_at AS fetchedAt FROM rec_patients WHERE id = ?').get(patientId);
    return (r as { hash: string; etag: string | null; lastUpdated: string | null; fetchedAt: number } | undefined) ?? null;
  }

  /** One patient, one transaction. */
  putPatient(w: PatientWrite): void {
    this.writes++;
    const p = w.summary.patient;
    const nameLc = ` ${[p.family ?? '', ...p.given].join(' ').toLowerCase().replace(/[,]+/g, ' ').replace(/\s+/g, ' ').trim()} `;
    this.db.transaction(() => {
      this.stmt(
        `INSERT INTO rec_patients (id, nhs_number, name, name_lc, dob, sex, summary, hash, etag, last_updated, fetched_at)
         VALUES (@id, @nhs, @name, @nameLc, @dob, @sex, @summary, @hash, @etag, @lastUpdated, @fetchedAt)
         ON CONFLICT(id) DO UPDATE SET nhs_number=excluded.nhs_number, name=excluded.name, name_lc=excluded.name_lc,
           dob=excluded.dob, sex=excluded.sex, summary=excluded.summary, hash=excluded.hash, etag=excluded.etag,
           last_updated=excluded.last_updated, fetched_at=excluded.fetched_at`,
      ).run({
        id: p.id,
        nhs: p.nhsNumber,
        name: p.name,
        nameLc,
        dob: p.dob,
        sex: p.sex,
        summary: JSON.stringify(w.summary),
        hash: w.hash,
        etag: w.etag,
        lastUpdated: w.lastUpdated,
        fetchedAt: w.summary.fetchedAt,
      });
      this.stmt('DELETE FROM rec_withheld WHERE patient_id = ?').run(p.id);
    })();
  }

  /** Mark a patient fetched again but unchanged (incremental sync): refresh fetchedAt only. */
  touchPatient(patientId: string, fetchedAt: number): void {
    this.writes++;
    this.stmt('UPDATE rec_patients SET fetched_at = ? WHERE id = ?').run(fetchedAt, patientId);
  }

  /**
   * A patient the upstream flags sensitive/confidential: any cached copy is removed and only the
   * fact "withheld" is kept, so the day list can say why there is no summary.
   */
  withholdPatient(patientId: string, reason: string, at: number): void {
    this.writes++;
    this.db.transaction(() => {
      this.stmt('DELETE FROM rec_patients WHERE id = ?').run(patientId);
      this.stmt('INSERT OR REPLACE INTO rec_withheld (patient_id, reason, at) VALUES (?, ?, ?)').run(patientId, reason, at);
    })();
  }

  /** Replace one day's list atomically; only called with a complete, successfully fetched list. */
  replaceDayList(date: string, entries: readonly DayListEntry[], fetchedAt: number): void {
    this.writes++;
    this.db.transaction(() => {
      this.stmt('DELETE FROM rec_appointments WHERE date = ?').run(date);
      const ins = this.stmt(
        `INSERT OR REPLACE INTO rec_appointments (id, date, start, end, clinician_id, clinician_name, patient_id, patient_name,
           nhs_number, dob, status, type, location, fetched_at)
         VALUES (@appointmentId, @date, @start, @end, @clinicianId, @clinicianName, @patientId, @patientName, @nhsNumber,
           @dob, @status, @type, @location, @fetchedAt)`,
      );
      for (const e of entries) ins.run({ ...e, date, fetchedAt });
      this.setMeta('dayListAsOf', String(fetchedAt));
      this.bumpDayListsVersion();
    })();
  }

  /**
   * A counter that changes whenever any day's appointments change (replace or purge), inside the
   * same transaction: the viewer caches what it derives from the lists (clinicians, cached days) by it.
   */
  dayListsVersion(): string | null {
    return this.getMeta('dayListsVersion');
  }

  private bumpDayListsVersion(): void {
    this.setMeta('dayListsVersion', String(Number(this.getMeta('dayListsVersion') ?? 0) + 1));
  }

  /**
   * Remove every patient (and their withheld marker) not booked on any of `keepDates`, and the
   * day lists of other dates. Returns the number of patients removed.
   */
  purgeOutside(keepDates: readonly string[]): number {
    this.writes++;
    const marks = keepDates.map(() => '?').join(',') || "''";
    return this.db.transaction(() => {
      if (this.stmt(`DELETE FROM rec_appointments WHERE date NOT IN (${marks})`).run(...keepDates).changes) this.bumpDayListsVersion();
      const keep = `SELECT patient_id FROM rec_appointments WHERE patient_id IS NOT NULL`;
      const n = this.stmt(`DELETE FROM rec_patients WHERE id NOT IN (${keep})`).run().changes;
      this.stmt(`DELETE FROM rec_withheld WHERE patient_id NOT IN (${keep})`).run();
      return n;
    })();
  }

  /**
   * Retention backstop (records.retention.cacheMaxAgeHours): drop anything fetched before `cutoff`,
   * whatever the day list says, so a box whose sync has stopped does not keep patient data forever.
   */
  purgeFetchedBefore(cutoff: number): { patients: number; appointments: number } {
    this.writes++;
    return this.db.transaction(() => {
      const appointments = this.stmt('DELETE FROM rec_appointments WHERE fetched_at < ?').run(cutoff).changes;
      if (appointments) this.bumpDayListsVersion();
      const patients = this.stmt('DELETE FROM rec_patients WHERE fetched_at < ?').run(cutoff).changes;
      this.stmt('DELETE FROM rec_withheld WHERE at < ?').run(cutoff);
      return { patients, appointments };
    })();
  }

  // ---- resumable sync queue (progress survives a crash: see sync.ts) ----

  /** Patients booked on `dates` (with an NHS number: only those can be fetched from GP Connect). */
  bookedPatients(dates: readonly string[]): string[] {
    const marks = dates.map(() => '?').join(',') || "''";
    return (
      this.stmt(
        `SELECT DISTINCT patient_id AS id FROM rec_appointments WHERE date IN (${marks}) AND nhs_number IS NOT NULL AND patient_id IS NOT NULL AND ` +
          `status NOT IN ('cancelled','entered-in-error') ORDER BY patient_id`,
      ).all(...dates) as { id: string }[]
    ).map((r) => r.id);
  }

  /** When we last fetched this patient (summary or withheld marker), or null. */
  lastFetched(patientId: string): number | null {
    const r = this.stmt('SELECT COALESCE((SELECT fetched_at FROM rec_patients WHERE id = ?), (SELECT at FROM rec_withheld WHERE patient_id = ?)) AS t').get(
      patientId,
      patientId,
    ) as { t: number | null };
    return r.t;
  }

  queueAdd(runId: string, patientIds: readonly string[], now: number): void {
    const ins = this.stmt(`INSERT INTO rec_sync_queue (patient_id, run_id, state, attempts, updated_at) VALUES (?, ?, 'pending', 0, ?)
      ON CONFLICT(patient_id) DO UPDATE SET run_id = excluded.run_id, state = 'pending', error = NULL, updated_at = excluded.updated_at`);
    this.db.transaction(() => {
      for (const id of patientIds) ins.run(id, runId, now);
    })();
  }

  queueClear(): void {
    this.stmt('DELETE FROM rec_sync_queue').run();
  }

  queuePending(runId: string): string[] {
    return (
      this.stmt(`SELECT patient_id AS id FROM rec_sync_queue WHERE run_id = ? AND state = 'pending' ORDER BY patient_id`).all(runId) as { id: string }[]
    ).map((r) => r.id);
  }

  queueCounts(runId: string): Record<'pending' | 'done' | 'error' | 'withheld', number> {
    const out = { pending: 0, done: 0, error: 0, withheld: 0 };
    for (const r of this.stmt('SELECT state, count(*) AS n FROM rec_sync_queue WHERE run_id = ? GROUP BY state').all(runId) as {
      state: keyof typeof out;
      n: number;
    }[])
      out[r.state] = r.n;
    return out;
  }

  queueMark(patientId: string, state: 'done' | 'error' | 'withheld', now: number, error: string | null = null): void {
    this.stmt('UPDATE rec_sync_queue SET state = ?, error = ?, attempts = attempts + 1, updated_at = ? WHERE patient_id = ?').run(state, error, now, patientId);
  }

  /** Run `fn` in one transaction (nested calls become savepoints). */
  transaction<T>(fn: () => T): T {
    this.writes++;
    return this.db.transaction(fn)();
  }

  getMeta(key: string): string | null {
    const r = this.stmt('SELECT value FROM rec_meta WHERE key = ?').get(key) as { value: string } | undefined;
    return r?.value ?? null;
  }

  setMeta(key: string, value: string): void {
    this.writes++;
    this.stmt('INSERT INTO rec_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  deleteMeta(key: string): void {
    this.writes++;
    this.stmt('DELETE FROM rec_meta WHERE key = ?').run(key);
  }

  private readonly cache = new Map<string, Database.Statement>();
  private stmt(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) this.cache.set(sql, (s = (this.db as unknown as Database.Database).prepare(sql)));
    return s;
  }
}

function toDayListEntry(r: AppointmentRow): DayListEntry {
  return {
    appointmentId: r.id,
    date: r.date,
    start: r.start,
    end: r.end,
    clinicianId: r.clinician_id,
    clinicianName: r.clinician_name,
    patientId: r.patient_id,
    patientName: r.patient_name,
    nhsNumber: r.nhs_number,
    dob: r.dob,
    status: r.status,
    type: r.type,
    location: r.location,
    hasSummary: r.has_summary === 1,
    withheld: r.withheld === 1,
    fetchedAt: r.fetched_at,
  };
}

/** "1984-02-29" or "29/02/1984" -> "1984-02-29"; anything else null. */
export function parseDob(s: string): string | null {
  let m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (m) return `${m[1]}-${m[2]}-${m[3]}`;
  m = /^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$/.exec(s);
  if (m) return `${m[3]}-${m[2]!.padStart(2, '0')}-${m[1]!.padStart(2, '0')}`;
  return null;
}
