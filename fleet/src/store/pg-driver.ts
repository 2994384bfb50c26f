import pg from 'pg';
import type { Param, Row, SqlDriver } from './driver.js';

// BIGINT (epoch ms, counters) as JS numbers: every value we store is below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

function numbered(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

type Queryable = { query: (text: string, values?: Param[]) => Promise<pg.QueryResult> };

class PgQueries {
  constructor(protected readonly q: Queryable) {}
  async all<T>(sql: string, params: Param[] = []): Promise<T[]> {
    return (await this.q.query(numbered(sql), params)).rows as T[];
  }
  async get<T>(sql: string, params: Param[] = []): Promise<T | undefined> {
    return (await this.q.query(numbered(sql), params)).rows[0] as T | undefined;
  }
  async run(sql: string, params: Param[] = []): Promise<{ changes: number }> {
    return { changes: (await this.q.query(numbered(sql), params)).rowCount ?? 0 };
  }
  async exec(sql: string): Promise<void> {
    await this.q.query(sql);
  }
}

class PgTx extends PgQueries implements SqlDriver {
  readonly dialect = 'postgres' as const;
  tx<T>(fn: (d: SqlDriver) => Promise<T>): Promise<T> {
    return fn(this); // already inside one
  }
  async exclusive<T>(): Promise<{ ran: false }> {
    throw new Error('exclusive() inside a transaction');
  }
  async close(): Promise<void> {}
}

/** node-postgres pool; a transaction takes one client for its whole length. */
export class PgDriver extends PgQueries implements SqlDriver {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;

  constructor(url: string, poolSize = 5) {
    const pool = new pg.Pool({ connectionString: url, max: Math.max(2, poolSize) }); // exclusive() holds one while fn uses another
    super(pool);
    this.pool = pool;
    // An idle client losing its server must not become an unhandled 'error' that ends the process.
    pool.on('error', () => {});
  }

  async tx<T>(fn: (d: SqlDriver) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const r = await fn(new PgTx(client));
      await client.query('COMMIT');
      return r;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  }

  /** The lock is held by one pooled connection for fn's length; fn's own queries use the others. */
  async exclusive<T>(name: string, fn: () => Promise<T>, opts: { wait?: boolean } = {}): Promise<{ ran: true; value: T } | { ran: false }> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      const key = `surgery-edge-fleet:${name}`;
      if (opts.wait) await client.query('SELECT pg_advisory_lock(hashtext($1))', [key]);
      else if (!(await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [key])).rows[0]?.ok) return { ran: false };
      try {
        return { ran: true, value: await fn() };
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', [key]).catch(() => (broken = true));
      }
    } catch (e) {
      broken = true;
      throw e;
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

export type { Row };
