import type { Db } from '../core/db.js';
import { migrate } from '../core/db.js';

export type OutboxKind = 'event' | 'telemetry' | 'report';

export interface OutboxRow {
  seq: number;
  id: string;
  kind: OutboxKind;
  topic: string;
  payload: string;
  retain: number;
  createdAt: number;
}

export interface EnqueueResult {
  /** Rows removed to make room (telemetry first, then the oldest events). */
  dropped: number;
  depth: number;
}

/**
 * The durable outbox: everything the agent publishes (except birth and command responses) is
 * committed here first and deleted only when the broker's PUBACK arrives, so a restart, a power
 * cut or a broker outage loses nothing (MQTT.js keeps its queue in memory: mqttjs #398, #1254).
 * Rows go out in `seq` order; `id` (a ULID inside the payload too) lets the fleet drop duplicates
 * after a crash between PUBACK and delete.
 */
export class Outbox {
  constructor(
    private readonly db: Db,
    private readonly maxRows: number,
  ) {}

  static migrate(db: Db): void {
    migrate(db, 'telemetry', [
      {
        version: 1,
        up: `CREATE TABLE telemetry_outbox (
          seq INTEGER PRIMARY KEY AUTOINCREMENT,
          id TEXT NOT NULL UNIQUE,
          kind TEXT NOT NULL CHECK (kind IN ('event','telemetry','report')),
          topic TEXT NOT NULL,
          payload TEXT NOT NULL,
          retain INTEGER NOT NULL DEFAULT 0,
          created_at INTEGER NOT NULL);
        CREATE INDEX telemetry_outbox_kind ON telemetry_outbox (kind, seq);
        CREATE TABLE telemetry_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
      },
    ]);
  }

  enqueue(row: Omit<OutboxRow, 'seq'>): EnqueueResult {
    let dropped = 0;
    this.db.transaction(() => {
      const depth = this.depth();
      if (depth >= this.maxRows) dropped = this.makeRoom(depth - this.maxRows + 1, row.kind);
      if (dropped < 0) {
        // The new row is telemetry and nothing older may go: drop the new sample instead.
        dropped = 1;
        return;
      }
      this.db
        .prepare('INSERT OR IGNORE INTO telemetry_outbox (id, kind, topic, payload, retain, created_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(row.id, row.kind, row.topic, row.payload, row.retain, row.createdAt);
    })();
    return { dropped, depth: this.depth() };
  }

  /**
   * Thin telemetry first: drop every other of the oldest telemetry samples (keeping a coarser
   * history rather than only the newest), then whole oldest telemetry, and only when no telemetry is
   * left the oldest events. A new telemetry sample never evicts an event (returns -1).
   */
  private makeRoom(need: number, incoming: OutboxKind): number {
    const tele = this.db.prepare(`SELECT seq FROM telemetry_outbox WHERE kind = 'telemetry' ORDER BY seq`).all() as { seq: number }[];
    const victims: number[] = [];
    for (let i = 0; i < tele.length && victims.length < need; i += 2) victims.push(tele[i]!.seq);
    for (let i = 1; i < tele.length && victims.length < need; i += 2) victims.push(tele[i]!.seq);
    if (victims.length < need) {
      if (incoming === 'telemetry') {
        this.deleteSeqs(victims);
        return victims.length ? victims.length : -1;
      }
      const ev = this.db.prepare(`SELECT seq FROM telemetry_outbox WHERE kind != 'telemetry' ORDER BY seq LIMIT ?`).all(need - victims.length) as {
        seq: number;
      }[];
      victims.push(...ev.map((r) => r.seq));
    }
    this.deleteSeqs(victims);
    return victims.length;
  }

  private deleteSeqs(seqs: number[]): void {
    const del = this.db.prepare('DELETE FROM telemetry_outbox WHERE seq = ?');
    for (const s of seqs) del.run(s);
  }

  /** The oldest rows, in order, skipping those already in flight (seq > afterSeq). */
  peek(limit: number, afterSeq = 0): OutboxRow[] {
    return this.db
      .prepare('SELECT seq, id, kind, topic, payload, retain, created_at AS createdAt FROM telemetry_outbox WHERE seq > ? ORDER BY seq LIMIT ?')
      .all(afterSeq, limit) as OutboxRow[];
  }

  ack(seq: number): void {
    this.db.prepare('DELETE FROM telemetry_outbox WHERE seq = ?').run(seq);
  }

  depth(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM telemetry_outbox').get() as { n: number }).n;
  }

  getMeta(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM telemetry_meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO telemetry_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  /** Birth/death sequence: persisted and incremented once per MQTT session (Sparkplug B bdSeq). */
  nextBdSeq(): number {
    const n = Number(this.getMeta('bdSeq') ?? '-1') + 1;
    this.setMeta('bdSeq', String(n));
    return n;
  }
}
