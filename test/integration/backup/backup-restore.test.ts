import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkLogin, createUser } from '../../../agent/src/auth/accounts.js';
import { BackupCapability } from '../../../agent/src/backup/backup.js';
import { resticFor } from '../../../agent/src/backup/paths.js';
import { restoreBackup } from '../../../agent/src/backup/restore.js';
import type { Capability } from '../../../agent/src/core/capability.js';
import { systemClock } from '../../../common/clock.js';
import { openStateDb } from '../../../agent/src/core/db.js';
import { DrillStore } from '../../../agent/src/drills/store.js';
import { AuditLog } from '../../../agent/src/records/audit.js';
import { CaptureQueue } from '../../../agent/src/records/capture.js';
import { CaptureForwarder } from '../../../agent/src/records/forwarder.js';
import { createKey, writeRuntimeKey } from '../../../agent/src/records/key.js';
import { RecordsCapability } from '../../../agent/src/records/records.js';
import { recordsPaths } from '../../../agent/src/records/sources.js';
import { RecordsStore } from '../../../agent/src/records/store.js';
import { createTestCtx, testConfig, type TestCtx } from '../../helpers/ctx.js';
import { sftpSkipReason, startSftpLab, type SftpLab } from './sftp-lab.js';

/**
 * Off-box backup end to end on real SQLite, real restic and a real OpenSSH SFTP server in a
 * namespace: restic is killed (-9) at chosen points of a run; after each kill `restic check`
 * passes and the next run completes. Then a replacement box (fresh state dir, another device id,
 * same practice and backup key) restores the latest snapshot: the audit chain verifies and goes
 * on, accounts log in, and pending captures are forwarded with each item filed upstream once.
 */
const skip = sftpSkipReason();
const PASS = 'correct horse battery staple';
const ODS = 'P81001';

describe('backup to SFTP, kill -9, restore on a replacement box', { skip }, () => {
  let lab: SftpLab;
  let ctx: TestCtx;
  let records: RecordsCapability;
  let backup: BackupCapability;
  let keyFile: string;
  let repoDir: string;
  let cfgDoc: Record<string, unknown>;
  let labDir: string;

  before(async () => {
    labDir = mkdtempSync(join(tmpdir(), 'se-i19bk-'));
    lab = await startSftpLab(labDir);
    repoDir = join(labDir, 'repo');
    keyFile = join(labDir, 'backup.key');
    writeFileSync(keyFile, randomBytes(32).toString('base64url'), { mode: 0o600 });
    cfgDoc = {
      site: { deviceId: 'P81001-01', odsCode: ODS, practiceName: 'High Street Surgery' },
      records: { enabled: true },
      backup: {
        enabled: true,
        repository: lab.repoUrl(repoDir),
        keyFile,
        debounceMs: 100,
        // Slow enough (2 MiB/s over ~12 MB) that a kill lands mid-upload.
        uploadLimitKiBs: 2048,
        sftp: { identityFile: lab.identityFile, knownHostsFile: lab.knownHostsFile },
      },
    };
    ctx = createTestCtx({ clock: systemClock, config: cfgDoc });
    // Records provisioned and unlocked, as on a box after the passphrase was entered.
    const rp = recordsPaths(ctx.config);
    const key = await createKey(rp.key, PASS);
    writeRuntimeKey(rp.runtimeKey, key);
    records = new RecordsCapability();
    backup = new BackupCapability();
    (ctx.capabilities.list() as Capability[]).push(records, backup);
    await records.start(ctx);
    await backup.start(ctx);
    assert.ok(records.store, 'records unlocked');

    const db = records.store.db;
    const audit = AuditLog.open(db, Date.now);
    const q = CaptureQueue.open(db, Date.now);
    const mk = (id: string, kind: 'call' | 'note', history = 'seen') =>
      q.create({
        id,
        kind,
        patientId: '9000000009',
        payload: kind === 'call' ? { direction: 'incoming', summary: history, urgency: 'routine' } : { consultationType: 'telephone', history },
        author: 'dr.a',
        role: 'clinician',
        device: 'test',
      }).item;
    const ids = ['01JBAKP000000000000000000A', '01JBAKP000000000000000000B', '01JBAKP000000000000000000C', '01JBAKP000000000000000000D'];
    for (const id of ids) mk(id, 'note');
    q.markSent(ids[1]!); // in flight when the box died: resent with the same key
    q.markSent(ids[2]!);
    q.markAccepted(ids[2]!, 'UP-1');
    q.markSent(ids[3]!);
    q.markRejected(ids[3]!, 'unknown patient');
    for (let i = 0; i < 50; i++) audit.append({ user: 'dr.a', role: 'clinician', patientId: '9000000009', action: 'view.summary', device: 'test' });
    // Cache rows that must NOT reach the backup.
    db.prepare(
      "INSERT INTO rec_patients (id, nhs_number, name, name_lc, summary, hash, fetched_at) VALUES ('p1', '9000000009', 'CACHEDPATIENTNAME', 'x', '{}', 'h', 1)",
    ).run();
    createUser(ctx.db, 'reception1', 'a-long-password-1', 'reception');
    new DrillStore(ctx.db).save({ id: 'drill-1', at: Date.now(), trigger: 'manual', passed: true, steps: [], durationMs: 5 }, 10);
    // Incompressible ballast so an upload takes seconds under the rate limit.
    ctx.db.exec('CREATE TABLE ballast (b BLOB)');
    for (let i = 0; i < 12; i++) ctx.db.prepare('INSERT INTO ballast VALUES (?)').run(randomBytes(1 << 20));
  });

  after(async () => {
    await backup?.stop();
    await records?.stop();
    lab?.stop();
    ctx?.cleanup();
    if (labDir) rmSync(labDir, { recursive: true, force: true });
  });

  async function killDuring(when: (d: { progress: { bytesDone: number; totalBytes: number } | null }) => boolean): Promise<void> {
    let pid = 0;
    backup.onResticSpawn = (p) => (pid = p);
    const run = backup.runNow('manual');
    // Only the `restic backup` child counts (ensureRepository/unlock spawn restic first).
    let met = false;
    for (let i = 0; i < 600 && !met; i++) {
      const d = backup.health().details as { progress: { bytesDone: number; totalBytes: number } | null };
      met = pid !== 0 && when(d);
      if (!met) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(met, 'the kill point was reached while restic ran (not a timeout)');
    process.kill(pid, 'SIGKILL');
    const r = await run;
    backup.onResticSpawn = null;
    assert.equal(r?.ok, false, 'a killed run is not reported as a success');
    const check = await resticFor(ctx.config).check();
    assert.ok(check.ok, `restic check after the kill: ${check.output}`);
  }

  it('first backup creates the repository and uploads everything', async () => {
    const r = await backup.runNow('manual');
    assert.ok(r?.ok, `backup ok: ${r?.error}`);
    assert.match(r.snapshotId ?? '', /^[0-9a-f]{8,64}$/);
    const d = backup.health().details as Record<string, unknown>;
    assert.equal(d.lastSnapshotId, r.snapshotId);
    assert.equal(typeof d.lastSuccessAt, 'number');
    assert.equal(backup.health().status, 'ok');
    assert.equal((await backup.drillSteps()[0]!.run()).passed, true, 'the drill step passes after a good backup');
    // Encrypted at rest on the target: no plaintext from the box anywhere in the repository.
    const all = readdirSync(repoDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    for (const f of all) {
      const buf = readFileSync(join(f.parentPath, f.name));
      assert.ok(!buf.includes('reception1') && !buf.includes('P81001-01') && !buf.includes('SQLite format'), `plaintext in ${f.name}`);
    }
  });

  it('kill -9 right after restic starts, mid-upload and late: repository checks clean, next run completes', async () => {
    // New data so each run has something to upload.
    const grow = () => ctx.db.prepare('INSERT INTO ballast VALUES (?)').run(randomBytes(4 << 20));
    grow();
    await killDuring(() => true);
    grow();
    await killDuring((d) => (d.progress?.bytesDone ?? 0) > 0);
    grow();
    await killDuring((d) => !!d.progress && d.progress.totalBytes > 0 && d.progress.bytesDone / d.progress.totalBytes > 0.6);
    const r = await backup.runNow('manual');
    assert.ok(r?.ok, `run after the kills: ${r?.error}`);
    const check = await resticFor(ctx.config).check();
    assert.ok(check.ok, check.output);
    assert.ok((await resticFor(ctx.config).snapshots()).length >= 2);
  });

  it('a replacement box restores: audit chain verifies and continues, accounts work, captures forward once', async () => {
    // One more capture after the last backup exists only on the dead box; the replacement cannot
    // have it. And the dead box's forwarder filed item B upstream just before it died (lost response).
    const dir2 = join(ctx.dir, 'box2');
    mkdirSync(dir2);
    const cfg2 = testConfig({ ...cfgDoc, site: { deviceId: 'P81001-02', odsCode: ODS, practiceName: 'High Street Surgery' } }, dir2);
    const t0 = performance.now();
    const rep = await restoreBackup({ config: cfg2, passphrase: PASS });
    const seconds = (performance.now() - t0) / 1000;
    process.stdout.write(`# restore: ${seconds.toFixed(2)} s from start to restored (snapshot ${rep.snapshotId.slice(0, 8)})\n`);
    assert.deepEqual(rep.problems, []);
    assert.equal(rep.fromDevice, 'P81001-01');
    assert.ok(rep.audit?.ok, 'audit chain verifies after restore');
    assert.equal(rep.audit?.entries, 51, '50 entries + the system.restore entry');
    assert.deepEqual(rep.captures, { pending: 1, sent: 1, accepted: 1, rejected: 1 });
    assert.ok(rep.accounts >= 1 && rep.drills === 1);

    // Accounts work on the new box's own state db.
    const db2 = openStateDb(join(cfg2.paths.stateDir, 'agent.db'));
    const login = await checkLogin(db2, 'reception1', 'a-long-password-1', { now: Date.now(), maxFailed: 5, lockoutMs: 60_000 });
    assert.ok(login.ok, 'restored account logs in');
    assert.equal(
      db2.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'ballast'").get() &&
        (db2.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'ballast'").get() as { n: number }).n,
      0,
      'only accounts and drills are merged, not the old box state',
    );
    db2.close();

    // Records: cache contents excluded, audit chain continues, pending + sent captures forwarded once.
    const { unwrapKey } = await import('../../../agent/src/records/key.js');
    const store = RecordsStore.open(recordsPaths(cfg2).db, { key: await unwrapKey(recordsPaths(cfg2).key, PASS) });
    try {
      assert.equal((store.db.prepare('SELECT count(*) AS n FROM rec_patients').get() as { n: number }).n, 0, 'cached records are not restored (re-fetched)');
      assert.equal(store.meta().asOf, null, 'a restored cache never claims to be current');
      const audit = AuditLog.open(store.db, Date.now);
      audit.append({ user: 'dr.b', role: 'clinician', patientId: null, action: 'view.day-list', device: 'box2' });
      const v = audit.verify();
      assert.ok(v.ok && v.entries === 52, 'the chain continues on the new box');

      const filed = new Map<string, number>(); // upstream's idempotency store
      filed.set('01JBAKP000000000000000000B', 1); // the dead box's last request reached upstream
      const server: Server = createServer((req, res) => {
        const key = String(req.headers['idempotency-key']);
        req.resume();
        req.on('end', () => {
          if (filed.has(key)) return res.writeHead(409, { 'content-type': 'application/json' }).end('{"duplicate":true}');
          filed.set(key, 1);
          res.writeHead(201, { 'content-type': 'application/json' }).end(`{"ref":"R-${key.slice(-1)}"}`);
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const q = CaptureQueue.open(store.db, Date.now);
      const fwd = new CaptureForwarder(q, {
        upstreamUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
        timeoutMs: 5000,
        retryInitialMs: 50,
        retryMaxMs: 100,
        site: { deviceId: 'P81001-02', odsCode: ODS },
        clock: systemClock,
        log: ctx.log,
        bus: ctx.bus,
      });
      fwd.start();
      for (let i = 0; i < 100 && q.nextToSend(); i++) await new Promise((r) => setTimeout(r, 20));
      await fwd.stop();
      server.close();
      const c = q.counts();
      assert.equal(c.pending + c.sent, 0, 'every pending capture forwarded');
      assert.equal(c.accepted, 3);
      assert.deepEqual([...filed.values()], [1, 1], 'A and B each filed exactly once upstream; C (already accepted) not resent');
      assert.ok(filed.has('01JBAKP000000000000000000A'));
    } finally {
      store.close();
    }
    // A second restore onto the same box is refused: it would fork the audit chain.
    await assert.rejects(restoreBackup({ config: cfg2 }), /fresh box/);
    rmSync(dir2, { recursive: true, force: true });
  });
});
