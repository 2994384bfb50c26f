import { Type } from '@sinclair/typebox';
import { Bool, Ms, Obj, Str } from '../config/types.js';

/**
 * Config section `backup`: encrypted off-box backup with restic (docs/operator-guide.md, "Backup
 * and restore"). The repository password is the practice's backup key, made by the ICB when it
 * builds the practice bundle and kept in the ICB's vault (escrow); it is never the device TLS key.
 */
export const BackupSection = Obj(
  {
    enabled: Bool(false, 'Back up the audit log, offline captures, accounts, config and drill history off the box'),
    repository: Str('', 'restic repository URL given by the ICB: sftp:user@host:/path, sftp://user@host:port//path or s3:https://host/bucket/path'),
    keyFile: Str('', 'The practice backup key (restic repository password), mode 0600; empty: <stateDir>/backup.key'),
    stagingDir: Str('', 'Where consistent database snapshots are assembled before upload; empty: <stateDir>/backup-staging'),
    resticPath: Str('restic', 'The restic binary (Debian package restic)'),
    sftp: Obj({
      identityFile: Str('', 'SSH private key for the SFTP target (empty: ssh defaults)'),
      knownHostsFile: Str('', 'known_hosts holding the SFTP target host key (empty: ssh defaults); the host key is always checked'),
    }),
    s3: Obj({
      accessKeyId: Str('', 'S3 access key id (AWS_ACCESS_KEY_ID)'),
      accessKeySecret: Str('', 'S3 secret access key (AWS_SECRET_ACCESS_KEY)'),
      region: Str('', 'S3 region (AWS_DEFAULT_REGION), when the target needs one'),
      caPath: Str('', 'CA certificate (PEM) that signed an S3 endpoint with a private CA (restic --cacert); empty: the system CAs'),
    }),
    debounceMs: Ms(60_000, 'After a capture changes state, wait this long for more changes before backing up', 0),
    nightlyAt: Type.String({ default: '02:30', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'Local time of the nightly backup (HH:MM)' }),
    uploadLimitKiBs: Type.Integer({ default: 0, minimum: 0, description: 'restic --limit-upload in KiB/s (0: unlimited); keeps a 4G link usable' }),
    timeoutMs: Ms(3_600_000, 'Give up one backup run after this long (restic is killed; the repository stays consistent)', 10_000),
    keepDaily: Type.Integer({ default: 14, minimum: 1, description: 'Nightly forget/prune keeps this many daily snapshots' }),
    keepWeekly: Type.Integer({ default: 8, minimum: 0, description: 'and this many weekly ones' }),
    keepMonthly: Type.Integer({ default: 12, minimum: 0, description: 'and this many monthly ones' }),
  },
  'Encrypted off-box backup (restic to an ICB SFTP or S3 target)',
);
