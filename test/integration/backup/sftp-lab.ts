import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onPath } from '../../lab/tools.js';

/**
 * A real OpenSSH SFTP server in a network namespace of its own (prefix i19bk, used by no other
 * test), reached over a veth pair: the backup target of the backup tests. Keys and known_hosts are
 * made fresh; the host key is checked (StrictHostKeyChecking=yes), as on a box.
 */
export const NS = 'i19bk-sftp';
const HOST_IF = 'i19bk-h';
const NS_IF = 'i19bk-n';
export const SFTP_ADDR = '10.219.7.2';
const HOST_ADDR = '10.219.7.1';

export interface SftpLab {
  identityFile: string;
  knownHostsFile: string;
  repoUrl(path: string): string;
  stop(): void;
}

export function sftpSkipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (network namespace for the SFTP server)';
  for (const [cmd, pkg] of [
    ['restic', 'restic'],
    ['sshd', 'openssh-server'],
    ['ssh', 'openssh-client'],
    ['ip', 'iproute2'],
  ] as const) {
    if (!onPath(cmd)) return `not installed: ${cmd} (apt-get install ${pkg}; scripts/packages/base.txt)`;
  }
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

export async function startSftpLab(dir: string): Promise<SftpLab> {
  quiet('ip', ['netns', 'del', NS]);
  quiet('ip', ['link', 'del', HOST_IF]);
  sh('ip', ['netns', 'add', NS]);
  sh('ip', ['link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF]);
  sh('ip', ['link', 'set', NS_IF, 'netns', NS]);
  sh('ip', ['addr', 'add', `${HOST_ADDR}/30`, 'dev', HOST_IF]);
  sh('ip', ['link', 'set', HOST_IF, 'up']);
  sh('ip', ['-n', NS, 'addr', 'add', `${SFTP_ADDR}/30`, 'dev', NS_IF]);
  sh('ip', ['-n', NS, 'link', 'set', NS_IF, 'up']);
  sh('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  const d = join(dir, 'sftp');
  mkdirSync(d, { recursive: true, mode: 0o700 });
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(d, 'host_key')]);
  sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(d, 'client_key')]);
  writeFileSync(join(d, 'authorized_keys'), readFileSync(join(d, 'client_key.pub')));
  const hostPub = readFileSync(join(d, 'host_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  writeFileSync(join(d, 'known_hosts'), `${SFTP_ADDR} ${hostPub}\n`);
  writeFileSync(
    join(d, 'sshd_config'),
    [
      `ListenAddress ${SFTP_ADDR}`,
      'Port 22',
      `HostKey ${join(d, 'host_key')}`,
      `PidFile ${join(d, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(d, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
    ].join('\n') + '\n',
  );
  const sshd: ChildProcess = spawn('ip', ['netns', 'exec', NS, '/usr/sbin/sshd', '-D', '-e', '-f', join(d, 'sshd_config')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  sshd.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  // Ready when a TCP connect from the host side succeeds.
  for (let i = 0; ; i++) {
    try {
      sh('ssh', [
        '-o',
        'BatchMode=yes',
        '-o',
        `UserKnownHostsFile=${join(d, 'known_hosts')}`,
        '-o',
        'StrictHostKeyChecking=yes',
        '-i',
        join(d, 'client_key'),
        `root@${SFTP_ADDR}`,
        'true',
      ]);
      break;
    } catch (e) {
      if (i > 50) throw new Error(`sshd did not come up: ${err} ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    identityFile: join(d, 'client_key'),
    knownHostsFile: join(d, 'known_hosts'),
    repoUrl: (path) => `sftp:root@${SFTP_ADDR}:${path}`,
    stop() {
      sshd.kill('SIGKILL');
      quiet('ip', ['netns', 'pids', NS]);
      try {
        for (const pid of sh('ip', ['netns', 'pids', NS]).split('\n').filter(Boolean)) quiet('kill', ['-9', pid]);
      } catch {
        /* namespace gone */
      }
      quiet('ip', ['netns', 'del', NS]);
      quiet('ip', ['link', 'del', HOST_IF]);
    },
  };
}
