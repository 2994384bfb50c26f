import type { SqlDriver } from '../store/driver.js';

export type ClaimStatus = 'pending' | 'claimed' | 'superseded';

export interface ClaimRow {
  id: string;
  created_at: number;
  expires_at: number;
  address: string;
  csr_cn: string;
  spki: string;
  fingerprint: string;
  commitment: string;
  status: ClaimStatus;
  claimed_at: number | null;
  claimed_by: string | null;
  device_id: string | null;
  ods_code: string | null;
  practice_name: string | null;
  certificate: string | null;
  delivered_at: number | null;
}

/**
 * Claim requests (one per box waiting, by its public key) and failed claim attempts, for the rate
 * limits. Portable SQL, the same over SQLite and PostgreSQL. The tables are created here with
 * IF NOT EXISTS rather than as a numbered migration so that claiming can be merged beside other
 * work on migrations.ts without renumbering; fold them into a numbered migration when convenient.
 */
export class ClaimStore {
  private ready: Promise<void> | undefined;

  constructor(private readonly d: SqlDriver) {}

  private ensure(): Promise<void> {
    this.ready ??= this.d.exec(`
CREATE TABLE IF NOT EXISTS claim_requests (
  id TEXT PRIMARY KEY, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, address TEXT NOT NULL,
  csr_cn TEXT NOT NULL, spki TEXT NOT NULL, fingerprint TEXT NOT NULL, commitment TEXT NOT NULL, status TEXT NOT NULL,
  claimed_at BIGINT, claimed_by TEXT, device_id TEXT, ods_code TEXT, practice_name TEXT, certificate TEXT, delivered_at BIGINT
);
CREATE INDEX IF NOT EXISTS claim_requests_status ON claim_requests (status, created_at);
CREATE INDEX IF NOT EXISTS claim_requests_spki ON claim_requests (spki);
CREATE TABLE IF NOT EXISTS claim_failures (at BIGINT NOT NULL, address TEXT NOT NULL, code_key TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS claim_failures_at ON claim_failures (at);
`);
    return this.ready;
  }

  async insert(r: Pick<ClaimRow, 'id' | 'created_at' | 'expires_at' | 'address' | 'csr_cn' | 'spki' | 'fingerprint' | 'commitment'>): Promise<void> {
    await this.ensure();
    await this.d.tx(async (t) => {
      // One waiting request per key: a box that restarts with a new code replaces its old one.
      await t.run("UPDATE claim_requests SET status = 'superseded' WHERE spki = ? AND status = 'pending'", [r.spki]);
      await t.run(
        `INSERT INTO claim_requests (id, created_at, expires_at, address, csr_cn, spki, fingerprint, commitment, status)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')`,
        [r.id, r.created_at, r.expires_at, r.address, r.csr_cn, r.spki, r.fingerprint, r.commitment],
      );
    });
  }

  async get(id: string): Promise<ClaimRow | undefined> {
    await this.ensure();
    return this.d.get<ClaimRow>('SELECT * FROM claim_requests WHERE id = ?', [id]);
  }

  async pendingByKey(spki: string): Promise<ClaimRow | undefined> {
    await this.ensure();
    return this.d.get<ClaimRow>("SELECT * FROM claim_requests WHERE spki = ? AND status = 'pending'", [spki]);
  }

  async pendingFrom(address: string, now: number): Promise<number> {
    await this.ensure();
    const r = await this.d.get<{ n: number }>("SELECT COUNT(*) AS n FROM claim_requests WHERE address = ? AND status = 'pending' AND expires_at > ?", [
      address,
      now,
    ]);
    return Number(r?.n ?? 0);
  }

  /** Requests a typed code may belong to: waiting, expired or already claimed, newest first. */
  async candidates(since: number): Promise<ClaimRow[]> {
    await this.ensure();
    return this.d.all<ClaimRow>("SELECT * FROM claim_requests WHERE status IN ('pending', 'claimed') AND created_at >= ? ORDER BY created_at DESC LIMIT 5000", [
      since,
    ]);
  }

  async list(status: ClaimStatus, limit: number): Promise<ClaimRow[]> {
    await this.ensure();
    return this.d.all<ClaimRow>(`SELECT * FROM claim_requests WHERE status = ? ORDER BY ${status === 'claimed' ? 'claimed_at' : 'created_at'} DESC LIMIT ?`, [
      status,
      limit,
    ]);
  }

  /** Single use: only a pending, unexpired request becomes claimed; false when someone else got there first. */
  async markClaimed(id: string, now: number, c: { by: string; deviceId: string; ods: string; practiceName: string; certificate: string }): Promise<boolean> {
    await this.ensure();
    const r = await this.d.run(
      `UPDATE claim_requests SET status = 'claimed', claimed_at = ?, claimed_by = ?, device_id = ?, ods_code = ?, practice_name = ?,
        certificate = ? WHERE id = ? AND status = 'pending' AND expires_at > ?`,
      [now, c.by, c.deviceId, c.ods, c.practiceName, c.certificate, id, now],
    );
    return r.changes === 1;
  }

  async delivered(id: string, now: number): Promise<void> {
    await this.d.run('UPDATE claim_requests SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL', [now, id]);
  }

  /** Is `deviceId` already issued to a claimed request (a box not yet online has no devices row)? */
  async issued(deviceId: string): Promise<ClaimRow | undefined> {
    await this.ensure();
    return this.d.get<ClaimRow>("SELECT * FROM claim_requests WHERE device_id = ? AND status = 'claimed' ORDER BY claimed_at DESC LIMIT 1", [deviceId]);
  }

  async fail(at: number, address: string, codeKey: string): Promise<void> {
    await this.ensure();
    await this.d.run('INSERT INTO claim_failures (at, address, code_key) VALUES (?, ?, ?)', [at, address, codeKey]);
  }

  async failures(since: number, address: string, codeKey: string): Promise<{ address: number; code: number }> {
    await this.ensure();
    const a = await this.d.get<{ n: number }>('SELECT COUNT(*) AS n FROM claim_failures WHERE at >= ? AND address = ?', [since, address]);
    const c = await this.d.get<{ n: number }>('SELECT COUNT(*) AS n FROM claim_failures WHERE at >= ? AND code_key = ?', [since, codeKey]);
    return { address: Number(a?.n ?? 0), code: Number(c?.n ?? 0) };
  }
}
