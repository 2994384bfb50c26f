import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { planCampaign, type CampaignInput } from '../../../fleet/src/campaigns/plan.js';
import { holdReason, stepWords } from '../../../fleet/src/campaigns/words.js';
import type { FleetConfig } from '../../../fleet/src/config.js';
import type { Fleet } from '../../../fleet/src/fleet.js';
import type { CampaignPhase } from '../../../fleet/src/store/campaign-store.js';
import { SqliteDriver } from '../../../fleet/src/store/driver.js';
import { Store } from '../../../fleet/src/store/store.js';
import { fleetConfig, startFleet, tempDir, waitFor } from '../../helpers/fleet.js';
import { pub, SimDevice, simUpdater, type SimUpdateOutcome } from '../../helpers/fleet-sim.js';
import { mosquittoMissing, startBroker, type TestBroker } from '../../helpers/mosquitto.js';

const skip = mosquittoMissing();
/** 20 boxes in 5 practices; two of them on 4G. */
const IDS = Array.from({ length: 20 }, (_, i) => `P8200${Math.floor(i / 4)}-0${(i % 4) + 1}`);
const ON_4G = ['P82001-03', 'P82003-02'];
const PRACTICES = ['P82000', 'P82001', 'P82002', 'P82003', 'P82004'];

/**
 * Update campaigns end to end: the fleet (real Commander, real MQTT 5 request/response) against a
 * real mosquitto and 20 simulated boxes that answer the `update` command as the agent does and
 * report update.* events (test/helpers/fleet-sim.ts simUpdater).
 */
describe('update campaigns (real mosquitto, 20 simulated boxes)', { skip }, () => {
  let broker: TestBroker;
  let tmp: ReturnType<typeof tempDir>;
  let store: Store;
  let fleet: Fleet;
  let cfg: FleetConfig;
  let sim: MqttClient;
  let sims: SimDevice[];
  let commands: { id: string; version: string; at: number }[];
  const outcomes = new Map<string, SimUpdateOutcome>();

  const input = (version: string, o: Partial<CampaignInput> = {}): CampaignInput => ({
    url: `https://updates.icb.example/surgery-edge-${version}-amd64.seb`,
    version,
    arch: 'amd64',
    practices: PRACTICES,
    canaryPct: 5,
    soakMin: 0.05,
    allowCellular: false,
    ...o,
  });
  const phase = async (id: number) => (await store.campaigns.get(id))!.phase;
  const until = (id: number, p: CampaignPhase, ms = 30_000) => waitFor(async () => (await phase(id)) === p, ms, `campaign ${id} ${p}`);
  const sentTo = (version: string) => commands.filter((c) => c.version === version).map((c) => c.id);
  const start = (id: number) => store.campaigns.setPhase(id, ['draft'], 'canary', 'started', Date.now(), 'amy');

  before(async () => {
    broker = await startBroker([]);
    tmp = tempDir();
    store = await Store.open(new SqliteDriver(join(tmp.dir, 'fleet.db')));
    cfg = fleetConfig(broker, tmp.dir, { instanceId: 'fleet-campaigns', campaigns: { tickMs: 150, maxInFlight: 4 }, rollouts: { stopFailPct: 10 } });
    fleet = await startFleet(cfg, store);
    sim = await broker.connect('fleet');
    sims = IDS.map((id) => new SimDevice(id, broker.prefix));
    for (const d of sims) d.cellular = ON_4G.includes(d.id);
    ({ commands } = await simUpdater(sim, broker.prefix, sims, (d, v) => outcomes.get(`${d.id}@${v}`) ?? outcomes.get(`*@${v}`) ?? 'commit', 150));
    // Telemetry is not retained: published before the fleet's session subscribes, it is gone (a busy machine showed it).
    await waitFor(async () => fleet.ctx.mqtt.connected, 10_000, 'fleet connected');
    for (const d of sims) await pub(sim, d.birth(Date.now()), true);
    const seen = async () => (await store.devices.list({ limit: 100 })).filter((d) => d.telemetry_at && d.online).length === 20;
    await waitFor(
      async () => {
        for (const d of sims) await pub(sim, d.telemetry(Date.now()));
        if (await seen()) return true;
        await new Promise((r) => setTimeout(r, 500));
        return seen();
      },
      30_000,
      '20 boxes',
    );
  });
  after(async () => {
    sim?.end(true);
    await fleet?.stop();
    await store?.close();
    await broker?.close();
    tmp?.rm();
  });

  it('canary first (and only it until it is healthy and soaked), then the rest; boxes on 4G wait until back on the primary', async () => {
    const plan = await planCampaign(fleet.ctx, 'amy', input('0.2.0'));
    assert.equal(plan.targets, 20);
    assert.equal(plan.canaries.length, 1, '5 % of 20');
    assert.ok(!ON_4G.includes(plan.canaries[0]!), 'a box on 4G is not picked as the canary');
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(sentTo('0.2.0'), [], 'a draft sends nothing');
    assert.ok(await start(plan.id));
    await waitFor(async () => (await store.campaigns.get(plan.id))!.soak_from, 20_000, 'canary healthy, soak started');
    assert.deepEqual(sentTo('0.2.0'), plan.canaries, 'only the canary, until it is healthy');
    await waitFor(
      async () => (await store.campaigns.steps(plan.id)).filter((s) => s.state === 'healthy').length === 18,
      60_000,
      'the 18 boxes on their primary link updated',
    );
    assert.equal(await phase(plan.id), 'all', 'not done: two boxes wait');
    const c = (await store.campaigns.get(plan.id))!;
    const devs = await store.devices.getMany(ON_4G);
    for (const s of (await store.campaigns.steps(plan.id)).filter((x) => ON_4G.includes(x.device_id))) {
      assert.equal(s.state, 'pending');
      const hold = holdReason(c, devs.get(s.device_id), Date.now(), fleet.ctx.config.campaigns.uplinkFreshMs);
      assert.equal(stepWords(c, s, hold), 'waiting: on 4G');
    }
    assert.deepEqual(
      sentTo('0.2.0').filter((id) => ON_4G.includes(id)),
      [],
      'no command to a box on 4G',
    );
    for (const d of sims.filter((x) => ON_4G.includes(x.id))) {
      d.cellular = false;
      await pub(sim, d.telemetry(Date.now()));
    }
    await until(plan.id, 'done');
    assert.match((await store.campaigns.get(plan.id))!.message!, /done: 20 healthy on 0\.2\.0, 0 rolled back, 0 failed/);
    assert.equal(sentTo('0.2.0').length, 20, 'one command per box');
    assert.equal(new Set(sentTo('0.2.0')).size, 20);
    const audit = (await store.accounts.auditLog(500)).filter((a) => a.action === 'update');
    assert.equal(audit.length, 20, 'every command audited');
    assert.ok(audit.every((a) => a.outcome === 'ok' && /campaign #\d+/.test(a.username)));
    assert.equal((await store.devices.get(IDS[0]!))!.version, '0.2.0', 'births carry the new version');
  });

  it('canaries that roll back stop the campaign: nobody else is sent it', async () => {
    outcomes.set('*@0.3.0', 'rollback');
    const plan = await planCampaign(fleet.ctx, 'amy', input('0.3.0', { canaryPct: 10 }));
    assert.equal(plan.canaries.length, 2);
    assert.ok(await start(plan.id));
    await until(plan.id, 'stopped');
    const c = (await store.campaigns.get(plan.id))!;
    assert.match(c.message!, /stopped: canary P8\d+-\d+ rolled-back: health gate: no uplink carried traffic/);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(sentTo('0.3.0').sort(), [...plan.canaries].sort(), 'only the canaries were ever sent 0.3.0');
    const steps = await store.campaigns.steps(plan.id);
    assert.equal(steps.filter((s) => s.state === 'pending').length, 18);
    assert.ok(steps.filter((s) => s.canary).some((s) => s.state === 'rolled-back'));
    assert.ok((await store.accounts.auditLog(100)).some((a) => a.action === 'campaign-stop'));
  });

  it('abort: no new commands after it; boxes mid-update still reach their outcome', async () => {
    const plan = await planCampaign(fleet.ctx, 'amy', input('0.4.0', { soakMin: 0 }));
    assert.ok(await start(plan.id));
    await waitFor(async () => (await phase(plan.id)) === 'all' && sentTo('0.4.0').length >= 3, 20_000, 'second wave under way');
    assert.ok(await store.campaigns.setPhase(plan.id, ['canary', 'all'], 'aborted', 'aborted by amy', Date.now(), 'amy'));
    await new Promise((r) => setTimeout(r, 300)); // a tick in progress may still finish its sends
    const atAbort = sentTo('0.4.0').length;
    assert.ok(atAbort < 20);
    await waitFor(
      async () => (await store.campaigns.steps(plan.id)).every((s) => s.state !== 'sent' && s.state !== 'sending'),
      20_000,
      'in-flight boxes settled after the abort',
    );
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(sentTo('0.4.0').length, atAbort, 'nothing sent after the abort');
    const steps = await store.campaigns.steps(plan.id);
    assert.equal(steps.filter((s) => s.state === 'healthy').length, atAbort, 'those sent before the abort finished by themselves');
    assert.equal(steps.filter((s) => s.state === 'pending').length, 20 - atAbort);
    assert.equal(await phase(plan.id), 'aborted');
  });

  it('a fleet restart in the middle of the second wave continues: every box is sent the command exactly once', async () => {
    const plan = await planCampaign(fleet.ctx, 'amy', input('0.5.0', { soakMin: 0 }));
    assert.ok(await start(plan.id));
    await waitFor(async () => (await phase(plan.id)) === 'all' && sentTo('0.5.0').length >= 5, 20_000, 'second wave under way');
    await fleet.stop();
    const before = sentTo('0.5.0').length;
    fleet = await startFleet(cfg, store);
    await until(plan.id, 'done');
    assert.ok(before < 20, `restarted with ${before} of 20 sent`);
    assert.equal(sentTo('0.5.0').length, 20);
    assert.equal(new Set(sentTo('0.5.0')).size, 20, 'no box sent it twice across the restart');
    assert.match((await store.campaigns.get(plan.id))!.message!, /done: 20 healthy on 0\.5\.0/);
  });
});
