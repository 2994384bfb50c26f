import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { hashPassword } from '../../../common/password.js';
import { systemClock } from '../../../common/clock.js';
import { createLogger } from '../../../common/log.js';
import { base32Decode, hotp, totpStep } from '../../../common/totp.js';
import { Fleet } from '../../../fleet/src/fleet.js';
import { fleetConfig, tempDir } from '../../helpers/fleet.js';
import { mosquittoMissing, startBroker, type TestBroker } from '../../helpers/mosquitto.js';
import { formClient, type FormResponse } from '../../helpers/https-form.js';

/**
 * Issue 17: the optional TOTP second factor on the real HTTPS dashboard: set up from the account
 * page, the code step after the password, wrong codes locked out (per account and per address),
 * a used code refused, reset with the real `fleet user reset-totp` CLI, and required-for-icb-admin.
 * The clock is the system clock plus a skew the test moves forward (codes follow it).
 */
const PW = 'correct horse battery';
type Res = FormResponse;

describe('fleet dashboard TOTP second factor over HTTPS (real server, real CLI)', { skip: mosquittoMissing() }, () => {
  let broker: TestBroker;
  let fleet: Fleet;
  let tmp: ReturnType<typeof tempDir>;
  let skew = 0;
  let ca: Buffer;
  let port: number;
  let key: Buffer;
  let recovery: string[] = [];
  const logs: string[] = [];
  const now = () => Date.now() + skew;

  const send = formClient(() => ({ port, ca }));
  const cookieNamed = (r: Res, name: string) =>
    ([r.headers['set-cookie'] ?? []].flat() as string[]).map((c) => c.split(';')[0]!).find((c) => c.startsWith(`${name}=`) && c.length > name.length + 1);
  const login = (username: string, from = '127.0.0.1') => send('POST', '/login', { form: { username, password: PW, next: '/alerts' }, from });
  const code = (mfa: string, c: string, from = '127.0.0.1') => send('POST', '/login/code', { form: { code: c }, cookie: mfa, from });
  const csrfOf = async (cookie: string) => /name="csrf" value="([^"]+)"/.exec((await send('GET', '/account', { cookie })).body)![1]!;
  const codeAt = (step: number) => hotp(key, step);
  /** A code that matches none of the steps the server accepts now (±1). */
  const wrongCode = (i: number) => {
    const s = totpStep(now());
    const valid = new Set([s - 1, s, s + 1].map(codeAt));
    for (let n = 100_000 + i * 7919; ; n++) if (!valid.has(String(n).padStart(6, '0'))) return String(n).padStart(6, '0');
  };
  /** Password right: the second step's cookie (and no session yet). */
  const half = async (user: string, from = '127.0.0.1') => {
    const r = await login(user, from);
    assert.equal(r.status, 303);
    assert.equal(r.headers.location, '/login/code');
    assert.equal(cookieNamed(r, 'fl_session'), undefined, 'the password alone gives no session');
    return cookieNamed(r, 'fl_mfa')!;
  };

  before(async () => {
    broker = await startBroker([]);
    tmp = tempDir();
    const config = fleetConfig(broker, tmp.dir, {
      http: { port: 0, tls: { enabled: true }, maxFailedAttempts: 8, lockoutMs: 60_000, maxLoginAttemptsPerIp: 6, loginWindowMs: 600_000 },
    });
    const log = createLogger({ level: 'info', sink: (r) => logs.push(JSON.stringify(r)) }, 'fleet');
    fleet = new Fleet({ config, log, clock: { ...systemClock, now } });
    await fleet.start();
    for (const [u, role] of [
      ['amy', 'icb-admin'],
      ['bob', 'icb-viewer'],
    ] as const)
      await fleet.ctx.store.accounts.putUser({ username: u, hash: hashPassword(PW), role, practice: null }, Date.now());
    ca = fleet.web.tls!.cert;
    port = Number(new URL(fleet.web.url).port);
  });
  after(async () => {
    await fleet?.stop();
    await broker?.close();
    tmp?.rm();
  });

  it('sets up a second factor from the account page, switched on only by a current code', async () => {
    const r = await login('amy');
    assert.equal(r.status, 303, 'no factor yet: the password signs in');
    const s = cookieNamed(r, 'fl_session')!;
    assert.match((await send('GET', '/account', { cookie: s })).body, /<strong>Off\.<\/strong>/);
    const csrf = await csrfOf(s);
    assert.equal((await send('POST', '/account/totp/start', { form: { csrf }, cookie: s })).status, 303);
    const res = await send('GET', '/account', { cookie: s });
    const page = res.body;
    assert.match(String(res.headers['content-security-policy']), /default-src 'none'; script-src 'self';/);
    assert.match(page, /<p id="totp-qr"><svg xmlns="http:\/\/www.w3.org\/2000\/svg"[^>]*role="img"[\s\S]*?<\/svg><\/p>/, 'the QR code, inline SVG');
    assert.doesNotMatch(page, /<script(?![^>]*\bsrc="\/static\/)|<img|\son[a-z]+=/, 'no inline script, handler or image request (the CSP holds)');
    const secret = /id="totp-secret">([A-Z2-7 ]+)</.exec(page)![1]!;
    const uri = new URL(/id="totp-uri"[^>]*>([^<]+)</.exec(page)![1]!.replace(/&amp;/g, '&'));
    assert.equal(uri.protocol, 'otpauth:');
    assert.equal(uri.searchParams.get('secret'), secret.replace(/ /g, ''));
    key = base32Decode(secret);
    assert.equal(key.length, 20);
    const stored = (await fleet.ctx.store.accounts.user('amy'))!;
    assert.ok(stored.totp_pending!.startsWith('v1:') && !stored.totp_pending!.includes(secret.replace(/ /g, '')), 'sealed in the store, not plain');

    const bad = await send('POST', '/account/totp/confirm', { form: { csrf, code: wrongCode(0) }, cookie: s });
    assert.match(decodeURIComponent(String(bad.headers.location)), /does not match/);
    assert.equal((await fleet.ctx.store.accounts.user('amy'))!.totp_secret, null, 'a wrong code does not switch it on');
    assert.equal((await send('POST', '/account/totp/confirm', { form: { code: codeAt(totpStep(now())) }, cookie: s })).status, 403, 'CSRF');

    const ok = await send('POST', '/account/totp/confirm', { form: { csrf, code: codeAt(totpStep(now())) }, cookie: s });
    assert.equal(ok.status, 200, 'the recovery codes are the answer itself (not a redirect: never in a URL)');
    assert.match(ok.body, /Second factor on/);
    assert.equal(ok.headers['cache-control'], 'no-store');
    recovery = [...ok.body.matchAll(/<li>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})<\/li>/g)].map((m) => m[1]!);
    assert.equal(recovery.length, 10);
    assert.equal(new Set(recovery).size, 10);
    const rows = await fleet.ctx.store.driver.all<{ hash: string }>('SELECT hash FROM totp_recovery WHERE username = ?', ['amy']);
    assert.equal(rows.length, 10);
    assert.ok(!rows.some((r) => recovery.some((c) => r.hash.includes(c.replace(/-/g, '')))), 'only hashes are stored');
    const on = (await send('GET', '/account', { cookie: s })).body;
    assert.match(on, /<strong>On\.<\/strong>/);
    assert.match(on, /id="recovery-left">10 of 10 unused/);
    assert.doesNotMatch(on, new RegExp(recovery[0]!), 'shown once: not on the account page again');
    assert.ok((await fleet.ctx.store.accounts.auditLog()).some((a) => a.action === 'user-totp-on' && a.username === 'amy'));
    assert.equal((await send('POST', '/logout', { form: { csrf }, cookie: s })).status, 303);
  });

  it('sign-in then asks for the code; the code that set it up is not good again; the next one signs in', async () => {
    const mfa = await half('amy');
    assert.equal((await send('GET', '/alerts', { cookie: mfa })).status, 303, 'half signed in is not signed in');
    assert.match((await send('GET', '/login/code', { cookie: mfa })).body, /autocomplete="one-time-code"/);
    assert.equal((await send('POST', '/login/code', { form: { code: codeAt(totpStep(now())) } })).status, 401, 'no half-signed-in cookie');
    const used = Number((await fleet.ctx.store.accounts.user('amy'))!.totp_last_step);
    const replay = await code(mfa, codeAt(used));
    assert.equal(replay.status, 401, 'the confirming code (same step) is refused');
    assert.match(replay.body, /already used/);
    skew += 60_000;
    const r = await code(mfa, codeAt(totpStep(now())));
    assert.equal(r.status, 303);
    assert.equal(r.headers.location, '/alerts', 'back to where they were going');
    const s = cookieNamed(r, 'fl_session')!;
    assert.equal((await send('GET', '/alerts', { cookie: s })).status, 200);
    assert.equal((await code(mfa, codeAt(totpStep(now()) + 1))).status, 401, 'the half-signed-in step is over once used');
  });

  it('a code used to sign in is refused when replayed, even in a new sign-in', async () => {
    const step = Number((await fleet.ctx.store.accounts.user('amy'))!.totp_last_step);
    const mfa = await half('amy');
    assert.equal((await code(mfa, codeAt(step))).status, 401, 'step already used by the last sign-in');
    const next = await code(mfa, codeAt(step + 1)); // the step after the used one: within ±1 of now
    assert.equal(next.status, 303);
    const again = await half('amy');
    assert.equal((await code(again, codeAt(step + 1))).status, 401, 'same code replayed');
    // Two requests with the same fresh code at once: one gets in.
    skew += 90_000;
    const [a, b] = await Promise.all([half('amy'), half('amy')]);
    const c = codeAt(totpStep(now()));
    const rs = await Promise.all([code(a, c), code(b, c)]);
    assert.deepEqual(rs.map((x) => x.status).sort(), [303, 401]);
  });

  it('wrong codes count in the per-address limit and the account lockout, like wrong passwords', async () => {
    skew += 90_000;
    // A replayed code counts as a wrong one: the race above left amy one failure; start from none.
    assert.equal((await fleet.ctx.store.accounts.user('amy'))!.failed_attempts, 1);
    await fleet.ctx.store.accounts.unlock('amy');
    const mfa = await half('amy', '127.0.0.2');
    for (let i = 0; i < 6; i++) assert.equal((await code(mfa, wrongCode(i), '127.0.0.2')).status, 401, `wrong code ${i + 1}`);
    const limited = await code(mfa, codeAt(totpStep(now())), '127.0.0.2');
    assert.equal(limited.status, 429, 'the address is limited: even the right code is not tried');
    assert.match(limited.body, /Too many sign-in attempts from this address/);
    // From another address, the account's count (6 so far) reaches 8: locked.
    const other = await half('amy', '127.0.0.3');
    assert.equal((await code(other, wrongCode(6), '127.0.0.3')).status, 401);
    const locked = await code(other, wrongCode(7), '127.0.0.3');
    assert.equal(locked.status, 429);
    assert.match(locked.body, /locked after 8 wrong passwords or codes/);
    const r = await login('amy', '127.0.0.4');
    assert.equal(r.status, 429, 'locked: the right password is refused too');
    assert.ok(
      logs.some((l) => /bad-code/.test(l) && /"user":"amy"/.test(l)),
      'wrong codes are logged',
    );
    assert.ok(!logs.some((l) => l.includes(wrongCode(0))), 'codes are never logged');
    skew += 61_000;
    const mfa2 = await half('amy', '127.0.0.4');
    assert.equal((await code(mfa2, codeAt(totpStep(now())), '127.0.0.4')).status, 303, 'after the lock ends, password and code get in');
  });

  it('the half-signed-in step expires', async () => {
    skew += 60_000;
    const mfa = await half('amy', '127.0.0.5');
    skew += 5 * 60_000 + 1000;
    const r = await code(mfa, codeAt(totpStep(now())), '127.0.0.5');
    assert.equal(r.status, 401);
    assert.match(r.body, /expired/);
  });

  it('a recovery code signs in once instead of a code; wrong ones count in the lockout; each use is audited', async () => {
    skew += 60_000;
    await fleet.ctx.store.accounts.unlock('amy');
    const mfa = await half('amy', '127.0.0.8');
    assert.match((await send('GET', '/login/code', { cookie: mfa })).body, /<details id="use-recovery">/);
    const wrong = await send('POST', '/login/code', { form: { recovery: 'aaaa-bbbb-cccc-dddd' }, cookie: mfa, from: '127.0.0.8' });
    assert.equal(wrong.status, 401);
    assert.match(wrong.body, /wrong or has been used/);
    assert.equal((await fleet.ctx.store.accounts.user('amy'))!.failed_attempts, 1, 'a wrong recovery code counts like a wrong code');
    // Typed loosely: upper case, spaces instead of dashes.
    const typed = recovery[0]!.toUpperCase().replace(/-/g, ' ');
    const r = await send('POST', '/login/code', { form: { recovery: typed }, cookie: mfa, from: '127.0.0.8' });
    assert.equal(r.status, 303);
    assert.match(decodeURIComponent(String(r.headers.location)), /^\/account\?done=You signed in with a recovery code: 9 left/);
    const s = cookieNamed(r, 'fl_session')!;
    assert.equal((await send('GET', '/alerts', { cookie: s })).status, 200);
    assert.equal((await fleet.ctx.store.accounts.user('amy'))!.failed_attempts, 0);
    assert.match((await send('GET', '/account', { cookie: s })).body, /9 of 10 unused/);
    const used = (await fleet.ctx.store.accounts.auditLog()).filter((a) => a.action === 'user-recovery-code-used');
    assert.equal(used.length, 1);
    assert.match(used[0]!.detail!, /^9 left; from 127\.0\.0\.8$/);
    assert.ok(!logs.some((l) => l.includes(recovery[0]!) || l.includes(typed)), 'recovery codes are never logged');

    const again = await half('amy', '127.0.0.8');
    const replay = await send('POST', '/login/code', { form: { recovery: recovery[0]! }, cookie: again, from: '127.0.0.8' });
    assert.equal(replay.status, 401, 'a used recovery code does not work again');
    // Seven more wrong ones (each from its own address, so the per-address limit does not step in first): 8 in a row lock the account.
    let last: Res | undefined;
    for (let i = 0; i < 7; i++)
      last = await send('POST', '/login/code', { form: { recovery: `zzzz-zzzz-zzzz-zzz${'234567a'[i]}` }, cookie: again, from: `127.0.1.${i + 1}` });
    assert.equal(last!.status, 429);
    assert.match(last!.body, /locked after 8 wrong passwords or codes/);
    assert.equal((await login('amy', '127.0.1.9')).status, 429, 'locked: the password is refused too');
    assert.equal(await fleet.ctx.store.accounts.recoveryCodesLeft('amy'), 9);
    skew += 61_000;
  });

  it('new recovery codes need a current code, replace the old set, and are audited', async () => {
    skew += 60_000;
    const mfa = await half('amy', '127.0.0.10');
    const s = cookieNamed(await code(mfa, codeAt(totpStep(now())), '127.0.0.10'), 'fl_session')!;
    const csrf = await csrfOf(s);
    const bad = await send('POST', '/account/totp/recovery', { form: { csrf, code: wrongCode(20) }, cookie: s });
    assert.match(decodeURIComponent(String(bad.headers.location)), /does not match/);
    assert.equal(await fleet.ctx.store.accounts.recoveryCodesLeft('amy'), 9, 'unchanged');
    assert.equal((await fleet.ctx.store.accounts.user('amy'))!.failed_attempts, 1, 'a wrong code here counts too');
    assert.equal((await send('POST', '/account/totp/recovery', { form: { code: codeAt(totpStep(now()) + 1) }, cookie: s })).status, 403, 'CSRF');
    skew += 30_000;
    const ok = await send('POST', '/account/totp/recovery', { form: { csrf, code: codeAt(totpStep(now())) }, cookie: s });
    assert.equal(ok.status, 200);
    const fresh = [...ok.body.matchAll(/<li>([a-z2-7-]{19})<\/li>/g)].map((m) => m[1]!);
    assert.equal(fresh.length, 10);
    assert.equal(await fleet.ctx.store.accounts.recoveryCodesLeft('amy'), 10);
    const audit = (await fleet.ctx.store.accounts.auditLog()).filter((a) => a.action === 'user-recovery-codes-new').map((a) => a.outcome);
    assert.deepEqual(audit, ['ok', 'refused']);
    assert.match((await fleet.ctx.store.accounts.auditLog()).find((a) => a.action === 'user-totp-on')!.detail!, /10 recovery codes/);
    const old = await half('amy', '127.0.0.10');
    assert.equal((await send('POST', '/login/code', { form: { recovery: recovery[2]! }, cookie: old, from: '127.0.0.10' })).status, 401, 'old set gone');
    const r = await send('POST', '/login/code', { form: { recovery: fresh[0]! }, cookie: old, from: '127.0.0.10' });
    assert.equal(r.status, 303, 'a new one works');
    recovery = fresh;

    // Guessing codes here ends in the same lockout as at sign-in, and the lock ends the session it came from.
    const s2 = cookieNamed(r, 'fl_session')!;
    const csrf2 = await csrfOf(s2);
    let last: Res | undefined;
    for (let i = 0; i < 8; i++) last = await send('POST', '/account/totp/recovery', { form: { csrf: csrf2, code: wrongCode(30 + i) }, cookie: s2 });
    assert.equal(last!.headers.location, '/login');
    assert.equal((await send('GET', '/alerts', { cookie: s2 })).status, 303, 'that session is over');
    assert.ok(Number((await fleet.ctx.store.accounts.user('amy'))!.locked_until) > now());
    assert.equal(await fleet.ctx.store.accounts.recoveryCodesLeft('amy'), 9, 'the codes are as they were');
    skew += 61_000;
  });

  it('`fleet user reset-totp` (the real CLI) removes it, ends the sessions, and is audited', async () => {
    skew += 60_000;
    const mfa = await half('amy', '127.0.0.6');
    const s = cookieNamed(await code(mfa, codeAt(totpStep(now())), '127.0.0.6'), 'fl_session')!;
    assert.equal((await send('GET', '/alerts', { cookie: s })).status, 200);
    const { stdout } = await promisify(execFile)('scripts/node', ['--import', 'tsx', 'fleet/src/main.ts', 'user', 'reset-totp', 'amy', '--data-dir', tmp.dir]);
    assert.match(stdout, /second factor of amy removed/);
    assert.equal((await send('GET', '/alerts', { cookie: s })).status, 303, 'their session ended');
    const audit = (await fleet.ctx.store.accounts.auditLog()).find((a) => a.action === 'user-reset-totp');
    assert.ok(audit && audit.username.startsWith('cli:'), 'audited as the CLI user');
    assert.equal(await fleet.ctx.store.accounts.recoveryCodesLeft('amy'), 0, 'its recovery codes went with it');
    const r = await login('amy', '127.0.0.6');
    assert.equal(r.status, 303);
    assert.equal(r.headers.location, '/alerts', 'password alone again');
  });

  it('required-for-icb-admin: an admin without one can only set it up; others are not held; off asks for no code', async () => {
    fleet.ctx.config.auth.totp = 'required-for-icb-admin';
    try {
      const amy = cookieNamed(await login('amy', '127.0.0.7'), 'fl_session')!;
      const page = await send('GET', '/alerts', { cookie: amy });
      assert.equal(page.status, 303);
      assert.equal(page.headers.location, '/account');
      assert.match((await send('GET', '/account', { cookie: amy })).body, /must have a second factor/);
      const csrf = await csrfOf(amy);
      assert.equal((await send('POST', '/users', { form: { csrf, username: 'eve', role: 'icb-admin', password: PW }, cookie: amy })).status, 403);
      const bob = cookieNamed(await login('bob', '127.0.0.7'), 'fl_session')!;
      assert.equal((await send('GET', '/alerts', { cookie: bob })).status, 200, 'a viewer is not held');
      // Bob sets one up; with auth.totp off he signs in with his password only.
      const bcsrf = await csrfOf(bob);
      await send('POST', '/account/totp/start', { form: { csrf: bcsrf }, cookie: bob });
      const bobKey = base32Decode(/id="totp-secret">([A-Z2-7 ]+)</.exec((await send('GET', '/account', { cookie: bob })).body)![1]!);
      const on = await send('POST', '/account/totp/confirm', { form: { csrf: bcsrf, code: hotp(bobKey, totpStep(now())) }, cookie: bob });
      assert.match(on.body, /Second factor on/);
      assert.equal((await login('bob', '127.0.0.7')).headers.location, '/login/code');
      fleet.ctx.config.auth.totp = 'off';
      assert.equal((await login('bob', '127.0.0.7')).headers.location, '/alerts');
    } finally {
      fleet.ctx.config.auth.totp = 'optional';
    }
  });
});
