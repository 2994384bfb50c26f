import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BackupHistory } from '../../../agent/src/backup/history.js';
import { openStateDb } from '../../../agent/src/core/db.js';
import type { Fleet } from '../../../fleet/src/fleet.js';
import { fleetConfig, startFleet, tempDir, waitFor } from '../../helpers/fleet.js';
import { mosquittoMissing, startBroker, type TestBroker } from '../../helpers/mosquitto.js';
import { onPath } from '../../lab/tools.js';
import { agentConfig } from '../telemetry/fixture.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const DEV = 'P81001-01';
const HOUR = 3600_000;
const skip = mosquittoMissing() || (!onPath('restic') && 'restic is not installed (apt-get install restic)');

/** Runs `surgery-edge ARGS` as ICB IT would on the box; its exit code and output. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'agent/src/main.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('exit', (code) => res({ code, stdout, stderr }));
  });
}

/**
 * The backup-age alert and "back up now", end to end: a real agent (backup, telemetry and status
 * capabilities in the real composition root) whose last good backup was 27 h ago, on 4G with no
 * capture pending, publishes through real mosquitto (TLS, client certificates, dynamic security) to
 * a real fleet. The fleet alerts naming the practice; `backup now` is refused on 4G (CLI and MQTT
 * command) with the reason, runs with --force into a real restic repository, and the alert clears.
 */
describe('backup age alert in the fleet; backup now (CLI and MQTT)', { skip }, () => {
  let broker: TestBroker;
  let tmp: ReturnType<typeof tempDir>;
  let fleet: Fleet;
  let agent: ChildProcess | undefined;
  let cfg: string;
  const seeded = Date.now() - 27 * HOUR;

  before(async () => {
    broker = await startBroker([DEV]);
    tmp = tempDir();
    fleet = await startFleet(
      fleetConfig(broker, join(tmp.dir, 'fleet'), { inventory: [{ deviceId: DEV, practice: 'P81001', practiceName: 'High Street Surgery' }] }),
    );
    const dir = join(tmp.dir, DEV);
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(join(stateDir, 'backup.key'), 'k'.repeat(43), { mode: 0o600 });
    // The box's history: its last good backup finished 27 h ago.
    const db = openStateDb(join(stateDir, 'agent.db'));
    new BackupHistory(db).save({
      id: '01JBAKOLD0000000000000000A',
      startedAt: seeded - 60_000,
      finishedAt: seeded,
      trigger: 'nightly',
      ok: true,
      snapshotId: 'aaaabbbb',
      dataAdded: 1,
      error: null,
    });
    db.close();
    cfg = agentConfig(
      broker,
      DEV,
      dir,
      { intervalMs: 1000, cellularIntervalMs: 1000 },
      {
        backup: { enabled: true, repository: join(tmp.dir, 'repo'), debounceMs: 60_000 },
        status: { listen: '127.0.0.1', port: 0, https: false },
        uplinks: [
          { name: 'wan', interface: 'wan0', kind: 'wired', priority: 1, table: 101 },
          { name: '4g', interface: 'wwan0', kind: 'cellular', priority: 2, table: 102 },
        ],
      },
    );
    agent = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'backup-harness.ts'), cfg], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    agent.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
      if (process.env.SE_TEST_LOG) process.stderr.write(b);
    });
    await new Promise<void>((res, rej) => {
      agent!.stdout!.on('data', (b: Buffer) => b.toString().includes('ready') && res());
      agent!.once('exit', (c) => rej(new Error(`agent exited ${c}: ${err.slice(-2000)}`)));
    });
  });
  after(async () => {
    if (agent && agent.exitCode === null) {
      agent.kill('SIGTERM');
      await new Promise((r) => agent!.once('exit', r));
    }
    await fleet?.stop();
    await broker?.close();
    tmp?.rm();
  });

  const backupHealth = async () => {
    const d = await fleet.ctx.store.devices.get(DEV);
    return d?.health_json ? (JSON.parse(d.health_json) as Record<string, { status: string; lastGoodBackupAt?: number | null }>).backup : undefined;
  };
  const openBackupAlerts = async () => (await fleet.ctx.store.ops.openAlerts()).filter((a) => a.kind === 'backup-stale');

  it('alerts when the last good backup is over 26 h old, naming the practice', async () => {
    const h = await waitFor(
      async () => ((await backupHealth())?.lastGoodBackupAt === seeded ? backupHealth() : undefined),
      20_000,
      'backup report in telemetry',
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}; the fleet has: ${(await fleet.ctx.store.devices.get(DEV))?.health_json}`);
    });
    assert.equal(h!.status, 'degraded');
    await fleet.alerts.evaluate();
    const open = await openBackupAlerts();
    assert.equal(open.length, 1);
    assert.equal(open[0]!.device_id, DEV);
    assert.match(open[0]!.summary, /^High Street Surgery \(P81001\): P81001-01 last good off-box backup 27 h ago$/);
    await fleet.alerts.evaluate();
    assert.equal((await openBackupAlerts()).length, 1, 'not opened twice');
  });

  it('backup now on 4G with nothing pending is refused with the reason (CLI exit 1, MQTT CONFLICT)', async () => {
    const r = await cli(['backup', 'now', '--config', cfg]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /backup not started: not on the primary link \(4g active\) and no capture pending.*\(add --force\)/);
    const out = await fleet.commander.send('icb.it', DEV, 'backup-now', {});
    assert.equal(out.response?.ok, false);
    assert.equal(out.response?.error?.code, 'CONFLICT');
    assert.match(out.response?.error?.message ?? '', /not on the primary link \(4g active\)/);
    const bad = await fleet.commander.send('icb.it', DEV, 'backup-now', { force: 'yes' });
    assert.equal(bad.response?.error?.code, 'BAD_REQUEST', 'force must be a boolean');
    assert.equal((await openBackupAlerts()).length, 1, 'still alerting: nothing ran');
  });

  it('backup now --force runs it over 4G; the next telemetry clears the alert; the MQTT command with force is accepted', async () => {
    const r = await cli(['backup', 'now', '--force', '--config', cfg]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /backup started \(forced: not on the primary link/);
    assert.match(r.stdout, /backup OK: snapshot [0-9a-f]{8}/);
    const h = await waitFor(
      async () => {
        const b = await backupHealth();
        return b && typeof b.lastGoodBackupAt === 'number' && b.lastGoodBackupAt > seeded ? b : undefined;
      },
      20_000,
      'new lastGoodBackupAt in telemetry',
    );
    assert.equal(h.status, 'ok');
    await fleet.alerts.evaluate();
    assert.deepEqual(await openBackupAlerts(), [], 'cleared once a backup succeeded');
    const cleared = await fleet.ctx.store.driver.all<{ cleared_at: number | null }>("SELECT cleared_at FROM alerts WHERE kind = 'backup-stale'");
    assert.equal(cleared.length, 1);
    assert.equal(typeof cleared[0]!.cleared_at, 'number');

    const out = await fleet.commander.send('icb.it', DEV, 'backup-now', { force: true });
    assert.equal(out.response?.ok, true, out.error ?? '');
    assert.deepEqual({ ...(out.response?.result as object), link: undefined }, { accepted: true, alreadyRunning: false, forced: true, link: undefined });
  });

  it('backup now with no agent running says so', async () => {
    const other = agentConfig(broker, DEV, join(tmp.dir, 'not-running'), {}, { backup: { enabled: true, repository: join(tmp.dir, 'repo') } });
    const r = await cli(['backup', 'now', '--config', other]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot reach the agent .*is it running/);
  });
});
