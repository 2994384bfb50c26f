import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { BackupSource } from '../core/capability.js';
import type { Db } from '../core/db.js';
import { describeError } from '../../../common/errors.js';
import { writeFileAtomic } from '../core/fs.js';

/**
 * Assembles one backup in the staging directory, then restic uploads that directory:
 *
 *   agent.db       the state database (accounts, drill history, ...) via better-sqlite3's online
 *                  backup API (page by page, consistent, the agent keeps running)
 *   records.db     audit log + offline captures, still encrypted (records/backup-source.ts)
 *   records.key    the passphrase-wrapped records data key
 *   config.yaml    the operator's config, as on disk
 *   manifest.json  written last: what is here, SHA-256 of each file, audit head, capture counts
 *
 * The manifest is written last so a staging directory left by a crash is never mistaken for a
 * complete one; restic only starts once staging has finished, and restore checks every hash.
 */
export const MANIFEST = 'manifest.json';
export const MANIFEST_FORMAT = 1;

export interface ManifestFile {
  name: string;
  bytes: number;
  sha256: string;
}

export interface Manifest {
  format: number;
  createdAt: number;
  agentVersion: string;
  trigger: string;
  site: { deviceId: string; odsCode: string; practiceName: string };
  files: ManifestFile[];
  /** Per source: facts (audit head, capture counts) or the reason it is missing. */
  sources: Record<string, { ok: boolean; facts?: Record<string, unknown>; error?: string }>;
}

export interface StageOptions {
  dir: string;
  db: Db;
  configPath: string | undefined;
  sources: BackupSource[];
  site: Manifest['site'];
  version: string;
  trigger: string;
  now: number;
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

export async function stageBackup(o: StageOptions): Promise<Manifest> {
  rmSync(o.dir, { recursive: true, force: true });
  mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  chmodSync(o.dir, 0o700);
  const names: string[] = [];
  const sources: Manifest['sources'] = {};
  await o.db.backup(join(o.dir, 'agent.db'));
  names.push('agent.db');
  sources.agent = { ok: true };
  if (o.configPath && existsSync(o.configPath)) {
    copyFileSync(o.configPath, join(o.dir, 'config.yaml'));
    chmodSync(join(o.dir, 'config.yaml'), 0o600);
    names.push('config.yaml');
  }
  for (const s of o.sources) {
    try {
      const r = await s.stage(o.dir);
      names.push(...r.files);
      sources[s.name] = { ok: true, ...(r.facts ? { facts: r.facts } : {}) };
    } catch (e) {
      sources[s.name] = { ok: false, error: describeError(e).message };
    }
  }
  const files = names.map((name) => {
    const p = join(o.dir, name);
    chmodSync(p, 0o600);
    return { name, bytes: statSync(p).size, sha256: sha256File(p) };
  });
  const manifest: Manifest = { format: MANIFEST_FORMAT, createdAt: o.now, agentVersion: o.version, trigger: o.trigger, site: o.site, files, sources };
  writeFileAtomic(join(o.dir, MANIFEST), JSON.stringify(manifest, null, 1), 0o600);
  return manifest;
}
