import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './mosquitto.js';

const BIN = ['/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/17/bin'].find((d) => existsSync(join(d, 'initdb')));

/** Skip reason when PostgreSQL's server binaries (Debian postgresql) are absent. */
export function postgresMissing(): string | false {
  if (!BIN) return 'PostgreSQL server binaries not installed (apt-get install postgresql)';
  if (process.getuid?.() === 0) {
    try {
      execFileSync('id', ['postgres'], { stdio: 'ignore' });
    } catch {
      return 'running as root but there is no postgres user to run the server as';
    }
  }
  return false;
}

/**
 * A throw-away PostgreSQL: initdb into a temp dir, listening only on a unix socket in that dir
 * (and a free loopback port, which nothing else uses). As root it runs as the postgres user,
 * since the server refuses to run as root.
 */
export class TestPostgres {
  readonly dir = mkdtempSync(join(tmpdir(), 'fl-pg-'));
  port = 0;
  private readonly asRoot = process.getuid?.() === 0;

  private run(cmd: string, args: string[]): void {
    const bin = join(BIN!, cmd);
    if (this.asRoot) execFileSync('runuser', ['-u', 'postgres', '--', bin, ...args], { stdio: 'pipe' });
    else execFileSync(bin, args, { stdio: 'pipe' });
  }

  get url(): string {
    return `postgres://postgres@/fleet?host=${encodeURIComponent(this.dir)}&port=${this.port}`;
  }

  /** fsync off by default (tests); a benchmark passes fsync: true to measure durable commits. */
  async start(opts: { fsync?: boolean } = {}): Promise<this> {
    chmodSync(this.dir, 0o777);
    this.port = await freePort();
    const data = join(this.dir, 'data');
    this.run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    this.run('pg_ctl', [
      '-D',
      data,
      '-l',
      join(this.dir, 'log'),
      '-w',
      '-t',
      '30',
      '-o',
      `-k ${this.dir} -p ${this.port} -c listen_addresses='' -c fsync=${opts.fsync ? 'on' : 'off'}`,
      'start',
    ]);
    this.run('createdb', ['-h', this.dir, '-p', String(this.port), '-U', 'postgres', 'fleet']);
    return this;
  }

  /** Resident memory of the server: the postmaster and its children (backends, WAL writer...), MB. */
  rssMb(): number {
    try {
      const pid = readFileSync(join(this.dir, 'data', 'postmaster.pid'), 'utf8')
        .split('\n')[0]!
        .trim();
      const out = execFileSync('ps', ['-o', 'rss=', '--ppid', pid, '-p', pid], { encoding: 'utf8' });
      return out.split('\n').reduce((a, l) => a + (Number(l.trim()) || 0), 0) / 1024;
    } catch {
      return 0;
    }
  }

  /** Drop and re-create the database, for a fresh schema per test. */
  reset(): void {
    this.run('dropdb', ['-h', this.dir, '-p', String(this.port), '-U', 'postgres', '--if-exists', '--force', 'fleet']);
    this.run('createdb', ['-h', this.dir, '-p', String(this.port), '-U', 'postgres', 'fleet']);
  }

  async stop(): Promise<void> {
    try {
      this.run('pg_ctl', ['-D', join(this.dir, 'data'), '-m', 'fast', '-w', 'stop']);
    } catch {
      /* not running */
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
