import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { makeHostPath } from '../../../agent/src/core/fs.js';
import { checkIdentity } from '../../../agent/src/enrolment/identity.js';
import { mosquittoMissing, TestBroker } from '../../helpers/mosquitto.js';
import { REPO } from '../../helpers/update-fixture.js';
import { AgentProc } from '../telemetry/fixture.js';
import { agentConfigFromInstalled } from './agent-config.js';

const CLI = join(REPO, 'agent/bin/surgery-edge');
const PKI = join(REPO, 'provisioning/pki.sh');
const PRACTICE = join(REPO, 'provisioning/practice.sh');
const CHECK_ONLINE = join(REPO, 'provisioning/check-online.sh');
const ID = 'P81001-01';
const MQTT = '/etc/surgery-edge/mqtt';

let dir: string;
let pki: string;

/** One appliance: a fixture root and the config file the CLI reads (as the image's seed config). */
function box(name: string) {
  const root = join(dir, name, 'root');
  mkdirSync(root, { recursive: true });
  const cfg = join(dir, name, 'config.yaml');
  writeFileSync(
    cfg,
    stringify({
      site: { deviceId: ID },
      paths: { root, stateDir: join(dir, name, 'state'), runDir: join(dir, name, 'run') },
      enrolment: { required: true, csrPath: '/var/lib/surgery-edge/enrol/device.csr' },
      telemetry: { caPath: `${MQTT}/ca.crt`, certPath: `${MQTT}/device.crt`, keyPath: `${MQTT}/device.key` },
      log: { level: 'silent' },
    }),
  );
  const run = (...args: string[]) => execFileSync(CLI, [...args, '--config', cfg], { stdio: 'pipe' }).toString();
  const files = { deviceId: ID, certPath: `${MQTT}/device.crt`, keyPath: `${MQTT}/device.key`, caPath: `${MQTT}/ca.crt` };
  return { root, cfg, run, host: makeHostPath(root), check: () => checkIdentity(files, makeHostPath(root), Date.now()) };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'se-enrol-'));
  pki = join(dir, 'pki');
  execFileSync(PKI, ['init', pki], { stdio: 'pipe' });
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('enrolment runbook (CSR on the box, ICB CA signs, practice bundle back)', () => {
  it('enrols a box whose key never left it', () => {
    const b = box('good');
    assert.equal(b.check().enrolled, false);
    assert.match(b.check().reason!, /missing/);
    const csr = b.run('enrol', 'csr');
    assert.match(csr, /BEGIN CERTIFICATE REQUEST/);
    const key = b.host(`${MQTT}/device.key`);
    assert.equal(statSync(key).mode & 0o777, 0o600);
    const keyBefore = readFileSync(key);
    // The CSR file is what the engineer copies off the box.
    const csrFile = b.host('/var/lib/surgery-edge/enrol/device.csr');
    execFileSync(PKI, ['sign-csr', pki, csrFile, ID], { stdio: 'pipe' });
    const tar = execFileSync(PRACTICE, [pki, ID, 'P81001', 'High Street Surgery', 'mqtts://mqtt1.icb.example:8883'], { stdio: 'pipe' }).toString().trim();
    assert.deepEqual(
      execFileSync('tar', ['-tf', tar]).toString().trim().split('\n').sort(),
      ['backup.key', 'ca.crt', 'config.yaml', 'device.crt'],
      'no device private key in the bundle (backup.key is the practice backup key, escrowed by the ICB)',
    );
    assert.match(b.run('enrol', 'install', tar), /enrolled as P81001-01 \(High Street Surgery\)/);
    assert.deepEqual(readFileSync(key), keyBefore, 'the key made on the box is the one in use');
    assert.deepEqual(b.check().enrolled, true);
    const cfg = parse(readFileSync(b.cfg, 'utf8')) as { telemetry: { enabled: boolean; brokers: string[] }; site: { odsCode: string } };
    assert.equal(cfg.telemetry.enabled, true);
    assert.deepEqual(cfg.telemetry.brokers, ['mqtts://mqtt1.icb.example:8883']);
    assert.equal(cfg.site.odsCode, 'P81001');
    // Asking for a CSR again reuses the key (a certificate may already be on its way).
    b.run('enrol', 'csr');
    assert.deepEqual(readFileSync(key), keyBefore);
  });

  it('refuses a practice bundle whose certificate is for another box key, and installs nothing', () => {
    const other = box('other');
    other.run('enrol', 'csr');
    execFileSync(PKI, ['sign-csr', pki, other.host('/var/lib/surgery-edge/enrol/device.csr'), ID], { stdio: 'pipe' });
    const tar = execFileSync(PRACTICE, [pki, ID, 'P81001', 'High Street Surgery', 'mqtts://mqtt1.icb.example:8883']).toString().trim();
    const b = box('victim');
    b.run('enrol', 'csr'); // its own, different key
    assert.throws(() => b.run('enrol', 'install', tar), /does not match/);
    assert.equal(existsSync(b.host(`${MQTT}/device.crt`)), false);
    assert.doesNotMatch(readFileSync(b.cfg, 'utf8'), /mqtt1/);
  });

  it('the CA refuses a CSR whose CN is not the expected device', () => {
    const b = box('wrong-cn');
    b.run('enrol', 'csr', '--device-id', 'P99999-01');
    assert.throws(() => execFileSync(PKI, ['sign-csr', pki, b.host('/var/lib/surgery-edge/enrol/device.csr'), ID], { stdio: 'pipe' }), /expected P81001-01/);
  });

  it('identity checks: wrong CA, wrong CN, expired', () => {
    const b = box('checks');
    b.run('enrol', 'csr');
    execFileSync(PKI, ['sign-csr', pki, b.host('/var/lib/surgery-edge/enrol/device.csr'), ID], { stdio: 'pipe' });
    mkdirSync(b.host(MQTT), { recursive: true });
    writeFileSync(b.host(`${MQTT}/device.crt`), readFileSync(join(pki, 'devices', `${ID}.crt`)));
    const otherCa = join(dir, 'pki2');
    execFileSync(PKI, ['init', otherCa], { stdio: 'pipe' });
    writeFileSync(b.host(`${MQTT}/ca.crt`), readFileSync(join(otherCa, 'ca.crt')));
    assert.match(b.check().reason!, /not signed by the installed ICB CA/);
    writeFileSync(b.host(`${MQTT}/ca.crt`), readFileSync(join(pki, 'ca.crt')));
    assert.equal(b.check().enrolled, true);
    const files = { deviceId: 'P81001-02', certPath: `${MQTT}/device.crt`, keyPath: `${MQTT}/device.key`, caPath: `${MQTT}/ca.crt` };
    assert.match(checkIdentity(files, b.host, Date.now()).reason!, /is for P81001-01, this device is P81001-02/);
    assert.match(checkIdentity({ ...files, deviceId: ID }, b.host, Date.now() + 900 * 86_400_000).reason!, /expired/);
  });
});

/**
 * The runbook end to end against a real mosquitto run the ICB way (TLS, require_certificate, CN as
 * username, per-device ACL): its CA is the ICB CA of provisioning/pki.sh. The box makes its key
 * and CSR, the CA signs, the practice bundle is installed, the agent starts on the installed config
 * and provisioning/check-online.sh (the runbook's last step) sees the box's birth on the broker.
 */
describe('runbook: enrolled box comes online on the ICB broker', { skip: mosquittoMissing() }, () => {
  let broker: TestBroker;
  let agent: AgentProc | undefined;
  before(async () => {
    broker = await new TestBroker().init([]); // only the fleet identity: the box's key is made on the box
    await broker.start();
  });
  after(async () => {
    await agent?.kill('SIGTERM');
    await broker?.close();
  });

  it('CSR on the box -> sign -> practice bundle -> agent connects with the box-made key', async () => {
    const b = box('online');
    assert.throws(() => b.run('enrol', 'status'), 'not enrolled before the bundle');
    b.run('enrol', 'csr');
    execFileSync(PKI, ['sign-csr', broker.pki, b.host('/var/lib/surgery-edge/enrol/device.csr'), ID], { stdio: 'pipe' });
    assert.equal(existsSync(join(broker.pki, 'devices', `${ID}.key`)), false, 'the CA side never has the device key');
    const tar = execFileSync(PRACTICE, [broker.pki, ID, 'P81001', 'High Street Surgery', broker.url], { stdio: 'pipe' }).toString().trim();
    b.run('enrol', 'install', tar);
    const cfg = parse(readFileSync(b.cfg, 'utf8')) as { site: { deviceId: string } };
    assert.equal(cfg.site.deviceId, ID);
    const file = agentConfigFromInstalled(b.cfg, b.root, join(dir, 'online'));
    agent = new AgentProc(file);
    await agent.ready;
    // The fleet side of the runbook: the fleet identity (pki.sh fleet, made by TestBroker.init) from the same CA.
    assert.equal(existsSync(join(broker.pki, 'fleet.crt')), true);
    const state = execFileSync(CHECK_ONLINE, [broker.pki, ID, broker.url, '30'], { stdio: 'pipe' }).toString();
    assert.match(state, /"online":true/);
    await agent.kill('SIGTERM');
    agent = undefined;
    // After a clean stop the retained state says offline: the check must then fail, not pass stale.
    assert.throws(() => execFileSync(CHECK_ONLINE, [broker.pki, ID, broker.url, '3'], { stdio: 'pipe' }), /not online/);
  });
});
