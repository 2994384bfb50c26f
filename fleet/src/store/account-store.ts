import { createHash } from 'node:crypto';
import type { SqlDriver } from './driver.js';

export const ROLES = ['icb-admin', 'icb-viewer', 'practice-manager'] as const;
export type Role = (typeof ROLES)[number];

export interface UserRow {
  username: string;
  hash: string;
  role: Role;
  practice: string | null;
  created_at: number;
  failed_attempts: number;
  locked_until: number | null;
  disabled: number;
  last_login_at: number | null;
  /** Sealed (fleet/src/totp-key.ts) base32 TOTP secret: the second factor is on when set. */
  totp_secret: string | null;
  /** Sealed secret being set up, not yet confirmed with a code. */
  totp_pending: string | null;
  totp_last_step: number | null;
}

export interface SessionRow {
  username: string;
  csrf: string;
  created_at: number;
  last_seen: number;
}

export interface AuditRow {
  id: number;
  at: number;
  username: string;
  device_id: string | null;
  action: string;
  args: string | null;
  outcome: string;
  detail: string | null;
}

/**
 * Only a hash of each session id is stored (as the appliance's auth/sessions.ts): a copy of the
 * database (a backup, a PostgreSQL replica) does not hand out live sessions. 192 random bits make
 * a plain SHA-256 enough.
 */
export const sessionKey = (id: string): string => createHash('sha256').update(id).digest('base64url');

/** Accounts, sign-in sessions and the audit log of every command, config and account change. */
export class AccountStore {
  constructor(private readonly d: SqlDriver) {}

  /** Create or replace (password, role, practice); a replaced account is unlocked and enabled. */
  async putUser(u: { username: string; hash: string; role: Role; practice: string | null }, now: number): Promise<void> {
    await this.d.run(
      `INSERT INTO users (username, hash, role, practice, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (username) DO UPDATE SET hash = excluded.hash, role = excluded.role, practice = excluded.practice, failed_attempts = 0,
       locked_until = NULL, disabled = 0`,
      [u.username, u.hash, u.role, u.practice, now],
    );
  }
  async user(name: string): Promise<UserRow | undefined> {
    return this.d.get<UserRow>('SELECT * FROM users WHERE username = ?', [name]);
  }
  async users(): Promise<UserRow[]> {
    return this.d.all<UserRow>('SELECT * FROM users ORDER BY username');
  }
  async userCount(): Promise<number> {
    return Number((await this.d.get<{ n: number }>('SELECT COUNT(*) AS n FROM users'))?.n ?? 0);
  }
  async adminCount(): Promise<number> {
    return Number((await this.d.get<{ n: number }>("SELECT COUNT(*) AS n FROM users WHERE role = 'icb-admin' AND disabled = 0"))?.n ?? 0);
  }
  /** Each change below ends the user's sessions: a disabled or demoted user is out at once. */
  async setPassword(name: string, hash: string): Promise<boolean> {
    return this.change(name, 'UPDATE users SET hash = ?, failed_attempts = 0, locked_until = NULL WHERE username = ?', [hash, name]);
  }
  async setRole(name: string, role: Role, practice: string | null): Promise<boolean> {
    return this.change(name, 'UPDATE users SET role = ?, practice = ? WHERE username = ?', [role, practice, name]);
  }
  async setDisabled(name: string, disabled: boolean): Promise<boolean> {
    return this.change(name, 'UPDATE users SET disabled = ? WHERE username = ?', [disabled ? 1 : 0, name]);
  }
  async unlock(name: string): Promise<boolean> {
    return (await this.d.run('UPDATE users SET failed_attempts = 0, locked_until = NULL WHERE username = ?', [name])).changes > 0;
  }
  /** Start (or restart) setting up a second factor; the one in use, if any, stays until confirmed. */
  async setTotpPending(name: string, sealed: string | null): Promise<boolean> {
    return (await this.d.run('UPDATE users SET totp_pending = ? WHERE username = ?', [sealed, name])).changes > 0;
  }
  /** The pending secret becomes the second factor; `step` (the confirming code's) cannot be used again. */
  async confirmTotp(name: string, sealedPending: string, step: number): Promise<boolean> {
    const sql = 'UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = ? WHERE username = ? AND totp_pending = ?';
    return (await this.d.run(sql, [step, name, sealedPending])).changes > 0;
  }
  /**
   * Claim time step `step` for a sign-in: one UPDATE that succeeds only if no code of this step or
   * later was accepted before, so a replayed code (even two requests at once) gets in at most once.
   */
  async useTotpStep(name: string, step: number): Promise<boolean> {
    const sql = 'UPDATE users SET totp_last_step = ? WHERE username = ? AND (totp_last_step IS NULL OR totp_last_step < ?)';
    return (await this.d.run(sql, [step, name, step])).changes > 0;
  }
  /** Remove the second factor (and any half-set-up one, and its recovery codes); their sessions end. */
  async resetTotp(name: string): Promise<boolean> {
    return this.change(name, 'UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL WHERE username = ?', [name], true);
  }
  async deleteUser(name: string): Promise<boolean> {
    return this.change(name, 'DELETE FROM users WHERE username = ?', [name], true);
  }
  /** `sql` and the end of the user's sessions in one transaction; a factor reset or a removal takes the recovery codes too. */
  private async change(name: string, sql: string, params: (string | number | null)[], dropRecovery = false): Promise<boolean> {
    return this.d.tx(async (t) => {
      const n = (await t.run(sql, params)).changes;
      await t.run('DELETE FROM sessions WHERE username = ?', [name]);
      if (dropRecovery) await t.run('DELETE FROM totp_recovery WHERE username = ?', [name]);
      return n > 0;
    });
  }

  /** A new set of recovery codes (hashes, common/totp.ts) replaces every earlier one, used or not. */
  async setRecoveryCodes(name: string, hashes: string[], now: number): Promise<void> {
    await this.d.tx(async (t) => {
      await t.run('DELETE FROM totp_recovery WHERE username = ?', [name]);
      for (const h of hashes) await t.run('INSERT INTO totp_recovery (username, hash, created_at) VALUES (?, ?, ?)', [name, h, now]);
    });
  }
  /** Spend one recovery code: one UPDATE, so the same code sent twice at once gets in once. */
  async useRecoveryCode(name: string, hash: string, now: number): Promise<boolean> {
    const sql = 'UPDATE totp_recovery SET used_at = ? WHERE username = ? AND hash = ? AND used_at IS NULL';
    return (await this.d.run(sql, [now, name, hash])).changes > 0;
  }
  async recoveryCodesLeft(name: string): Promise<number> {
    const r = await this.d.get<{ n: number }>('SELECT COUNT(*) AS n FROM totp_recovery WHERE username = ? AND used_at IS NULL', [name]);
    return Number(r?.n ?? 0);
  }

  /**
   * A wrong password: count it, and lock the account for `lockoutMs` at `maxFailed` in a row (the
   * appliance's rule, auth/accounts.ts checkLogin). A lock that has expired starts a fresh count.
   * One UPDATE, so parallel guesses each count.
   */
  async loginFailed(name: string, o: { now: number; maxFailed: number; lockoutMs: number }): Promise<number | null> {
    await this.d.run(
      `UPDATE users SET failed_attempts = CASE WHEN locked_until IS NOT NULL AND locked_until <= ? THEN 1 ELSE failed_attempts + 1 END,
         locked_until = CASE WHEN locked_until IS NOT NULL AND locked_until <= ? THEN NULL ELSE locked_until END WHERE username = ?`,
      [o.now, o.now, name],
    );
    await this.d.run('UPDATE users SET locked_until = ?, failed_attempts = 0 WHERE username = ? AND failed_attempts >= ?', [
      o.now + o.lockoutMs,
      name,
      o.maxFailed,
    ]);
    return (await this.user(name))?.locked_until ?? null;
  }
  async loginSucceeded(name: string, now: number): Promise<void> {
    await this.d.run('UPDATE users SET failed_attempts = 0, locked_until = NULL, last_login_at = ? WHERE username = ?', [now, name]);
  }

  async createSession(id: string, username: string, csrf: string, now: number): Promise<void> {
    await this.d.run('INSERT INTO sessions (id, username, csrf, created_at, last_seen) VALUES (?, ?, ?, ?, ?)', [sessionKey(id), username, csrf, now, now]);
  }
  /** The live session for an id; expired ones (idle or absolute) are deleted and not returned. */
  async session(id: string, now: number, o: { idleMs: number; maxAgeMs: number; touchEveryMs: number }): Promise<SessionRow | undefined> {
    const s = await this.d.get<SessionRow>('SELECT username, csrf, created_at, last_seen FROM sessions WHERE id = ?', [sessionKey(id)]);
    if (!s) return undefined;
    if (now - Number(s.last_seen) > o.idleMs || now - Number(s.created_at) > o.maxAgeMs) {
      await this.dropSession(id);
      return undefined;
    }
    // last_seen is written at most every touchEveryMs: a write per page view is needless load.
    if (now - Number(s.last_seen) >= o.touchEveryMs) await this.d.run('UPDATE sessions SET last_seen = ? WHERE id = ?', [now, sessionKey(id)]);
    return s;
  }
  async dropSession(id: string): Promise<void> {
    await this.d.run('DELETE FROM sessions WHERE id = ?', [sessionKey(id)]);
  }
  async pruneSessions(now: number, o: { idleMs: number; maxAgeMs: number }): Promise<void> {
    await this.d.run('DELETE FROM sessions WHERE last_seen < ? OR created_at < ?', [now - o.idleMs, now - o.maxAgeMs]);
  }

  async audit(a: Omit<AuditRow, 'id'>): Promise<number> {
    const r = await this.d.get<{ id: number }>(
      'INSERT INTO audit (at, username, device_id, action, args, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id',
      [a.at, a.username, a.device_id, a.action, a.args, a.outcome, a.detail],
    );
    return Number(r!.id);
  }
  async finishAudit(id: number, outcome: string, detail: string | null): Promise<void> {
    await this.d.run('UPDATE audit SET outcome = ?, detail = ? WHERE id = ?', [outcome, detail, id]);
  }
  async auditLog(limit = 200, deviceId?: string): Promise<AuditRow[]> {
    if (deviceId) return this.d.all<AuditRow>('SELECT * FROM audit WHERE device_id = ? ORDER BY id DESC LIMIT ?', [deviceId, limit]);
    return this.d.all<AuditRow>('SELECT * FROM audit ORDER BY id DESC LIMIT ?', [limit]);
  }
}
