import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ulid } from '../../../agent/src/core/ids.js';
import { createLogger } from '../../../common/log.js';
import { CampaignEngine } from '../../../fleet/src/campaigns/engine.js';
import { compareVersions, planCampaign, type CampaignInput } from '../../../fleet/src/campaigns/plan.js';
import { holdReason, stepWords } from '../../../fleet/src/campaigns/words.js';
import type { CommandOutcome } from '../../../fleet/src/commands/commander.js';
import { validateFleetConfig } from '../../../fleet/src/config.js';
import type { FleetCtx } from '../../../fleet/src/ctx.js';
import { Inventory } from '../../../fleet/src/inventory.js';
import type { MqttHub } from '../../../fleet/src/mqtt/hub.js';
import { failThreshold, stopReason } from '../../../fleet/src/rollouts/stop-rules.js';
import { SqliteDriver } from '../../../fleet/src/store/driver.js';
import { Store } from '../../../fleet/src/store/store.js';
import type { Derived } from '../../../fleet/src/store/types.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { telemetryInbound } from '../../helpers/fleet-inbound.js';
import { tempDir } from '../../helpers/fleet.js';

const MIN = 60_000;
const INSTALL = 30 * MIN;

/**
 * The update campaign engine on a real SQLite store with a fake clock and a recording stand-in for
 * the commander (the real broker path: test/integration/fleet/campaign.test.ts). 40 boxes in 10
 * practices, so 5 % is 2 canaries.
 */
describe('update campaign engine', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: Store;
  let clock: FakeClock;
  let ctx: FleetCtx;
  let engine: CampaignEngine;
  let sent: { device: string; args: Record<string, unknown>; user: string }[];
  let answer: (device: string) => CommandOutcome;
  const ids = Array.from({ length: 40 }, (_, i) => `P8${String(1000 + Math.floor(i / 4))}-0${(i % 4) + 1}`);
  const place = (id: string) => ({ practice: id.slice(0, 6), practiceName: null, pcn: null, clinicalSystem: null });
  const birth = (id: string, online: boolean, bdSeq: number, version = '0.1.0') =>
    store.devices.ingest([
      { kind: 'state', deviceId: id, receivedAt: clock.now(), place: place(id), msg: { online, bootId: `b-${id}`, bdSeq, version, at: clock.now() } },
    ]);
  const tele = (id: string, o: Partial<Derived> = {}) => store.devices.ingest([telemetryInbound(id, clock.now(), place(id), o)]);
  const event = (id: string, name: string, payload: Record<string, unknown>) =>
    store.devices.ingest([
      {
        kind: 'event',
        deviceId: id,
        receivedAt: clock.now(),
        place: place(id),
        msg: { id: ulid(clock.now()), name, at: clock.now(), bootId: `b-${id}`, payload: { id: `u-${id}`, version: '0.2.0', at: clock.now(), ...payload } },
      },
    ]);
  const commit = (id: string) => event(id, 'update.committed', { slot: 'b', fromVersion: '0.1.0' });
  const input = (o: Partial<CampaignInput> = {}): CampaignInput => ({
    url: 'https://updates.icb.example/se-0.2.0-amd64.seb',
    version: '0.2.0',
    arch: 'amd64',
    practices: [],
    canaryPct: 5,
    soakMin: 10,
    allowCellular: false,
    ...o,
  });
  let id = 0;
  const camp = async () => (await store.campaigns.get(id))!;
  const steps = () => store.campaigns.steps(id);
  const stateOf = async (dev: string) => (await steps()).find((s) => s.device_id === dev)!;
  const begin = async (o: Partial<CampaignInput> = {}) => {
    const p = await planCampaign(ctx, 'amy', input(o));
    id = p.id;
    assert.ok(await store.campaigns.setPhase(id, ['draft'], 'canary', 'started', clock.now(), 'amy'));
    await engine.tick();
    return p;
  };

  beforeEach(async () => {
    tmp = tempDir('fl-campaign-');
    store = await Store.open(new SqliteDriver(join(tmp.dir, 'fleet.db')));
    clock = new FakeClock();
    sent = [];
    answer = (device) => ({
      auditId: 1,
      response: { ok: true, command: 'update', result: { accepted: true, id: `u-${device}`, version: '0.2.0', slot: 'b' }, at: clock.now() },
      error: null,
    });
    const r = validateFleetConfig({ dataDir: tmp.dir, campaigns: { installTimeoutMs: INSTALL, maxInFlight: 10 }, rollouts: { offlineGraceMs: 3 * MIN } });
    assert.ok(r.ok);
    const mqtt = { connected: true } as unknown as MqttHub;
    ctx = { config: r.config, log: createLogger({ level: 'silent' }, 'test'), clock, store, mqtt, inventory: new Inventory([]), instanceId: 'fleet-test' };
    engine = new CampaignEngine({
      send: async (user, device, _command, args) => {
        sent.push({ device, args, user });
        return answer(device);
      },
    });
    await engine.start(ctx);
    for (const d of ids) {
      await birth(d, true, 1);
      await tele(d);
    }
  });
  afterEach(async () => {
    await engine.stop();
    await store.close();
    tmp.rm();
  });

  it('plans: canaries are 5 % (at least one), boxes already on the version are left out, a draft sends nothing', async () => {
    await birth(ids[0]!, true, 2, '0.2.0');
    await birth(ids[1]!, true, 2, '0.3.0-rc.1');
    const p = await planCampaign(ctx, 'amy', input());
    assert.equal(p.targets, 38);
    assert.equal(p.upToDate, 2);
    assert.equal(p.canaries.length, 2);
    assert.equal(compareVersions('0.3.0-rc.1', '0.2.0') > 0, true);
    assert.equal(compareVersions('0.2.0-rc.1', '0.2.0') < 0, true);
    await engine.tick();
    assert.equal(sent.length, 0);
    await assert.rejects(planCampaign(ctx, 'amy', input({ practices: ['P81000'] })), /already in an unfinished campaign/);
    await assert.rejects(planCampaign(ctx, 'amy', input({ practices: ['Y99999'] })), /no boxes at practice\(s\) Y99999/);
    await assert.rejects(planCampaign(ctx, 'amy', input({ version: 'latest', url: 'ftp://x' })), /bundle URL must start.*version must look like/);
  });

  it('canaries first; all healthy, soak, then the rest at most maxInFlight at a time; done', async () => {
    const p = await begin();
    assert.deepEqual(sent.map((s) => s.device).sort(), [...p.canaries].sort(), 'only the canaries');
    assert.deepEqual(sent[0]!.args, { url: 'https://updates.icb.example/se-0.2.0-amd64.seb', version: '0.2.0' });
    assert.match(sent[0]!.user, /campaign #\d+/);
    await event(p.canaries[0]!, 'update.progress', { phase: 'downloading', bytes: 50, total: 200 });
    await engine.tick();
    assert.equal((await stateOf(p.canaries[0]!)).progress, 'downloading 25 %');
    for (const c of p.canaries) await commit(c);
    await engine.tick();
    assert.ok((await camp()).soak_from, 'soak started');
    assert.equal((await stateOf(p.canaries[0]!)).state, 'healthy');
    await clock.advance(5 * MIN);
    await engine.tick();
    assert.equal((await camp()).phase, 'canary', 'still soaking');
    await clock.advance(5 * MIN + 1);
    await engine.tick();
    assert.equal((await camp()).phase, 'all');
    assert.equal(sent.length, 2 + 10, 'ten at a time');
    const rest = sent.slice(2).map((s) => s.device);
    for (const d of rest) await commit(d);
    await engine.tick();
    await engine.tick();
    assert.equal(sent.length, 2 + 20);
    for (let i = 0; i < 5 && (await camp()).phase === 'all'; i++) {
      for (const s of await steps()) if (s.state === 'sent') await commit(s.device_id);
      await engine.tick();
    }
    const c = await camp();
    assert.equal(c.phase, 'done');
    assert.equal(c.message, 'done: 40 healthy on 0.2.0, 0 rolled back, 0 failed, 0 skipped');
    assert.equal(new Set(sent.map((s) => s.device)).size, 40, 'each box sent the command once');
    assert.equal(sent.length, 40);
  });

  it('a canary that rolls back stops the campaign; nobody else is sent it; the reason is in words', async () => {
    const p = await begin();
    await commit(p.canaries[0]!);
    await event(p.canaries[1]!, 'update.rolled-back', { slot: 'a', reason: 'health gate: no uplink carried traffic within 600 s' });
    await engine.tick();
    const c = await camp();
    assert.equal(c.phase, 'stopped');
    assert.match(c.message!, new RegExp(`canary ${p.canaries[1]} rolled-back: health gate: no uplink`));
    await clock.advance(INSTALL * 2);
    await engine.tick();
    assert.equal(sent.length, 2);
    assert.equal((await steps()).filter((s) => s.state === 'pending').length, 38);
  });

  it('refusals and silence are failures in words; a canary that times out stops it', async () => {
    answer = (device) => ({
      auditId: 1,
      response: { ok: false, command: 'update', error: { code: 'UPDATE_UNTRUSTED_KEY', message: 'signed by key 3f2a...' }, at: 0 },
      error: `x ${device}`,
    });
    const p = await begin();
    const c = await camp();
    assert.equal(c.phase, 'canary', 'the stop comes on the next pass');
    await engine.tick();
    assert.equal((await camp()).phase, 'stopped');
    assert.match((await stateOf(p.canaries[0]!)).detail!, /signed by a key this box does not trust.*UPDATE_UNTRUSTED_KEY/);

    answer = (device) => ({
      auditId: 1,
      response: { ok: true, command: 'update', result: { accepted: true, id: `u-${device}` }, at: 0 },
      error: null,
    });
    const q = await begin({ version: '0.2.1', url: 'https://updates.icb.example/se-0.2.1-amd64.seb' });
    await clock.advance(INSTALL + 1);
    await engine.tick();
    assert.match((await stateOf(q.canaries[0]!)).detail!, /no result within 30 min of the command/);
    assert.equal((await camp()).phase, 'stopped');
  });

  it('boxes on 4G, backup Wi-Fi, stale telemetry or offline wait; they go once back on the primary; allowCellular sends over 4G', async () => {
    const p = await planCampaign(ctx, 'amy', input({ practices: ['P81000', 'P81001'], canaryPct: 50 }));
    id = p.id;
    const [a, b, c, d] = p.canaries;
    await tele(a!, { activeKind: 'cellular', activeUplink: '4g' });
    await tele(b!, { activeKind: 'wifi', activeUplink: 'wlan0' });
    await birth(d!, false, 1);
    await clock.advance(16 * MIN); // c's telemetry is now stale: uplink unknown
    assert.ok(await store.campaigns.setPhase(id, ['draft'], 'canary', 'started', clock.now(), 'amy'));
    await tele(a!, { activeKind: 'cellular', activeUplink: '4g' });
    await tele(b!, { activeKind: 'wifi', activeUplink: 'wlan0' });
    await engine.tick();
    assert.equal(sent.length, 0, 'nobody on the primary link');
    const { holdReason } = await import('../../../fleet/src/campaigns/words.js');
    const devs = await store.devices.getMany([a!, b!, c!, d!]);
    const why = [a, b, c, d].map((x) => holdReason({ allow_cellular: 0 }, devs.get(x!), clock.now(), ctx.config.campaigns.uplinkFreshMs));
    assert.deepEqual(why, ['waiting: on 4G', 'waiting: on backup Wi-Fi', 'waiting: uplink unknown', 'waiting: offline']);
    await tele(a!);
    await engine.tick();
    assert.deepEqual(
      sent.map((s) => s.device),
      [a],
      'back on the primary: sent',
    );
    // Over 4G only when the campaign says so.
    await store.campaigns.setPhase(id, ['canary'], 'aborted', null, clock.now(), 'amy');
    const q = await planCampaign(ctx, 'amy', input({ practices: ['P81002'], version: '0.2.1', allowCellular: true, canaryPct: 100 }));
    for (const x of q.canaries) await tele(x, { activeKind: 'cellular', activeUplink: '4g' });
    assert.ok(await store.campaigns.setPhase(q.id, ['draft'], 'canary', 'started', clock.now(), 'amy'));
    await engine.tick();
    assert.equal(sent.length, 1 + 4);
    assert.equal(sent[0]!.args.allowCellular, undefined, 'a campaign that does not allow 4G sends no allowCellular');
    assert.ok(
      sent.slice(1).every((x) => x.args.allowCellular === true),
      'allowCellular: true (contract v1.4) when the campaign allows 4G',
    );
  });

  it('the box has the last word on 4G: a refusal or a download stopped by a switch to 4G queues it again, asked after claimTimeoutMs', async () => {
    const p = await planCampaign(ctx, 'amy', input({ practices: ['P81000'], canaryPct: 100 }));
    id = p.id;
    const [a, b] = p.canaries;
    // a: its telemetry said wired, but it had just failed over: it refuses (agent v1.4).
    answer = (device) =>
      device === a
        ? {
            auditId: 1,
            response: { ok: false, command: 'update', error: { code: 'UPDATE_ON_BACKUP_LINK', message: 'update not started: traffic is on 4G (4g)' }, at: 0 },
            error: 'x',
          }
        : { auditId: 1, response: { ok: true, command: 'update', result: { accepted: true, id: `u-${device}` }, at: 0 }, error: null };
    assert.ok(await store.campaigns.setPhase(id, ['draft'], 'canary', 'started', clock.now(), 'amy'));
    await engine.tick();
    assert.equal((await stateOf(a!)).state, 'pending');
    assert.match((await stateOf(a!)).detail!, /waiting: the box is on 4G/);
    assert.equal((await stateOf(b!)).state, 'sent');
    // b: failover moved it to 4G mid-download; it stopped (update.refused, nothing armed).
    await event(b!, 'update.refused', { code: 'UPDATE_ON_BACKUP_LINK', message: 'download stopped: traffic is on 4G (4g)' });
    await engine.tick();
    assert.equal((await stateOf(b!)).state, 'pending', 'back in the queue, not a failure');
    assert.equal((await camp()).phase, 'canary', 'not a failure: the campaign does not stop');
    const before = sent.length;
    await clock.advance(ctx.config.campaigns.tickMs);
    await engine.tick();
    assert.equal(sent.length, before, 'not asked again every tick while its telemetry lags');
    // Back on the wired line (the engine's own timer ticks during the advance).
    answer = (device) => ({ auditId: 1, response: { ok: true, command: 'update', result: { accepted: true, id: `u2-${device}` }, at: 0 }, error: null });
    await clock.advance(ctx.config.campaigns.claimTimeoutMs - 2 * ctx.config.campaigns.tickMs);
    assert.equal(sent.length, before, 'still backing off');
    await clock.advance(2 * ctx.config.campaigns.tickMs);
    await engine.tick();
    assert.deepEqual(
      sent
        .slice(before)
        .map((x) => x.device)
        .sort(),
      [a, b].sort(),
      'asked again once, after the back-off',
    );
    assert.equal((await stateOf(a!)).state, 'sent');
    assert.equal((await stateOf(b!)).state, 'sent');
    const audit = await store.accounts.auditLog(50);
    assert.ok(audit.some((r) => r.action === 'campaign-pending' && r.device_id === a));
  });

  it('an older box that refuses allowCellular as a bad request is sent the command again without it; another processor type is skipped', async () => {
    const p = await planCampaign(ctx, 'amy', input({ practices: ['P81000'], canaryPct: 100, allowCellular: true }));
    id = p.id;
    const [a, b] = p.canaries;
    answer = (device) => {
      const last = sent.at(-1)!;
      if (last.args.allowCellular !== undefined)
        return { auditId: 1, response: { ok: false, command: 'update', error: { code: 'BAD_REQUEST', message: 'invalid args' }, at: 0 }, error: 'x' };
      return device === b
        ? { auditId: 1, response: { ok: false, command: 'update', error: { code: 'UPDATE_WRONG_ARCH', message: 'arm64 box' }, at: 0 }, error: 'x' }
        : { auditId: 1, response: { ok: true, command: 'update', result: { accepted: true, id: `u-${device}` }, at: 0 }, error: null };
    };
    assert.ok(await store.campaigns.setPhase(id, ['draft'], 'canary', 'started', clock.now(), 'amy'));
    await engine.tick();
    const toA = sent.filter((x) => x.device === a);
    assert.deepEqual(
      toA.map((x) => x.args.allowCellular),
      [true, undefined],
    );
    assert.equal((await stateOf(a!)).state, 'sent');
    assert.equal((await stateOf(b!)).state, 'skipped');
    assert.match((await stateOf(b!)).detail!, /another kind of processor/);
    // The refusal may also come later, as the box's update.refused once it has read the bundle's manifest.
    const c = p.canaries[2]!;
    await event(c, 'update.refused', { id: `u-${c}`, code: 'UPDATE_WRONG_ARCH', message: 'bundle is amd64, this box is arm64' });
    await engine.tick();
    assert.equal((await stateOf(c)).state, 'skipped');
    await engine.tick();
    assert.notEqual((await camp()).phase, 'stopped');
  });

  it('abort: no new commands; boxes mid-update are still followed to their outcome', async () => {
    const p = await begin({ practices: ['P81000', 'P81001', 'P81002', 'P81003', 'P81004'], canaryPct: 20, soakMin: 0 });
    assert.equal(p.canaries.length, 4);
    await commit(p.canaries[0]!);
    assert.ok(await store.campaigns.setPhase(id, ['canary', 'all'], 'aborted', 'aborted by amy', clock.now(), 'amy'));
    await engine.tick();
    assert.equal((await stateOf(p.canaries[0]!)).state, 'healthy', 'followed after the abort');
    await event(p.canaries[1]!, 'update.failed', { code: 'UPDATE_TRUNCATED', message: 'stream ended at 12 MB' });
    await engine.tick();
    assert.match((await stateOf(p.canaries[1]!)).detail!, /the download ended early/);
    for (const c of p.canaries.slice(2)) await commit(c);
    await clock.advance(MIN);
    await engine.tick();
    assert.equal(sent.length, 4, 'no command after the abort');
    assert.equal((await camp()).phase, 'aborted');
    assert.equal((await store.campaigns.toWatch()).length, 0, 'nothing left to follow');
  });

  it('a send left claimed by an instance that died is retried once after claimTimeoutMs; CONFLICT then means it had it', async () => {
    const p = await planCampaign(ctx, 'amy', input({ practices: ['P81000'], canaryPct: 50 }));
    id = p.id;
    assert.ok(await store.campaigns.setPhase(id, ['draft'], 'canary', 'started', clock.now(), 'amy'));
    // Another instance claimed the first canary, then died before recording the answer.
    assert.ok(await store.campaigns.claim(id, p.canaries[0]!, clock.now(), 0));
    answer = (device) =>
      device === p.canaries[0]
        ? { auditId: 1, response: { ok: false, command: 'update', error: { code: 'CONFLICT', message: 'already updating' }, at: 0 }, error: 'CONFLICT' }
        : { auditId: 1, response: { ok: true, command: 'update', result: { accepted: true, id: `u-${device}` }, at: 0 }, error: null };
    await engine.tick();
    assert.deepEqual(
      sent.map((x) => x.device),
      [p.canaries[1]],
      'the claimed one is not sent while its claim is fresh',
    );
    await clock.advance(ctx.config.campaigns.claimTimeoutMs + 1);
    await engine.tick();
    assert.deepEqual(
      sent.map((x) => x.device),
      [p.canaries[1], p.canaries[0]],
    );
    const s = await stateOf(p.canaries[0]!);
    assert.deepEqual([s.state, s.detail], ['sent', 'already updating (sent before a restart)']);
    await commit(p.canaries[0]!);
    await engine.tick();
    assert.equal((await stateOf(p.canaries[0]!)).state, 'healthy');
    await engine.tick();
    assert.equal(sent.length, 2, 'never sent twice');
  });

  it('second wave: stops once stopFailPct of it has failed (shared with config rollouts)', async () => {
    assert.equal(failThreshold(38, 10), 4);
    assert.equal(failThreshold(3, 10), 1);
    const st = (n: number, failed: number) =>
      Array.from({ length: n }, (_, i) => ({ device_id: `d${i}`, canary: 0, failed: i < failed, detail: 'x', state: i < failed ? 'failed' : 'healthy' }));
    assert.equal(stopReason('all', st(38, 3), 10), null);
    assert.match(stopReason('all', st(38, 4), 10)!, /4 of 38 device\(s\) in the second wave failed \(stop at 10 %\)/);
    const p = await begin({ soakMin: 0 });
    for (const c of p.canaries) await commit(c);
    await engine.tick();
    await engine.tick();
    assert.equal((await camp()).phase, 'all');
    const wave = sent.slice(2).map((s) => s.device);
    assert.equal(wave.length, 10);
    for (const d of wave.slice(0, 4)) await event(d, 'update.refused', { code: 'UPDATE_BAD_SIGNATURE', message: 'no' });
    await engine.tick();
    await engine.tick();
    const c = await camp();
    assert.equal(c.phase, 'stopped');
    assert.match(c.message!, /4 of 38/);
    assert.equal(sent.length, 12, 'nothing more sent');
  });

  describe('pause and resume', () => {
    const words = async (dev: string) => {
      const c = await camp();
      const hold = holdReason(c, (await store.devices.get(dev))!, clock.now(), ctx.config.campaigns.uplinkFreshMs);
      return stepWords(c, await stateOf(dev), hold);
    };

    it('paused mid-canary: nothing sent, not a held canary back on its primary, not after the canaries are healthy and soaked; resume continues', async () => {
      const p = await planCampaign(ctx, 'amy', input({ soakMin: 5 }));
      id = p.id;
      const [a, b] = p.canaries;
      await tele(b!, { activeKind: 'cellular', activeUplink: '4g' });
      assert.ok(await store.campaigns.setPhase(id, ['draft'], 'canary', 'started', clock.now(), 'amy'));
      await engine.tick();
      assert.deepEqual(
        sent.map((x) => x.device),
        [a],
        'b waits on 4G',
      );
      assert.ok(await store.campaigns.pause(id, 'bob', clock.now()));
      const c = await camp();
      assert.deepEqual([c.paused_by, c.paused_at, c.phase], ['bob', clock.now(), 'canary']);
      await tele(b!);
      await engine.tick();
      assert.equal(sent.length, 1, 'b is back on its primary, but the campaign is paused');
      assert.equal(await words(b!), 'not sent (campaign paused)');
      await event(a!, 'update.progress', { phase: 'writing', bytes: 1, total: 4 });
      await engine.tick();
      assert.equal(await words(a!), 'installing 25 %', 'a box already sent is still followed');
      await commit(a!);
      await engine.tick();
      assert.equal((await stateOf(a!)).state, 'healthy');
      assert.equal(sent.length, 1);

      assert.ok(await store.campaigns.resume(id, 'carol', clock.now()));
      assert.deepEqual([(await camp()).paused_at, (await camp()).message], [null, 'resumed by carol']);
      await engine.tick();
      assert.deepEqual(
        sent.map((x) => x.device),
        [a, b],
        'resumed: the held canary goes',
      );
      await commit(b!);
      assert.ok(await store.campaigns.pause(id, 'bob', clock.now()), 'paused again before the canaries are judged');
      await engine.tick();
      const soakFrom = (await camp()).soak_from;
      assert.ok(soakFrom, 'the soak starts while paused: it is time, not sending');
      await clock.advance(5 * MIN + 1); // the engine's own timer ticks all along
      await engine.tick();
      assert.deepEqual([(await camp()).phase, sent.length], ['canary', 2], 'the soak is over, but the second wave waits for the resume');
      const second = (await steps()).find((x) => !x.canary)!.device_id;
      assert.equal(await words(second), 'not sent (campaign paused)');

      for (const d of ids) await tele(d);
      assert.ok(await store.campaigns.resume(id, 'carol', clock.now()));
      await engine.tick();
      const after = await camp();
      assert.deepEqual([after.phase, after.soak_from], ['all', soakFrom], 'resumed: on to the rest, the soak not started again');
      assert.equal(sent.length, 2 + 10, 'maxInFlight of the rest');

      // Paused mid-wave: the ten already sent are followed; nothing new; not done while boxes wait.
      assert.ok(await store.campaigns.pause(id, 'bob', clock.now()));
      for (const x of sent.slice(2)) await commit(x.device);
      await engine.tick();
      await engine.tick();
      assert.equal((await steps()).filter((x) => x.state === 'healthy').length, 12);
      assert.deepEqual([(await camp()).phase, sent.length], ['all', 12]);
      assert.ok(await store.campaigns.resume(id, 'carol', clock.now()));
      await engine.tick();
      assert.equal(sent.length, 22);
      assert.equal(new Set(sent.map((x) => x.device)).size, 22, 'no box sent the command twice');
    });

    it('a stale claim is not retried while paused; a box sent before the pause that fails while paused still stops the campaign', async () => {
      const p = await planCampaign(ctx, 'amy', input({ practices: ['P81000', 'P81001'], canaryPct: 50 }));
      id = p.id;
      assert.ok(await store.campaigns.setPhase(id, ['draft'], 'canary', 'started', clock.now(), 'amy'));
      // Another instance claimed the first canary and died; then the campaign was paused.
      assert.ok(await store.campaigns.claim(id, p.canaries[0]!, clock.now(), 0));
      assert.ok(await store.campaigns.pause(id, 'bob', clock.now()));
      await clock.advance(ctx.config.campaigns.claimTimeoutMs + 1);
      await engine.tick();
      assert.equal(sent.length, 0, 'neither the stale claim nor the other canaries are sent while paused');
      assert.equal((await stateOf(p.canaries[0]!)).state, 'sending');
      assert.ok(await store.campaigns.resume(id, 'carol', clock.now()));
      await engine.tick();
      assert.deepEqual(sent.map((x) => x.device).sort(), [...p.canaries].sort(), 'resumed: the stale claim retried, the others sent');
      assert.ok(await store.campaigns.pause(id, 'bob', clock.now()));
      await event(p.canaries[1]!, 'update.rolled-back', { slot: 'a', reason: 'health gate: SIP proxy did not start' });
      await engine.tick();
      const c = await camp();
      assert.equal(c.phase, 'stopped', 'the stop rules apply while paused');
      assert.match(c.message!, /health gate: SIP proxy did not start/);
      assert.equal(await store.campaigns.resume(id, 'carol', clock.now()), false, 'a stopped campaign cannot be resumed');
      await commit(p.canaries[2]!);
      await engine.tick();
      assert.equal((await stateOf(p.canaries[2]!)).state, 'healthy', 'the other boxes sent are still followed');
      assert.equal(sent.length, 4);
      assert.ok((await store.accounts.auditLog(100)).some((r) => r.action === 'campaign-stop'));
    });

    it('pause and resume are compare-and-set: only a running campaign, once each; a paused campaign takes no claim', async () => {
      const p = await planCampaign(ctx, 'amy', input({ practices: ['P81000'], canaryPct: 50 }));
      id = p.id;
      assert.equal(await store.campaigns.pause(id, 'bob', clock.now()), false, 'a draft is not paused');
      assert.ok(await store.campaigns.setPhase(id, ['draft'], 'canary', 'started', clock.now(), 'amy'));
      assert.equal(await store.campaigns.resume(id, 'bob', clock.now()), false, 'not paused: nothing to resume');
      const [x, y] = await Promise.all([store.campaigns.pause(id, 'bob', clock.now()), store.campaigns.pause(id, 'carol', clock.now() + 1)]);
      assert.deepEqual([x, y], [true, false], 'a double click: one pause');
      assert.equal((await camp()).paused_by, 'bob');
      assert.equal(await store.campaigns.claim(id, p.canaries[0]!, clock.now(), 0), false, 'no claim while paused');
      const [r1, r2] = await Promise.all([store.campaigns.resume(id, 'carol', clock.now()), store.campaigns.resume(id, 'dan', clock.now())]);
      assert.deepEqual([r1, r2], [true, false], 'one resume');
      assert.ok(await store.campaigns.claim(id, p.canaries[0]!, clock.now(), 0), 'resumed: claims again');
      assert.ok(await store.campaigns.pause(id, 'bob', clock.now()));
      assert.ok(await store.campaigns.setPhase(id, ['canary', 'all'], 'aborted', 'aborted by bob', clock.now(), 'bob'), 'a paused campaign can be aborted');
      assert.equal(await store.campaigns.resume(id, 'bob', clock.now()), false, 'an aborted campaign is not resumed');
      assert.equal(await store.campaigns.pause(id, 'bob', clock.now()), false);
      assert.equal(await words(p.canaries[1]!), 'not sent (campaign aborted)', 'aborted, not paused, in words');
      assert.equal(await store.campaigns.pause(9999, 'bob', clock.now()), false, 'no such campaign');
    });
  });

  describe('update hours (19:00-07:00 UK time; the fake clock starts at 09:00 GMT on 27 November)', () => {
    const HOURS = '19:00-07:00';
    const OUTSIDE = 'waiting: outside update hours 19:00-07:00 (UK time)';
    /** Moves the clock to `iso` with no interval ticks on the way (the engine is stepped by hand) and refreshes every box's telemetry. */
    const to = async (iso: string) => {
      await clock.advance(Date.parse(iso) - clock.now());
      for (const d of ids) await tele(d);
    };
    const words = async (dev: string) => {
      const c = await camp();
      const hold = holdReason(c, (await store.devices.get(dev))!, clock.now(), ctx.config.campaigns.uplinkFreshMs);
      return stepWords(c, await stateOf(dev), hold);
    };
    beforeEach(() => engine.stop());

    it('canaries wait until 19:00; sent after midnight; a soak ending at 07:02 moves on but sends nothing until 19:00', async () => {
      const p = await begin({ hours: HOURS, soakMin: 10 });
      assert.equal((await camp()).hours, HOURS);
      const created = (await store.accounts.auditLog()).find((a) => a.action === 'campaign-create')!;
      assert.equal(JSON.parse(created.args!).hours, HOURS, 'the audit records the hours');
      assert.equal(sent.length, 0, '09:00: outside the hours');
      assert.equal(await words(p.canaries[0]!), OUTSIDE);
      await to('2026-11-27T18:59:00Z');
      await engine.tick();
      assert.equal(sent.length, 0, '18:59: still outside');
      await to('2026-11-28T00:30:00Z');
      assert.equal(await words(p.canaries[0]!), 'queued', 'inside, after midnight');
      await engine.tick();
      assert.deepEqual(sent.map((x) => x.device).sort(), [...p.canaries].sort(), '00:30: inside, across midnight');
      for (const c of p.canaries) await commit(c);
      await engine.tick();
      assert.ok((await camp()).soak_from, 'soak started');
      await to('2026-11-28T07:02:00Z');
      await engine.tick();
      assert.equal((await camp()).phase, 'all', 'the soak is time, not update hours');
      assert.equal(sent.length, 2, 'the second wave waits too');
      const second = (await steps()).find((x) => !x.canary)!.device_id;
      assert.equal(await words(second), OUTSIDE);
      await to('2026-11-28T18:59:59Z');
      await engine.tick();
      assert.equal(sent.length, 2);
      await to('2026-11-28T19:00:00Z');
      await engine.tick();
      assert.equal(sent.length, 2 + 10, '19:00: the second wave, maxInFlight at a time');
    });

    it('the window closing mid-wave: boxes already sent carry on to their outcome; nothing new is sent until it opens again', async () => {
      const p = await begin({ hours: HOURS, soakMin: 10 });
      await to('2026-11-28T06:30:00Z');
      await engine.tick();
      assert.equal(sent.length, 2, '06:30: canaries');
      for (const c of p.canaries) await commit(c);
      await engine.tick();
      await to('2026-11-28T06:41:00Z');
      await engine.tick();
      assert.equal((await camp()).phase, 'all');
      assert.equal(sent.length, 12, '06:41: ten of the second wave');
      const wave = sent.slice(2).map((x) => x.device);
      for (const d of wave.slice(0, 5)) await commit(d);
      await to('2026-11-28T07:00:00Z');
      await engine.tick();
      assert.equal(sent.length, 12, '07:00: room for five more, but outside the hours');
      const st = await steps();
      assert.equal(st.filter((x) => x.state === 'healthy').length, 2 + 5);
      assert.equal(st.filter((x) => x.state === 'sent').length, 5, 'still followed');
      await event(wave[5]!, 'update.progress', { phase: 'writing', bytes: 1, total: 2 });
      for (const d of wave.slice(6)) await commit(d);
      await engine.tick();
      assert.equal((await stateOf(wave[6]!)).state, 'healthy', 'committed outside the hours: counted');
      assert.equal(await words(wave[5]!), 'installing 50 %');
      await commit(wave[5]!);
      await engine.tick();
      assert.equal((await steps()).filter((x) => x.state === 'healthy').length, 12);
      assert.equal(sent.length, 12);
      assert.equal((await camp()).phase, 'all', 'not done: boxes still wait for the hours');
      await to('2026-11-28T19:00:00Z');
      await engine.tick();
      assert.equal(sent.length, 22);
    });
  });
});
