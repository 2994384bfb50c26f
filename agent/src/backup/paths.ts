import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { Restic } from './restic.js';

/** Where the backup's files live; shared by the capability and the CLI so both agree. */
export function backupPaths(config: Config): { keyFile: string; staging: string; cache: string } {
  const b = config.backup;
  return {
    keyFile: b.keyFile || join(config.paths.stateDir, 'backup.key'),
    staging: b.stagingDir || join(config.paths.stateDir, 'backup-staging'),
    // restic's local index cache (encrypted metadata only); speeds up every run after the first.
    cache: join(config.paths.stateDir, 'restic-cache'),
  };
}

export function resticFor(config: Config): Restic {
  const b = config.backup;
  const p = backupPaths(config);
  return new Restic({
    binary: b.resticPath,
    repository: b.repository,
    passwordFile: p.keyFile,
    cacheDir: p.cache,
    sftp: b.sftp,
    s3: b.s3,
    uploadLimitKiBs: b.uploadLimitKiBs,
  });
}

/** Snapshot tags: the practice (what a replacement box restores by) and the box that made it. */
export function backupTags(config: Config, trigger: string): string[] {
  return ['surgery-edge', `ods-${config.site.odsCode}`, `device-${config.site.deviceId}`, `trigger-${trigger}`];
}
