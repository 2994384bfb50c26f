import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verifyPassword } from '../../../common/password.js';
import { userCommand } from '../../../fleet/src/cli/users.js';
import { SqliteDriver } from '../../../fleet/src/store/driver.js';
import { Store } from '../../../fleet/src/store/store.js';

const FLEET = resolve(import.meta.dirname, '../../../fleet/bin/fleet');
const fleet = (args: string[], input?: string) => spawnSync(FLEET, args, { encoding: 'utf8', input, timeout: 60_000 });

describe('fleet CLI: help for every command', () => {
  it('fleet --help, help COMMAND and COMMAND --help exit 0 with their text; an unknown command exits 2', () => {
    for (const [args, want] of [
      [['--help'], /commands:\n\s+run[\s\S]*user/],
      [['help', 'user'], /reset-password NAME/],
      [['help', 'user'], /reset-totp NAME/],
      [['user', '--help'], /set-role NAME --role ROLE/],
      [['run', '-h'], /--port N/],
    ] as const) {
      const r = fleet([...args]);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, want);
    }
    const bad = fleet(['bogus']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown command bogus/);
  });
});

describe('fleet user: list, add, disable, enable, remove, reset-password, set-role, unlock; each audited', () => {
  let dir: string;
  let store: Store;
  const run = (action: string, name?: string, o: { role?: string; practice?: string; password?: string } = {}) =>
    userCommand(store, { action, name, role: o.role, practice: o.practice, password: () => o.password ?? '', actor: 'cli:tester', now: 1000 });
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-cli-'));
    store = await Store.open(new SqliteDriver(join(dir, 'fleet.db')));
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('manages accounts and audits every change', async () => {
    await run('add', 'amy', { role: 'icb-admin', password: 'amy-long-password' });
    await run('add', 'pat', { role: 'practice-manager', practice: 'p81001', password: 'pat-long-password' });
    await assert.rejects(run('add', 'amy', { role: 'icb-admin', password: 'x'.repeat(12) }), /already exists/);
    await assert.rejects(run('add', 'pm2', { role: 'practice-manager', password: 'x'.repeat(12) }), /needs --practice/);
    await assert.rejects(run('add', 'Bad Name', { role: 'icb-viewer', password: 'x'.repeat(12) }), /user name must be/);
    await assert.rejects(run('add', 'shorty', { role: 'icb-viewer', password: 'short' }), /at least 10/);
    await assert.rejects(run('add', 'root2', { role: 'superuser', password: 'x'.repeat(12) }), /--role must be one of/);
    assert.equal((await store.accounts.user('pat'))!.practice, 'P81001');
    // The last enabled admin cannot be removed, disabled or demoted.
    await assert.rejects(run('disable', 'amy'), /last enabled icb-admin/);
    await assert.rejects(run('remove', 'amy'), /last enabled icb-admin/);
    await assert.rejects(run('set-role', 'amy', { role: 'icb-viewer' }), /last enabled icb-admin/);
    await run('set-role', 'pat', { role: 'icb-admin' });
    await run('disable', 'amy');
    // A change ends the account's sessions.
    await store.accounts.createSession('s1', 'pat', 'c', 1000);
    await run('reset-password', 'pat', { password: 'pat-new-password' });
    assert.equal(await store.accounts.session('s1', 1001, { idleMs: 1e9, maxAgeMs: 1e9, touchEveryMs: 1e9 }), undefined);
    assert.equal(await verifyPassword('pat-new-password', (await store.accounts.user('pat'))!.hash), true);
    await store.accounts.loginFailed('pat', { now: 1000, maxFailed: 1, lockoutMs: 1e9 });
    assert.match(await run('list'), /pat\s+icb-admin\s+-\s+locked/);
    await run('unlock', 'pat');
    await run('enable', 'amy');
    const list = await run('list');
    assert.match(list, /amy\s+icb-admin\s+-\s+active/);
    assert.match(list, /pat\s+icb-admin\s+-\s+active/);
    await run('remove', 'amy');
    await assert.rejects(run('remove', 'amy'), /no user amy/);
    const audit = (await store.accounts.auditLog(50)).reverse().map((r) => `${r.username} ${r.action} ${JSON.parse(r.args!).user}`);
    assert.deepEqual(
      audit,
      ['add amy', 'add pat', 'set-role pat', 'disable amy', 'reset-password pat', 'unlock pat', 'enable amy', 'remove amy'].map((s) => `cli:tester user-${s}`),
    );
  });

  it('reset-totp removes a second factor (set up or half set up), ends the sessions, and is audited', async () => {
    await run('add', 'tom', { role: 'icb-viewer', password: 'tom-long-password' });
    assert.match(await run('reset-totp', 'tom'), /tom has no second factor/);
    await assert.rejects(run('reset-totp', 'nobody'), /no user nobody/);
    await store.accounts.setTotpPending('tom', 'v1:sealed');
    await store.accounts.confirmTotp('tom', 'v1:sealed', 42);
    await store.accounts.setTotpPending('tom', 'v1:next');
    await store.accounts.createSession('s2', 'tom', 'c', 1000);
    assert.match(await run('reset-totp', 'tom'), /second factor of tom removed/);
    const u = (await store.accounts.user('tom'))!;
    assert.deepEqual([u.totp_secret, u.totp_pending, u.totp_last_step], [null, null, null]);
    assert.equal(await store.accounts.session('s2', 1001, { idleMs: 1e9, maxAgeMs: 1e9, touchEveryMs: 1e9 }), undefined);
    const last = (await store.accounts.auditLog(1))[0]!;
    assert.deepEqual([last.username, last.action, JSON.parse(last.args!).user], ['cli:tester', 'user-reset-totp', 'tom']);
  });

  it('through the real binary: add with the password on stdin, then list', () => {
    const d = join(dir, 'bin');
    const add = fleet(['--data-dir', d, 'user', 'add', 'viv', '--role', 'icb-viewer'], 'viv-long-password\n');
    assert.equal(add.status, 0, add.stderr);
    assert.match(add.stdout, /user viv added \(icb-viewer\)/);
    const bad = fleet(['--data-dir', d, 'user', 'add', 'vic', '--role', 'icb-viewer'], 'short\n');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /at least 10 characters/);
    assert.match(fleet(['--data-dir', d, 'user', 'list']).stdout, /viv\s+icb-viewer/);
  });
});
