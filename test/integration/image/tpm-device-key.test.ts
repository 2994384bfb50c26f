import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { makeHostPath } from '../../../agent/src/core/fs.js';
import { loadDeviceKey, SEALED_FORMAT } from '../../../agent/src/platform/device-key.js';
import { ProcessRunner } from '../../../agent/src/platform/command.js';
import { mosquittoMissing, TestBroker } from '../../helpers/mosquitto.js';
import { Swtpm, swtpmMissing } from '../../helpers/swtpm.js';
import { REPO } from '../../helpers/update-fixture.js';
import { AgentProc } from '../telemetry/fixture.js';
import { agentConfigFromInstalled } from './agent-config.js';

/**
 * The device key sealed to the box's TPM 2.0 (agent/src/platform/device-key.ts), against the
 * swtpm simulator (libtpms: the TPM 2.0 reference command set) and a real TLS mosquitto that
 * requires a client certificate. A second swtpm stands for another box's TPM.
 */
const CLI = join(REPO, 'agent/bin/surgery-edge');
const PKI = join(REPO, 'provisioning/pki.sh');
const PRACTICE = join(REPO, 'provisioning/practice.sh');
const CHECK_ONLINE = join(REPO, 'provisioning/check-online.sh');
const ID = 'P81002-01';
const MQTT = '/etc/surgery-edge/mqtt';
const KEY = `${MQTT}/device.key`;

let dir: string;
let tpm: Swtpm;
let broker: TestBroker;
let agent: AgentProc | undefined;

function box(name: string, enrolment: Record<string, unknown>) {
  const root = join(dir, name, 'root');
  mkdirSync(root, { recursive: true });
  const cfg = join(dir, name, 'config.yaml');
  const write = (e: Record<string, unknown>) =>
    writeFileSync(
      cfg,
      stringify({
        site: { deviceId: ID },
        paths: { root, stateDir: join(dir, name, 'state'), runDir: join(dir, name, 'run') },
        enrolment: { required: true, csrPath: '/var/lib/surgery-edge/enrol/device.csr', ...e },
        telemetry: { caPath: `${MQTT}/ca.crt`, certPath: `${MQTT}/device.crt`, keyPath: KEY },
        log: { level: 'silent' },
      }),
    );
  write(enrolment);
  const run = (...args: string[]) => execFileSync(CLI, [...args, '--config', cfg], { stdio: 'pipe' }).toString();
  const status = () => {
    const r = spawnSync(CLI, ['enrol', 'status', '--config', cfg], { encoding: 'utf8' });
    return { code: r.status, ...(JSON.parse(r.stdout) as { enrolled: boolean; reason: string | null; tpmSealed?: boolean }) };
  };
  const paths = { root, stateDir: join(dir, name, 'state'), runDir: join(dir, name, 'run') };
  /** After `enrol install`: the practice config knows neither the fixture root nor the test TPM. */
  const afterInstall = (e: Record<string, unknown>) => {
    const c = parse(readFileSync(cfg, 'utf8')) as Record<string, Record<string, unknown>>;
    writeFileSync(cfg, stringify({ ...c, paths, enrolment: { ...c.enrolment, ...e } }));
  };
  return { root, cfg, run, status, afterInstall, host: makeHostPath(root), name };
}

function walk(d: string): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.isFile() ? [join(d, e.name)] : []));
}

const skip = swtpmMissing() || mosquittoMissing();

describe('device key sealed to the TPM (swtpm + TLS mosquitto)', { skip }, () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'se-tpmkey-'));
    tpm = await new Swtpm().start();
    broker = await new TestBroker().init([]);
    await broker.start();
  });
  after(async () => {
    await agent?.kill('SIGKILL');
    await broker?.close();
    tpm?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  let sealedBox: ReturnType<typeof box>;

  it('enrol csr seals the key to the TPM: no private key on disk, CSR signed, bundle installs, status enrolled', { timeout: 120_000 }, async () => {
    const b = (sealedBox = box('sealed', { tpmTcti: tpm.tcti }));
    assert.match(b.run('enrol', 'csr'), /BEGIN CERTIFICATE REQUEST/);
    const keyText = readFileSync(b.host(KEY), 'utf8');
    assert.doesNotMatch(keyText, /PRIVATE KEY/);
    assert.equal(JSON.parse(keyText).format, SEALED_FORMAT);
    assert.equal(statSync(b.host(KEY)).mode & 0o777, 0o600);
    assert.ok(existsSync(b.host(`${KEY}.tpm.pub`)) && existsSync(b.host(`${KEY}.tpm.priv`)));
    // The private scalar, as the TPM gives it back: in no file of the box, in any encoding.
    const { key, sealed } = await loadDeviceKey(b.host(KEY), { runner: new ProcessRunner(30_000), workDir: join(dir, 'scratch'), tcti: tpm.tcti });
    assert.equal(sealed, true);
    const d = Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url');
    for (const f of walk(join(dir, 'sealed'))) {
      const bytes = readFileSync(f);
      for (const form of [d, Buffer.from(d.toString('hex')), Buffer.from(d.toString('base64url')), Buffer.from(d.toString('base64'))])
        assert.ok(!bytes.includes(form), `${f} holds the private key`);
    }
    execFileSync(PKI, ['sign-csr', broker.pki, b.host('/var/lib/surgery-edge/enrol/device.csr'), ID], { stdio: 'pipe' });
    const tar = execFileSync(PRACTICE, [broker.pki, ID, 'P81002', 'Mill Lane Surgery', broker.url], { stdio: 'pipe' }).toString().trim();
    assert.match(b.run('enrol', 'install', tar), /enrolled as P81002-01/);
    b.afterInstall({ tpmTcti: tpm.tcti });
    const s = b.status();
    assert.equal(s.code, 0, s.reason ?? '');
    assert.equal(s.enrolled, true);
    assert.equal(s.tpmSealed, true);
    // A second CSR reuses the sealed key rather than making a new one.
    const before = readFileSync(b.host(KEY), 'utf8');
    b.run('enrol', 'csr');
    assert.equal(readFileSync(b.host(KEY), 'utf8'), before);
  });

  it('the agent connects to the ICB broker with the TPM-held key (check-online sees it)', { timeout: 120_000 }, async () => {
    const b = sealedBox;
    const file = agentConfigFromInstalled(b.cfg, b.root, join(dir, 'sealed-agent'));
    agent = new AgentProc(file);
    await agent.ready;
    assert.match(execFileSync(CHECK_ONLINE, [broker.pki, ID, broker.url, '30'], { stdio: 'pipe' }).toString(), /"online":true/);
    await agent.kill('SIGTERM');
    agent = undefined;
  });

  it('a copy of the disk in another box (other TPM) is not enrolled and cannot reach the broker', { timeout: 120_000 }, async () => {
    const other = await new Swtpm().start();
    try {
      const clone = join(dir, 'clone');
      cpSync(join(dir, 'sealed'), clone, { recursive: true });
      const cfgPath = join(clone, 'config.yaml');
      const cfg = parse(readFileSync(cfgPath, 'utf8')) as Record<string, Record<string, unknown>>;
      const root = join(clone, 'root');
      writeFileSync(
        cfgPath,
        stringify({
          ...cfg,
          paths: { root, stateDir: join(clone, 'state'), runDir: join(clone, 'run') },
          enrolment: { ...cfg.enrolment, tpmTcti: other.tcti },
        }),
      );
      const r = spawnSync(CLI, ['enrol', 'status', '--config', cfgPath], { encoding: 'utf8' });
      const s = JSON.parse(r.stdout) as { enrolled: boolean; reason: string };
      assert.equal(r.status, 1);
      assert.equal(s.enrolled, false);
      assert.match(s.reason, /TPM did not release the device key/);
      assert.match(s.reason, /re-enrol/);
      assert.doesNotMatch(s.reason, /timed out/, 'refused by the other TPM, not a stuck TPM connection');
      // The agent on the clone starts (no crash), but has no usable key: the broker never sees it online.
      const file = agentConfigFromInstalled(cfgPath, root, join(clone, 'agent'));
      agent = new AgentProc(file);
      await agent.ready;
      assert.throws(() => execFileSync(CHECK_ONLINE, [broker.pki, ID, broker.url, '5'], { stdio: 'pipe' }), /not online/);
      await agent.kill('SIGTERM');
      agent = undefined;
    } finally {
      other.stop();
    }
  });

  it('with a PCR policy, a changed boot chain un-enrols the box with the reason', { timeout: 120_000 }, async () => {
    const b = box('pcr', { tpmTcti: tpm.tcti, tpmPcrs: 'sha256:16' });
    b.run('enrol', 'csr');
    execFileSync(PKI, ['sign-csr', broker.pki, b.host('/var/lib/surgery-edge/enrol/device.csr'), ID], { stdio: 'pipe' });
    const tar = execFileSync(PRACTICE, [broker.pki, ID, 'P81002', 'Mill Lane Surgery', broker.url], { stdio: 'pipe' }).toString().trim();
    b.run('enrol', 'install', tar);
    b.afterInstall({ tpmTcti: tpm.tcti, tpmPcrs: 'sha256:16' });
    assert.equal(b.status().enrolled, true);
    // PCR 16 is the debug PCR: resettable, so the shared simulator is left as it was.
    await new ProcessRunner().run('tpm2_pcrextend', [`16:sha256=${'00'.repeat(31)}03`], { env: { TPM2TOOLS_TCTI: tpm.tcti } });
    try {
      const s = b.status();
      assert.equal(s.enrolled, false);
      assert.match(s.reason!, /boot chain changed/);
    } finally {
      await new ProcessRunner().run('tpm2_pcrreset', ['16'], { env: { TPM2TOOLS_TCTI: tpm.tcti } });
    }
    assert.equal(b.status().enrolled, true, 'PCR back to its sealed value: the key is released again');
  });

  it('keyProtection: tpm refuses without a TPM; file keeps a PEM even with a TPM', () => {
    const noTpm = box('no-tpm', { keyProtection: 'tpm' });
    const r = spawnSync(CLI, ['enrol', 'csr', '--config', noTpm.cfg], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /keyProtection is tpm but no TPM is present/);
    assert.equal(existsSync(noTpm.host(KEY)), false, 'no key made');
    const file = box('file', { keyProtection: 'file', tpmTcti: tpm.tcti });
    file.run('enrol', 'csr');
    assert.match(readFileSync(file.host(KEY), 'utf8'), /BEGIN PRIVATE KEY/);
    assert.equal(existsSync(file.host(`${KEY}.tpm.pub`)), false);
  });
});
