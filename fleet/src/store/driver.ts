import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type Param = string | number | null;
export type Row = Record<string, unknown>;

/**
 * The little a Store needs from a SQL database. SQL is written once with `?` placeholders and
 * portable syntax (ON CONFLICT ... DO UPDATE, partial indexes, RETURNING: SQLite 3.35+ and
 * PostgreSQL both have them); the PostgreSQL driver renumbers placeholders to $1..$n.
 */
export interface SqlDriver {
  readonly dialect: 'sqlite' | 'postgres';
  all<T = Row>(sql: string, params?: Param[]): Promise<T[]>;
  get<T = Row>(sql: string, params?: Param[]): Promise<T | undefined>;
  run(sql: string, params?: Param[]): Promise<{ changes: number }>;
  /** Several statements, no parameters (DDL). */
  exec(sql: string): Promise<void>;
  /** All of fn's statements in one transaction; fn gets a driver bound to it. */
  tx<T>(fn: (d: SqlDriver) => Promise<T>): Promise<T>;
  /**
   * fn while holding the lock `name` across every fleet instance on this database (PostgreSQL: a
   * session advisory lock, let go if the instance dies); `wait: false` gives up at once if another
   * instance holds it. SQLite: one instance per file, so fn simply runs.
   */
  exclusive<T>(name: string, fn: () => Promise<T>, opts?: { wait?: boolean }): Promise<{ ran: true; value: T } | { ran: false }>;
  close(): Promise<void>;
}

/**
 * better-sqlite3 is synchronous; transactions are BEGIN/COMMIT around an async fn, serialised by
 * a promise chain so two batches never interleave inside one transaction.
 */
export class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly cache = new Map<string, Database.Statement>();

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    // WAL + synchronous=FULL as the agent's state db: a committed batch survives a power cut.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
  }

  private stmt(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      if (this.cache.size > 500) this.cache.clear();
      this.cache.set(sql, s);
    }
    return s;
  }

  async all<T>(sql: string, params: Param[] = []): Promise<T[]> {
    return this.stmt(sql).all(...params) as T[];
  }
  async get<T>(sql: string, params: Param[] = []): Promise<T | undefined> {
    return this.stmt(sql).get(...params) as T | undefined;
  }
  async run(sql: string, params: Param[] = []): Promise<{ changes: number }> {
    return { changes: this.stmt(sql).run(...params).changes };
  }
  async exec(sql: string): Promise<void> {
    this.db.exec(sql);
  }
  tx<T>(fn: (d: SqlDriver) => Promise<T>): Promise<T> {
    const run = async () => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const r = await fn(this);
        this.db.exec('COMMIT');
        return r;
      } catch (e) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw e;
      }
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => {});
    return p;
  }
  async exclusive<T>(_name: string, fn: () => Promise<T>): Promise<{ ran: true; value: T }> {
    return { ran: true, value: await fn() };
  }
  async close(): Promise<void> {
    await this.chain;
    this.db.close();
  }
}
