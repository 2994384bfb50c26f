import { join } from 'node:path';
import { createUser, deleteUser, listUsers, ROLES, setPassword, unlockUser, type Role } from '../auth/index.js';
import { loadConfig } from '../config/load.js';
import { openStateDb } from '../core/db.js';
import { AppError } from '../../../common/errors.js';
import { configPathFrom, parse } from '../core/cli-args.js';
import type { CliCommand } from '../core/cli-command.js';

/** First line of stdin: passwords never go on the command line (visible in `ps` and shell history). */
async function readPassword(prompt: string): Promise<string> {
  if (process.stdin.isTTY) return readHidden(prompt);
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) {
    chunks.push(c as Buffer);
    if (Buffer.concat(chunks).includes(10)) break;
  }
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
}

/** At a terminal: no echo (the password must not stay on the screen or in a screen recording). */
function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const finish = (err?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(typed);
    };
    const onData = (b: Buffer) => {
      for (const ch of b.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003') return finish(new AppError('BAD_REQUEST', 'cancelled'));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else if (ch >= ' ') typed += ch;
      }
    };
    stdin.on('data', onData);
  });
}

const USAGE = `usage: surgery-edge user add NAME --role admin|clinician|reception   (password on stdin)
       surgery-edge user passwd NAME      (new password on stdin; signs the user out)
       surgery-edge user unlock NAME      (clear a lockout after too many wrong passwords)
       surgery-edge user del NAME
       surgery-edge user list`;

export const userCommand: CliCommand = {
  summary: 'user add|passwd|unlock|del|list: accounts for the status page and records viewer',
  async run(args) {
    const { values, positionals } = parse(args, { role: { type: 'string', short: 'r' }, config: { type: 'string', short: 'c' } }, true);
    const [verb, name] = positionals;
    const path = configPathFrom(values.config);
    const config = loadConfig(path);
    const db = openStateDb(join(config.paths.stateDir, 'agent.db'));
    try {
      switch (verb) {
        case 'list':
          for (const u of listUsers(db)) {
            const locked = u.lockedUntil && u.lockedUntil > Date.now() ? ` LOCKED until ${new Date(u.lockedUntil).toISOString()}` : '';
            process.stdout.write(`${u.username.padEnd(20)} ${u.role.padEnd(10)}${locked}\n`);
          }
          return 0;
        case 'add': {
          if (!name || !values.role) throw new AppError('BAD_REQUEST', USAGE);
          if (!ROLES.includes(values.role as Role)) throw new AppError('BAD_REQUEST', `role must be one of ${ROLES.join(', ')}`);
          createUser(db, name, await readPassword(`password for ${name}: `), values.role as Role);
          process.stdout.write(`added ${name} (${values.role})\n`);
          return 0;
        }
        case 'passwd':
          if (!name) throw new AppError('BAD_REQUEST', USAGE);
          setPassword(db, name, await readPassword(`new password for ${name}: `));
          process.stdout.write(`password changed for ${name}\n`);
          return 0;
        case 'unlock':
          if (!name) throw new AppError('BAD_REQUEST', USAGE);
          unlockUser(db, name);
          process.stdout.write(`unlocked ${name}\n`);
          return 0;
        case 'del':
          if (!name) throw new AppError('BAD_REQUEST', USAGE);
          deleteUser(db, name);
          process.stdout.write(`deleted ${name}\n`);
          return 0;
        default:
          throw new AppError('BAD_REQUEST', USAGE);
      }
    } finally {
      db.close();
    }
  },
};
