import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createLogger } from '../../../common/log.js';
import { saveTemplate } from '../../../fleet/src/config-templates/templates.js';
import { validateFleetConfig } from '../../../fleet/src/config.js';
import type { FleetCtx } from '../../../fleet/src/ctx.js';
import { Inventory } from '../../../fleet/src/inventory.js';
import type { MqttHub } from '../../../fleet/src/mqtt/hub.js';
import { RolloutEngine } from '../../../fleet/src/rollouts/engine.js';
import { planRollout } from '../../../fleet/src/rollouts/plan.js';
import { SqliteDriver } from '../../../fleet/src/store/driver.js';
import { Store } from '../../../fleet/src/store/store.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { tempDir } from '../../helpers/fleet.js';

const GRACE = 60_000;
const TIMEOUT = 600_000;
const CLAIM = 30_000;

/**
 * The rollout engine's health rules and crash recovery, on a real SQLite store with a fake clock
 * and a recording stand-in for the broker session (the real-broker path is
 * test/integration/fleet/rollout.test.ts): 40 devices, so 2 canaries.
 */
describe('rollout engine: stop rules and recovery', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: Store;
  let clock: FakeClock;
  let ctx: FleetCtx;
  let engine: RolloutEngine;
  let published: { topic: string; revision: number }[];
  let failPublish: number;
  const ids = Array.from({ length: 40 }, (_, i) => `P8${String(1000 + Math.floor(i / 4))}-0${(i % 4) + 1}`);
  const place = (id: string) => ({ practice: id.slice(0, 6), practiceName: null, pcn: null, clinicalSystem: null });
  const state = (id: string, online: boolean, bdSeq: number, configRevision?: number) =>
    store.devices.ingest([
      {
        kind: 'state',
        deviceId: id,
        receivedAt: clock.now(),
        place: place(id),
        msg: { online, bootId: `b-${id}`, bdSeq, ...(configRevision !== undefined ? { configRevision } : {}), at: clock.now() },
      },
    ]);
  const reported = (id: string, rev: number, status: 'applied' | 'rejected') =>
    store.devices.ingest([
      {
        kind: 'reported',
        deviceId: id,
        receivedAt: clock.now(),
        place: place(id),
        msg: {
          appliedRevision: status === 'applied' ? rev : 1,
          lastDesiredRevision: rev,
          status,
          reasons: status === 'rejected' ? [{ path: '/x', message: 'no' }] : [],
          at: clock.now(),
        },
      },
    ]);
  const apply = async (id: string) => {
    const rev = (await steps()).find((s) => s.device_id === id)!.revision;
    await reported(id, rev, 'applied');
    await state(id, true, 2, rev);
  };
  let rollout = 0;
  const steps = () => store.config.steps(rollout);
  const phase = async () => (await store.config.rollout(rollout))!;
  const begin = async () => {
    const p = await planRollout(ctx, 'amy', 'icb', '', 1);
    rollout = p.id;
    assert.ok(await store.config.setPhase(p.id, ['draft'], 'canary', 'go', clock.now()));
    await engine.tick();
    return p;
  };

  beforeEach(async () => {
    tmp = tempDir('fl-engine-');
    store = await Store.open(new SqliteDriver(join(tmp.dir, 'fleet.db')));
    clock = new FakeClock();
    published = [];
    failPublish = 0;
    const r = validateFleetConfig({ dataDir: tmp.dir, rollouts: { offlineGraceMs: GRACE, applyTimeoutMs: TIMEOUT, claimTimeoutMs: CLAIM } });
    assert.ok(r.ok);
    const mqtt = {
      connected: true,
      publish: async (topic: string, payload: string) => {
        if (failPublish > 0) {
          failPublish--;
          throw new Error('not connected to the broker');
        }
        published.push({ topic, revision: (JSON.parse(payload) as { revision: number }).revision });
      },
    } as unknown as MqttHub;
    ctx = { config: r.config, log: createLogger({ level: 'silent' }, 'test'), clock, store, mqtt, inventory: new Inventory([]), instanceId: 'fleet-test' };
    engine = new RolloutEngine();
    await engine.start(ctx);
    for (const id of ids) await state(id, true, 1, 1);
    const saved = await saveTemplate(ctx, 'amy', 'icb', '', JSON.stringify({ telemetry: { enabled: true, brokers: ['mqtts://broker.icb.invalid:8883'] } }), 0);
    assert.ok(saved.ok);
  });
  afterEach(async () => {
    await engine.stop();
    await store.close();
    tmp.rm();
  });

  it('a canary offline past the grace stops the rollout; nobody else is published', async () => {
    const p = await begin();
    assert.equal(p.canaries.length, 2);
    assert.deepEqual(published.map((x) => x.topic.split('/')[2]).sort(), [...p.canaries].sort());
    await apply(p.canaries[0]!);
    await state(p.canaries[1]!, false, 1);
    await clock.advance(GRACE / 2);
    await engine.tick();
    assert.equal((await phase()).phase, 'canary', 'a short gap (the agent restarting to apply) is expected');
    await clock.advance(GRACE);
    await engine.tick();
    const r = await phase();
    assert.equal(r.phase, 'stopped');
    assert.match(r.message!, new RegExp(`canary ${p.canaries[1]} unhealthy: offline`));
    await clock.advance(TIMEOUT * 2);
    await engine.tick();
    assert.equal(published.length, 2, 'no further device touched');
    assert.equal((await steps()).filter((s) => s.state === 'pending').length, 38);
  });

  it('a canary that never applies, a failed drill, or a new offline alert each stop it', async () => {
    let p = await begin();
    await apply(p.canaries[0]!);
    await clock.advance(TIMEOUT + 1);
    await engine.tick();
    assert.match((await phase()).message!, /did not apply revision \d+ within 600 s/);

    await store.config.setPhase(rollout, ['stopped'], 'aborted', null, clock.now());
    p = await begin();
    await apply(p.canaries[0]!);
    await apply(p.canaries[1]!);
    await store.devices.ingest([
      {
        kind: 'event',
        deviceId: p.canaries[1]!,
        receivedAt: clock.now(),
        place: place(p.canaries[1]!),
        msg: { id: '01JDV2Q5S8Y3M0B6Z7K2N4R9TB', name: 'drill.completed', at: clock.now(), bootId: 'b', payload: { passed: false } },
      },
    ]);
    await engine.tick();
    assert.match((await phase()).message!, /a backup drill failed after the publish/);

    await store.config.setPhase(rollout, ['stopped'], 'aborted', null, clock.now());
    const c = (await begin()).canaries;
    await store.ops.openAlert({ device_id: c[0]!, kind: 'offline', level: '', summary: `${c[0]} offline for 16 min`, at: clock.now() + 1 });
    await engine.tick();
    assert.match((await phase()).message!, /new alert: .* offline for 16 min/);
  });

  it('healthy canaries soak, then everyone; a device rejecting in the all phase is counted, and the rollout finishes', async () => {
    const p = await begin();
    for (const c of p.canaries) await apply(c);
    await engine.tick();
    assert.ok((await phase()).soak_from);
    await clock.advance(30_000);
    await engine.tick();
    assert.equal((await phase()).phase, 'canary', 'still soaking (1 min)');
    await clock.advance(31_000);
    await engine.tick();
    assert.equal((await phase()).phase, 'all');
    assert.equal(published.length, 40);
    const rest = ids.filter((id) => !p.canaries.includes(id));
    await reported(rest[0]!, (await steps()).find((s) => s.device_id === rest[0])!.revision, 'rejected');
    for (const id of rest.slice(1)) await apply(id);
    await engine.tick();
    const r = await phase();
    assert.equal(r.phase, 'done');
    assert.equal(r.message, 'done: 39 applied, 1 rejected, 0 unhealthy');
  });

  it('second wave: rollouts.stopFailPct (10 %) of it rejecting stops the rollout; the rest are not published (stop-rules.ts)', async () => {
    ctx.config.rollouts.publishPerTick = 10;
    const p = await begin();
    for (const c of p.canaries) await apply(c);
    await engine.tick();
    await clock.advance(61_000);
    await engine.tick();
    assert.equal((await phase()).phase, 'all');
    assert.ok(published.length < 40, 'ten per tick');
    const wave = published.slice(2).map((x) => x.topic.split('/')[2]!);
    for (const id of wave.slice(0, 3)) await reported(id, (await steps()).find((s) => s.device_id === id)!.revision, 'rejected');
    await engine.tick();
    assert.equal((await phase()).phase, 'all', '3 of 38 is under 10 %');
    await reported(wave[3]!, (await steps()).find((s) => s.device_id === wave[3])!.revision, 'rejected');
    await engine.tick();
    const r = await phase();
    assert.equal(r.phase, 'stopped');
    assert.match(r.message!, /4 of 38 device\(s\) in the second wave failed \(stop at 10 %\)/);
    const before = published.length;
    await clock.advance(60_000);
    await engine.tick();
    assert.equal(published.length, before, 'nothing more published');
    assert.equal((await steps()).filter((s) => s.state === 'pending').length, 40 - before);
  });

  it('a publish that fails stays claimed and is retried once the claim times out, never twice', async () => {
    failPublish = 1;
    const p = await begin();
    const first = (await steps()).find((s) => s.state === 'publishing');
    assert.ok(first, 'the failed step is left claimed');
    assert.equal(published.length, 0, 'the engine stops publishing this tick after a failure');
    await engine.tick();
    assert.deepEqual(
      published.map((x) => x.topic.split('/')[2]),
      p.canaries.filter((c) => c !== first.device_id),
      'the other canary goes; the claimed one waits',
    );
    await clock.advance(CLAIM + 1);
    await engine.tick();
    await engine.tick();
    assert.equal(published.filter((x) => x.topic.includes(first.device_id)).length, 1);
    assert.equal(published.length, 2);
  });
});
