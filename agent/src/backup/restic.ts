import { spawn } from 'node:child_process';
import { AppError } from '../../../common/errors.js';
import { Fields, parseFields } from '../../../common/fields.js';
import { niced, nicedNotFound } from '../../../common/priority.js';

/**
 * The restic command line, and nothing else: the repository format, encryption (AES-256 + Poly1305
 * with a key derived from the repository password by scrypt), locking and crash safety are
 * restic's. A run killed at any point leaves at most unreferenced pack files and a stale lock: a
 * snapshot only exists once its index and snapshot file are written, after the data they name.
 *
 * It spawns restic itself instead of going through platform/command.ts because it streams the JSON
 * progress lines while the program runs (the runner collects output at exit).
 */
export interface ResticOptions {
  binary: string;
  repository: string;
  passwordFile: string;
  cacheDir: string;
  sftp: { identityFile: string; knownHostsFile: string };
  s3: { accessKeyId: string; accessKeySecret: string; region: string; caPath?: string };
  uploadLimitKiBs: number;
}

export interface ResticProgress {
  percentDone: number;
  filesDone: number;
  totalFiles: number;
  bytesDone: number;
  totalBytes: number;
}

export interface ResticSummary {
  snapshotId: string;
  filesNew: number;
  filesChanged: number;
  dataAdded: number;
  totalBytesProcessed: number;
}

export interface ResticSnapshot {
  id: string;
  short_id: string;
  time: string;
  hostname: string;
  tags?: string[];
  paths: string[];
}

export interface RunHooks {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Each stdout line as it arrives (restic --json prints one JSON object per line). */
  onLine?: (line: string) => void;
  /** The child's pid, as soon as it exists (tests kill -9 it at chosen points). */
  onSpawn?: (pid: number) => void;
  cwd?: string;
}

/** `sftp:user@host:/path` or `sftp://user@host:port//path` -> the parts ssh needs. */
export function parseSftpUrl(url: string): { user: string | null; host: string; port: number | null } | null {
  let m = /^sftp:\/\/(?:([^@/]+)@)?([^:/]+)(?::(\d+))?\//.exec(url);
  if (m) return { user: m[1] ?? null, host: m[2]!, port: m[3] ? Number(m[3]) : null };
  m = /^sftp:(?:([^@:/]+)@)?([^:/]+):/.exec(url);
  if (m) return { user: m[1] ?? null, host: m[2]!, port: null };
  return null;
}

export function resticBackend(url: string): 'sftp' | 's3' | 'local' | 'other' {
  if (url.startsWith('sftp:')) return 'sftp';
  if (url.startsWith('s3:')) return 's3';
  if (url.startsWith('/') || url.startsWith('local:')) return 'local';
  return 'other';
}

export class Restic {
  constructor(private readonly o: ResticOptions) {}

  /** Environment for every invocation: the password by file (never on the command line), S3 credentials. */
  env(): Record<string, string> {
    const env: Record<string, string> = {
      RESTIC_REPOSITORY: this.o.repository,
      RESTIC_PASSWORD_FILE: this.o.passwordFile,
      RESTIC_CACHE_DIR: this.o.cacheDir,
      RESTIC_PROGRESS_FPS: '2',
    };
    if (resticBackend(this.o.repository) === 's3') {
      if (this.o.s3.accessKeyId) env.AWS_ACCESS_KEY_ID = this.o.s3.accessKeyId;
      if (this.o.s3.accessKeySecret) env.AWS_SECRET_ACCESS_KEY = this.o.s3.accessKeySecret;
      if (this.o.s3.region) env.AWS_DEFAULT_REGION = this.o.s3.region;
    }
    return env;
  }

  /** Global options: for SFTP, the exact ssh command (our key, our known_hosts, host key checked, never a prompt). */
  globalArgs(): string[] {
    const args: string[] = [];
    if (resticBackend(this.o.repository) === 's3' && this.o.s3.caPath) args.push('--cacert', this.o.s3.caPath);
    if (resticBackend(this.o.repository) === 'sftp') {
      const p = parseSftpUrl(this.o.repository);
      if (!p) throw new AppError('CONFIG_INVALID', 'backup.repository: cannot read the SFTP host from the URL');
      const ssh = ['ssh', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=4'];
      if (this.o.sftp.identityFile) ssh.push('-i', this.o.sftp.identityFile, '-o', 'IdentitiesOnly=yes');
      if (this.o.sftp.knownHostsFile) ssh.push('-o', `UserKnownHostsFile=${this.o.sftp.knownHostsFile}`);
      if (p.port) ssh.push('-p', String(p.port));
      ssh.push(p.user ? `${p.user}@${p.host}` : p.host, '-s', 'sftp');
      // restic splits sftp.command on spaces: refuse paths that would be split.
      if (ssh.some((a) => /\s/.test(a))) throw new AppError('CONFIG_INVALID', 'backup.sftp paths must not contain spaces');
      args.push('-o', `sftp.command=${ssh.join(' ')}`);
    }
    return args;
  }

  run(args: readonly string[], hooks: RunHooks = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      // Niced: a backup yields the CPU to the agent (records viewer, failover); common/priority.ts.
      const child = spawn(...niced(this.o.binary, [...this.globalArgs(), ...args]), {
        env: { ...process.env, ...this.env() },
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(hooks.cwd ? { cwd: hooks.cwd } : {}),
      });
      if (child.pid) hooks.onSpawn?.(child.pid);
      let stdout = '';
      let stderr = '';
      let partial = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => {
        if (stdout.length < 1_000_000) stdout += c;
        partial += c;
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) if (l.trim()) hooks.onLine?.(l);
      });
      child.stderr.setEncoding('utf8').on('data', (c: string) => {
        if (stderr.length < 100_000) stderr += c;
      });
      const kill = () => child.kill('SIGTERM');
      hooks.signal?.addEventListener('abort', kill, { once: true });
      const timer = hooks.timeoutMs ? setTimeout(kill, hooks.timeoutMs) : undefined;
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new AppError('COMMAND_FAILED', `restic: ${e.code === 'ENOENT' ? 'not installed (Debian package restic)' : e.message}`));
      });
      child.on('close', (code, sig) => {
        clearTimeout(timer);
        hooks.signal?.removeEventListener('abort', kill);
        if (nicedNotFound(code, stderr)) return reject(new AppError('COMMAND_FAILED', 'restic: not installed (Debian package restic)'));
        resolve({ code: code ?? (sig ? 128 : -1), stdout, stderr });
      });
    });
  }

  private async must(args: readonly string[], hooks: RunHooks = {}): Promise<string> {
    const r = await this.run(args, hooks);
    if (r.code !== 0) throw new AppError('COMMAND_FAILED', `restic ${args[0]}: exit ${r.code}: ${lastLines(r.stderr)}`);
    return r.stdout;
  }

  /** Create the repository when there is none yet (first backup of a new practice). */
  async ensureRepository(): Promise<'existing' | 'created'> {
    const r = await this.run(['cat', 'config'], { timeoutMs: 120_000 });
    if (r.code === 0) return 'existing';
    if (!/Is there a repository|does not exist|no such file/i.test(r.stderr)) {
      throw new AppError('COMMAND_FAILED', `restic cannot open the repository: ${lastLines(r.stderr)}`);
    }
    await this.must(['init'], { timeoutMs: 120_000 });
    return 'created';
  }

  /** Remove locks left by a restic that was killed (only stale ones: a live restic's lock stays). */
  async unlock(): Promise<void> {
    await this.must(['unlock'], { timeoutMs: 120_000 });
  }

  async backup(dir: string, opts: { host: string; tags: string[]; onProgress?: (p: ResticProgress) => void } & RunHooks): Promise<ResticSummary> {
    const args = ['backup', '--json', '--host', opts.host, ...opts.tags.flatMap((t) => ['--tag', t])];
    if (this.o.uploadLimitKiBs > 0) args.push('--limit-upload', String(this.o.uploadLimitKiBs));
    args.push('.');
    let summary: ResticSummary | null = null;
    const r = await this.run(args, {
      ...opts,
      cwd: dir,
      onLine: (l) => {
        let m: Fields;
        try {
          m = parseFields(l);
        } catch {
          return;
        }
        const n = (k: string) => (typeof m[k] === 'number' ? (m[k] as number) : 0);
        if (m.message_type === 'status') {
          opts.onProgress?.({
            percentDone: n('percent_done'),
            filesDone: n('files_done'),
            totalFiles: n('total_files'),
            bytesDone: n('bytes_done'),
            totalBytes: n('total_bytes'),
          });
        } else if (m.message_type === 'summary' && typeof m.snapshot_id === 'string') {
          summary = {
            snapshotId: m.snapshot_id,
            filesNew: n('files_new'),
            filesChanged: n('files_changed'),
            dataAdded: n('data_added'),
            totalBytesProcessed: n('total_bytes_processed'),
          };
        }
      },
    });
    if (r.code !== 0 || !summary) throw new AppError('COMMAND_FAILED', `restic backup: exit ${r.code}: ${lastLines(r.stderr)}`);
    return summary;
  }

  async snapshots(host?: string): Promise<ResticSnapshot[]> {
    const out = await this.must(['snapshots', '--json', ...(host ? ['--host', host] : [])], { timeoutMs: 300_000 });
    return (JSON.parse(out || '[]') as ResticSnapshot[] | null) ?? [];
  }

  async restore(snapshot: string, target: string, hooks: RunHooks = {}): Promise<void> {
    await this.must(['restore', snapshot, '--target', target], { timeoutMs: 3_600_000, ...hooks });
  }

  /** Stale locks (a killed restic's) are removed first: they are not damage, and check needs an exclusive lock. */
  async check(): Promise<{ ok: boolean; output: string }> {
    await this.unlock();
    const r = await this.run(['check'], { timeoutMs: 3_600_000 });
    return { ok: r.code === 0, output: lastLines(r.stdout + r.stderr, 5) };
  }

  async forget(keep: { daily: number; weekly: number; monthly: number }, host: string): Promise<void> {
    await this.must(
      ['forget', '--prune', '--host', host, '--keep-daily', String(keep.daily), '--keep-weekly', String(keep.weekly), '--keep-monthly', String(keep.monthly)],
      { timeoutMs: 3_600_000 },
    );
  }
}

function lastLines(s: string, n = 2): string {
  return s.trim().split('\n').slice(-n).join(' | ').slice(0, 400);
}
