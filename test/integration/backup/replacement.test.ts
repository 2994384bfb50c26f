import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { Agent } from '../../../agent/src/agent.js';
import { BackupCapability } from '../../../agent/src/backup/backup.js';
import { restoreBackup } from '../../../agent/src/backup/restore.js';
import type { Capability } from '../../../agent/src/core/capability.js';
import { loadConfig, validateConfig } from '../../../agent/src/config/load.js';
import { EnrolmentCapability } from '../../../agent/src/enrolment/enrolment.js';
import { AuditLog } from '../../../agent/src/records/audit.js';
import { CaptureQueue } from '../../../agent/src/records/capture.js';
import { createKey, writeRuntimeKey } from '../../../agent/src/records/key.js';
import { RecordsCapability } from '../../../agent/src/records/records.js';
import { recordsPaths } from '../../../agent/src/records/sources.js';
import { TelemetryCapability } from '../../../agent/src/telemetry/telemetry.js';
import { systemClock } from '../../../common/clock.js';
import { hashPassword } from '../../../common/password.js';
import { enrolledDevices } from '../../../fleet/src/broker/dynsec.js';
import type { Fleet } from '../../../fleet/src/fleet.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { fleetConfig, startFleet, waitFor } from '../../helpers/fleet.js';
import { mosquittoMissing, startBroker, type TestBroker } from '../../helpers/mosquitto.js';
import { sftpSkipReason, startSftpLab, type SftpLab } from './sftp-lab.js';

const PASS = 'correct horse battery staple';
const OLD = 'P81001-01';
const NEW = 'P81001-02';
const OTHER = 'P99999-01';
const skip = mosquittoMissing() || sftpSkipReason();

/** One MQTT connect with a certificate: 'connected', or 'refused: <why>' (a TLS refusal may only close the socket). */
function attempt(broker: TestBroker, cert: string, key: string): Promise<string> {
  return new Promise((res) => {
    const c = mqtt.connect(broker.url, {
      protocolVersion: 5,
      clientId: `probe-${Math.random().toString(16).slice(2, 8)}`,
      ca: readFileSync(join(broker.pki, 'ca.crt')),
      cert: readFileSync(cert),
      key: readFileSync(key),
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    const done = (r: string) => {
      c.end(true);
      res(r);
    };
    c.once('connect', () => done('connected'));
    c.once('error', (e) => done(`refused: ${e.message}`));
    c.once('close', () => done('refused: connection closed'));
  });
}

/**
 * A replacement box, end to end, on real components: the old box (real records + backup
 * capabilities) backs up to a real OpenSSH SFTP server in a namespace and is online on a real TLS
 * mosquitto with the dynamic-security plugin. A new box (its real enrolment and telemetry
 * capabilities) is claimed for the same practice through the fleet, restores the latest backup
 * with the agent stopped, and starts: it tells the fleet which box it replaced (backup.restored),
 * and the fleet revokes the old identity. The old certificate is kicked and then refused by
 * mosquitto, also after a broker restart; a box of another practice cannot revoke anyone.
 */
describe('replacement box: claim, restore, old identity revoked', { skip }, () => {
  let dir: string;
  let lab: SftpLab;
  let broker: TestBroker;
  let fleet: Fleet;
  let oldBox: TestCtx;
  let oldRecords: RecordsCapability;
  let oldBackup: BackupCapability;
  let oldMqtt: MqttClient;
  let newAgent: Agent | undefined;
  let backupDoc: Record<string, unknown>;
  let claimedAt = 0;
  let restoredAt = 0;
  let cookie = '';
  let csrf = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'se-i19rp-'));
    lab = await startSftpLab(dir);
    broker = await startBroker([OLD, OTHER]);
    const pki = broker.pki;
    fleet = await startFleet(
      fleetConfig(broker, join(dir, 'fleet'), {
        claim: {
          caCertPath: join(pki, 'ca.crt'),
          caKeyPath: join(pki, 'ca.key'),
          tlsCertPath: join(pki, 'server.crt'),
          tlsKeyPath: join(pki, 'server.key'),
          issuedDir: join(pki, 'devices'),
          pollAfterMs: 200,
        },
        inventory: [{ deviceId: OLD, practice: 'P81001', practiceName: 'High Street Surgery' }],
      }),
    );
    await fleet.ctx.store.accounts.putUser({ username: 'amy', hash: hashPassword(PASS), role: 'icb-admin', practice: null }, Date.now());
    const login = await fleet.web.app!.inject({
      method: 'POST',
      url: '/login',
      payload: `username=amy&password=${encodeURIComponent(PASS)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    cookie = String(login.headers['set-cookie']).split(';')[0]!;
    csrf = /name="csrf" value="([^"]+)"/.exec((await fleet.web.app!.inject({ method: 'GET', url: '/claim', headers: { cookie } })).body)![1]!;

    // The old box: records unlocked with captures and audit entries, backing up over SFTP.
    const keyFile = join(dir, 'backup.key');
    writeFileSync(keyFile, randomBytes(32).toString('base64url'), { mode: 0o600 });
    backupDoc = {
      enabled: true,
      repository: lab.repoUrl(join(dir, 'repo')),
      keyFile,
      debounceMs: 100,
      sftp: { identityFile: lab.identityFile, knownHostsFile: lab.knownHostsFile },
    };
    oldBox = createTestCtx({
      clock: systemClock,
      config: { site: { deviceId: OLD, odsCode: 'P81001', practiceName: 'High Street Surgery' }, records: { enabled: true }, backup: backupDoc },
    });
    const rp = recordsPaths(oldBox.config);
    writeRuntimeKey(rp.runtimeKey, await createKey(rp.key, PASS));
    oldRecords = new RecordsCapability();
    oldBackup = new BackupCapability();
    (oldBox.capabilities.list() as Capability[]).push(oldRecords, oldBackup);
    await oldRecords.start(oldBox);
    await oldBackup.start(oldBox);
    const q = CaptureQueue.open(oldRecords.store!.db, Date.now);
    q.create({
      id: '01JBAKRP00000000000000000A',
      kind: 'note',
      patientId: '9000000009',
      payload: { consultationType: 'telephone', history: 'seen' },
      author: 'dr.a',
      role: 'clinician',
      device: 'test',
    });
    const audit = AuditLog.open(oldRecords.store!.db, Date.now);
    for (let i = 0; i < 5; i++) audit.append({ user: 'dr.a', role: 'clinician', patientId: '9000000009', action: 'view.summary', device: 'test' });
    const run = await oldBackup.runNow('manual');
    assert.ok(run?.ok, `old box backup: ${run?.error}`);
    // The old box is online in the fleet with its certificate (its last birth).
    oldMqtt = await broker.connect(OLD);
    await oldMqtt.publishAsync(`${broker.prefix}/${OLD}/state`, JSON.stringify({ online: true, bootId: 'old-boot', bdSeq: 1, at: Date.now() }), {
      qos: 1,
      retain: true,
    });
    await waitFor(async () => (await fleet.ctx.store.devices.get(OLD))?.online === 1, 10_000, 'old box online in the fleet');
  });

  after(async () => {
    oldMqtt?.end(true);
    await newAgent?.stop();
    await oldBackup?.stop();
    await oldRecords?.stop();
    oldBox?.cleanup();
    await fleet?.stop();
    await broker?.close();
    lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a new box is claimed for the same practice and restores the latest backup; minutes from claim to restored', async () => {
    const box = join(dir, 'box');
    const r = validateConfig({
      site: { deviceId: 'unenrolled', practiceName: 'Not enrolled', odsCode: 'A00000' },
      paths: { root: '/', stateDir: join(box, 'state'), runDir: join(box, 'run') },
      log: { level: 'silent' },
      enrolment: {
        required: true,
        keyProtection: 'file',
        claimUrl: fleet.enrolment.url.replace('127.0.0.1', 'localhost'),
        claimCaPath: join(broker.pki, 'ca.crt'),
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
    const configPath = join(box, 'config.yaml');
    newAgent = new Agent({ config: r.config, configPath, capabilities: () => [new EnrolmentCapability(), new TelemetryCapability()], logSink: () => {} });
    await newAgent.start();
    const enrol = () => newAgent!.health().enrolment?.details as { claimCode?: string; claimState?: string } | undefined;
    const code = await waitFor(async () => (enrol()?.claimState === 'waiting' ? enrol()?.claimCode : undefined), 20_000, 'box waiting to be claimed');

    // The engineer claims it for the practice (the fleet picks the next free id: the old box keeps P81001-01).
    claimedAt = performance.now();
    const res = await fleet.web.app!.inject({
      method: 'POST',
      url: '/claim',
      payload: `csrf=${csrf}&code=${encodeURIComponent(code)}&ods=P81001&practiceName=High+Street+Surgery`,
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(res.statusCode, 303, res.body.slice(0, 300));
    await waitFor(async () => (await fleet.ctx.store.devices.get(NEW))?.online === 1, 30_000, 'claimed box online');
    await newAgent.stop();
    newAgent = undefined;

    // Operator guide, "Replacement box": install the practice's backup key and target, restore with the agent stopped.
    const cfg = loadConfig(configPath);
    assert.equal(cfg.site.deviceId, NEW);
    const doc = { ...JSON.parse(JSON.stringify(cfg)), backup: { ...cfg.backup, ...backupDoc } } as Record<string, unknown>;
    writeFileSync(configPath, JSON.stringify(doc));
    const rep = await restoreBackup({ config: loadConfig(configPath), passphrase: PASS });
    restoredAt = performance.now();
    const minutes = (restoredAt - claimedAt) / 60_000;
    process.stdout.write(
      `# replacement: ${minutes.toFixed(2)} min from claim to restored (${((restoredAt - claimedAt) / 1000).toFixed(1)} s; ` +
        `snapshot ${rep.snapshotId.slice(0, 8)} from ${rep.fromDevice})\n`,
    );
    assert.equal(rep.fromDevice, OLD);
    assert.deepEqual(rep.problems, []);
    assert.ok(rep.audit?.ok, 'audit chain verifies on the new box');
    assert.equal(rep.captures?.pending, 1);
    assert.ok(minutes < 10, 'a replacement box in minutes');
  });

  it('the new box tells the fleet; the old identity is revoked: kicked, refused by mosquitto, also after a broker restart', async () => {
    const configPath = join(dir, 'box', 'config.yaml');
    const kicked = new Promise<void>((res) => oldMqtt.once('close', () => res()));
    newAgent = new Agent({
      config: loadConfig(configPath),
      configPath,
      capabilities: () => [new TelemetryCapability(), new BackupCapability()],
      logSink: () => {},
    });
    await newAgent.start();
    await waitFor(
      async () => (await fleet.ctx.store.devices.events(NEW, 0, 1e13, ['backup.restored'])).length > 0,
      30_000,
      'backup.restored event in the fleet',
    );
    const decided = await fleet.replacements.check();
    assert.equal(decided.length, 1);
    assert.equal(decided[0]!.outcome, 'revoked', decided[0]!.detail);
    assert.equal(decided[0]!.old_id, OLD);
    await Promise.race([kicked, new Promise((_, rej) => setTimeout(() => rej(new Error('old box not disconnected')), 10_000))]);
    // The fleet wrote the CRL; the ICB's broker re-reads it (the embedded broker does this itself).
    broker.reload();
    await new Promise((r) => setTimeout(r, 300));
    const old = () => attempt(broker, broker.identity(OLD).cert, broker.identity(OLD).key);
    const box = () => attempt(broker, join(dir, 'box/mqtt/device.crt'), join(dir, 'box/mqtt/device.key'));
    assert.match(await old(), /^refused/, `old certificate refused; broker log: ${broker.log.slice(-800)}`);
    await waitFor(async () => /certificate verify failed|certificate revoked/.test(broker.log), 3000, 'the broker logs the TLS refusal');
    assert.ok(
      !/New client connected .* u'CN=P81001-01'\)[\s\S]*Reloading config[\s\S]*New client connected .* u'CN=P81001-01'/.test(broker.log),
      'no MQTT session for the old box after the reload',
    );
    assert.ok(existsSync(join(broker.pki, 'devices', `${OLD}.revoked`)), 'denylist marker for the registration');
    assert.ok(!enrolledDevices(broker.pki).includes(OLD), 'not re-registered from the pki folder');
    // The new box and other practices' boxes are unaffected.
    (await broker.connect(OTHER)).end(true);
    assert.equal((await fleet.ctx.store.devices.get(NEW))?.online, 1);
    await broker.restart();
    assert.match(await old(), /^refused/, 'still refused after a broker restart');
    assert.equal(await box(), 'connected', 'the new box connects');
    // The replaced box going silent raises no offline alert; the audit log says what happened.
    await fleet.alerts.evaluate();
    assert.ok(!(await fleet.ctx.store.ops.openAlerts()).some((a) => a.device_id === OLD));
    const audit = await fleet.ctx.store.driver.all<{ detail: string }>("SELECT detail FROM audit WHERE action = 'replace'");
    assert.match(audit.map((a) => a.detail).join('\n'), /P81001-01 replaced by P81001-02 \(restored snapshot [0-9a-f]+\)/);
    // Announced once: a restart of the new box sends nothing more.
    const n = (await fleet.ctx.store.devices.events(NEW, 0, 1e13, ['backup.restored'])).length;
    assert.equal(n, 1);
  });

  it('a box cannot revoke a box of another practice (nor one unknown to the fleet)', async () => {
    const other = await broker.connect(OTHER);
    const ev = (id: string, fromDevice: string) =>
      JSON.stringify({
        id,
        name: 'backup.restored',
        at: Date.now(),
        bootId: 'b',
        payload: { fromDevice, snapshotId: 'ffffffff', restoredAt: Date.now(), at: Date.now() },
      });
    await other.publishAsync(`${broker.prefix}/${OTHER}/events`, ev('01JBAKRP00000000000000EVT1', NEW), { qos: 1 });
    await other.publishAsync(`${broker.prefix}/${OTHER}/events`, ev('01JBAKRP00000000000000EVT2', 'P99999-77'), { qos: 1 });
    other.end(true);
    await waitFor(async () => (await fleet.ctx.store.devices.events(OTHER, 0, 1e13, ['backup.restored'])).length === 2, 10_000, 'events ingested');
    const decided = await fleet.replacements.check();
    assert.deepEqual(
      decided.map((d) => d.outcome),
      ['refused', 'refused'],
    );
    assert.match(decided[0]!.detail, /P81001-02 belongs to practice P81001, P99999-01 to P99999/);
    assert.match(decided[1]!.detail, /P99999-77 is not known to the fleet/);
    assert.equal(await attempt(broker, join(dir, 'box/mqtt/device.crt'), join(dir, 'box/mqtt/device.key')), 'connected', 'the new box still connects');
    assert.ok(!existsSync(join(broker.pki, 'devices', `${NEW}.revoked`)));
  });
});
