import { Type, type Static } from '@sinclair/typebox';
import { Lines, Nullable } from './common.js';

/** No good backup for this long: the box's health goes degraded and the fleet alerts (`backup-stale`). */
export const BACKUP_STALE_MS = 26 * 3600_000;

const Trigger = Type.Union([Type.Literal('capture'), Type.Literal('nightly'), Type.Literal('manual'), Type.Literal('link')]);

export const BackupReportSchema = Type.Object(
  {
    target: Type.String({ description: 'Where backups go, without credentials (e.g. sftp:host:/path)' }),
    running: Type.Boolean(),
    runningTrigger: Nullable(Trigger),
    progress: Nullable(
      Type.Object({ percentDone: Type.Number(), filesDone: Type.Number(), totalFiles: Type.Number(), bytesDone: Type.Number(), totalBytes: Type.Number() }),
    ),
    lastSuccessAt: Nullable(Type.Integer(), 'Epoch ms of the last good backup'),
    lastSnapshotId: Nullable(Type.String()),
    lastAttemptAt: Nullable(Type.Integer()),
    lastAttemptOk: Nullable(Type.Boolean()),
    lastError: Nullable(Type.String()),
    lastDataAdded: Nullable(Type.Number({ description: 'Bytes the last run added to the repository' })),
    deferred: Nullable(Type.String(), 'Why a backup is held back (e.g. not on the primary link)'),
    nextNightlyAt: Nullable(Type.Integer()),
    stale: Type.Boolean({ description: 'No good backup in the last 26 h' }),
    keyProblem: Nullable(Type.String()),
    lines: Lines,
  },
  { $id: 'report-backup.json', title: 'backup: encrypted off-box backup (restic) of the audit log, captures, accounts and config' },
);
export type BackupReport = Static<typeof BackupReportSchema>;
