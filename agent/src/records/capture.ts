import type { Statement } from 'better-sqlite3';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { migrate, type Db } from '../core/db.js';
import { AppError } from '../../../common/errors.js';
import { ulid } from '../core/ids.js';

/**
 * Offline capture: what clinicians and reception record while the clinical system is unreachable
 * (arrivals, structured consultation notes, call-log entries), queued in the encrypted records
 * database and forwarded upstream by forwarder.ts.
 *
 * Every item carries an idempotency key (a ULID). The viewer puts a fresh key into each form it
 * renders, so a double-submitted form is one item; the forwarder sends the key as a header, so a
 * resend after a crash or a lost response is recognised upstream and not filed twice.
 *
 * States: pending -> sent -> accepted | rejected. `sent` is written before the request goes out;
 * if the agent dies with an item in `sent` it is sent again (same key) on restart. Rejected items
 * are never deleted: a person resolves them (retry as a new item, or dismiss with a note).
 */
declare module '../core/events.js' {
  interface EventMap {
    /** No patient data: the capture's own id and kind only. */
    'records.capture-state': { id: string; kind: CaptureKind; state: CaptureState; at: number };
  }
}

export const CAPTURE_OWNER = 'records-capture';
export const CaptureKinds = ['arrival', 'note', 'call'] as const;
export type CaptureKind = (typeof CaptureKinds)[number];
export type CaptureState = 'pending' | 'sent' | 'accepted' | 'rejected';

const text = (max: number) => Type.String({ maxLength: max });
/** Structured payloads, one per kind; the same schemas validate form posts. */
export const CapturePayloads = {
  arrival: Type.Object({ appointmentId: Type.Optional(text(100)), note: Type.Optional(text(500)) }, { additionalProperties: false }),
  note: Type.Object(
    {
      consultationType: Type.Union(['face-to-face', 'telephone', 'video', 'home-visit'].map((v) => Type.Literal(v))),
      history: text(8000),
      examination: Type.Optional(text(8000)),
      assessment: Type.Optional(text(4000)),
      plan: Type.Optional(text(4000)),
      medication: Type.Optional(text(4000)),
    },
    { additionalProperties: false },
  ),
  call: Type.Object(
    {
      direction: Type.Union([Type.Literal('incoming'), Type.Literal('outgoing')]),
      caller: Type.Optional(text(200)),
      summary: text(4000),
      urgency: Type.Union([Type.Literal('routine'), Type.Literal('urgent')]),
      actionNeeded: Type.Optional(text(2000)),
    },
    { additionalProperties: false },
  ),
} satisfies Record<CaptureKind, TSchema>;
export type CapturePayload<K extends CaptureKind = CaptureKind> = Static<(typeof CapturePayloads)[K]>;

export interface CaptureInput {
  /** Idempotency key; generated here when the caller has none. */
  id?: string;
  kind: CaptureKind;
  patientId: string | null;
  payload: unknown;
  author: string;
  role: string;
  device: string;
}

export interface CaptureItem {
  id: string;
  kind: CaptureKind;
  patientId: string | null;
  payload: CapturePayload;
  author: string;
  role: string;
  device: string;
  createdAt: number;
  state: CaptureState;
  stateAt: number;
  attempts: number;
  /** Rejection reason from upstream, or the last transport error while pending. */
  reason: string | null;
  upstreamRef: string | null;
  /** For rejected items a person has dealt with: who, when and how. */
  resolution: string | null;
  resolvedBy: string | null;
  resolvedAt: number | null;
  /** The rejected item this one re-sends, when it is a retry. */
  supersedes: string | null;
}

const migrations = [
  {
    version: 1,
    up: `
      CREATE TABLE rec_captures (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('arrival','note','call')),
        patient_id TEXT,
        payload TEXT NOT NULL,
        author TEXT NOT NULL,
        role TEXT NOT NULL,
        device TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending','sent','accepted','rejected')),
        state_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        reason TEXT,
        upstream_ref TEXT,
        resolution TEXT,
        resolved_by TEXT,
        resolved_at INTEGER,
        supersedes TEXT
      );
      CREATE INDEX rec_captures_state ON rec_captures(state, id);
    `,
  },
  {
    // Captures are kept after filing, so the table only grows: the patient summary's list and the
    // day list's arrivals (read on every view) must not scan it.
    version: 2,
    up: `
      CREATE INDEX rec_captures_patient ON rec_captures(patient_id, id);
      CREATE INDEX rec_captures_kind_created ON rec_captures(kind, created_at);
    `,
  },
];

/** Arrivals older than this belong to appointments no longer cached (the window is two working days). */
const ARRIVALS_LOOKBACK_MS = 7 * 86_400_000;

type Row = {
  id: string;
  kind: CaptureKind;
  patient_id: string | null;
  payload: string;
  author: string;
  role: string;
  device: string;
  created_at: number;
  state: CaptureState;
  state_at: number;
  attempts: number;
  reason: string | null;
  upstream_ref: string | null;
  resolution: string | null;
  resolved_by: string | null;
  resolved_at: number | null;
  supersedes: string | null;
};

const ULID_RE = /^[0-9A-HJKMNP-TV-Z]{26}$/;

export function validatePayload(kind: CaptureKind, payload: unknown): CapturePayload {
  const schema = CapturePayloads[kind] as TSchema;
  if (!Value.Check(schema, payload)) {
    const first = [...Value.Errors(schema, payload)][0];
    throw new AppError('BAD_REQUEST', `invalid ${kind}: ${first ? `${first.path || '/'} ${first.message}` : 'bad payload'}`);
  }
  return payload as CapturePayload;
}

export class CaptureQueue {
  private constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  // Prepared once per SQL text: the viewer reads the queue on every page view.
  private readonly stmts = new Map<string, Statement>();
  private stmt(sql: string): Statement {
    let s = this.stmts.get(sql);
    if (!s) this.stmts.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  static open(db: Db, now: () => number): CaptureQueue {
    migrate(db, CAPTURE_OWNER, migrations);
    return new CaptureQueue(db, now);
  }

  /** A fresh idempotency key for a form about to be rendered. */
  static newKey(now: number): string {
    return ulid(now);
  }

  /**
   * Store one capture durably (WAL, synchronous=FULL: on disk when this returns). Re-submitting the
   * same key returns the existing item unchanged with `created: false`.
   */
  create(input: CaptureInput): { item: CaptureItem; created: boolean } {
    if (!(CaptureKinds as readonly string[]).includes(input.kind)) throw new AppError('BAD_REQUEST', 'unknown capture kind');
    const id = input.id ?? ulid(this.now());
    if (!ULID_RE.test(id)) throw new AppError('BAD_REQUEST', 'capture key must be a ULID');
    const payload = validatePayload(input.kind, input.payload);
    const now = this.now();
    const r = this.stmt(
      `INSERT INTO rec_captures (id, kind, patient_id, payload, author, role, device, created_at, state, state_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT(id) DO NOTHING`,
    ).run(id, input.kind, input.patientId, JSON.stringify(payload), input.author, input.role, input.device.slice(0, 200), now, now);
    const item = this.get(id)!;
    if (r.changes === 0 && (item.kind !== input.kind || item.patientId !== input.patientId)) {
      throw new AppError('CONFLICT', 'capture key already used for a different item');
    }
    return { item, created: r.changes === 1 };
  }

  get(id: string): CaptureItem | null {
    const r = this.stmt('SELECT * FROM rec_captures WHERE id = ?').get(id) as Row | undefined;
    return r ? toItem(r) : null;
  }

  /** Oldest item still to be (re)sent: pending, or `sent` left over from a crash. */
  nextToSend(): CaptureItem | null {
    const r = this.stmt("SELECT * FROM rec_captures WHERE state IN ('pending','sent') ORDER BY id LIMIT 1").get() as Row | undefined;
    return r ? toItem(r) : null;
  }

  markSent(id: string): void {
    this.stmt("UPDATE rec_captures SET state = 'sent', state_at = ?, attempts = attempts + 1 WHERE id = ? AND state IN ('pending','sent')").run(this.now(), id);
  }

  /** The endpoint could not be reached or failed: back to pending with the error for the page. */
  markPending(id: string, error: string): void {
    this.stmt("UPDATE rec_captures SET state = 'pending', state_at = ?, reason = ? WHERE id = ? AND state = 'sent'").run(this.now(), error.slice(0, 500), id);
  }

  markAccepted(id: string, upstreamRef: string | null): void {
    this.stmt("UPDATE rec_captures SET state = 'accepted', state_at = ?, reason = NULL, upstream_ref = ? WHERE id = ? AND state IN ('pending','sent')").run(
      this.now(),
      upstreamRef,
      id,
    );
  }

  markRejected(id: string, reason: string): void {
    this.stmt("UPDATE rec_captures SET state = 'rejected', state_at = ?, reason = ? WHERE id = ? AND state IN ('pending','sent')").run(
      this.now(),
      reason.slice(0, 1000),
      id,
    );
  }

  /**
   * Re-send a rejected item as a new item with a new key (upstream remembers the old key's
   * rejection), optionally with a corrected payload. The old item stays, marked resolved.
   */
  retry(id: string, by: string, payload?: unknown): CaptureItem {
    return this.db
      .transaction(() => {
        const old = this.requireRejected(id);
        const { item } = this.create({
          kind: old.kind,
          patientId: old.patientId,
          payload: payload ?? old.payload,
          author: old.author,
          role: old.role,
          device: old.device,
        });
        this.stmt('UPDATE rec_captures SET supersedes = ? WHERE id = ?').run(old.id, item.id);
        this.resolveRow(old.id, `retried as ${item.id}`, by);
        return this.get(item.id)!;
      })
      .immediate();
  }

  /** A person dealt with a rejected item another way (filed by hand, not needed): keep it, with the note. */
  dismiss(id: string, by: string, note: string): CaptureItem {
    this.requireRejected(id);
    const clean = note.trim();
    if (!clean) throw new AppError('BAD_REQUEST', 'say how the item was resolved');
    this.resolveRow(id, `dismissed: ${clean.slice(0, 500)}`, by);
    return this.get(id)!;
  }

  list(opts: { state?: CaptureState; unresolvedOnly?: boolean; patientId?: string; limit?: number } = {}): CaptureItem[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.state) (where.push('state = ?'), args.push(opts.state));
    if (opts.unresolvedOnly) where.push('resolution IS NULL');
    if (opts.patientId) (where.push('patient_id = ?'), args.push(opts.patientId));
    const sql = `SELECT * FROM rec_captures ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    return (this.stmt(sql).all(...args, opts.limit ?? 200) as Row[]).map(toItem);
  }

  /** Appointment ids with a recorded arrival (for the day list's "Arrived" column). */
  arrivedAppointments(): Set<string> {
    const rows = this.stmt(
      "SELECT json_extract(payload, '$.appointmentId') AS a FROM rec_captures WHERE kind = 'arrival' AND created_at >= ? AND resolution IS NULL",
    ).all(this.now() - ARRIVALS_LOOKBACK_MS) as { a: string | null }[];
    return new Set(rows.map((r) => r.a).filter((a): a is string => !!a));
  }

  counts(): Record<CaptureState, number> & { unresolvedRejected: number } {
    const out = { pending: 0, sent: 0, accepted: 0, rejected: 0, unresolvedRejected: 0 };
    for (const r of this.stmt('SELECT state, count(*) AS n FROM rec_captures GROUP BY state').all() as { state: CaptureState; n: number }[]) out[r.state] = r.n;
    out.unresolvedRejected = (this.stmt("SELECT count(*) AS n FROM rec_captures WHERE state = 'rejected' AND resolution IS NULL").get() as { n: number }).n;
    return out;
  }

  private requireRejected(id: string): CaptureItem {
    const item = this.get(id);
    if (!item) throw new AppError('NOT_FOUND', 'no such capture');
    if (item.state !== 'rejected' || item.resolution) throw new AppError('CONFLICT', 'only unresolved rejected items can be resolved');
    return item;
  }

  private resolveRow(id: string, resolution: string, by: string): void {
    this.stmt('UPDATE rec_captures SET resolution = ?, resolved_by = ?, resolved_at = ? WHERE id = ?').run(resolution, by, this.now(), id);
  }
}

function toItem(r: Row): CaptureItem {
  return {
    id: r.id,
    kind: r.kind,
    patientId: r.patient_id,
    payload: JSON.parse(r.payload) as CapturePayload,
    author: r.author,
    role: r.role,
    device: r.device,
    createdAt: r.created_at,
    state: r.state,
    stateAt: r.state_at,
    attempts: r.attempts,
    reason: r.reason,
    upstreamRef: r.upstream_ref,
    resolution: r.resolution,
    resolvedBy: r.resolved_by,
    resolvedAt: r.resolved_at,
    supersedes: r.supersedes,
  };
}
