import type { SqlDriver } from './driver.js';

export const ROLES = ['icb-admin', 'icb-viewer', 'practice-manager'] as const;
export type Role = (typeof ROLES)[number];

export interface UserRow {
  username: string;
  hash: string;
  role: Role;
  practice: string | null;
  created_at: number;
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

/** Accounts, sign-in sessions and the audit log of every command and config change. */
export class AccountStore {
  constructor(private readonly d: SqlDriver) {}

  async putUser(u: Omit<UserRow, 'created_at'>, now: number): Promise<void> {
    await this.d.run(
      'INSERT INTO users (username, hash, role, practice, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (username) DO UPDATE SET hash = excluded.hash, role = excluded.role, practice = excluded.practice',
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

  async createSession(token: string, username: string, csrf: string, expiresAt: number): Promise<void> {
    await this.d.run('INSERT INTO sessions (token, username, csrf, expires_at) VALUES (?, ?, ?, ?)', [token, username, csrf, expiresAt]);
  }
  async session(token: string, now: number): Promise<{ username: string; csrf: string } | undefined> {
    return this.d.get('SELECT username, csrf FROM sessions WHERE token = ? AND expires_at > ?', [token, now]);
  }
  async dropSession(token: string): Promise<void> {
    await this.d.run('DELETE FROM sessions WHERE token = ?', [token]);
  }
  async pruneSessions(now: number): Promise<void> {
    await this.d.run('DELETE FROM sessions WHERE expires_at <= ?', [now]);
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
