import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';

/**
 * A real S3-compatible server for the backup tests: OpenStack Swift with its s3api middleware
 * (Debian package python3-swift; bookworm has no minio or moto) in a network namespace of its own
 * (prefix i19s3, used by no other test), over HTTPS with a certificate made here, reached over a
 * veth pair. `swift-s3.py` beside this file writes its rings and configs and runs each server.
 */
const NS = 'i19s3-srv';
const HOST_IF = 'i19s3-h';
const NS_IF = 'i19s3-n';
export const S3_ADDR = '10.219.8.2';
const HOST_ADDR = '10.219.8.1';
const PORT = 8080;
const PY = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'swift-s3.py');

export interface S3Lab {
  endpoint: string;
  caPath: string;
  accessKeyId: string;
  accessKeySecret: string;
  /** Where Swift keeps the objects (to search the stored bytes). */
  storeDir: string;
  stop(): void;
}

export function s3SkipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (network namespace for the S3 server)';
  if (!existsSync('/usr/lib/python3/dist-packages/swift/common/middleware/s3api')) return 'not installed: python3-swift (scripts/packages)';
  return false;
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe' }).toString();
const quiet = (cmd: string, args: string[]) => {
  try {
    execFileSync(cmd, args, { stdio: 'pipe' });
  } catch {
    /* already gone */
  }
};

function listening(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createConnection({ host, port });
    s.once('connect', () => (s.destroy(), res(true)));
    s.once('error', () => res(false));
  });
}

export async function startS3Lab(dir: string): Promise<S3Lab> {
  quiet('ip', ['netns', 'del', NS]);
  quiet('ip', ['link', 'del', HOST_IF]);
  sh('ip', ['netns', 'add', NS]);
  sh('ip', ['link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF]);
  sh('ip', ['link', 'set', NS_IF, 'netns', NS]);
  sh('ip', ['addr', 'add', `${HOST_ADDR}/30`, 'dev', HOST_IF]);
  sh('ip', ['link', 'set', HOST_IF, 'up']);
  sh('ip', ['-n', NS, 'addr', 'add', `${S3_ADDR}/30`, 'dev', NS_IF]);
  sh('ip', ['-n', NS, 'link', 'set', NS_IF, 'up']);
  sh('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  const d = join(dir, 's3');
  mkdirSync(d, { recursive: true, mode: 0o700 });
  sh('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    join(d, 'tls.key'),
    '-out',
    join(d, 'tls.crt'),
    '-days',
    '2',
    '-subj',
    `/CN=${S3_ADDR}`,
    '-addext',
    `subjectAltName=IP:${S3_ADDR}`,
  ]);
  sh(PY, [SCRIPT, 'setup', d, S3_ADDR, String(PORT)]);
  const procs: ChildProcess[] = [];
  let err = '';
  for (const server of ['account-server', 'container-server', 'object-server', 'proxy-server']) {
    const p = spawn('ip', ['netns', 'exec', NS, PY, SCRIPT, 'run', d, server], { stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr?.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4000)));
    procs.push(p);
  }
  const stop = () => {
    for (const p of procs) p.kill('SIGKILL');
    try {
      for (const pid of sh('ip', ['netns', 'pids', NS]).split('\n').filter(Boolean)) quiet('kill', ['-9', pid]);
    } catch {
      /* namespace gone */
    }
    quiet('ip', ['netns', 'del', NS]);
    quiet('ip', ['link', 'del', HOST_IF]);
  };
  // Swift's Python start-up is slow on a busy machine: wait for all four listeners.
  for (let i = 0; ; i++) {
    const up = await Promise.all([0, 1, 2, 3].map((k) => listening(S3_ADDR, PORT + k)));
    if (up.every(Boolean)) break;
    if (i > 240 || procs.some((p) => p.exitCode !== null)) {
      stop();
      throw new Error(`swift did not come up: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return {
    endpoint: `https://${S3_ADDR}:${PORT}`,
    caPath: join(d, 'tls.crt'),
    accessKeyId: 'surgery:edge',
    accessKeySecret: 's3cret-for-tests',
    storeDir: join(d, 'srv'),
    stop,
  };
}
