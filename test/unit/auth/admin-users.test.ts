import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { accountAudit, createUser, listUsers } from '../../../agent/src/auth/index.js';
import { systemClock } from '../../../common/clock.js';
import { StatusCapability } from '../../../agent/src/status/status.js';
import { WebServer } from '../../../agent/src/web/server.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { registry } from '../status/fixtures.js';
import { FakeSystemInfo } from '../../helpers/fake-system-info.js';

/** /admin/users: admins manage accounts from the page; CSRF-protected, audited, never a password in the log. */
const PW = 'correct horse battery';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('admin screen: staff accounts', () => {
  let ctx: TestCtx;
  let status: StatusCapability;
  let web: WebServer;
  let app: FastifyInstance;

  before(async () => {
    ctx = createTestCtx({ clock: systemClock, config: { status: { listen: '127.0.0.1', port: 0, https: false, refreshMs: 60_000 } } });
    status = new StatusCapability({ systemInfo: new FakeSystemInfo() });
    ctx.capabilities = registry([status]);
    createUser(ctx.db, 'pm', PW, 'admin');
    createUser(ctx.db, 'rec', PW, 'reception');
    await status.start(ctx);
    web = new WebServer();
    await web.start(ctx);
    app = web.app!;
  });
  after(async () => {
    await web?.stop();
    await status.stop();
    ctx.cleanup();
  });

  async function login(u: string, pw = PW) {
    const r = await app.inject({ method: 'POST', url: '/login', payload: { username: u, password: pw } });
    return r.statusCode === 200 ? { cookie: String(r.headers['set-cookie']).split(';')[0]!, csrf: r.json().csrf as string } : null;
  }
  const post = (s: { cookie: string; csrf: string }, url: string, fields: Record<string, string>, csrf = s.csrf) =>
    app.inject({ method: 'POST', url, headers: { ...FORM, cookie: s.cookie }, payload: new URLSearchParams({ _csrf: csrf, ...fields }).toString() });

  it('admin only: signed out is sent to sign in, reception gets 403', async () => {
    const anon = await app.inject({ url: '/admin/users', headers: { accept: 'text/html' } });
    assert.equal(anon.statusCode, 303);
    assert.match(String(anon.headers.location), /^\/login\?next=/);
    const rec = (await login('rec'))!;
    assert.equal((await app.inject({ url: '/admin/users', headers: { cookie: rec.cookie } })).statusCode, 403);
    assert.equal((await post(rec, '/admin/users', { username: 'x1', role: 'admin', password: PW })).statusCode, 403);
  });

  it('lists accounts; adds one (audited); refuses bad input with the reason, without a 500', async () => {
    const pm = (await login('pm'))!;
    const page = await app.inject({ url: '/admin/users', headers: { cookie: pm.cookie } });
    assert.match(page.body, /<th scope="row">rec<\/th><td>Reception<\/td><td>Active<\/td>/);
    const add = await post(pm, '/admin/users', { username: 'drjones', role: 'clinician', password: 'a long password 2' });
    assert.equal(add.statusCode, 303);
    assert.ok(listUsers(ctx.db).some((u) => u.username === 'drjones' && u.role === 'clinician'));
    assert.ok(await login('drjones', 'a long password 2'));
    const bad = await post(pm, '/admin/users', { username: 'Bad Name', role: 'admin', password: 'short' });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /username must be/);
    const dup = await post(pm, '/admin/users', { username: 'rec', role: 'admin', password: PW });
    assert.equal(dup.statusCode, 409);
    assert.equal((await post(pm, '/admin/users', { username: 'x2', role: 'admin', password: PW }, 'forged')).statusCode, 403, 'CSRF token checked');
    assert.equal(
      listUsers(ctx.db).some((u) => u.username === 'x2'),
      false,
    );
    assert.deepEqual(accountAudit(ctx.db, 1)[0]!.action, 'added');
    assert.equal(accountAudit(ctx.db, 1)[0]!.actor, 'pm');
  });

  it('disable ends sessions and refuses sign-in; enable restores; the last admin and oneself cannot be disabled', async () => {
    const pm = (await login('pm'))!;
    const rec = (await login('rec'))!;
    assert.equal((await post(pm, '/admin/users/rec/disable', {})).statusCode, 303);
    assert.equal(await login('rec'), null, 'a disabled account cannot sign in');
    const stale = await app.inject({ url: '/records', headers: { cookie: rec.cookie, accept: 'application/json' } });
    assert.notEqual(stale.statusCode, 200);
    const page = await app.inject({ url: '/admin/users', headers: { cookie: pm.cookie } });
    assert.match(page.body, /<strong>Disabled<\/strong>/);
    assert.equal((await post(pm, '/admin/users/rec/enable', {})).statusCode, 303);
    assert.ok(await login('rec'));
    const self = await post(pm, '/admin/users/pm/disable', {});
    assert.equal(self.statusCode, 403);
    assert.match(self.body, /cannot disable your own account/);
  });

  it('reset password: the old one stops working, the person is signed out; nothing secret is logged', async () => {
    const pm = (await login('pm'))!;
    const rec = (await login('rec'))!;
    assert.equal((await post(pm, '/admin/users/rec/password', { password: 'brand new password' })).statusCode, 303);
    assert.equal(await login('rec'), null);
    assert.ok(await login('rec', 'brand new password'));
    const old = await app.inject({ url: '/admin/users', headers: { cookie: rec.cookie } });
    assert.equal(old.statusCode, 401, 'old session ended');
    assert.equal((await post(pm, '/admin/users/nobody/password', { password: 'brand new password' })).statusCode, 404);
    assert.doesNotMatch(JSON.stringify(ctx.logged), /brand new password|a long password 2/);
    assert.ok(accountAudit(ctx.db).some((a) => a.action === 'reset the password of' && a.target === 'rec'));
  });
});
