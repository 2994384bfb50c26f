import { createHash } from 'node:crypto';
import { migrate, type Db } from '../core/db.js';

/**
 * The records audit trail: every view of patient data and every change (offline capture, resolve,
 * retry) appends one entry. Entries live in the encrypted records database (they name patients),
 * are append-only (triggers refuse UPDATE and DELETE) and are hash-chained: each entry's hash covers
 * its own fields and the previous entry's hash, so editing, deleting or re-ordering any row breaks
 * the chain from that row on and `verify()` names the first broken sequence number.
 *
 * There is deliberately no config switch for any of this: the viewer and capture code call
 * `append()` unconditionally and refuse to serve a page when the append fails.
 *
 * Limitation (documented in docs/records-viewer.md): somebody holding the data key can truncate the
 * tail of the chain without breaking it; `verify()` reports the head so an operator can compare it
 * with a head noted earlier.
 */
export const AUDIT_OWNER = 'records-audit';
export const GENESIS_HASH = '0'.repeat(64);

export type AuditAction =
  | 'view.day-list'
  | 'view.summary'
  | 'view.search'
  | 'view.captures'
  | 'view.demographics'
  | 'view.audit'
  | 'capture.create'
  | 'capture.resolve'
  | 'capture.retry'
  | 'capture.discard'
  | 'capture.state'
  | 'access.denied'
  /** A lookup of a patient who is not in the cache: probing for a patient leaves a trace too. */
  | 'lookup.not-cached'
  /** This database was restored from an off-box backup onto a (replacement) box. */
  | 'system.restore'
  /** Retention purge: names the anchor (last purged seq + hash) the remaining chain hangs from. */
  | 'audit.purge';

export interface AuditInput {
  user: string;
  role: string;
  /** Cache key of the patient concerned (the NHS number), or null for list views. */
  patientId: string | null;
  action: AuditAction;
  /** Where the action came from: the viewing client (address + user agent) or 'agent' for the forwarder. */
  device: string;
  /** Short non-clinical context: the day list's date and clinician, a capture id, a search kind. */
  detail?: string | null;
}

export interface AuditEntry extends Required<AuditInput> {
  seq: number;
  at: number;
  prevHash: string;
  hash: string;
}

export interface AuditVerifyResult {
  ok: boolean;
  entries: number;
  /** First sequence number whose row is missing, altered or out of chain; null when intact. */
  firstBrokenSeq: number | null;
  reason: string | null;
  head: { seq: number; hash: string } | null;
}

const migrations = [
  {
    version: 1,
    up: `
      CREATE TABLE rec_audit (
        seq INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        user TEXT NOT NULL,
        role TEXT NOT NULL,
        patient_id TEXT,
        action TEXT NOT NULL,
        device TEXT NOT NULL,
        detail TEXT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      );
      CREATE INDEX rec_audit_patient ON rec_audit(patient_id, seq);
      CREATE TRIGGER rec_audit_no_update BEFORE UPDATE ON rec_audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
      CREATE TRIGGER rec_audit_no_delete BEFORE DELETE ON rec_audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
    `,
  },
  {
    // Retention: the anchor the chain starts from after old entries are purged (one row).
    version: 2,
    up: `CREATE TABLE rec_audit_checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL, at INTEGER NOT NULL);`,
  },
];

const NO_DELETE_TRIGGER = `CREATE TRIGGER rec_audit_no_delete BEFORE DELETE ON rec_audit
  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`;
export const purgeDetail = (seq: number, hash: string) => `purged seq<=${seq};anchor=${hash}`;

type Row = {
  seq: number;
  at: number;
  user: string;
  role: string;
  patient_id: string | null;
  action: string;
  device: string;
  detail: string | null;
  prev_hash: string;
  hash: string;
};

/** SHA-256 over a canonical JSON array of the fields in a fixed order (no key-order ambiguity). */
export function auditHash(e: Omit<AuditEntry, 'hash'>): string {
  const canonical = JSON.stringify([e.seq, e.at, e.user, e.role, e.patientId, e.action, e.device, e.detail, e.prevHash]);
  return createHash('sha256').update(canonical).digest('hex');
}

export class AuditLog {
  private readonly headStmt;
  private readonly insertStmt;
  private readonly queue: { input: AuditInput; resolve: (e: AuditEntry) => void; reject: (e: unknown) => void }[] = [];
  private constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {
    this.headStmt = db.prepare('SELECT seq, hash FROM rec_audit ORDER BY seq DESC LIMIT 1');
    this.insertStmt = db.prepare(
      `INSERT INTO rec_audit (seq, at, user, role, patient_id, action, device, detail, prev_hash, hash)
       VALUES (@seq, @at, @user, @role, @patientId, @action, @device, @detail, @prevHash, @hash)`,
    );
  }

  /** Create the table and triggers when absent. `db` is the encrypted records store's handle. */
  static open(db: Db, now: () => number): AuditLog {
    migrate(db, AUDIT_OWNER, migrations);
    return new AuditLog(db, now);
  }

  /**
   * Append one entry now (CLI, bus handlers). Throws when the write fails; callers must not serve
   * data then.
   */
  append(input: AuditInput): AuditEntry {
    return this.appendMany([input])[0]!;
  }

  /**
   * Append entries in one IMMEDIATE transaction, so two writers (the viewer and a CLI) cannot both
   * read the same head and fork the chain, and so the batch costs one commit (one fsync under
   * synchronous=FULL) however many entries it holds. All or none are written.
   */
  appendMany(inputs: readonly AuditInput[]): AuditEntry[] {
    return this.db
      .transaction(() => {
        const head = this.headStmt.get() as { seq: number; hash: string } | undefined;
        let seq = head?.seq ?? 0;
        let prevHash = head?.hash ?? GENESIS_HASH;
        return inputs.map((input) => {
          const base = {
            seq: ++seq,
            at: this.now(),
            user: input.user,
            role: input.role,
            patientId: input.patientId,
            action: input.action,
            device: input.device.slice(0, 200),
            detail: input.detail ?? null,
            prevHash,
          };
          const entry: AuditEntry = { ...base, hash: auditHash(base) };
          this.insertStmt.run(entry);
          prevHash = entry.hash;
          return entry;
        });
      })
      .immediate();
  }

  /**
   * Group commit for the viewer: the entry is queued and every entry queued in the same turn of the
   * event loop (e.g. 20 viewers' requests arriving together) is written in one transaction. The
   * promise resolves only after that transaction has committed, so a page is still never sent
   * before its audit entry is on disk; it rejects (for every entry of the batch) when the write
   * fails. setImmediate, not ctx.clock: this is "after the current I/O callbacks", not a delay.
   */
  appendDurable(input: AuditInput): Promise<AuditEntry> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const batch = this.queue.splice(0);
    let entries: AuditEntry[];
    try {
      entries = this.appendMany(batch.map((b) => b.input));
    } catch (e) {
      for (const b of batch) b.reject(e);
      return;
    }
    batch.forEach((b, i) => b.resolve(entries[i]!));
  }

  /**
   * Retention: delete entries older than `before` and keep the chain verifiable. In one IMMEDIATE
   * transaction: append an `audit.purge` entry naming the anchor (seq and hash of the last purged
   * entry) to the chain, delete the old rows (the append-only trigger is lifted for exactly this
   * statement and put back), and store the anchor as the checkpoint. verify() then starts from the
   * checkpoint and also demands that the newest purge entry names it, so moving the checkpoint to
   * hide more deleted rows breaks verification unless the chain itself is forged (which breaks it).
   */
  purgeBefore(before: number): { purged: number; anchor: { seq: number; hash: string } | null } {
    return this.db
      .transaction(() => {
        // Never the head: the chain keeps at least its newest entry besides the purge entry.
        const last = this.db
          .prepare('SELECT seq, hash FROM rec_audit WHERE at < ? AND seq < (SELECT max(seq) FROM rec_audit) ORDER BY seq DESC LIMIT 1')
          .get(before) as { seq: number; hash: string } | undefined;
        if (!last) return { purged: 0, anchor: null };
        this.appendMany([
          { user: 'system', role: 'system', patientId: null, action: 'audit.purge', device: 'agent', detail: purgeDetail(last.seq, last.hash) },
        ]);
        this.db.exec('DROP TRIGGER rec_audit_no_delete');
        const purged = this.db.prepare('DELETE FROM rec_audit WHERE seq <= ?').run(last.seq).changes;
        this.db.exec(NO_DELETE_TRIGGER);
        this.db
          .prepare(
            'INSERT INTO rec_audit_checkpoint (id, seq, hash, at) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = ' +
              'excluded.hash, at = excluded.at',
          )
          .run(last.seq, last.hash, this.now());
        return { purged, anchor: last };
      })
      .immediate();
  }

  /** The retention anchor, when entries have been purged. */
  checkpoint(): { seq: number; hash: string; at: number } | null {
    return (
      (this.db.prepare('SELECT seq, hash, at FROM rec_audit_checkpoint WHERE id = 1').get() as { seq: number; hash: string; at: number } | undefined) ?? null
    );
  }

  /** Walk the whole chain in sequence order (from the retention checkpoint, if any); stops at the first break. */
  verify(): AuditVerifyResult {
    const cp = this.checkpoint();
    let expectedSeq = (cp?.seq ?? 0) + 1;
    let prevHash = cp?.hash ?? GENESIS_HASH;
    let entries = 0;
    let lastPurge: string | null = null;
    const broken = (seq: number, reason: string): AuditVerifyResult => ({ ok: false, entries, firstBrokenSeq: seq, reason, head: null });
    for (const r of this.db.prepare('SELECT * FROM rec_audit ORDER BY seq').iterate() as IterableIterator<Row>) {
      if (r.seq !== expectedSeq) return broken(expectedSeq, `entry ${expectedSeq} is missing (next present is ${r.seq})`);
      if (r.prev_hash !== prevHash) return broken(r.seq, `entry ${r.seq} does not link to entry ${r.seq - 1}`);
      if (auditHash(toEntry(r)) !== r.hash) return broken(r.seq, `entry ${r.seq} was altered (hash mismatch)`);
      if (r.action === 'audit.purge') lastPurge = r.detail;
      prevHash = r.hash;
      expectedSeq++;
      entries++;
    }
    if (cp && lastPurge !== purgeDetail(cp.seq, cp.hash)) {
      return broken(cp.seq + 1, 'the retention checkpoint is not the one the last audit.purge entry names');
    }
    return { ok: true, entries, firstBrokenSeq: null, reason: null, head: entries ? { seq: expectedSeq - 1, hash: prevHash } : null };
  }

  /** Most recent entries first; for the admin audit page and tests. */
  recent(limit = 100, patientId?: string): AuditEntry[] {
    const rows = (
      patientId
        ? this.db.prepare('SELECT * FROM rec_audit WHERE patient_id = ? ORDER BY seq DESC LIMIT ?').all(patientId, limit)
        : this.db.prepare('SELECT * FROM rec_audit ORDER BY seq DESC LIMIT ?').all(limit)
    ) as Row[];
    return rows.map((r) => ({ ...toEntry(r), hash: r.hash }));
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM rec_audit').get() as { n: number }).n;
  }
}

function toEntry(r: Row): Omit<AuditEntry, 'hash'> {
  return {
    seq: r.seq,
    at: r.at,
    user: r.user,
    role: r.role,
    patientId: r.patient_id,
    action: r.action as AuditAction,
    device: r.device,
    detail: r.detail,
    prevHash: r.prev_hash,
  };
}
