import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { migrateAuth } from '../auth/accounts.js';
import type { Config } from '../config/schema.js';
import { openStateDb, type Db } from '../core/db.js';
import { BackupHistory } from './history.js';
import { AppError } from '../../../common/errors.js';
import { writeFileAtomic } from '../core/fs.js';
import { ulid } from '../core/ids.js';
import { DrillStore } from '../drills/store.js';
import { AuditLog, type AuditVerifyResult } from '../records/audit.js';
import { CaptureQueue } from '../records/capture.js';
import { unwrapKey } from '../records/key.js';
import { recordsPaths } from '../records/sources.js';
import { RecordsStore } from '../records/store.js';
import { resticFor } from './paths.js';
import type { Restic, ResticSnapshot } from './restic.js';
import { MANIFEST, MANIFEST_FORMAT, sha256File, type Manifest } from './stage.js';

/**
 * Restore the practice's latest backup onto a replacement box (agent stopped, fresh state dir):
 *
 *   records.db + records.key   moved into place whole: the audit chain continues from its head and
 *                              the capture queue keeps every item's idempotency key, so pending and
 *                              sent items are forwarded again and the endpoint's dedupe files each
 *                              once (docs/records-viewer.md, forwarding protocol)
 *   agent.db                   accounts and drill history are merged into this box's own state db
 *                              (which keeps its own identity, outbox and settings); sessions are not
 *   config.yaml                written beside the state as restored-config.yaml for the engineer to
 *                              compare; never applied (this box has its own identity and bundle)
 *
 * With the practice passphrase it also opens the restored records, verifies the audit chain and
 * appends a `system.restore` entry to it, so the chain itself says when and from where it moved.
 */
export interface RestoreOptions {
  config: Config;
  /** A snapshot id; default the latest of this practice (tag ods-<odsCode>). */
  snapshot?: string;
  /** Only snapshots made by this device id (default: any box of this practice). */
  fromDevice?: string;
  /** The records passphrase: verify the audit chain and record the restore in it. */
  passphrase?: string;
  restic?: Restic;
  now?: () => number;
}

export interface RestoreReport {
  snapshotId: string;
  snapshotTime: string;
  fromDevice: string;
  files: string[];
  accounts: number;
  drills: number;
  captures: Record<string, number> | null;
  audit: AuditVerifyResult | null;
  problems: string[];
}

export function pickSnapshot(all: ResticSnapshot[], odsCode: string, fromDevice?: string, id?: string): ResticSnapshot {
  const mine = all.filter((s) => (s.tags ?? []).includes(`ods-${odsCode}`) && (!fromDevice || (s.tags ?? []).includes(`device-${fromDevice}`)));
  const found = id
    ? mine.find((s) => s.id === id || s.short_id === id || s.id.startsWith(id))
    : mine.sort((a, b) => Date.parse(b.time) - Date.parse(a.time))[0];
  if (!found)
    throw new AppError('NOT_FOUND', `no backup snapshot for practice ${odsCode}${fromDevice ? ` from ${fromDevice}` : ''}${id ? ` with id ${id}` : ''}`);
  return found;
}

function findManifest(dir: string, depth = 0): string | null {
  if (existsSync(join(dir, MANIFEST))) return dir;
  if (depth > 12) return null;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const hit = findManifest(join(dir, e.name), depth + 1);
    if (hit) return hit;
  }
  return null;
}

/** Recorded in this box's state db; the agent announces it to the fleet (backup.restored) at its next start. */
function recordRestore(db: Db, snapshotId: string, fromDevice: string, toDevice: string, at: number): void {
  if (fromDevice === toDevice) return; // the same identity restored onto new hardware: nothing to revoke
  new BackupHistory(db).recordRestore({ id: ulid(at), at, snapshotId, fromDevice });
}

export async function restoreBackup(o: RestoreOptions): Promise<RestoreReport> {
  const { config } = o;
  const now = o.now ?? Date.now;
  const rp = recordsPaths(config);
  if (existsSync(rp.db) || existsSync(rp.key)) {
    throw new AppError(
      'CONFLICT',
      `${existsSync(rp.db) ? rp.db : rp.key} exists: restore only onto a fresh box (records destroy-key first if this box's cache is disposable)`,
    );
  }
  const restic = o.restic ?? resticFor(config);
  const snap = pickSnapshot(await restic.snapshots(), config.site.odsCode, o.fromDevice, o.snapshot);
  const work = join(config.paths.stateDir, `restore-${ulid(now())}`);
  mkdirSync(work, { recursive: true, mode: 0o700 });
  const problems: string[] = [];
  try {
    await restic.restore(snap.id, work);
    const dir = findManifest(work);
    if (!dir) throw new AppError('INTERNAL', 'restored snapshot has no manifest.json: not a surgery-edge backup');
    const manifest = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as Manifest;
    if (manifest.format !== MANIFEST_FORMAT) throw new AppError('INTERNAL', `backup manifest format ${manifest.format} is not supported`);
    for (const f of manifest.files) {
      const p = join(dir, f.name);
      if (!existsSync(p) || statSync(p).size !== f.bytes || sha256File(p) !== f.sha256)
        throw new AppError('INTERNAL', `restored ${f.name} does not match the manifest`);
    }
    for (const [name, s] of Object.entries(manifest.sources)) if (!s.ok) problems.push(`${name} was not in this backup: ${s.error}`);
    const has = (n: string) => manifest.files.some((f) => f.name === n);

    if (has('records.db') && has('records.key')) {
      writeFileAtomic(rp.key, readFileSync(join(dir, 'records.key')), 0o600);
      writeFileAtomic(rp.db, readFileSync(join(dir, 'records.db')), 0o600);
    }
    let accounts = 0;
    let drills = 0;
    if (has('agent.db')) {
      const db = openStateDb(join(config.paths.stateDir, 'agent.db'));
      try {
        migrateAuth(db);
        new DrillStore(db);
        db.prepare('ATTACH DATABASE ? AS snap').run(join(dir, 'agent.db'));
        const tables = new Set((db.prepare("SELECT name FROM snap.sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
        db.transaction(() => {
          if (tables.has('auth_users')) {
            accounts = db
              .prepare(
                `INSERT OR REPLACE INTO auth_users (username, role, hash, failed_attempts, locked_until, created_at, last_login_at)
              SELECT username, role, hash, failed_attempts, locked_until, created_at, last_login_at FROM snap.auth_users`,
              )
              .run().changes;
          }
          if (tables.has('drill_results')) {
            drills = db
              .prepare(
                `INSERT OR IGNORE INTO drill_results (id, at, trigger, passed, duration_ms, steps)
                  SELECT id, at, trigger, passed, duration_ms, steps FROM snap.drill_results`,
              )
              .run().changes;
          }
        })();
        db.exec('DETACH DATABASE snap');
      } finally {
        db.close();
      }
    }
    if (has('config.yaml')) writeFileAtomic(join(config.paths.stateDir, 'restored-config.yaml'), readFileSync(join(dir, 'config.yaml')), 0o600);

    let audit: AuditVerifyResult | null = null;
    let captures: Record<string, number> | null = null;
    if (o.passphrase !== undefined && has('records.db')) {
      const store = RecordsStore.open(rp.db, { key: await unwrapKey(rp.key, o.passphrase) });
      try {
        const log = AuditLog.open(store.db, now);
        const before = log.verify();
        if (!before.ok) problems.push(`restored audit chain does not verify: ${before.reason}`);
        log.append({
          user: 'system',
          role: 'system',
          patientId: null,
          action: 'system.restore',
          device: 'agent',
          detail: `snapshot=${snap.short_id};from=${manifest.site.deviceId};to=${config.site.deviceId}`,
        });
        audit = log.verify();
        const { unresolvedRejected: _, ...counts } = CaptureQueue.open(store.db, now).counts();
        captures = counts;
      } finally {
        store.close();
      }
    }
    const state = openStateDb(join(config.paths.stateDir, 'agent.db'));
    try {
      recordRestore(state, snap.id, manifest.site.deviceId, config.site.deviceId, now());
    } finally {
      state.close();
    }
    return {
      snapshotId: snap.id,
      snapshotTime: snap.time,
      fromDevice: manifest.site.deviceId,
      files: manifest.files.map((f) => f.name),
      accounts,
      drills,
      captures,
      audit,
      problems,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
