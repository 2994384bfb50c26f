import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';

/** Issue 17, medium: reserved identities and keys that must never be replaced (real openssl). */
const PKI = resolve(import.meta.dirname, '../../../provisioning/pki.sh');
const run = (...args: string[]) => spawnSync('bash', [PKI, ...args], { encoding: 'utf8' });
const subject = (crt: string) => execFileSync('openssl', ['x509', '-in', crt, '-noout', '-subject', '-nameopt', 'RFC2253'], { encoding: 'utf8' }).trim();

describe('provisioning/pki.sh: reserved identities and no overwrites', () => {
  let dir: string;
  let pki: string;
  const csr = (name: string, subj: string) => {
    const key = join(dir, `${name}.key`);
    execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
    execFileSync('openssl', ['req', '-new', '-key', key, '-subj', subj, '-out', join(dir, `${name}.csr`)]);
    return join(dir, `${name}.csr`);
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pki-res-'));
    pki = join(dir, 'pki');
    assert.equal(run('init', pki).status, 0);
    assert.equal(run('fleet', pki).status, 0);
    assert.equal(run('device', pki, 'P81001-01').status, 0);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the fleet identity carries more than its CN; a device certificate is CN=<id> alone', () => {
    assert.equal(subject(join(pki, 'fleet.crt')), 'subject=CN=fleet,OU=fleet-manager,O=surgery-edge');
    assert.equal(subject(join(pki, 'devices', 'P81001-01.crt')), 'subject=CN=P81001-01');
  });

  it('device refuses fleet (any case), other reserved names and ids outside the pattern', () => {
    for (const id of ['fleet', 'Fleet', 'FLEET', 'fleet-2', 'server', 'ca', 'a/b', '../x', '-x', 'x y', '+', '#', 'a'.repeat(65)]) {
      const r = run('device', pki, id);
      assert.notEqual(r.status, 0, `device ${id} must be refused`);
      assert.match(r.stderr, /reserved identity|not a device id/);
    }
  });

  it('never overwrites a key: device and fleet refuse when one exists', () => {
    const key = readFileSync(join(pki, 'devices', 'P81001-01.key'));
    const fleetKey = readFileSync(join(pki, 'fleet.key'));
    const r1 = run('device', pki, 'P81001-01');
    assert.equal(r1.status, 3);
    assert.match(r1.stderr, /already has a certificate/);
    const r2 = run('fleet', pki);
    assert.equal(r2.status, 3);
    assert.match(r2.stderr, /refusing to overwrite the existing key/);
    assert.deepEqual(readFileSync(join(pki, 'devices', 'P81001-01.key')), key);
    assert.deepEqual(readFileSync(join(pki, 'fleet.key')), fleetKey);
  });

  it('sign-csr refuses CN=fleet with or without an expected id, extra subject fields, and a re-issue nobody asked for', () => {
    const fleetCsr = csr('f', '/CN=fleet');
    assert.match(run('sign-csr', pki, fleetCsr).stderr, /reserved identity/);
    assert.match(run('sign-csr', pki, fleetCsr, 'fleet').stderr, /reserved identity/);
    assert.match(run('sign-csr', pki, fleetCsr, 'P81009-01').stderr, /reserved identity|expected/);
    // A device CSR dressed as the fleet's subject (its user name on the broker) is refused.
    assert.match(run('sign-csr', pki, csr('g', '/O=surgery-edge/OU=fleet-manager/CN=P81009-01')).stderr, /CN=<device id> and nothing else/);
    // Without an expected id, an existing device's certificate is not replaced by one for another key.
    const other = csr('h', '/CN=P81001-01');
    const before = readFileSync(join(pki, 'devices', 'P81001-01.crt'));
    assert.match(run('sign-csr', pki, other).stderr, /already has a certificate/);
    assert.deepEqual(readFileSync(join(pki, 'devices', 'P81001-01.crt')), before);
    // Named explicitly by the operator, the re-issue goes ahead (a replaced box).
    assert.equal(run('sign-csr', pki, other, 'P81001-01').status, 0);
    // Positive control: a good CSR is signed.
    const ok = run('sign-csr', pki, csr('i', '/CN=P81009-01'));
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(subject(join(pki, 'devices', 'P81009-01.crt')), 'subject=CN=P81009-01');
  });
});
