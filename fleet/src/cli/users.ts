import { userInfo } from 'node:os';
import { hashPassword } from '../../../common/password.js';
import { AppError } from '../../../common/errors.js';
import { ROLES, type Role } from '../store/account-store.js';
import type { Store } from '../store/store.js';
import { USERNAME } from '../web/auth.js';

export interface UserCliArgs {
  action: string | undefined;
  name: string | undefined;
  role?: string | undefined;
  practice?: string | undefined;
  /** Reads the password (stdin in the CLI). */
  password: () => string;
  /** Who is acting, for the audit log (default: the OS login name). */
  actor?: string;
  now?: number;
}

const bad = (msg: string) => new AppError('BAD_REQUEST', msg);

function checkPassword(p: string): string {
  if (p.length < 10) throw bad('password (on stdin) must be at least 10 characters');
  if (p.length > 1024) throw bad('password too long');
  return p;
}

function checkRole(role: string | undefined, practice: string | undefined): { role: Role; practice: string | null } {
  if (!role || !ROLES.includes(role as Role)) throw bad(`--role must be one of ${ROLES.join(', ')}`);
  if (role === 'practice-manager' && !practice) throw bad('a practice-manager needs --practice ODS');
  if (practice && !/^[A-Z0-9]{3,10}$/i.test(practice)) throw bad(`--practice must be an ODS code: ${practice}`);
  return { role: role as Role, practice: role === 'practice-manager' ? practice!.toUpperCase() : null };
}

/**
 * `fleet user ...`: every change is audited (action user-<verb>, the acting OS user as
 * "cli:<name>") and ends the account's sessions. The last enabled icb-admin cannot be removed,
 * disabled or demoted: that would lock every admin out of the dashboard.
 */
export async function userCommand(store: Store, a: UserCliArgs): Promise<string> {
  const acc = store.accounts;
  const now = a.now ?? Date.now();
  const actor = a.actor ?? `cli:${userInfo().username}`;
  if (a.action === 'list') {
    const rows = await acc.users();
    const line = (u: (typeof rows)[number]) =>
      [
        u.username.padEnd(20),
        u.role.padEnd(17),
        (u.practice ?? '-').padEnd(8),
        u.disabled ? 'disabled' : u.locked_until && Number(u.locked_until) > now ? 'locked' : 'active',
        u.last_login_at ? new Date(Number(u.last_login_at)).toISOString().slice(0, 16) + 'Z' : 'never',
      ].join(' ');
    return ['user                 role              practice state    last sign-in', ...rows.map(line)].join('\n') + '\n';
  }
  const name = a.name;
  if (!name) throw bad(`fleet user ${a.action ?? '<action>'} NAME (see fleet user --help)`);
  if (!USERNAME.test(name)) throw bad('user name must be 2-32 characters: a-z, 0-9, . _ - (lower case, starting with a letter or digit)');
  const existing = await acc.user(name);
  const audit = (action: string, detail: string | null) =>
    acc.audit({ at: now, username: actor, device_id: null, action: `user-${action}`, args: JSON.stringify({ user: name }), outcome: 'ok', detail });
  const lastAdmin = async () => existing?.role === 'icb-admin' && !existing.disabled && (await acc.adminCount()) <= 1;
  const need = () => {
    if (!existing) throw new AppError('NOT_FOUND', `no user ${name}`);
    return existing;
  };
  switch (a.action) {
    case 'add': {
      if (existing) throw new AppError('CONFLICT', `user ${name} already exists (fleet user reset-password / set-role change it)`);
      const r = checkRole(a.role, a.practice);
      await acc.putUser({ username: name, hash: hashPassword(checkPassword(a.password())), ...r }, now);
      await audit('add', `${r.role}${r.practice ? ` ${r.practice}` : ''}`);
      return `user ${name} added (${r.role}${r.practice ? `, practice ${r.practice}` : ''})\n`;
    }
    case 'reset-password':
      need();
      await acc.setPassword(name, hashPassword(checkPassword(a.password())));
      await audit('reset-password', null);
      return `password of ${name} reset; their sessions ended\n`;
    case 'set-role': {
      const u = need();
      const r = checkRole(a.role, a.practice);
      if (r.role !== 'icb-admin' && (await lastAdmin())) throw new AppError('CONFLICT', `${name} is the last enabled icb-admin`);
      await acc.setRole(name, r.role, r.practice);
      await audit('set-role', `${u.role} -> ${r.role}${r.practice ? ` ${r.practice}` : ''}`);
      return `${name} is now ${r.role}${r.practice ? ` of ${r.practice}` : ''}; their sessions ended\n`;
    }
    case 'disable':
      need();
      if (await lastAdmin()) throw new AppError('CONFLICT', `${name} is the last enabled icb-admin`);
      await acc.setDisabled(name, true);
      await audit('disable', null);
      return `${name} disabled; their sessions ended\n`;
    case 'enable':
      need();
      await acc.setDisabled(name, false);
      await audit('enable', null);
      return `${name} enabled\n`;
    case 'unlock':
      need();
      await acc.unlock(name);
      await audit('unlock', null);
      return `${name} unlocked\n`;
    case 'reset-totp':
      if (!need().totp_secret && !existing!.totp_pending) return `${name} has no second factor\n`;
      await acc.resetTotp(name);
      await audit('reset-totp', null);
      return `second factor of ${name} removed; their sessions ended; they set one up again from their account page\n`;
    case 'remove':
      need();
      if (await lastAdmin()) throw new AppError('CONFLICT', `${name} is the last enabled icb-admin`);
      await acc.deleteUser(name);
      await audit('remove', null);
      return `${name} removed\n`;
    default:
      throw bad(`unknown action ${a.action ?? '(none)'} (see fleet user --help)`);
  }
}
