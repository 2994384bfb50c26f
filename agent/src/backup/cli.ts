import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configPathFrom, parse } from '../core/cli-args.js';
import type { CliCommand } from '../core/cli-command.js';
import { loadConfig } from '../config/load.js';
import { AppError } from '../../../common/errors.js';
import { writeFileAtomic } from '../core/fs.js';
import { readPassphrase } from '../records/key.js';
import { checkKeyFile } from './backup.js';
import { postToAgent } from './agent-api.js';
import { backupPaths, resticFor } from './paths.js';
import { restoreBackup } from './restore.js';

const out = (s: string) => process.stdout.write(s + '\n');

/** A practice backup key: 32 random bytes, base64url (the restic repository password). */
export function newBackupKey(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * `surgery-edge backup keygen|install-key|now|snapshots|check|restore`. `now` asks the running agent
 * for a backup (the link policy holds unless --force) and waits for the outcome (exit 0 only on a good one). Restore runs with the agent
 * stopped (systemctl stop surgery-edge) on a fresh box; the records passphrase, when given with
 * --passphrase (read from stdin, never argv), lets it verify the audit chain and record the restore.
 */
export const backupCommand: CliCommand = {
  summary: 'backup keygen|install-key|now [--force] [--no-wait]|snapshots|check|restore [--config FILE]: encrypted off-box backup (restic)',
  async run(args) {
    const [sub, ...rest] = args;
    const { values, positionals } = parse(
      rest,
      {
        config: { type: 'string', short: 'c' },
        out: { type: 'string' },
        snapshot: { type: 'string' },
        'from-device': { type: 'string' },
        passphrase: { type: 'boolean' },
        json: { type: 'boolean' },
        force: { type: 'boolean' },
        'no-wait': { type: 'boolean' },
      },
      true,
    );
    if (sub === 'keygen') {
      // ICB side (provisioning/practice.sh does this once per practice): never overwrite an escrowed key.
      if (!values.out) throw new AppError('BAD_REQUEST', 'usage: backup keygen --out FILE');
      if (existsSync(values.out)) throw new AppError('CONFLICT', `${values.out} exists: a practice keeps its backup key (it opens every old backup)`);
      writeFileAtomic(values.out, newBackupKey() + '\n', 0o600);
      out(`backup key written to ${values.out} (0600): keep a copy in the ICB vault`);
      return 0;
    }
    const config = loadConfig(configPathFrom(values.config));
    const paths = backupPaths(config);
    switch (sub) {
      case 'install-key': {
        const src = positionals[0];
        if (!src) throw new AppError('BAD_REQUEST', 'usage: backup install-key PRACTICE.tar|KEYFILE');
        let key: string;
        if (src.endsWith('.tar')) {
          const work = mkdtempSync(join(tmpdir(), 'se-key-'));
          try {
            execFileSync('tar', ['-xf', src, '-C', work, '--no-same-owner', 'backup.key'], { stdio: 'pipe' });
            key = readFileSync(join(work, 'backup.key'), 'utf8');
          } catch {
            throw new AppError('BAD_REQUEST', `${src} has no backup.key (bundle made before backups existed: re-run provisioning/practice.sh)`);
          } finally {
            rmSync(work, { recursive: true, force: true });
          }
        } else key = readFileSync(src, 'utf8');
        if (key.trim().length < 32) throw new AppError('BAD_REQUEST', 'backup key too short');
        if (existsSync(paths.keyFile) && readFileSync(paths.keyFile, 'utf8').trim() !== key.trim()) {
          throw new AppError('CONFLICT', `${paths.keyFile} holds a different key: remove it first if you are sure`);
        }
        writeFileAtomic(paths.keyFile, key.trim() + '\n', 0o600);
        out(`backup key installed at ${paths.keyFile}`);
        return 0;
      }
      case 'now': {
        // The running agent does the work (it owns the databases' online snapshots and the link state).
        const wait = !values['no-wait'];
        const r = await postToAgent(config, '/api/actions/backup', { force: !!values.force, wait }, config.backup.timeoutMs + 60_000);
        if (r.status !== 200) {
          const msg = String(r.json.message ?? r.json.error ?? `HTTP ${r.status}`);
          process.stderr.write(`surgery-edge: ${msg}${r.json.error === 'CONFLICT' ? ' (add --force)' : ''}\n`);
          return 1;
        }
        if (values.json) {
          out(JSON.stringify(r.json, null, 1));
        } else {
          out(`backup ${r.json.alreadyRunning ? 'already running: one more queued after it' : 'started'} (${String(r.json.link)})`);
          const run = r.json.run as { ok: boolean; snapshotId: string | null; error: string | null; dataAdded: number } | null | undefined;
          if (run) out(run.ok ? `backup OK: snapshot ${run.snapshotId?.slice(0, 8)}, ${run.dataAdded} bytes added` : `backup FAILED: ${run.error}`);
          else if (wait) out('backup not run (see surgery-edge status)');
          else out('not waiting: follow it with surgery-edge status');
        }
        const run = r.json.run as { ok: boolean } | null | undefined;
        return !wait || run?.ok ? 0 : 1;
      }
      case 'snapshots': {
        const snaps = await resticFor(config).snapshots();
        if (values.json) out(JSON.stringify(snaps, null, 1));
        else for (const s of snaps) out(`${s.short_id}  ${s.time.slice(0, 19)}  ${s.hostname}  ${(s.tags ?? []).join(',')}`);
        return 0;
      }
      case 'check': {
        const problem = checkKeyFile(paths.keyFile);
        if (problem) throw new AppError('UNAVAILABLE', problem);
        const r = await resticFor(config).check();
        out(r.ok ? `repository OK: ${r.output}` : `repository check FAILED: ${r.output}`);
        return r.ok ? 0 : 1;
      }
      case 'restore': {
        const problem = checkKeyFile(paths.keyFile);
        if (problem) throw new AppError('UNAVAILABLE', problem);
        const t0 = performance.now();
        const passphrase = values.passphrase ? await readPassphrase() : undefined;
        const r = await restoreBackup({
          config,
          ...(values.snapshot ? { snapshot: values.snapshot } : {}),
          ...(values['from-device'] ? { fromDevice: values['from-device'] } : {}),
          ...(passphrase !== undefined ? { passphrase } : {}),
        });
        const seconds = Math.round((performance.now() - t0) / 100) / 10;
        if (values.json) out(JSON.stringify({ ...r, seconds }, null, 1));
        else {
          out(`restored snapshot ${r.snapshotId.slice(0, 8)} (${r.snapshotTime.slice(0, 19)}) from ${r.fromDevice} in ${seconds} s`);
          out(`  files: ${r.files.join(', ')}; accounts: ${r.accounts}; drill results: ${r.drills}`);
          if (r.captures)
            out(
              `  captures: ${Object.entries(r.captures)
                .map(([k, v]) => `${k} ${v}`)
                .join(', ')} (pending and sent ones are forwarded once the cache is unlocked)`,
            );
          if (r.audit) out(`  audit chain: ${r.audit.ok ? `verifies, ${r.audit.entries} entries` : `BROKEN at ${r.audit.firstBrokenSeq}: ${r.audit.reason}`}`);
          else out('  audit chain: not checked (give --passphrase to verify it now; or `surgery-edge audit verify` after unlocking)');
          for (const p of r.problems) out(`  WARNING: ${p}`);
          out('next: systemctl start surgery-edge, then unlock the records cache with the practice passphrase');
        }
        return r.problems.length || (r.audit && !r.audit.ok) ? 1 : 0;
      }
      default:
        throw new AppError('BAD_REQUEST', 'usage: surgery-edge backup keygen|install-key|now [--force] [--no-wait]|snapshots|check|restore [--config FILE]');
    }
  },
};
