import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../../agent/src/agent.js';
import { hashPassword } from '../../../common/password.js';
import { validateConfig } from '../../../agent/src/config/load.js';
import { EnrolmentCapability } from '../../../agent/src/enrolment/enrolment.js';
import { renderCards } from '../../../agent/src/status/cards.js';
import { TelemetryCapability } from '../../../agent/src/telemetry/telemetry.js';
import type { Fleet } from '../../../fleet/src/fleet.js';
import { launchBrowser, requireChromium } from '../../helpers/browser.js';
import { fleetConfig, signIn, startFleet, tempDir, waitFor } from '../../helpers/fleet.js';
import { mosquittoMissing, startBroker, type TestBroker } from '../../helpers/mosquitto.js';

const skip = mosquittoMissing();
const PASSWORD = 'correct horse battery staple';

/**
 * Claiming end to end: a real fleet (HTTPS enrolment endpoint, dashboard over inject), a real TLS
 * mosquitto requiring client certificates, and a real agent (its composition root, enrolment and
 * telemetry capabilities) that starts unenrolled with no certificate at all.
 * Human steps counted: 1 power on the box, 2 read its claim code, 3 type code + ODS and Claim.
 */
describe('claiming a box through the fleet (real HTTPS, real TLS mosquitto, real agent)', { skip }, () => {
  let broker: TestBroker;
  let tmp: ReturnType<typeof tempDir>;
  let fleet: Fleet;
  let agent: Agent;
  let cookie = '';
  let csrf = '';

  before(async () => {
    broker = await startBroker([]);
    tmp = tempDir();
    const pki = broker.pki;
    fleet = await startFleet(
      fleetConfig(broker, join(tmp.dir, 'fleet'), {
        claim: {
          caCertPath: join(pki, 'ca.crt'),
          caKeyPath: join(pki, 'ca.key'),
          tlsCertPath: join(pki, 'server.crt'),
          tlsKeyPath: join(pki, 'server.key'),
          issuedDir: join(pki, 'devices'),
          pollAfterMs: 200,
        },
      }),
    );
    await fleet.ctx.store.accounts.putUser({ username: 'amy', hash: hashPassword(PASSWORD), role: 'icb-admin', practice: null }, Date.now());
    await fleet.ctx.store.accounts.putUser({ username: 'vic', hash: hashPassword(PASSWORD), role: 'icb-viewer', practice: null }, Date.now());
    const login = await fleet.web.app!.inject({
      method: 'POST',
      url: '/login',
      payload: `username=amy&password=${encodeURIComponent(PASSWORD)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const page = await fleet.web.app!.inject({ method: 'GET', url: '/claim', headers: { cookie } });
    csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!;

    const box = join(tmp.dir, 'box');
    const r = validateConfig({
      site: { deviceId: 'unenrolled', practiceName: 'Not enrolled', odsCode: 'A00000' },
      paths: { root: '/', stateDir: join(box, 'state'), runDir: join(box, 'run') },
      log: { level: 'silent' },
      enrolment: {
        required: true,
        keyProtection: 'file',
        claimUrl: fleet.enrolment.url.replace('127.0.0.1', 'localhost'),
        claimCaPath: join(pki, 'ca.crt'),
        claimPollMs: 200,
        claimStatePath: join(box, 'claim.json'),
      },
      telemetry: {
        enabled: false,
        caPath: join(box, 'mqtt/ca.crt'),
        certPath: join(box, 'mqtt/device.crt'),
        keyPath: join(box, 'mqtt/device.key'),
        keepaliveS: 5,
        backoffInitialMs: 200,
        backoffMaxMs: 2000,
        intervalMs: 1000,
      },
    });
    assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
    agent = new Agent({
      config: r.config,
      configPath: join(box, 'config.yaml'),
      capabilities: () => [new EnrolmentCapability(), new TelemetryCapability()],
      logSink: () => {},
    });
    await agent.start();
  });
  after(async () => {
    await agent?.stop();
    await fleet?.stop();
    await broker?.close();
    tmp?.rm();
  });

  const claimForm = (code: string, ods: string, extra = '', c = cookie, token = csrf) =>
    fleet.web.app!.inject({
      method: 'POST',
      url: '/claim',
      payload: `csrf=${token}&code=${encodeURIComponent(code)}&ods=${ods}&practiceName=High+Street+Surgery${extra}`,
      headers: { cookie: c, 'content-type': 'application/x-www-form-urlencoded' },
    });
  const enrolment = () => agent.health().enrolment?.details as Record<string, unknown> | undefined;

  it('the unenrolled box shows a claim code and its fingerprint, and waits on the fleet', async () => {
    const d = await waitFor(async () => (enrolment()?.claimState === 'waiting' ? enrolment() : undefined), 20_000, 'box waiting');
    assert.match(String(d.claimCode), /^[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    assert.equal(d.enrolled, false);
    const card = renderCards(agent.health(), null);
    assert.ok(card.includes(`id="claim-code">${String(d.claimCode)}<`), 'status page card shows the code');
    const page = await fleet.web.app!.inject({ method: 'GET', url: '/claim', headers: { cookie } });
    assert.ok(page.body.includes(String(d.claimKeyFingerprint)), 'the fleet lists the same box as waiting');
    // The box's key stayed on the box: the fleet has only the public key.
    assert.ok(existsSync(join(tmp.dir, 'box/mqtt/device.key')));
    const db = readFileSync(join(tmp.dir, 'fleet/fleet.db'));
    assert.ok(!db.includes(String(d.claimCode)) && !db.includes(String(d.claimCode).replace('-', '')), 'the code itself is not stored by the fleet');
  });

  it('refuses a wrong code, a viewer, a missing CSRF token, and a reserved identity over the real HTTPS endpoint', async () => {
    const wrong = await claimForm('AAAA-BBBB', 'P81001');
    assert.equal(wrong.statusCode, 400);
    assert.match(wrong.body, /Wrong code: no box is waiting with this code/);
    assert.equal((await claimForm(String(enrolment()!.claimCode), 'P81001', '', cookie, 'nope')).statusCode, 403, 'CSRF');
    const vl = await fleet.web.app!.inject({
      method: 'POST',
      url: '/login',
      payload: `username=vic&password=${encodeURIComponent(PASSWORD)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    const vc = String(vl.headers['set-cookie']).split(';')[0]!;
    assert.equal((await fleet.web.app!.inject({ method: 'GET', url: '/claim', headers: { cookie: vc } })).statusCode, 403, 'icb-viewer may not claim');
    // A CSR named "fleet" sent to the enrolment endpoint over HTTPS (curl pins the ICB CA).
    const csr = execFileSync('sh', ['-c', 'openssl ecparam -name prime256v1 -genkey -noout | openssl req -new -key /dev/stdin -subj /CN=fleet'], {
      cwd: tmp.dir,
    }).toString();
    // Async: the endpoint answering curl runs in this process.
    const { stdout: out } = await promisify(execFile)(
      'curl',
      [
        '-sS',
        '--cacert',
        join(broker.pki, 'ca.crt'),
        '-H',
        'content-type: application/json',
        '-d',
        JSON.stringify({ csr, commitment: 'a'.repeat(64) }),
        '-w',
        '\n%{http_code}',
        `${fleet.enrolment.url.replace('127.0.0.1', 'localhost')}/enrol/v1/requests`,
      ],
      { timeout: 15_000 },
    );
    assert.match(out, /fleet is a reserved identity[\s\S]*\n403$/);
  });

  it('the engineer claims it; the box installs its certificate, connects over TLS MQTT and is online in the fleet; the code does not work twice', async () => {
    const code = String(enrolment()!.claimCode);
    const res = await claimForm(code, 'P81001');
    assert.equal(res.statusCode, 303, res.body.slice(0, 500));
    assert.match(String(res.headers.location), /Claimed.*P81001-01/);
    const d = await waitFor(
      async () => {
        const row = await fleet.ctx.store.devices.get('P81001-01');
        return row?.online === 1 ? row : undefined;
      },
      30_000,
      'claimed box online in the fleet',
    );
    assert.equal(d.practice, 'P81001');
    assert.equal(d.practice_name, 'High Street Surgery', 'named on the dashboard with the practice name typed at the claim');
    const h = await waitFor(
      async () => ((agent.health().enrolment?.details as { enrolled?: boolean } | undefined)?.enrolled ? agent.health() : undefined),
      10_000,
      'box enrolled',
    );
    assert.match(h.enrolment!.summary, /enrolled as P81001-01/);
    const saved = readFileSync(join(tmp.dir, 'box/config.yaml'), 'utf8');
    assert.match(saved, /deviceId: P81001-01/);
    assert.match(saved, /practiceName: High Street Surgery/);
    assert.ok(!existsSync(join(tmp.dir, 'box/claim.json')), 'claim state removed once enrolled');
    const again = await claimForm(code, 'P81001');
    assert.equal(again.statusCode, 409);
    assert.match(again.body, /already used on .* to claim P81001-01/);
    const audit = await fleet.web.app!.inject({ method: 'GET', url: '/audit', headers: { cookie } });
    assert.match(audit.body, /claimed box .* as P81001-01/);
  });

  it('the claim page in chromium: a QR link fills the code; no horizontal scroll at 390 px or desktop width', { skip: requireChromium() }, async () => {
    const b = await launchBrowser();
    try {
      const p = await signIn(b, fleet.web.url, 'amy', PASSWORD);
      await p.goto(`${fleet.web.url}/claim?code=7KQ4-M2XD`);
      assert.equal(await p.inputValue('input[name=code]'), '7KQ4-M2XD');
      for (const width of [1280, 390]) {
        await p.setViewportSize({ width, height: 800 });
        const sw = await p.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(sw <= width, `scrollWidth ${sw} at ${width} px`);
      }
      await p.fill('input[name=ods]', 'P81001');
      await Promise.all([p.waitForLoadState(), p.click('button:has-text("Claim")')]);
      assert.match((await p.textContent('#claim-error')) ?? '', /Wrong code/);
      await b.screenshot(p, 'fleet', 'claim-390');
    } finally {
      await b.close();
    }
  });
});
