import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createUser } from '../../../agent/src/auth/accounts.js';
import { BackupCapability } from '../../../agent/src/backup/backup.js';
import { resticFor } from '../../../agent/src/backup/paths.js';
import { restoreBackup } from '../../../agent/src/backup/restore.js';
import type { Capability } from '../../../agent/src/core/capability.js';
import { AuditLog } from '../../../agent/src/records/audit.js';
import { CaptureQueue } from '../../../agent/src/records/capture.js';
import { createKey, writeRuntimeKey } from '../../../agent/src/records/key.js';
import { RecordsCapability } from '../../../agent/src/records/records.js';
import { recordsPaths } from '../../../agent/src/records/sources.js';
import { systemClock } from '../../../common/clock.js';
import { createTestCtx, testConfig, type TestCtx } from '../../helpers/ctx.js';
import { onPath } from '../../lab/tools.js';
import { s3SkipReason, startS3Lab, type S3Lab } from './s3-lab.js';

const PASS = 'correct horse battery staple';
const skip = s3SkipReason() || (!onPath('restic') && 'restic is not installed');

/**
 * The S3 target for real: restic's s3 backend against OpenStack Swift's S3 API (Debian
 * python3-swift) in a network namespace, over HTTPS with a private CA (backup.s3.caPath). A box
 * backs up, a replacement box restores; the audit chain verifies and no plaintext is stored.
 */
describe('backup to S3 (Swift s3api in a namespace) and restore', { skip }, () => {
  let dir: string;
  let lab: S3Lab;
  let ctx: TestCtx;
  let records: RecordsCapability;
  let backup: BackupCapability;
  let doc: Record<string, unknown>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'se-i19s3-'));
    lab = await startS3Lab(dir);
    const keyFile = join(dir, 'backup.key');
    writeFileSync(keyFile, randomBytes(32).toString('base64url'), { mode: 0o600 });
    doc = {
      site: { deviceId: 'P81001-01', odsCode: 'P81001', practiceName: 'High Street Surgery' },
      records: { enabled: true },
      backup: {
        enabled: true,
        repository: `s3:${lab.endpoint}/surgery-edge/P81001`,
        keyFile,
        s3: { accessKeyId: lab.accessKeyId, accessKeySecret: lab.accessKeySecret, caPath: lab.caPath },
      },
    };
    ctx = createTestCtx({ clock: systemClock, config: doc });
    const rp = recordsPaths(ctx.config);
    writeRuntimeKey(rp.runtimeKey, await createKey(rp.key, PASS));
    records = new RecordsCapability();
    backup = new BackupCapability();
    (ctx.capabilities.list() as Capability[]).push(records, backup);
    await records.start(ctx);
    await backup.start(ctx);
    const q = CaptureQueue.open(records.store!.db, Date.now);
    q.create({
      id: '01JBAKS300000000000000000A',
      kind: 'note',
      patientId: '9000000009',
      payload: { consultationType: 'telephone', history: 'S3NOTEPLAINTEXT' },
      author: 'dr.a',
      role: 'clinician',
      device: 'test',
    });
    const audit = AuditLog.open(records.store!.db, Date.now);
    for (let i = 0; i < 20; i++) audit.append({ user: 'dr.a', role: 'clinician', patientId: '9000000009', action: 'view.summary', device: 'test' });
    createUser(ctx.db, 's3reception', 'a-long-password-1', 'reception');
  });

  after(async () => {
    await backup?.stop();
    await records?.stop();
    lab?.stop();
    ctx?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('backs up over HTTPS to the S3 API; the target stores ciphertext only', async () => {
    const r = await backup.runNow('manual');
    assert.ok(r?.ok, `backup over S3: ${r?.error}`);
    assert.match(String((backup.health().details as { target: string }).target), /^s3 10\.219\.8\.2:8080$/);
    const second = await backup.runNow('manual');
    assert.ok(second?.ok, `second run (deduplicated): ${second?.error}`);
    const snaps = await resticFor(ctx.config).snapshots();
    assert.equal(snaps.length, 2);
    assert.ok((await resticFor(ctx.config).check()).ok, 'restic check over S3');
    const files = readdirSync(lab.storeDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.data'));
    assert.ok(files.length >= 5, `objects stored by Swift: ${files.length}`);
    for (const f of files) {
      const b = readFileSync(join(f.parentPath, f.name));
      assert.ok(!b.includes('s3reception') && !b.includes('S3NOTEPLAINTEXT') && !b.includes('SQLite format'), `plaintext in ${f.name}`);
    }
  });

  it('a replacement box restores from S3; the audit chain verifies, the capture is pending', async () => {
    const dir2 = join(ctx.dir, 'box2');
    mkdirSync(dir2);
    const cfg2 = testConfig({ ...doc, site: { deviceId: 'P81001-02', odsCode: 'P81001', practiceName: 'High Street Surgery' } }, dir2);
    const t0 = performance.now();
    const rep = await restoreBackup({ config: cfg2, passphrase: PASS });
    process.stdout.write(`# restore from S3: ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
    assert.deepEqual(rep.problems, []);
    assert.equal(rep.fromDevice, 'P81001-01');
    assert.ok(rep.audit?.ok && rep.audit.entries === 21, 'chain verifies: 20 entries + system.restore');
    assert.equal(rep.captures?.pending, 1);
    assert.ok(rep.accounts >= 1);
  });

  it("wrong S3 credentials fail the run with restic's reason, and nothing claims success", async () => {
    const bad = createTestCtx({
      clock: systemClock,
      config: { ...doc, backup: { ...(doc.backup as object), s3: { accessKeyId: lab.accessKeyId, accessKeySecret: 'wrong', caPath: lab.caPath } } },
    });
    const cap = new BackupCapability();
    try {
      await cap.start(bad);
      const r = await cap.runNow('manual');
      assert.equal(r?.ok, false);
      assert.match(String(r?.error), /restic|Access Denied|SignatureDoesNotMatch|403|Unauthorized/i);
      assert.equal(cap.health().status, 'degraded');
    } finally {
      await cap.stop();
      bad.cleanup();
    }
  });
});
