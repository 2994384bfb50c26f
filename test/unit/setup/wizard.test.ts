import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { listUsers } from '../../../agent/src/auth/index.js';
import { systemClock } from '../../../common/clock.js';
import { SetupCapability } from '../../../agent/src/setup/setup.js';
import { StatusCapability } from '../../../agent/src/status/status.js';
import { WebServer } from '../../../agent/src/web/server.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { FakeCap, failoverHealth, registry } from '../status/fixtures.js';
import { FakeSystemInfo } from '../../helpers/fake-system-info.js';

/**
 * The first-run wizard through the real web server (inject): refused without, with a wrong and
 * with a reused code; rate limited; validates everything before writing anything; after set-up
 * it is gone and the code is spent. The plain code reaches only the fleet report.
 */
const UPLINKS = [
  { name: 'wan', interface: 'wan0', kind: 'wired', priority: 1, table: 101 },
  { name: '4g', interface: 'wwan0', kind: 'cellular', priority: 2, table: 102 },
];
const IP = { a: '10.0.0.5', b: '10.0.0.6', c: '10.0.0.7' };

describe('set-up wizard', () => {
  let ctx: TestCtx;
  let setup: SetupCapability;
  let status: StatusCapability;
  let web: WebServer;
  let app: FastifyInstance;
  const applied: Record<string, unknown>[] = [];

  before(async () => {
    ctx = createTestCtx({
      clock: systemClock,
      config: {
        uplinks: UPLINKS,
        status: { listen: '127.0.0.1', port: 0, https: false, refreshMs: 60_000, setup: { required: true, maxCodeAttemptsPerIp: 3, maxCodeAttempts: 6 } },
      },
    });
    ctx.control = { ...ctx.control, reconfigure: async (next) => (applied.push(next as Record<string, unknown>), ctx.config) };
    setup = new SetupCapability();
    status = new StatusCapability({ systemInfo: new FakeSystemInfo() });
    ctx.capabilities = registry([new FakeCap('failover', failoverHealth('wan', Date.now(), 'up', 'up')), setup, status]);
    await setup.start(ctx);
    await status.start(ctx);
    web = new WebServer();
    await web.start(ctx);
    app = web.app!;
  });
  after(async () => {
    await web?.stop();
    await status.stop();
    await setup.stop();
    ctx.cleanup();
  });

  const code = () => readFileSync(join(ctx.config.paths.runDir, 'setup-code'), 'utf8').trim();
  const enter = (c: string, ip = IP.a) =>
    app.inject({
      method: 'POST',
      url: '/setup/code',
      remoteAddress: ip,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ code: c }).toString(),
    });
  const form = (cookie: string, fields: Record<string, string>, ip = IP.a) =>
    app.inject({
      method: 'POST',
      url: '/setup',
      remoteAddress: ip,
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      payload: new URLSearchParams(fields).toString(),
    });
  const tokenOf = (html: string) => /name="_setup" value="([^"]+)"/.exec(html)?.[1] ?? '';

  it('the code: 50 random bits as XXXXX-XXXXX, only hashed on the persistent disk, 0600 everywhere', () => {
    const c = code();
    assert.match(c, /^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$/);
    const statePath = join(ctx.config.paths.stateDir, 'setup.json');
    assert.equal(readFileSync(statePath, 'utf8').includes(c.replace('-', '')), false);
    assert.equal(readFileSync(statePath, 'utf8').includes(c), false);
    assert.equal(statSync(statePath).mode & 0o777, 0o600);
    assert.equal(statSync(join(ctx.config.paths.runDir, 'setup-code')).mode & 0o777, 0o600);
  });

  it('the status page says "Not set up yet" and offers "Set up this box"; the code is on no LAN page or API, only in the fleet details', async () => {
    const c = code();
    const page = await app.inject({ url: '/' });
    assert.match(page.body, /Not set up yet/);
    assert.match(page.body, /<a class="act" href="\/setup">Set up this box<\/a>/);
    for (const url of ['/', '/api/status', '/metrics', '/setup']) {
      const r = await app.inject({ url });
      assert.equal(r.body.includes(c), false, url);
    }
    assert.equal(JSON.stringify(setup.health()).includes(c), false);
    assert.deepEqual(setup.fleetDetails(), { setupCode: c });
  });

  it('refused without the code: the wizard form is not shown and POST /setup is 401', async () => {
    const g = await app.inject({ url: '/setup' });
    assert.equal(g.statusCode, 200);
    assert.match(g.body, /Type the <strong>set-up code<\/strong>/);
    assert.doesNotMatch(g.body, /name="_setup"/);
    const p = await form('se_setup=forged', { username: 'pm', password: 'x'.repeat(12) });
    assert.equal(p.statusCode, 401);
    assert.equal(listUsers(ctx.db).length, 0);
  });

  it('a wrong code is refused, and one device is rate limited (even the right code then waits)', async () => {
    const wrong = code().startsWith('0') ? '11111-11111' : '00000-00000';
    const r1 = await enter(wrong, IP.b);
    assert.equal(r1.statusCode, 401);
    assert.match(r1.body, /not right/);
    assert.equal((await enter('nonsense', IP.b)).statusCode, 401);
    assert.equal((await enter(wrong, IP.b)).statusCode, 401);
    const limited = await enter(code(), IP.b);
    assert.equal(limited.statusCode, 429);
    assert.ok(Number(limited.headers['retry-after']) > 0);
    assert.match(limited.body, /Too many wrong set-up codes/);
    assert.ok(ctx.logged.some((l) => l.msg === 'set-up code attempts rate limited'));
  });

  it('the right code (typed in lower case with spaces) opens the wizard once; the same code again is "already used"', async () => {
    const c = code();
    const typed = ` ${c.toLowerCase().replace('-', ' ')} `;
    const ok = await enter(typed);
    assert.equal(ok.statusCode, 303);
    assert.equal(ok.headers.location, '/setup');
    const cookie = String(ok.headers['set-cookie']).split(';')[0]!;
    assert.match(String(ok.headers['set-cookie']), /HttpOnly; SameSite=Strict/);
    const again = await enter(c, IP.c);
    assert.equal(again.statusCode, 409);
    assert.match(again.body, /already been used/);
    assert.equal(existsSync(join(ctx.config.paths.runDir, 'setup-code')), false, 'the plain copy is gone once spent');
    assert.deepEqual(setup.fleetDetails(), {});
    const wiz = await app.inject({ url: '/setup', headers: { cookie } });
    assert.match(wiz.body, /1\. Your admin account/);
    assert.match(wiz.body, /If it is lost, nobody can open the copy/);
    assert.match(wiz.body, /placeholder="e\.g\. EE 4G backup"/);
    (globalThis as { cookie?: string }).cookie = cookie;
  });

  it('every value is validated before anything is written (labels through the config schema)', async () => {
    const cookie = (globalThis as { cookie?: string }).cookie!;
    const token = tokenOf((await app.inject({ url: '/setup', headers: { cookie } })).body);
    assert.equal((await form(cookie, { _setup: 'wrong', username: 'pm' })).statusCode, 403, 'form token checked');
    const bad = await form(cookie, {
      _setup: token,
      username: 'Practice Manager',
      password: 'short',
      password2: 'other',
      label_wan: 'BT <b>',
      passphrase: 'x',
      passphrase2: 'y',
      gp_base: 'http://plain',
      day_list: '',
    });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /username must be 2-32 characters/);
    assert.match(bad.body, /at least 10 characters/);
    assert.match(bad.body, /\/uplinks\/0\/label/);
    assert.match(bad.body, /not an https:\/\/ address/);
    assert.match(bad.body, /Tick the box/);
    assert.doesNotMatch(bad.body, /value="short"/, 'passwords never echoed');
    assert.equal(listUsers(ctx.db).length, 0);
    assert.equal(existsSync(join(ctx.config.paths.stateDir, 'records.key')), false);
    assert.equal(applied.length, 0);
  });

  it('a valid form: first admin, records key, labels and GP Connect applied through reconfigure; then the wizard is gone', async () => {
    const cookie = (globalThis as { cookie?: string }).cookie!;
    const token = tokenOf((await app.inject({ url: '/setup', headers: { cookie } })).body);
    const r = await form(cookie, {
      _setup: token,
      username: 'pm',
      password: 'manager password 1',
      password2: 'manager password 1',
      label_wan: 'BT broadband',
      label_4g: 'EE 4G backup',
      passphrase: 'records passphrase 1',
      passphrase2: 'records passphrase 1',
      understood: 'yes',
      gp_base: 'https://gpc.example.nhs.uk/fhir',
      gp_from: '200000000001',
      gp_to: '200000000002',
      day_list: 'https://daylist.example.nhs.uk/fhir',
    });
    assert.equal(r.statusCode, 200, r.body);
    assert.match(r.body, /This box is set up/);
    assert.deepEqual(
      listUsers(ctx.db).map((u) => [u.username, u.role]),
      [['pm', 'admin']],
    );
    assert.ok(existsSync(join(ctx.config.paths.stateDir, 'records.key')));
    assert.ok(existsSync(join(ctx.config.paths.runDir, 'records.unlocked-key')), 'handed to the records capability');
    await new Promise((res) => setTimeout(res, 500));
    assert.equal(applied.length, 1);
    const c = applied[0] as {
      uplinks: { label?: string }[];
      records: { enabled: boolean; gpconnect: { baseUrl: string; fromAsid: string }; dayList: { fhirBaseUrl: string } };
    };
    assert.deepEqual(
      c.uplinks.map((u) => u.label),
      ['BT broadband', 'EE 4G backup'],
    );
    assert.equal(c.records.enabled, true);
    assert.equal(c.records.gpconnect.baseUrl, 'https://gpc.example.nhs.uk/fhir');
    assert.equal(c.records.dayList.fhirBaseUrl, 'https://daylist.example.nhs.uk/fhir');
    for (const [method, url] of [
      ['GET', '/setup'],
      ['POST', '/setup/code'],
      ['POST', '/setup'],
    ] as const) {
      const x = await app.inject({ method, url, headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'code=x' });
      assert.equal(x.statusCode, 404, `${method} ${url}`);
    }
    assert.equal(setup.health().details?.setUp, true);
    assert.deepEqual(setup.fleetDetails(), {});
    const logs = JSON.stringify(ctx.logged);
    assert.doesNotMatch(logs, /manager password 1|records passphrase 1/);
  });
});
