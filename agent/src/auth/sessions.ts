import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../core/db.js';
import type { Role } from './accounts.js';

export interface SessionUser {
  username: string;
  role: Role;
  sessionId: string;
}

export interface Session extends SessionUser {
  csrf: string;
  createdAt: number;
  lastSeen: number;
}

/**
 * The db keeps only a hash of each session id: a copy of the state db (backup, stolen card) does
 * not hand out live sessions. The id is 256 random bits, so a plain SHA-256 is enough.
 */
export const sessionKey = (id: string): string => createHash('sha256').update(id).digest('base64url');

/**
 * Server-side sessions in the state db: the cookie holds only a random id, so signing a user out
 * (or deleting the account) takes effect at once. Idle timeout: a receptionist's PC left signed in
 * at the front desk is signed out after `idleTimeoutMs` without a request.
 */
export class SessionStore {
  private stmts?: ReturnType<SessionStore['prepare']>;
  /**
   * Sessions looked up since the state db last changed, by cookie id. A page view then costs two
   * one-row reads (SQLite's data_version and total_changes) instead of a hash and a join. Any
   * committed write to the state db (from this connection: total_changes; from another, e.g. the
   * `user` CLI: data_version) empties it, so a signed-out session, a deleted or disabled account or
   * a changed role is refused on the very next request, as before the cache.
   */
  private cache = new Map<string, Session>();
  private cacheStamp = '';

  constructor(
    private readonly db: Db,
    private readonly now: () => number,
    private readonly opts: { idleTimeoutMs: number; maxAgeMs: number },
  ) {}

  create(username: string): Session {
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    const t = this.now();
    this.sql.insert.run(sessionKey(id), username, csrf, t, t);
    const row = this.get(id);
    if (!row) throw new Error('session vanished');
    return row;
  }

  /** The live session for an id, touching its idle timer; undefined (and deleted) when expired. */
  touch(id: string): Session | undefined {
    const s = this.get(id);
    if (!s) return undefined;
    const t = this.now();
    if (t - s.lastSeen > this.opts.idleTimeoutMs || t - s.createdAt > this.opts.maxAgeMs) {
      this.destroy(id);
      return undefined;
    }
    // The idle timer is kept to within touchEveryMs: writing last_seen (a synchronous=FULL commit,
    // an fsync on the SD card) on every request was half of each page view's server time.
    if (t - s.lastSeen < this.touchEveryMs) return s;
    this.sql.touch.run(t, sessionKey(id));
    return { ...s, lastSeen: t }; // the write changed total_changes: the next get() reads the row again
  }

  destroy(id: string): void {
    this.cache.delete(id);
    this.sql.destroy.run(sessionKey(id));
  }

  /** Drop expired sessions (called now and then so the table stays small). */
  sweep(): number {
    const t = this.now();
    return this.db.prepare('DELETE FROM auth_sessions WHERE last_seen < ? OR created_at < ?').run(t - this.opts.idleTimeoutMs, t - this.opts.maxAgeMs).changes;
  }

  /** At most a twentieth of the idle timeout (45 s at the default 15 min), and never over 60 s. */
  private get touchEveryMs(): number {
    return Math.min(60_000, Math.floor(this.opts.idleTimeoutMs / 20));
  }

  private get sql() {
    return (this.stmts ??= this.prepare());
  }

  private prepare() {
    return {
      insert: this.db.prepare('INSERT INTO auth_sessions (id, username, csrf, created_at, last_seen) VALUES (?, ?, ?, ?, ?)'),
      touch: this.db.prepare('UPDATE auth_sessions SET last_seen = ? WHERE id = ?'),
      destroy: this.db.prepare('DELETE FROM auth_sessions WHERE id = ?'),
      dataVersion: this.db.prepare('PRAGMA data_version').pluck(),
      totalChanges: this.db.prepare('SELECT total_changes()').pluck(),
      get: this.db.prepare(
        `SELECT s.id, s.username, s.csrf, s.created_at, s.last_seen, u.role FROM auth_sessions s
         JOIN auth_users u ON u.username = s.username WHERE s.id = ? AND u.disabled_at IS NULL`,
      ),
    };
  }

  private get(id: string): Session | undefined {
    const stamp = `${String(this.sql.dataVersion.get())}:${String(this.sql.totalChanges.get())}`;
    if (stamp !== this.cacheStamp) {
      this.cache.clear();
      this.cacheStamp = stamp;
    }
    const hit = this.cache.get(id);
    if (hit) return hit;
    const s = this.read(id);
    // Bounded: a flood of made-up cookies cannot grow it (misses are not kept at all).
    if (s) {
      if (this.cache.size >= 1000) this.cache.clear();
      this.cache.set(id, s);
    }
    return s;
  }

  private read(id: string): Session | undefined {
    const r = this.sql.get.get(sessionKey(id)) as { id: string; username: string; csrf: string; created_at: number; last_seen: number; role: Role } | undefined;
    if (!r) return undefined;
    return { sessionId: id, username: r.username, role: r.role, csrf: r.csrf, createdAt: r.created_at, lastSeen: r.last_seen };
  }
}
