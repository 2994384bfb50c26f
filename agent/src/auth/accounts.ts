import { migrate, type Db } from '../core/db.js';
import { AppError } from '../../../common/errors.js';
import { DUMMY_HASH, hashPassword, verifyPassword } from '../../../common/password.js';

export type Role = 'admin' | 'clinician' | 'reception';
export const ROLES: readonly Role[] = ['admin', 'clinician', 'reception'];

export interface Account {
  username: string;
  role: Role;
  failedAttempts: number;
  lockedUntil: number | null;
  createdAt: number;
  lastLoginAt: number | null;
  /** When an admin disabled the account (it cannot sign in); null when enabled. */
  disabledAt: number | null;
}

/** Accounts and sessions live in the agent's state db (not the records cache: they must work before it is unlocked). */
export function migrateAuth(db: Db): void {
  migrate(db, 'auth', [
    {
      version: 1,
      up: `CREATE TABLE auth_users (
          username TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL,
          failed_attempts INTEGER NOT NULL DEFAULT 0, locked_until INTEGER,
          created_at INTEGER NOT NULL, last_login_at INTEGER);
        CREATE TABLE auth_sessions (
          id TEXT PRIMARY KEY, username TEXT NOT NULL REFERENCES auth_users(username) ON DELETE CASCADE,
          csrf TEXT NOT NULL, created_at INTEGER NOT NULL, last_seen INTEGER NOT NULL);`,
    },
    {
      // Disabled, not deleted: the records audit trail keeps naming the account (admin screen).
      version: 2,
      up: `ALTER TABLE auth_users ADD COLUMN disabled_at INTEGER;
        CREATE TABLE auth_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor TEXT NOT NULL,
          action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');`,
    },
  ]);
}

export const USERNAME = /^[a-z0-9][a-z0-9._-]{1,31}$/;

export function validateUsername(username: string): void {
  if (!USERNAME.test(username)) throw new AppError('BAD_REQUEST', 'username must be 2-32 characters: a-z, 0-9, . _ - (lower case)');
}

export function validatePassword(password: string): void {
  if (password.length < 10) throw new AppError('BAD_REQUEST', 'password must be at least 10 characters');
  if (password.length > 1024) throw new AppError('BAD_REQUEST', 'password too long');
}

/** Run one statement against one existing account (`username` is the last parameter). */
function changeUser(db: Db, username: string, sql: string, ...params: unknown[]): void {
  migrateAuth(db);
  if (db.prepare(sql).run(...params, username).changes === 0) throw new AppError('NOT_FOUND', `no user ${username}`);
}

export function createUser(db: Db, username: string, password: string, role: Role, now = Date.now()): void {
  migrateAuth(db);
  validateUsername(username);
  if (!ROLES.includes(role)) throw new AppError('BAD_REQUEST', `role must be one of ${ROLES.join(', ')}`);
  validatePassword(password);
  const exists = db.prepare('SELECT 1 FROM auth_users WHERE username = ?').get(username);
  if (exists) throw new AppError('CONFLICT', `user ${username} already exists`);
  db.prepare('INSERT INTO auth_users (username, role, hash, created_at) VALUES (?, ?, ?, ?)').run(username, role, hashPassword(password), now);
}

/** New password, lock cleared, and every session of the user ended. */
export function setPassword(db: Db, username: string, password: string): void {
  validatePassword(password);
  changeUser(db, username, 'UPDATE auth_users SET hash = ?, failed_attempts = 0, locked_until = NULL WHERE username = ?', hashPassword(password));
  db.prepare('DELETE FROM auth_sessions WHERE username = ?').run(username);
}

/** Sessions are deleted explicitly: the cascade only works where foreign keys are switched on. */
export function deleteUser(db: Db, username: string): void {
  migrateAuth(db);
  db.transaction(() => {
    db.prepare('DELETE FROM auth_sessions WHERE username = ?').run(username);
    changeUser(db, username, 'DELETE FROM auth_users WHERE username = ?');
  })();
}

/** Disable (sign-in refused, sessions ended) or enable again. */
export function setDisabled(db: Db, username: string, disabled: boolean, now = Date.now()): void {
  migrateAuth(db);
  db.transaction(() => {
    changeUser(db, username, 'UPDATE auth_users SET disabled_at = ? WHERE username = ?', disabled ? now : null);
    if (disabled) db.prepare('DELETE FROM auth_sessions WHERE username = ?').run(username);
  })();
}

export interface AuditEntry {
  at: number;
  actor: string;
  action: string;
  target: string;
  detail: string;
}

/** Account changes made from the admin screen or the set-up wizard (never a password). */
export function auditAccount(db: Db, e: AuditEntry): void {
  migrateAuth(db);
  db.prepare('INSERT INTO auth_audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)').run(e.at, e.actor, e.action, e.target, e.detail);
}

export function accountAudit(db: Db, limit = 50): AuditEntry[] {
  migrateAuth(db);
  return db.prepare('SELECT at, actor, action, target, detail FROM auth_audit ORDER BY id DESC LIMIT ?').all(limit) as AuditEntry[];
}

export function unlockUser(db: Db, username: string): void {
  changeUser(db, username, 'UPDATE auth_users SET failed_attempts = 0, locked_until = NULL WHERE username = ?');
}

interface Row {
  username: string;
  role: Role;
  hash: string;
  failed_attempts: number;
  locked_until: number | null;
  created_at: number;
  last_login_at: number | null;
  disabled_at: number | null;
}

const toAccount = (r: Row): Account => ({
  username: r.username,
  role: r.role,
  failedAttempts: r.failed_attempts,
  lockedUntil: r.locked_until,
  createdAt: r.created_at,
  lastLoginAt: r.last_login_at,
  disabledAt: r.disabled_at ?? null,
});

export function listUsers(db: Db): Account[] {
  migrateAuth(db);
  return (db.prepare('SELECT * FROM auth_users ORDER BY username').all() as Row[]).map(toAccount);
}

/**
 * Unknown usernames lock exactly like real ones (in memory, bounded): otherwise "locked after 10
 * tries" would tell an attacker which usernames exist.
 */
const phantoms = new WeakMap<Db, Map<string, { failed: number; lockedUntil: number | null }>>();
const MAX_PHANTOMS = 1000;

function phantomFailure(db: Db, username: string, opts: { now: number; maxFailed: number; lockoutMs: number }): LoginOutcome {
  let m = phantoms.get(db);
  if (!m) phantoms.set(db, (m = new Map()));
  let p = m.get(username.slice(0, 64));
  if (!p) {
    if (m.size >= MAX_PHANTOMS) m.delete(m.keys().next().value!);
    m.set(username.slice(0, 64), (p = { failed: 0, lockedUntil: null }));
  }
  if (p.lockedUntil !== null && p.lockedUntil > opts.now) return { ok: false, reason: 'locked', lockedUntil: p.lockedUntil };
  if (p.lockedUntil !== null) p.lockedUntil = null;
  p.failed++;
  if (p.failed >= opts.maxFailed) {
    p.failed = 0;
    p.lockedUntil = opts.now + opts.lockoutMs;
    return { ok: false, reason: 'locked', lockedUntil: p.lockedUntil };
  }
  return { ok: false, reason: 'bad-credentials' };
}

export type LoginOutcome = { ok: true; account: Account } | { ok: false; reason: 'bad-credentials' | 'locked'; lockedUntil?: number };

/**
 * Check a password and keep the lockout counter. After `maxFailed` wrong passwords in a row the
 * account locks for `lockoutMs`; while locked even the right password is refused (otherwise the
 * lock would only slow an attacker who eventually guesses right). Unknown users cost the same time.
 */
export async function checkLogin(
  db: Db,
  username: string,
  password: string,
  opts: { now: number; maxFailed: number; lockoutMs: number },
): Promise<LoginOutcome> {
  const row = db.prepare('SELECT * FROM auth_users WHERE username = ?').get(username) as Row | undefined;
  if (!row) {
    await verifyPassword(password, DUMMY_HASH);
    return phantomFailure(db, username, opts);
  }
  if (row.locked_until !== null && row.locked_until > opts.now) return { ok: false, reason: 'locked', lockedUntil: row.locked_until };
  const good = await verifyPassword(password, row.hash);
  // Disabled: refused like a wrong password (same work done), so it is no oracle either.
  if (row.disabled_at !== null && row.disabled_at !== undefined) return { ok: false, reason: 'bad-credentials' };
  // Re-read after the (slow, async) hash: concurrent attempts for the same account must each
  // count, and a lock set by one of them must refuse the others, or a burst of parallel guesses
  // would all see the same stale counter and the lockout would never trigger.
  const fresh = db.prepare('SELECT * FROM auth_users WHERE username = ?').get(username) as Row | undefined;
  if (!fresh) return { ok: false, reason: 'bad-credentials' };
  if (fresh.locked_until !== null && fresh.locked_until > opts.now) return { ok: false, reason: 'locked', lockedUntil: fresh.locked_until };
  if (!good) {
    // A lock that has expired starts a fresh count.
    const failed = (fresh.locked_until !== null ? 0 : fresh.failed_attempts) + 1;
    const lockedUntil = failed >= opts.maxFailed ? opts.now + opts.lockoutMs : null;
    db.prepare('UPDATE auth_users SET failed_attempts = ?, locked_until = ? WHERE username = ?').run(lockedUntil ? 0 : failed, lockedUntil, username);
    return lockedUntil ? { ok: false, reason: 'locked', lockedUntil } : { ok: false, reason: 'bad-credentials' };
  }
  db.prepare('UPDATE auth_users SET failed_attempts = 0, locked_until = NULL, last_login_at = ? WHERE username = ?').run(opts.now, username);
  return { ok: true, account: toAccount({ ...fresh, failed_attempts: 0, locked_until: null, last_login_at: opts.now }) };
}
