import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { join, resolve } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createLogger } from '../../../common/log.js';
import { claimCommitment, keyFingerprint, newClaimCode, normaliseClaimCode, spkiDer } from '../../../common/claim-code.js';
import { csrFromKey } from '../../../agent/src/enrolment/csr.js';
import { keyPem } from '../../../agent/src/platform/device-key.js';
import { Claims } from '../../../fleet/src/claim/claims.js';
import { inspectCsr, reservedIdentity } from '../../../fleet/src/claim/csr.js';
import { validateFleetConfig } from '../../../fleet/src/config.js';
import type { FleetCtx } from '../../../fleet/src/ctx.js';
import { Inventory } from '../../../fleet/src/inventory.js';
import type { MqttHub } from '../../../fleet/src/mqtt/hub.js';
import { SqliteDriver } from '../../../fleet/src/store/driver.js';
import { Store } from '../../../fleet/src/store/store.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { tempDir } from '../../helpers/fleet.js';

const PKI = resolve(import.meta.dirname, '../../../provisioning/pki.sh');
const HOUR = 3600_000;

describe('claim codes', () => {
  it('are XXXX-XXXX from an unambiguous alphabet, 40 bits, forgiving to type', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const c = newClaimCode();
      assert.match(c, /^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
      seen.add(c);
    }
    assert.equal(seen.size, 2000, 'no repeats in 2000 codes');
    assert.equal(
      newClaimCode(() => Buffer.alloc(5, 0xff)),
      'ZZZZ-ZZZZ',
      'all 40 bits used',
    );
    assert.equal(normaliseClaimCode(' 7kq4 m2xd '), '7KQ4M2XD');
    assert.equal(normaliseClaimCode('OIL0-1234'), '01101234', 'O reads as 0, I and L as 1');
    assert.equal(normaliseClaimCode('7KQ4-M2X'), null);
    assert.equal(normaliseClaimCode('7KQ4-M2XU'), null, 'U is not in the alphabet');
  });

  it('the commitment is bound to one key', () => {
    const a = spkiDer(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    const b = spkiDer(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    assert.equal(claimCommitment('7KQ4-M2XD', a), claimCommitment('7kq4m2xd', a));
    assert.notEqual(claimCommitment('7KQ4-M2XD', a), claimCommitment('7KQ4-M2XD', b));
  });
});

describe('claiming on the fleet (real SQLite, real openssl, fake clock)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: Store;
  let clock: FakeClock;
  let claims: Claims;
  let pki: string;

  before(() => {
    tmp = tempDir();
    pki = join(tmp.dir, 'pki');
    execFileSync('bash', [PKI, 'init', pki], { stdio: 'ignore' });
  });
  after(() => tmp.rm());

  beforeEach(async () => {
    store = await Store.open(new SqliteDriver(':memory:'));
    clock = new FakeClock();
    const r = validateFleetConfig({
      claim: {
        caCertPath: join(pki, 'ca.crt'),
        caKeyPath: join(pki, 'ca.key'),
        brokers: ['mqtts://mqtt1.icb.example:8883'],
        maxFailuresPerAddress: 4,
        maxFailuresPerCode: 3,
      },
    });
    assert.ok(r.ok);
    const ctx = {
      config: r.config,
      log: createLogger({ level: 'silent' }, 'test'),
      clock,
      store,
      mqtt: {} as MqttHub,
      inventory: new Inventory([]),
      instanceId: 'fleet-test',
    } satisfies FleetCtx;
    claims = new Claims(ctx);
  });

  /** A box: key, CSR named `cn`, code, and its request on the fleet. */
  const box = async (cn?: string, address = '10.1.1.10') => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = spkiDer(privateKey);
    const name = cn ?? `unclaimed-${keyFingerprint(spki).replace('-', '').toLowerCase()}`;
    const code = newClaimCode();
    const r = await claims.submit(csrFromKey(keyPem(privateKey), name), claimCommitment(code, spki), address);
    return { key: privateKey as KeyObject, code, requestId: r.requestId, fingerprint: keyFingerprint(spki) };
  };
  const claim = (code: string, o: { ods?: string; deviceId?: string; address?: string } = {}) =>
    claims.claim({
      code,
      ods: o.ods ?? 'P81001',
      practiceName: 'High Street Surgery',
      deviceId: o.deviceId ?? '',
      username: 'amy',
      address: o.address ?? '192.0.2.7',
    });
  const audit = async () => (await store.accounts.auditLog(100)).filter((a) => a.action === 'claim');

  it('happy path: the code claims the box once; the certificate is for its key, signed by the ICB CA; audited', async () => {
    const b = await box();
    assert.deepEqual((await claims.poll(b.requestId)).body.status, 'pending');
    const out = await claim(b.code.toLowerCase().replace('-', ' '));
    assert.deepEqual(out, { ok: true, deviceId: 'P81001-01', fingerprint: b.fingerprint });
    const p = await claims.poll(b.requestId);
    assert.equal(p.http, 200);
    assert.equal(p.body.status, 'claimed');
    assert.deepEqual(p.body.brokers, ['mqtts://mqtt1.icb.example:8883']);
    const cert = new X509Certificate(p.body.certificate as string);
    assert.ok(cert.checkPrivateKey(b.key), "certificate is for the box's own key");
    assert.ok(cert.verify(new X509Certificate(p.body.caChain as string).publicKey));
    assert.match(cert.subject, /CN=P81001-01/);
    assert.equal(cert.ca, false);
    const a = await audit();
    assert.equal(a.length, 1);
    assert.equal(a[0]!.outcome, 'ok');
    assert.equal(a[0]!.device_id, 'P81001-01');
    assert.ok(!JSON.stringify(a).includes(b.code), 'the code is never in the audit log');
    // The next box for the same practice gets the next number.
    const b2 = await box();
    assert.equal(((await claim(b2.code)) as { deviceId: string }).deviceId, 'P81001-02');
  });

  it('a reused code is refused with when and as what it was used', async () => {
    const b = await box();
    assert.ok((await claim(b.code)).ok);
    const again = await claim(b.code);
    assert.equal(again.ok, false);
    assert.equal((again as { status: number }).status, 409);
    assert.match((again as { reason: string }).reason, /already used on .* to claim P81001-01\. Codes work once/);
  });

  it('an expired code is refused as expired (not wrong), and the box is told to make a new one', async () => {
    const b = await box();
    await clock.advance(24 * HOUR + 1000);
    const out = await claim(b.code);
    assert.equal((out as { status: number }).status, 410);
    assert.match((out as { reason: string }).reason, /expired/);
    assert.equal((await claims.poll(b.requestId)).http, 410);
    assert.equal((await claims.waiting()).length, 0, 'an expired box is no longer listed as waiting');
  });

  it('a wrong or malformed code is refused with a clear error', async () => {
    await box();
    const wrong = await claim('ABCD-EFGH');
    assert.equal((wrong as { status: number }).status, 400);
    assert.match((wrong as { reason: string }).reason, /Wrong code: no box is waiting/);
    const bad = await claim('hello');
    assert.equal(bad.ok, false);
    assert.match((bad as { reason: string }).reason, /not a claim code: it is 8 letters and digits/);
  });

  it('wrong attempts are limited per address and per code; the right code still works from elsewhere', async () => {
    const b = await box();
    for (let i = 0; i < 4; i++) assert.match(((await claim(`WRNG-00${i}0`, { address: '192.0.2.66' })) as { reason: string }).reason, /Wrong code/);
    const locked = await claim(b.code, { address: '192.0.2.66' });
    assert.equal((locked as { status: number }).status, 429, 'even the right code is refused from a locked-out address');
    assert.match((locked as { reason: string }).reason, /Too many wrong claim codes from your address/);
    // Per code: the same wrong code from three addresses, then a fourth is refused.
    for (const a of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) await claim('ZZZZ-ZZZZ', { address: a });
    assert.match(((await claim('ZZZZ-ZZZZ', { address: '198.51.100.4' })) as { reason: string }).reason, /tried too many times/);
    assert.ok((await claim(b.code, { address: '203.0.113.5' })).ok, 'another address with the right code');
    // The window passes: the locked address may try again.
    await clock.advance(15 * 60_000 + 1);
    assert.match(((await claim('WRNG-0000', { address: '192.0.2.66' })) as { reason: string }).reason, /Wrong code/);
    assert.ok((await audit()).filter((a) => a.outcome === 'refused').length >= 8, 'refusals audited');
  });

  it('reserved identities are refused: in the CSR at submission, and as the chosen device id', async () => {
    for (const cn of ['fleet', 'FLEET', 'fleet-2', 'admin', 'unenrolled']) {
      await assert.rejects(box(cn), (e: Error & { code?: string }) => e.code === 'FORBIDDEN' && /reserved identity/.test(e.message), cn);
    }
    await assert.rejects(box('bad id with spaces'), /not a device id|openssl/);
    const b = await box();
    const out = await claim(b.code, { deviceId: 'fleet' });
    assert.equal((out as { status: number }).status, 403);
    assert.match((out as { reason: string }).reason, /fleet is a reserved identity/);
    assert.equal(reservedIdentity('P81001-01'), null);
  });

  it("another practice's identity is refused: an existing device, an issued one, or the ODS convention", async () => {
    // A box whose CSR asks to be P81002-01 cannot be claimed for P81001.
    const b = await box('P81002-01');
    const out = await claim(b.code, { ods: 'P81001' });
    assert.equal((out as { status: number }).status, 403);
    assert.match((out as { reason: string }).reason, /P81002-01 belongs to practice P81002, not P81001/);
    // Nor may the engineer give a P81001 box another practice's issued id.
    const c = await box();
    assert.ok((await claim(c.code, { ods: 'P81003', deviceId: 'P81003-07' })).ok);
    const d = await box();
    assert.match(((await claim(d.code, { ods: 'P81001', deviceId: 'P81003-07' })) as { reason: string }).reason, /belongs to practice P81003/);
    // The same box, re-claimed for its own practice, keeps its id.
    assert.deepEqual(((await claim(b.code, { ods: 'P81002' })) as { deviceId: string }).deviceId, 'P81002-01');
  });

  it('CSRs asking for extra names or with a bad signature are refused', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = keyPem(privateKey);
    const san = execFileSync('sh', ['-c', 'cat >k.pem; openssl req -new -key k.pem -subj /CN=P81001-01 -addext subjectAltName=DNS:fleet; rm -f k.pem'], {
      input: pem,
      cwd: tmp.dir,
    }).toString();
    assert.throws(() => inspectCsr(san), /subjectAltName/);
    const good = csrFromKey(pem, 'P81001-01');
    assert.equal(inspectCsr(good).cn, 'P81001-01');
    const lines = good.split('\n');
    lines[3] = lines[3]!.replace(/[A-Za-z]/, (c) => (c === 'A' ? 'B' : 'A'));
    assert.throws(() => inspectCsr(lines.join('\n')), /openssl|BAD_REQUEST|no public key/);
    assert.throws(() => inspectCsr('not a csr'), /one PEM certificate request/);
  });
});

describe('a claimed box on the dashboard', () => {
  it('is placed in the practice typed at the claim, with its name; the config inventory still wins', () => {
    const inv = new Inventory([{ deviceId: 'P81001-09', practice: 'P81001', practiceName: 'From the config' }] as never);
    assert.equal(inv.place('P81001-01').practiceName, null);
    inv.claimed('P81001-01', 'P81001', 'High Street Surgery');
    assert.deepEqual(inv.place('P81001-01'), { practice: 'P81001', practiceName: 'High Street Surgery', pcn: null, clinicalSystem: null });
    inv.claimed('P81001-09', 'P81001', 'Typed at the claim');
    assert.equal(inv.place('P81001-09').practiceName, 'From the config');
    inv.claimed('P81001-02', 'P81001', '');
    assert.equal(inv.place('P81001-02').practiceName, null, 'an empty name is no name');
  });
});

describe('provisioning/label.sh', () => {
  const LABEL = resolve(import.meta.dirname, '../../../provisioning/label.sh');
  it('prints the code and the claim link; refuses what is not a code', () => {
    const out = execFileSync('bash', [LABEL, '7kq4m2xd', 'https://fleet.icb.example', 'text', 'AB12-CD34']).toString();
    assert.match(out, /Claim code: {2}7KQ4-M2XD/);
    assert.match(out, /^https:\/\/fleet\.icb\.example\/claim\?code=7KQ4-M2XD$/m);
    assert.throws(() => execFileSync('bash', [LABEL, '7KQ4-M2XU', 'https://fleet.icb.example'], { stdio: 'pipe' }), /not a claim code/);
    assert.throws(() => execFileSync('bash', [LABEL, '7KQ4-M2XD', 'http://fleet'], { stdio: 'pipe' }), /must be https/);
  });
  it(
    'SVG: one well-formed document with the QR nested once',
    { skip: execFileSync('sh', ['-c', 'command -v qrencode || true']).toString().trim() ? false : 'qrencode not installed' },
    () => {
      const svg = execFileSync('bash', [LABEL, '7KQ4-M2XD', 'https://fleet.icb.example', 'svg']).toString();
      assert.equal(svg.match(/<svg/g)?.length, 2);
      assert.ok(!/<svg[^>]*width="[^"]*"[^>]*width=/.test(svg), 'no duplicate attributes');
      assert.match(svg, />7KQ4-M2XD</);
    },
  );
});
