import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { hashPassword } from '../../../common/password.js';
import { systemClock } from '../../../common/clock.js';
import { createLogger } from '../../../common/log.js';
import { Fleet } from '../../../fleet/src/fleet.js';
import { fleetConfig, tempDir } from '../../helpers/fleet.js';
import { mosquittoMissing, startBroker, type TestBroker } from '../../helpers/mosquitto.js';
import { formClient, type FormResponse } from '../../helpers/https-form.js';

/**
 * Issue 17, medium: the dashboard's sign-in attacked over its real HTTPS server (self-signed
 * default): account lockout, per-address limit, open redirects, Secure cookie, idle and absolute
 * timeouts, disabled accounts. The clock is the system clock plus a skew the test moves forward.
 */
const PW = 'correct horse battery';
type Res = FormResponse;

describe('fleet dashboard sign-in over HTTPS: attacks refused (real server)', { skip: mosquittoMissing() }, () => {
  let broker: TestBroker;
  let fleet: Fleet;
  let tmp: ReturnType<typeof tempDir>;
  let skew = 0;
  let ca: Buffer;
  let port: number;
  const logs: string[] = [];

  const send = formClient(() => ({ port, ca }));
  const login = (username: string, password: string, from = '127.0.0.1', next = '/') => send('POST', '/login', { form: { username, password, next }, from });
  const cookieOf = (r: Res) => String(r.headers['set-cookie'] ?? '').split(';')[0]!;

  before(async () => {
    broker = await startBroker([]);
    tmp = tempDir();
    const config = fleetConfig(broker, tmp.dir, {
      http: {
        port: 0,
        tls: { enabled: true },
        maxFailedAttempts: 5,
        lockoutMs: 60_000,
        maxLoginAttemptsPerIp: 12,
        loginWindowMs: 600_000,
        idleTimeoutMs: 60_000,
        sessionTtlMs: 300_000,
      },
    });
    const log = createLogger({ level: 'info', sink: (r) => logs.push(JSON.stringify(r)) }, 'fleet');
    fleet = new Fleet({ config, log, clock: { ...systemClock, now: () => Date.now() + skew } });
    await fleet.start();
    for (const [u, role] of [
      ['amy', 'icb-admin'],
      ['bob', 'icb-viewer'],
      ['cat', 'icb-viewer'],
      ['dan', 'icb-viewer'],
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

  it('serves HTTPS on a generated self-signed certificate, says so loudly, and the cookie is Secure', async () => {
    assert.match(fleet.web.url, /^https:/);
    assert.equal(fleet.web.tls!.selfSigned, true);
    assert.match(new X509Certificate(ca).subjectAltName!, /DNS:localhost/);
    assert.ok(
      logs.some((l) => /SELF-SIGNED CERTIFICATE/.test(l)),
      'a loud notice in the log',
    );
    const r = await login('amy', PW);
    assert.equal(r.status, 303);
    const set = String(r.headers['set-cookie']);
    for (const flag of ['HttpOnly', 'SameSite=Strict', 'Secure']) assert.ok(set.includes(flag), `${flag} in ${set}`);
    assert.match(String(r.headers['strict-transport-security']), /max-age=/);
    assert.equal((await send('GET', '/', { cookie: cookieOf(r) })).status, 200);
  });

  it('never redirects off the site after sign-in', async () => {
    for (const next of [
      '/\\evil.example/',
      '//evil.example/',
      'https://evil.example/',
      '/\t/evil.example',
      '/%0a/evil',
      'javascript:alert(1)',
      '\\\\evil.example',
    ]) {
      const r = await login('amy', PW, '127.0.0.1', next);
      assert.equal(r.status, 303);
      const loc = String(r.headers.location);
      assert.ok(loc === '/' || (next === '/%0a/evil' && loc === next), `next=${JSON.stringify(next)} went to ${loc}`);
    }
    assert.equal((await login('amy', PW, '127.0.0.1', '/devices?state=offline')).headers.location, '/devices?state=offline', 'a local path is kept');
    const page = await send('GET', `/login?next=${encodeURIComponent('/\\evil.example/')}`);
    assert.match(page.body, /name="next" value="\/"/);
  });

  it('locks an account after 5 wrong passwords: then even the right one is refused until the lock ends', async () => {
    for (let i = 1; i <= 4; i++) assert.equal((await login('bob', `wrong-${i}-password`, '127.0.0.2')).status, 401);
    const fifth = await login('bob', 'wrong-5-password', '127.0.0.2');
    assert.equal(fifth.status, 429);
    assert.match(fifth.body, /locked after 5 wrong passwords/);
    const right = await login('bob', PW, '127.0.0.6');
    assert.equal(right.status, 429, 'the right password from another address is refused while locked');
    assert.equal(right.headers['set-cookie'], undefined);
    skew += 60_001;
    assert.equal((await login('bob', PW, '127.0.0.6')).status, 303, 'after the lock ends');
  });

  it('unknown user names lock the same way (no user enumeration)', async () => {
    let last: Res | undefined;
    for (let i = 1; i <= 5; i++) last = await login('ghost', `wrong-${i}-password`, '127.0.0.7');
    assert.equal(last!.status, 429);
    assert.match(last!.body, /locked after 5 wrong passwords/);
  });

  it('limits one address spraying passwords across accounts; other addresses are unaffected', async () => {
    const names = ['u1', 'u2', 'u3', 'u4'];
    for (let i = 0; i < 12; i++) assert.notEqual((await login(names[i % 4]!, `spray-${i}-password`, '127.0.0.3')).status, 429, `attempt ${i + 1}`);
    const blocked = await login('cat', PW, '127.0.0.3');
    assert.equal(blocked.status, 429);
    assert.match(blocked.body, /Too many sign-in attempts/);
    assert.ok(Number(blocked.headers['retry-after']) > 0);
    assert.equal((await login('cat', PW, '127.0.0.4')).status, 303);
  });

  it('signs a session out after the idle timeout, and after the absolute lifetime however busy', async () => {
    const c1 = cookieOf(await login('dan', PW, '127.0.0.8'));
    assert.equal((await send('GET', '/', { cookie: c1 })).status, 200);
    skew += 60_001;
    const idle = await send('GET', '/', { cookie: c1 });
    assert.equal(idle.status, 303);
    assert.match(String(idle.headers.location), /^\/login/);
    const c2 = cookieOf(await login('dan', PW, '127.0.0.8'));
    for (let t = 50_000; t <= 250_000; t += 50_000) {
      skew += 50_000;
      assert.equal((await send('GET', '/', { cookie: c2 })).status, 200, `used every 50 s: live at +${t} ms`);
    }
    skew += 51_000;
    assert.equal((await send('GET', '/', { cookie: c2 })).status, 303, 'absolute lifetime over');
  });

  it('a disabled account is signed out at once and cannot sign in', async () => {
    const c = cookieOf(await login('amy', PW, '127.0.0.9'));
    assert.equal((await send('GET', '/', { cookie: c })).status, 200);
    await fleet.ctx.store.accounts.setDisabled('amy', true);
    assert.equal((await send('GET', '/', { cookie: c })).status, 303);
    assert.equal((await login('amy', PW, '127.0.0.9')).status, 401);
    await fleet.ctx.store.accounts.setDisabled('amy', false);
  });
});
