import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { checkLogin, createUser, csrfToken, deleteUser, listUsers, requireRole, setPassword, unlockUser } from '../../../agent/src/auth/index.js';
import { hashPassword, verifyPassword } from '../../../common/password.js';
import { sessionKey } from '../../../agent/src/auth/sessions.js';
import { buildWebApp } from '../../../agent/src/web/app.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const PW = 'correct horse battery';

function cookieOf(res: { headers: Record<string, unknown> }): string {
  const c = String(res.headers['set-cookie'] ?? '');
  return c.split(';')[0]!;
}

describe('passwords', () => {
  it('hashes with scrypt, salted, and verifies only the right password', async () => {
    const a = hashPassword(PW);
    const b = hashPassword(PW);
    assert.match(a, /^scrypt\$16384\$8\$1\$/);
    assert.notEqual(a, b, 'salted');
    assert.equal(await verifyPassword(PW, a), true);
    assert.equal(await verifyPassword(PW + 'x', a), false);
    assert.equal(await verifyPassword(PW, 'garbage'), false);
  });

  it('refuses weak passwords, bad usernames, bad roles and duplicates', () => {
    const ctx = createTestCtx();
    try {
      assert.throws(() => createUser(ctx.db, 'ann', 'short', 'admin'), /at least 10/);
      assert.throws(() => createUser(ctx.db, 'Bad Name', PW, 'admin'), /username/);
      assert.throws(() => createUser(ctx.db, 'ann', PW, 'root' as never), /role/);
      createUser(ctx.db, 'ann', PW, 'reception');
      assert.throws(() => createUser(ctx.db, 'ann', PW, 'admin'), /already exists/);
      assert.deepEqual(
        listUsers(ctx.db).map((u) => [u.username, u.role]),
        [['ann', 'reception']],
      );
    } finally {
      ctx.cleanup();
    }
  });
});

describe('lockout', () => {
  it('locks after 10 wrong passwords, refuses even the right one while locked, unlocks after lockoutMs or by admin', async () => {
    const ctx = createTestCtx();
    try {
      createUser(ctx.db, 'bob', PW, 'clinician');
      const opts = { now: 1000, maxFailed: 10, lockoutMs: 60_000 };
      for (let i = 1; i <= 9; i++) assert.deepEqual(await checkLogin(ctx.db, 'bob', 'wrong', opts), { ok: false, reason: 'bad-credentials' });
      const tenth = await checkLogin(ctx.db, 'bob', 'wrong', opts);
      assert.equal(tenth.ok, false);
      assert.equal(!tenth.ok && tenth.reason, 'locked');
      const right = await checkLogin(ctx.db, 'bob', PW, { ...opts, now: 30_000 });
      assert.equal(!right.ok && right.reason, 'locked');
      assert.equal((await checkLogin(ctx.db, 'bob', PW, { ...opts, now: 61_001 })).ok, true);
      for (let i = 0; i < 10; i++) await checkLogin(ctx.db, 'bob', 'wrong', { ...opts, now: 70_000 });
      unlockUser(ctx.db, 'bob');
      assert.equal((await checkLogin(ctx.db, 'bob', PW, { ...opts, now: 70_001 })).ok, true);
    } finally {
      ctx.cleanup();
    }
  });

  it('a burst of parallel wrong passwords still locks (no stale counter), and the right one sent with them is refused', async () => {
    const ctx = createTestCtx();
    try {
      createUser(ctx.db, 'eve', PW, 'admin');
      const opts = { now: 1000, maxFailed: 10, lockoutMs: 60_000 };
      const burst = await Promise.all([...Array.from({ length: 30 }, () => checkLogin(ctx.db, 'eve', 'wrong', opts)), checkLogin(ctx.db, 'eve', PW, opts)]);
      assert.ok(burst.filter((r) => !r.ok && r.reason === 'locked').length >= 20, 'attempts after the 10th see the lock');
      const after = await checkLogin(ctx.db, 'eve', PW, { ...opts, now: 2000 });
      assert.equal(!after.ok && after.reason, 'locked');
    } finally {
      ctx.cleanup();
    }
  });

  it('an unknown username answers exactly like a real one, lockout included (no username discovery)', async () => {
    const ctx = createTestCtx();
    try {
      createUser(ctx.db, 'gil', PW, 'admin');
      const opts = { now: 1000, maxFailed: 10, lockoutMs: 60_000 };
      const real: unknown[] = [];
      const ghost: unknown[] = [];
      for (let i = 0; i < 11; i++) {
        real.push(await checkLogin(ctx.db, 'gil', 'wrong', opts));
        ghost.push(await checkLogin(ctx.db, 'nobody', 'wrong', opts));
      }
      assert.deepEqual(ghost, real);
      assert.deepEqual(
        await checkLogin(ctx.db, 'nobody', 'wrong', { ...opts, now: 61_001 }),
        { ok: false, reason: 'bad-credentials' },
        'expires like a real lock',
      );
    } finally {
      ctx.cleanup();
    }
  });

  it('a success resets the count (9 wrong, 1 right, 9 wrong is not locked)', async () => {
    const ctx = createTestCtx();
    try {
      createUser(ctx.db, 'cat', PW, 'admin');
      const opts = { now: 1, maxFailed: 10, lockoutMs: 60_000 };
      for (let i = 0; i < 9; i++) await checkLogin(ctx.db, 'cat', 'wrong', opts);
      assert.equal((await checkLogin(ctx.db, 'cat', PW, opts)).ok, true);
      for (let i = 0; i < 9; i++) await checkLogin(ctx.db, 'cat', 'wrong', opts);
      assert.equal((await checkLogin(ctx.db, 'cat', PW, opts)).ok, true);
    } finally {
      ctx.cleanup();
    }
  });
});

describe('web auth (inject)', () => {
  let ctx: TestCtx;
  let app: FastifyInstance;
  let clock: FakeClock;
  let actions = 0;
  let unguarded = 0;

  before(async () => {
    clock = new FakeClock();
    ctx = createTestCtx({ clock, config: { status: { auth: { idleTimeoutMs: 60_000 } } } });
    createUser(ctx.db, 'admin', PW, 'admin');
    createUser(ctx.db, 'rec', PW, 'reception');
    ctx.web.register('test', async (a) => {
      a.get('/secret', { preHandler: requireRole('admin') }, async (req) => ({ user: req.user?.username, csrf: csrfToken(req) }));
      a.post('/action', { preHandler: requireRole('admin') }, async () => {
        actions++;
        return { ok: true };
      });
      // A route that forgot requireRole: the central hook still demands the CSRF token from a session.
      a.post('/unguarded', async (req) => {
        unguarded++;
        return { user: req.user?.username ?? null };
      });
    });
    app = await buildWebApp(ctx, { https: false });
  });
  after(async () => {
    await app.close();
    ctx.cleanup();
  });

  async function login(username: string, password = PW) {
    const res = await app.inject({ method: 'POST', url: '/login', payload: { username, password } });
    return { res, cookie: cookieOf(res), csrf: (res.json() as { csrf?: string }).csrf ?? '' };
  }

  it('redirects HTML GETs to /login and answers 401 JSON otherwise', async () => {
    const html = await app.inject({ url: '/secret', headers: { accept: 'text/html' } });
    assert.equal(html.statusCode, 303);
    assert.equal(html.headers.location, '/login?next=%2Fsecret');
    const api = await app.inject({ url: '/secret' });
    assert.equal(api.statusCode, 401);
  });

  it('form login sets an HttpOnly SameSite=Strict cookie and redirects to a local next only', async () => {
    const ok = await app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `username=admin&password=${encodeURIComponent(PW)}&next=%2F%2Fevil.example`,
    });
    assert.equal(ok.statusCode, 303);
    assert.equal(ok.headers.location, '/');
    assert.match(String(ok.headers['set-cookie']), /HttpOnly; SameSite=Strict/);
    // Browsers strip tabs/newlines and read \ as / in URLs: each of these would lead to evil.example.
    for (const next of ['/\t/evil.example', '/\n/evil.example', '/\\evil.example', '/x\\..\\\\evil.example']) {
      const r = await app.inject({
        method: 'POST',
        url: '/login',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: `username=admin&password=${encodeURIComponent(PW)}&next=${encodeURIComponent(next)}`,
      });
      assert.equal(r.headers.location, '/', JSON.stringify(next));
    }
    const local = await app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `username=admin&password=${encodeURIComponent(PW)}&next=${encodeURIComponent('/records/day?date=2026-11-27')}`,
    });
    assert.equal(local.headers.location, '/records/day?date=2026-11-27', 'a local next is kept');
    const bad = await app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'username=admin&password=nope',
    });
    assert.equal(bad.statusCode, 401);
    assert.match(bad.body, /Wrong username or password/);
  });

  it('role 403, CSRF required for POST, forged Origin refused', async () => {
    const rec = await login('rec');
    assert.equal((await app.inject({ url: '/secret', headers: { cookie: rec.cookie } })).statusCode, 403);
    const adm = await login('admin');
    const got = await app.inject({ url: '/secret', headers: { cookie: adm.cookie } });
    assert.equal(got.statusCode, 200);
    assert.equal(got.json().csrf, adm.csrf);
    const before = actions;
    const noToken = await app.inject({ method: 'POST', url: '/action', headers: { cookie: adm.cookie }, payload: {} });
    assert.equal(noToken.statusCode, 403);
    const wrong = await app.inject({ method: 'POST', url: '/action', headers: { cookie: adm.cookie, 'x-csrf-token': rec.csrf }, payload: {} });
    assert.equal(wrong.statusCode, 403);
    const forged = await app.inject({
      method: 'POST',
      url: '/action',
      headers: { cookie: adm.cookie, 'x-csrf-token': adm.csrf, origin: 'https://evil.example', host: 'localhost:80' },
      payload: {},
    });
    assert.equal(forged.statusCode, 403);
    assert.equal(actions, before, 'no refused request ran the action');
    const form = await app.inject({
      method: 'POST',
      url: '/action',
      headers: { cookie: adm.cookie, 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost:80', host: 'localhost:80' },
      payload: `_csrf=${encodeURIComponent(adm.csrf)}`,
    });
    assert.equal(form.statusCode, 200);
    assert.equal(actions, before + 1);
    assert.ok(ctx.logged.some((e) => e.msg === 'CSRF token missing or wrong' || (e.msg === 'request refused' && e.status === 403)));
  });

  it('every non-GET made with a session needs the CSRF token, even on a route without requireRole', async () => {
    const adm = await login('admin');
    const n = unguarded;
    assert.equal((await app.inject({ method: 'POST', url: '/unguarded', headers: { cookie: adm.cookie }, payload: {} })).statusCode, 403);
    assert.equal(unguarded, n, 'refused before the handler ran');
    const ok = await app.inject({ method: 'POST', url: '/unguarded', headers: { cookie: adm.cookie, 'x-csrf-token': adm.csrf }, payload: {} });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.json().user, 'admin');
    assert.equal((await app.inject({ method: 'POST', url: '/unguarded', payload: {} })).json().user, null, 'signed out: nothing to forge');
  });

  it('signing in issues a new session id and ends the one the browser already had (no fixation)', async () => {
    const first = await login('rec');
    const again = await app.inject({ method: 'POST', url: '/login', headers: { cookie: first.cookie }, payload: { username: 'admin', password: PW } });
    assert.equal(again.statusCode, 200);
    const second = cookieOf(again);
    assert.notEqual(second, first.cookie);
    assert.equal((await app.inject({ url: '/secret', headers: { cookie: first.cookie } })).statusCode, 401, 'old id is dead');
    assert.equal((await app.inject({ url: '/secret', headers: { cookie: second } })).statusCode, 200);
    assert.match(
      String(again.headers['set-cookie']),
      /; HttpOnly; SameSite=Strict; Max-Age=\d+$/,
      'no Secure over plain HTTP (tests); Secure is added with TLS',
    );
  });

  it('changing a password or deleting an account ends its sessions at once', async () => {
    createUser(ctx.db, 'fay', PW, 'clinician');
    const a = await login('fay');
    assert.equal((await app.inject({ url: '/secret', headers: { cookie: a.cookie } })).statusCode, 403, 'signed in (wrong role)');
    assert.throws(() => setPassword(ctx.db, 'fay', 'x'.repeat(2000)), /too long/);
    setPassword(ctx.db, 'fay', 'another long password');
    assert.equal((await app.inject({ url: '/secret', headers: { cookie: a.cookie } })).statusCode, 401, 'old session ended');
    assert.equal((await login('fay')).res.statusCode, 401, 'old password refused');
    const b = await login('fay', 'another long password');
    assert.equal(b.res.statusCode, 200);
    deleteUser(ctx.db, 'fay');
    assert.equal((await app.inject({ url: '/secret', headers: { cookie: b.cookie } })).statusCode, 401);
    assert.equal((ctx.db.prepare('SELECT count(*) AS n FROM auth_sessions WHERE username = ?').get('fay') as { n: number }).n, 0);
    assert.throws(() => deleteUser(ctx.db, 'fay'), /no user fay/);
    assert.throws(() => unlockUser(ctx.db, 'fay'), /no user fay/);
  });

  it('the state db holds only a hash of each session id', async () => {
    const adm = await login('admin');
    const id = adm.cookie.split('=')[1]!;
    const rows = ctx.db.prepare('SELECT id FROM auth_sessions').all() as { id: string }[];
    assert.ok(!rows.some((r) => r.id === id), 'raw id not stored');
    assert.ok(rows.some((r) => r.id === sessionKey(id)));
    assert.equal((await app.inject({ url: '/secret', headers: { cookie: `se_sid=${sessionKey(id)}` } })).statusCode, 401, 'the stored value is not a session');
  });

  it('a password typed into the username box is not logged', async () => {
    await login('Tr0ub4dor&3 secret', 'whatever-else');
    const e = ctx.logged.filter((x) => x.msg === 'login refused').at(-1)!;
    assert.equal(e.user, '(not a valid username)');
    assert.ok(!JSON.stringify(ctx.logged).includes('Tr0ub4dor'));
  });

  it('idle sessions expire (FakeClock) and activity keeps them alive', async () => {
    const adm = await login('admin');
    await clock.advance(50_000);
    assert.equal((await app.inject({ url: '/secret', headers: { cookie: adm.cookie } })).statusCode, 200);
    await clock.advance(50_000);
    assert.equal((await app.inject({ url: '/secret', headers: { cookie: adm.cookie } })).statusCode, 200, 'touched 50 s ago');
    await clock.advance(60_001);
    assert.equal((await app.inject({ url: '/secret', headers: { cookie: adm.cookie } })).statusCode, 401, 'idle > 60 s');
  });

  it('logout ends the session', async () => {
    const adm = await login('admin');
    const out = await app.inject({ method: 'POST', url: '/logout', headers: { cookie: adm.cookie, 'x-csrf-token': adm.csrf } });
    assert.equal(out.statusCode, 303);
    assert.equal((await app.inject({ url: '/secret', headers: { cookie: adm.cookie } })).statusCode, 401);
  });

  it('locks out over HTTP after 10 wrong passwords with 429, and logs it', async () => {
    createUser(ctx.db, 'dan', PW, 'admin');
    for (let i = 0; i < 9; i++) assert.equal((await login('dan', 'wrong-password')).res.statusCode, 401);
    assert.equal((await login('dan', 'wrong-password')).res.statusCode, 429);
    const r = await login('dan');
    assert.equal(r.res.statusCode, 429);
    assert.equal(r.res.json().error, 'LOCKED_OUT');
    assert.ok(ctx.logged.some((e) => e.msg === 'login refused' && e.reason === 'locked'));
  });

  it('malformed and oversized bodies get clear 4xx and the server keeps serving', async () => {
    const badJson = await app.inject({ method: 'POST', url: '/login', headers: { 'content-type': 'application/json' }, payload: '{"username":' });
    assert.equal(badJson.statusCode, 400);
    const wrongTypes = await app.inject({ method: 'POST', url: '/login', payload: { username: ['a'], password: 1 } });
    assert.equal(wrongTypes.statusCode, 400);
    const huge = await app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ username: 'x'.repeat(200_000) }),
    });
    assert.equal(huge.statusCode, 413);
    const weird = await app.inject({ method: 'POST', url: '/login', headers: { 'content-type': 'application/xml' }, payload: '<a/>' });
    assert.equal(weird.statusCode, 415);
    assert.equal((await app.inject({ url: '/login' })).statusCode, 200);
  });

  it('sends security headers: CSP without external sources, nosniff, frame deny', async () => {
    const r = await app.inject({ url: '/login' });
    const csp = String(r.headers['content-security-policy']);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /https?:/);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['x-frame-options'], 'DENY');
  });
});

describe('per-device login rate limit', () => {
  it('refuses a source after its budget of failed attempts (429 + Retry-After), others unaffected, parallel bursts counted, window resets', async () => {
    const clock = new FakeClock();
    const ctx = createTestCtx({ clock, config: { status: { auth: { maxLoginAttemptsPerIp: 5, loginWindowMs: 60_000 } } } });
    const app = await buildWebApp(ctx, { https: false });
    try {
      for (const u of ['amy', 'ben', 'cal']) createUser(ctx.db, u, PW, 'clinician');
      const attempt = (ip: string, username: string, password: string) =>
        app.inject({ method: 'POST', url: '/login', remoteAddress: ip, payload: { username, password } });
      // Successful sign-ins do not use the budget.
      for (let i = 0; i < 3; i++) assert.equal((await attempt('10.0.0.9', 'amy', PW)).statusCode, 200);
      // Spraying: one wrong password on each account, never reaching any account's lockout.
      const codes: number[] = [];
      for (let i = 0; i < 7; i++) codes.push((await attempt('10.0.0.9', ['amy', 'ben', 'cal'][i % 3]!, 'Winter2026!')).statusCode);
      assert.deepEqual(codes, [401, 401, 401, 401, 401, 429, 429]);
      const limited = await attempt('10.0.0.9', 'amy', PW);
      assert.equal(limited.statusCode, 429, 'even the right password waits');
      assert.equal(limited.json().error, 'RATE_LIMITED');
      assert.ok(Number(limited.headers['retry-after']) > 0);
      assert.equal(ctx.logged.filter((e) => e.msg === 'login attempts rate limited').length, 1, 'logged once per window, not per attempt');
      assert.equal((await attempt('10.0.0.10', 'amy', PW)).statusCode, 200, 'another PC can still sign in');
      // A parallel burst from a fresh source: only the budget reaches the password check.
      const burst = await Promise.all(Array.from({ length: 20 }, () => attempt('10.0.0.11', 'ben', 'nope-nope-nope')));
      assert.equal(burst.filter((r) => r.statusCode === 401).length, 5);
      assert.equal(burst.filter((r) => r.statusCode === 429).length, 15);
      await clock.advance(60_000);
      assert.equal((await attempt('10.0.0.9', 'amy', PW)).statusCode, 200, 'window over');
    } finally {
      await app.close();
      ctx.cleanup();
    }
  });
});
