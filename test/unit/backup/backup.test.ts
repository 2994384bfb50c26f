import { reported } from '../../helpers/reports.js';
import assert from 'node:assert/strict';
import { BACKGROUND_NICE } from '../../../common/priority.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BackupCapability, backupTarget, checkKeyFile } from '../../../agent/src/backup/backup.js';
import { parseSftpUrl, Restic } from '../../../agent/src/backup/restic.js';
import { pickSnapshot } from '../../../agent/src/backup/restore.js';
import type { Capability, Health } from '../../../agent/src/core/capability.js';
import { createTestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const uplink = (name: string, priority: number, kind: 'wired' | 'cellular') => ({ name, interface: `${name}0`, kind, priority, table: 100 + priority });

/** A stand-in for failover/records: only their health(), which is all the backup reads. */
function fake(name: string, details: () => Record<string, unknown>): Capability {
  return { name, start: async () => {}, stop: async () => {}, health: (): Health => ({ status: 'ok', summary: '', details: details() }) };
}

describe('backup scheduling and link policy', () => {
  async function setup() {
    const clock = new FakeClock(Date.parse('2026-12-07T10:00:00Z'));
    const ctx = createTestCtx({
      clock,
      config: {
        uplinks: [uplink('wan', 1, 'wired'), uplink('4g', 2, 'cellular')],
        // A restic that is not there: every run that starts fails fast and is recorded.
        backup: { enabled: true, repository: '/srv/backup', resticPath: '/nonexistent/restic', debounceMs: 5_000 },
      },
    });
    writeFileSync(join(ctx.config.paths.stateDir, 'backup.key'), 'k'.repeat(43), { mode: 0o600 });
    const state = { active: '4g' as string | null, pending: 0 };
    const cap = new BackupCapability();
    (ctx.capabilities.list() as Capability[]).push(
      fake('failover', () => ({ active: state.active })),
      fake('records', () => ({ pendingCaptures: state.pending })),
      cap,
    );
    await cap.start(ctx);
    const attempts: string[] = [];
    ctx.bus.on('backup.completed', (e) => attempts.push(e.trigger));
    return { ctx, clock, cap, state, attempts };
  }
  const settle = async (cap: BackupCapability) => {
    for (let i = 0; i < 100 && (reported(cap).details as { running: boolean }).running; i++) await new Promise((r) => setTimeout(r, 10));
  };

  it('capture changes are debounced into one run; on 4G with nothing pending the run is held back until the primary returns', async () => {
    const { ctx, clock, cap, attempts } = await setup();
    try {
      for (let i = 0; i < 5; i++) {
        ctx.bus.emit('records.capture-state', { id: `x${i}`, kind: 'note', state: 'accepted', at: clock.now() });
        await clock.advance(1_000);
      }
      assert.deepEqual(attempts, [], 'nothing within the debounce');
      await clock.advance(5_000);
      await settle(cap);
      assert.deepEqual(attempts, [], 'held back on the backup link');
      assert.match(String((reported(cap).details as { deferred: string }).deferred), /not on the primary link \(4g active\)/);
      ctx.bus.emit('failover.switched', { from: '4g', to: 'wan', kind: 'failback', reason: 'test', at: clock.now() });
      await settle(cap);
      assert.deepEqual(attempts, ['capture'], 'exactly one run, once the primary link is back');
      const d = reported(cap).details as Record<string, unknown>;
      assert.equal(d.deferred, null);
      assert.equal(d.lastAttemptOk, false);
      assert.match(String(d.lastError), /restic/);
      assert.equal(d.lastSuccessAt, null);
      assert.equal(reported(cap).status, 'degraded', 'never backed up is not ok');
      const step = await cap.drillSteps()[0]!.run();
      assert.equal(step.passed, false, 'the drill fails without a recent good backup');
      assert.equal(step.figures?.ageHours, -1);
    } finally {
      await cap.stop();
      ctx.cleanup();
    }
  });

  it('on 4G a pending capture is worth the data: the run goes ahead', async () => {
    const { ctx, clock, cap, state, attempts } = await setup();
    try {
      state.pending = 1;
      assert.equal(cap.linkAllows().ok, true);
      ctx.bus.emit('records.capture-state', { id: 'x', kind: 'note', state: 'pending', at: clock.now() });
      await clock.advance(5_000);
      await settle(cap);
      assert.deepEqual(attempts, ['capture']);
    } finally {
      await cap.stop();
      ctx.cleanup();
    }
  });

  it('the nightly run fires at nightlyAt (local time)', async () => {
    const { ctx, clock, cap, state, attempts } = await setup();
    try {
      void state;
      ctx.bus.emit('failover.switched', { from: '4g', to: 'wan', kind: 'failback', reason: 'test', at: clock.now() });
      const next = (reported(cap).details as { nextNightlyAt: number }).nextNightlyAt;
      assert.ok(next > clock.now() && next - clock.now() <= 86_400_000);
      await clock.advance(next - clock.now() + 1_000);
      await settle(cap);
      assert.deepEqual(attempts, ['nightly']);
    } finally {
      await cap.stop();
      ctx.cleanup();
    }
  });
});

describe('backup helpers', () => {
  it('reads SFTP URLs in both restic forms', () => {
    assert.deepEqual(parseSftpUrl('sftp:backup@10.0.0.5:/srv/restic/P81001'), { user: 'backup', host: '10.0.0.5', port: null });
    assert.deepEqual(parseSftpUrl('sftp://backup@icb.example:2222//srv/x'), { user: 'backup', host: 'icb.example', port: 2222 });
    assert.equal(parseSftpUrl('s3:https://s3.example/b'), null);
  });

  it('builds the ssh command with the configured key and known_hosts, host key checked', () => {
    const r = new Restic({
      binary: 'restic',
      repository: 'sftp://backup@icb.example:2222//srv/x',
      passwordFile: '/k',
      cacheDir: '/c',
      sftp: { identityFile: '/etc/se/id', knownHostsFile: '/etc/se/kh' },
      s3: { accessKeyId: '', accessKeySecret: '', region: '' },
      uploadLimitKiBs: 0,
    });
    const [o, cmd] = r.globalArgs();
    assert.equal(o, '-o');
    assert.match(
      cmd!,
      /^sftp\.command=ssh .*StrictHostKeyChecking=yes.* -i \/etc\/se\/id .*UserKnownHostsFile=\/etc\/se\/kh -p 2222 backup@icb\.example -s sftp$/,
    );
    assert.equal(r.env().RESTIC_PASSWORD_FILE, '/k');
    assert.equal(r.env().AWS_ACCESS_KEY_ID, undefined);
  });

  it('passes S3 credentials by environment only', () => {
    const r = new Restic({
      binary: 'restic',
      repository: 's3:https://s3.icb.example/backups/P81001',
      passwordFile: '/k',
      cacheDir: '/c',
      sftp: { identityFile: '', knownHostsFile: '' },
      s3: { accessKeyId: 'AKIA1', accessKeySecret: 's3cr3t', region: 'eu-west-2' },
      uploadLimitKiBs: 512,
    });
    assert.deepEqual(r.globalArgs(), []);
    assert.equal(r.env().AWS_SECRET_ACCESS_KEY, 's3cr3t');
    assert.equal(r.env().AWS_DEFAULT_REGION, 'eu-west-2');
    assert.equal(backupTarget('s3:https://s3.icb.example/backups/P81001'), 's3 s3.icb.example');
  });

  it('runs restic niced (BACKGROUND_NICE), so a backup yields the CPU to the agent', async () => {
    const ctx = createTestCtx();
    try {
      // A stand-in restic that prints its own nice value (field 19 of /proc/self/stat) once it runs.
      const bin = join(ctx.dir, 'restic');
      writeFileSync(bin, "#!/bin/sh\nawk '{print $19}' /proc/$$/stat\n", { mode: 0o755 });
      const opts = {
        binary: bin,
        repository: '/srv/restic',
        passwordFile: '/k',
        cacheDir: '/c',
        sftp: { identityFile: '', knownHostsFile: '' },
        s3: { accessKeyId: '', accessKeySecret: '', region: '' },
        uploadLimitKiBs: 0,
      };
      const r = new Restic(opts);
      const out = await r.run(['version']);
      const own = Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[16]);
      assert.equal(Number(out.stdout.trim()), Math.min(19, own + BACKGROUND_NICE), 'restic runs BACKGROUND_NICE below the agent');
      assert.equal(BACKGROUND_NICE, 10);
      // Not installed: the same clear error as before it was niced.
      const gone = new Restic({ ...opts, binary: join(ctx.dir, 'no-restic') });
      await assert.rejects(gone.run(['version']), /restic: not installed \(Debian package restic\)/);
    } finally {
      ctx.cleanup();
    }
  });

  it('refuses a key file others can read', () => {
    const ctx = createTestCtx();
    try {
      const p = join(ctx.dir, 'k');
      writeFileSync(p, 'x'.repeat(43), { mode: 0o644 });
      assert.match(String(checkKeyFile(p)), /readable by others/);
      assert.match(String(checkKeyFile(join(ctx.dir, 'none'))), /no backup key/);
    } finally {
      ctx.cleanup();
    }
  });

  it('restores the latest snapshot of this practice, never another practice', () => {
    const s = (id: string, time: string, tags: string[]) => ({ id, short_id: id.slice(0, 8), time, hostname: 'h', tags, paths: [] });
    const all = [
      s('aaaaaaaa1', '2026-12-01T01:00:00Z', ['ods-P81001', 'device-old']),
      s('bbbbbbbb2', '2026-12-03T01:00:00Z', ['ods-P81001', 'device-old']),
      s('cccccccc3', '2026-12-04T01:00:00Z', ['ods-Y99999', 'device-other']),
    ];
    assert.equal(pickSnapshot(all, 'P81001').id, 'bbbbbbbb2');
    assert.equal(pickSnapshot(all, 'P81001', undefined, 'aaaaaaaa').id, 'aaaaaaaa1');
    assert.throws(() => pickSnapshot(all, 'P81001', undefined, 'cccccccc'), /no backup snapshot/);
  });
});
