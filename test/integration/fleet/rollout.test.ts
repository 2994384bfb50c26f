import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { configDiff } from '../../../fleet/src/config-templates/diff.js';
import type { Doc } from '../../../fleet/src/config-templates/merge.js';
import { saveTemplate } from '../../../fleet/src/config-templates/templates.js';
import type { FleetConfig } from '../../../fleet/src/config.js';
import type { Fleet } from '../../../fleet/src/fleet.js';
import { planRollout } from '../../../fleet/src/rollouts/plan.js';
import { reloadDesired } from '../../../fleet/src/rollouts/reload.js';
import { SqliteDriver } from '../../../fleet/src/store/driver.js';
import { Store } from '../../../fleet/src/store/store.js';
import { agentTemplate, fleetConfig, startFleet, tempDir, waitFor } from '../../helpers/fleet.js';
import { pub, SimDevice, simResponder } from '../../helpers/fleet-sim.js';
import { mosquittoMissing, startBroker, type TestBroker } from '../../helpers/mosquitto.js';
import { AgentProc, agentConfig } from '../telemetry/fixture.js';

const skip = mosquittoMissing();
const REAL = ['P81001-01', 'P81001-02'];
const SIMS = Array.from({ length: 18 }, (_, i) => `P81003-${String(i + 1).padStart(2, '0')}`);

/**
 * Staged rollouts end to end: a real mosquitto, two real agents (the agent's composition root and
 * TelemetryCapability, persisting applied config to a file as a device does) and 18 simulated
 * devices that answer config/desired, so one PCN has 20 devices and 5 % of it is one canary.
 */
describe('config rollouts (real mosquitto, real agents, simulated devices)', { skip }, () => {
  let broker: TestBroker;
  let tmp: ReturnType<typeof tempDir>;
  let store: Store;
  let fleet: Fleet;
  let cfg: FleetConfig;
  let sim: MqttClient;
  const agents: AgentProc[] = [];
  let icbVersion = 0;

  const icbTemplate = (intervalMs: number): Doc => agentTemplate(broker, tmp.dir, intervalMs);
  const saveIcb = async (doc: Doc) => {
    const r = await saveTemplate(fleet.ctx, 'amy', 'icb', '', JSON.stringify(doc), icbVersion);
    if (r.ok) icbVersion = r.version;
    return r;
  };
  const start = (id: number) => fleet.ctx.store.config.setPhase(id, ['draft'], 'canary', 'started', Date.now());
  const restartFleet = async () => {
    await fleet.stop();
    fleet = await startFleet(cfg, store);
    await waitFor(async () => fleet.ctx.mqtt.connected, 10_000, 'fleet reconnected');
  };
  const publishes = async (rollout: number) =>
    (await store.accounts.auditLog(1000)).filter((a) => a.action === 'rollout-publish' && JSON.parse(a.args ?? '{}').rollout === rollout);

  before(async () => {
    broker = await startBroker(REAL);
    tmp = tempDir();
    store = await Store.open(new SqliteDriver(join(tmp.dir, 'fleet.db')));
    cfg = fleetConfig(broker, tmp.dir, {
      instanceId: 'fleet-rollout',
      rollouts: { tickMs: 200, soakMin: 0.05, offlineGraceMs: 20_000, applyTimeoutMs: 30_000, claimTimeoutMs: 2000 },
    });
    fleet = await startFleet(cfg, store);
    for (const id of REAL) {
      const dir = join(tmp.dir, id);
      mkdirSync(join(dir, 'etc'), { recursive: true });
      const p = new AgentProc(agentConfig(broker, id, dir, { intervalMs: 1000 }), ['--representative', '--config-path', join(dir, 'etc', 'config.yaml')]);
      agents.push(p);
    }
    sim = await broker.connect('fleet');
    const sims = SIMS.map((id) => new SimDevice(id, broker.prefix));
    await simResponder(sim, broker.prefix, sims);
    for (const d of sims) await pub(sim, d.birth(Date.now()), true);
    await Promise.all(agents.map((a) => a.ready));
    await waitFor(async () => (await store.devices.list({ state: 'online', limit: 100 })).length === 20, 30_000, '20 devices online');
  });
  after(async () => {
    sim?.end(true);
    for (const a of agents) await a.kill('SIGKILL');
    await fleet?.stop();
    await store?.close();
    await broker?.close();
    tmp?.rm();
  });

  it('a template whose merged result fails the agent validator is refused with the problems; nothing saved', async () => {
    const bad = icbTemplate(5);
    (bad.telemetry as Doc).enabled = false;
    const r = await saveIcb(bad);
    assert.equal(r.ok, false);
    const paths = r.ok ? [] : r.problems.map((p) => p.path);
    assert.ok(paths.includes('/telemetry/intervalMs'), JSON.stringify(paths));
    assert.deepEqual(await store.config.templates(), []);
    const owned = await saveIcb({ site: { deviceId: 'x' } });
    assert.equal(owned.ok, false);
  });

  it('PCN rollout: 1 of 20 canary, soak, then all; a fleet restart mid-soak continues without re-publishing', async () => {
    assert.equal((await saveIcb(icbTemplate(1000))).ok, true);
    await store.config.setPcn('P81001', 'PCN-N', 'amy', Date.now());
    await store.config.setPcn('P81003', 'PCN-N', 'amy', Date.now());
    const plan = await planRollout(fleet.ctx, 'amy', 'pcn', 'PCN-N', 0.05);
    assert.equal(plan.targets, 20);
    assert.equal(plan.canaries.length, 1, '5 % of 20');
    assert.equal((await store.config.steps(plan.id)).filter((s) => s.published_at).length, 0, 'a draft publishes nothing');
    assert.ok(await start(plan.id));
    const soaking = await waitFor(
      async () => {
        const r = await store.config.rollout(plan.id);
        return r?.soak_from ? r : undefined;
      },
      30_000,
      'the canary applied (soak started)',
    );
    assert.equal(soaking.phase, 'canary');
    const steps = await store.config.steps(plan.id);
    assert.deepEqual(
      steps.filter((s) => s.published_at).map((s) => s.device_id),
      plan.canaries,
      'only the canary was published',
    );
    await restartFleet();
    const done = await waitFor(
      async () => {
        const r = await store.config.rollout(plan.id);
        return r?.phase === 'done' ? r : undefined;
      },
      60_000,
      'rollout done',
    );
    assert.match(done.message ?? '', /20 applied, 0 rejected, 0 unhealthy/);
    const pubs = await publishes(plan.id);
    assert.equal(pubs.length, 20, 'each device published exactly once, across the restart');
    assert.equal(new Set(pubs.map((p) => p.device_id)).size, 20);
    for (const id of REAL) {
      const step = (await store.config.steps(plan.id)).find((s) => s.device_id === id)!;
      const d = (await store.devices.get(id))!;
      assert.equal(d.config_revision, step.revision, `${id} runs the new revision`);
      const reported = JSON.parse(d.reported_json!) as { config?: Doc };
      assert.ok(reported.config, 'the agent reports its config (optional field)');
      const diff = configDiff(JSON.parse((await store.config.desired(id))!.doc) as Doc, reported.config);
      assert.deepEqual(
        diff.rows.filter((r) => r.state !== 'secret'),
        [],
        `${id}: desired and reported agree field by field`,
      );
    }
  });

  it('a canary that rejects stops the rollout; the other device is untouched, also after a fleet restart', async () => {
    assert.equal((await saveIcb(icbTemplate(2000))).ok, true);
    const plan = await planRollout(fleet.ctx, 'amy', 'practice', 'P81001', 0.05);
    assert.equal(plan.targets, 2);
    const canary = plan.canaries[0]!;
    const other = REAL.find((id) => id !== canary)!;
    const before = { desired: (await store.config.desired(other))!, device: (await store.devices.get(other))! };
    // Both devices' /etc is broken (a file where the directory should be): applying fails, so the device rejects.
    for (const id of REAL) {
      rmSync(join(tmp.dir, id, 'etc'), { recursive: true, force: true });
      writeFileSync(join(tmp.dir, id, 'etc'), 'not a directory');
    }
    assert.ok(await start(plan.id));
    const stopped = await waitFor(
      async () => {
        const r = await store.config.rollout(plan.id);
        return r?.phase === 'stopped' ? r : undefined;
      },
      30_000,
      'rollout stopped',
    );
    assert.match(stopped.message ?? '', new RegExp(`canary ${canary} rejected`));
    assert.match(stopped.message ?? '', /EEXIST|ENOTDIR/, "the device's own reason is carried through");
    const check = async () => {
      const steps = await store.config.steps(plan.id);
      assert.equal(steps.find((s) => s.device_id === canary)!.state, 'rejected');
      assert.equal(steps.find((s) => s.device_id === other)!.state, 'pending');
      assert.equal((await store.config.desired(other))!.revision, before.desired.revision, 'no desired document for the other device');
      assert.equal((await store.devices.get(other))!.config_revision, before.device.config_revision);
      assert.deepEqual(
        (await publishes(plan.id)).map((p) => p.device_id),
        [canary],
      );
    };
    await check();
    const canaryRow = (await store.devices.get(canary))!;
    assert.equal(canaryRow.reported_status, 'rejected');
    assert.notEqual(
      canaryRow.config_revision,
      (await store.config.steps(plan.id)).find((s) => s.device_id === canary)!.revision,
      'the last good config stays in force',
    );
    await restartFleet();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await store.config.rollout(plan.id))!.phase, 'stopped', 'stays stopped across a restart');
    await check();
    const audit = (await store.accounts.auditLog(50)).map((a) => a.action);
    assert.ok(audit.includes('rollout-stop') && audit.includes('rollout-rejected'));
    for (const id of REAL) {
      rmSync(join(tmp.dir, id, 'etc'), { force: true });
      mkdirSync(join(tmp.dir, id, 'etc'));
    }
  });

  it('pause holds publishing, resume continues, abort leaves the rest untouched (simulated devices)', async () => {
    const plan = await planRollout(fleet.ctx, 'amy', 'practice', 'P81003', 0);
    assert.equal(plan.canaries.length, 1, '5 % of 18');
    assert.ok(await store.config.setPaused(plan.id, true, Date.now()));
    assert.ok(await start(plan.id));
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await publishes(plan.id)).length, 0, 'paused: nothing published');
    assert.ok(await store.config.setPaused(plan.id, false, Date.now()));
    await waitFor(async () => (await store.config.rollout(plan.id))?.phase === 'done', 30_000, 'done after resume');
    assert.equal((await publishes(plan.id)).length, 18);

    assert.equal((await saveIcb(icbTemplate(3000))).ok, true);
    const next = await planRollout(fleet.ctx, 'amy', 'practice', 'P81003', 0.5);
    assert.ok(await start(next.id));
    await waitFor(async () => (await store.config.rollout(next.id))?.soak_from, 30_000, 'canary applied');
    assert.ok(await store.config.setPhase(next.id, ['draft', 'canary', 'all'], 'aborted', 'aborted by amy', Date.now()));
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await publishes(next.id)).length, 1, 'only the canary was ever touched');
    assert.equal((await store.config.steps(next.id)).filter((s) => s.state === 'pending').length, 17);
  });

  it('reload re-sends the stored desired document (same revision) through the contract, audited', async () => {
    const out = await reloadDesired(fleet.ctx, 'amy', [...REAL, 'P99999-01']);
    assert.deepEqual([out.sent.sort(), out.skipped], [REAL, ['P99999-01']]);
    const log = (await store.accounts.auditLog(10)).filter((a) => a.action === 'reload-config');
    assert.equal(log.length, 2);
    for (const a of agents) assert.ok(a.alive);
    await new Promise((r) => setTimeout(r, 1000));
    for (const id of REAL)
      assert.equal((await store.devices.get(id))!.config_revision, (await store.config.desired(id))!.revision, 'same revision: nothing re-applied');
  });
});
