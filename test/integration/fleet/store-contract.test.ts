import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SqliteDriver, type SqlDriver } from '../../../fleet/src/store/driver.js';
import { PgDriver } from '../../../fleet/src/store/pg-driver.js';
import { Store } from '../../../fleet/src/store/store.js';
import type { Derived, Inbound, Placement } from '../../../fleet/src/store/types.js';
import { ulid } from '../../../agent/src/core/ids.js';
import { postgresMissing, TestPostgres } from '../../helpers/postgres.js';

const place: Placement = { practice: 'P81001', practiceName: 'High Street', pcn: 'PCN-N', clinicalSystem: 'EMIS' };
const derived = (o: Partial<Derived> = {}): Derived => ({
  activeUplink: 'wan',
  activeKind: 'wired',
  cellularSince: null,
  telephonyMode: 'cloud',
  telephonyRegistered: true,
  telephonyCalls: 0,
  recordsStale: false,
  recordsAsOf: 1000,
  dataPct: 5,
  dataUsed: 5e8,
  dataAllowance: 1e10,
  health: { failover: { status: 'ok', summary: 'on wan' } },
  ...o,
});
const state = (deviceId: string, online: boolean, bdSeq: number, at: number, bootId = 'boot-1'): Inbound => ({
  kind: 'state',
  deviceId,
  receivedAt: at,
  place,
  msg: online ? { online, bootId, bdSeq, version: '0.1.0', configRevision: 3, at } : { online, bootId, bdSeq },
});
const tele = (deviceId: string, at: number, o: Partial<Derived> = {}, id = ulid(at)): Inbound => ({
  kind: 'telemetry',
  deviceId,
  receivedAt: at,
  place,
  derived: derived(o),
  msg: {
    id,
    at,
    bootId: 'boot-1',
    activeUplink: o.activeUplink ?? 'wan',
    activeKind: (o.activeKind ?? 'wired') as 'wired',
    system: { cpuLoadPct: 1, loadAvg1: 0, memUsedPct: 1, memTotalBytes: 1, disks: [], cpuTempC: null, throttled: null, uptimeS: 1 },
    capabilities: {},
  },
});

/** One contract, both drivers: whatever passes on SQLite must pass on PostgreSQL. */
function contract(name: string, make: () => Promise<{ driver: () => SqlDriver; done: () => Promise<void> }>, skip: string | false) {
  describe(`fleet store contract: ${name}`, { skip }, () => {
    let env: Awaited<ReturnType<typeof make>>;
    let store: Store;
    before(async () => {
      env = await make();
      store = await Store.open(env.driver());
    });
    after(async () => {
      await store?.close();
      await env?.done();
    });

    it('birth, death, a stale death (lower bdSeq) discarded, and a replayed birth ignored', async () => {
      let r = await store.devices.ingest([state('d1', true, 5, 1000)]);
      assert.equal(r.applied, 1);
      let d = (await store.devices.get('d1'))!;
      assert.deepEqual([d.online, d.bd_seq, d.state_since, d.version, d.config_revision, d.practice, d.pcn], [1, 5, 1000, '0.1.0', 3, 'P81001', 'PCN-N']);
      r = await store.devices.ingest([state('d1', false, 4, 2000)]);
      assert.equal(r.staleDeaths, 1, 'death of an older session');
      assert.equal((await store.devices.get('d1'))!.online, 1);
      r = await store.devices.ingest([state('d1', false, 5, 3000)]);
      d = (await store.devices.get('d1'))!;
      assert.deepEqual([d.online, d.state_since], [0, 3000]);
      r = await store.devices.ingest([state('d1', false, 5, 3500)]);
      assert.equal(r.duplicates, 1);
      assert.equal((await store.devices.get('d1'))!.state_since, 3000, 'a repeated death keeps offline-since');
      r = await store.devices.ingest([state('d1', true, 4, 4000)]);
      assert.equal(r.duplicates, 1, 'older birth of the same boot');
      await store.devices.ingest([state('d1', true, 6, 5000)]);
      d = (await store.devices.get('d1'))!;
      assert.deepEqual([d.online, d.state_since, d.birth_bd_seq], [1, 5000, 6]);
      const log = await store.devices.stateLog('d1', 0, 1e12);
      assert.deepEqual(
        log.map((l) => [l.at, l.online]),
        [
          [1000, 1],
          [3000, 0],
          [5000, 1],
        ],
      );
    });

    it('telemetry: duplicates by id are dropped, out-of-order samples do not roll state back, 4G since is kept', async () => {
      const id = ulid(10_000);
      let r = await store.devices.ingest([tele('d2', 10_000, {}, id), tele('d2', 10_000, {}, id)]);
      assert.deepEqual([r.applied, r.duplicates], [1, 1]);
      let d = (await store.devices.get('d2'))!;
      assert.equal(d.online, 1, 'telemetry before any birth reads as online');
      await store.devices.ingest([
        tele('d2', 20_000, { activeKind: 'cellular', activeUplink: '4g', dataPct: 80, telephonyMode: 'survivable', recordsStale: true }),
      ]);
      await store.devices.ingest([tele('d2', 30_000, { activeKind: 'cellular', activeUplink: '4g', dataPct: 81 })]);
      await store.devices.ingest([tele('d2', 15_000, { activeKind: 'wired' })]); // late copy from the outbox
      d = (await store.devices.get('d2'))!;
      assert.deepEqual([d.active_kind, d.cellular_since, d.data_pct, d.telemetry_at], ['cellular', 20_000, 81, 30_000]);
      await store.devices.ingest([tele('d2', 40_000, { activeKind: 'cellular', cellularSince: 19_000 })]);
      assert.equal((await store.devices.get('d2'))!.cellular_since, 19_000, "failover's own since wins when reported");
      await store.devices.ingest([tele('d2', 50_000, { activeKind: 'wired' })]);
      assert.equal((await store.devices.get('d2'))!.cellular_since, null);
      assert.equal((await store.devices.samples('d2', 0, 1e12)).length, 6, 'every distinct sample is history, late or not');
    });

    it('events: dedupe by id, drill results, filters and summary, counters', async () => {
      const ev = (id: string, name: string, at: number, payload: unknown): Inbound => ({
        kind: 'event',
        deviceId: 'd3',
        receivedAt: at,
        place: { ...place, practice: 'Y00001', practiceName: 'Low Road', pcn: 'PCN-S' },
        msg: { id, name, at, bootId: 'b', payload },
      });
      const a = ulid(1000);
      const r = await store.devices.ingest([ev(a, 'drill.completed', 1000, { passed: false, steps: [] }), ev(a, 'drill.completed', 1000, { passed: false })]);
      assert.deepEqual([r.applied, r.duplicates], [1, 1]);
      await store.devices.ingest([ev(ulid(500), 'drill.completed', 500, { passed: true })]); // older: does not replace
      const d = (await store.devices.get('d3'))!;
      assert.deepEqual([d.drill_passed, d.drill_at], [0, 1000]);
      assert.equal((await store.devices.events('d3', 0, 1e12, ['drill.completed'])).length, 2);
      assert.deepEqual(
        (await store.devices.list({ practice: 'Y00001' })).map((x) => x.id),
        ['d3'],
      );
      assert.deepEqual(
        (await store.devices.list({ pcn: 'PCN-N' })).map((x) => x.id),
        ['d1', 'd2'],
      );
      assert.deepEqual(
        (await store.devices.list({ q: 'high st' })).map((x) => x.id),
        ['d1', 'd2'],
      );
      assert.deepEqual(
        (await store.devices.list({ state: 'offline' })).map((x) => x.id),
        ['d3'],
        'events alone do not make a device online',
      );
      const s = await store.devices.summary();
      assert.equal(s.total, 3);
      assert.equal(await store.devices.count({ state: 'online' }), 2);
      assert.deepEqual([s.online, s.offline, s.cellular, s.survivable, s.stale], [2, 1, 0, 0, 0]);
      await store.devices.addCounters({ dropped_malformed: 2, dropped_oversized: 1 });
      await store.devices.addCounters({ dropped_malformed: 1 });
      assert.deepEqual(await store.devices.counters(), { dropped_malformed: 3, dropped_oversized: 1 });
    });

    it('accounts, sessions and audit', async () => {
      await store.accounts.putUser({ username: 'amy', hash: 'h', role: 'icb-admin', practice: null }, 1);
      await store.accounts.putUser({ username: 'pm', hash: 'h2', role: 'practice-manager', practice: 'P81001' }, 1);
      assert.equal((await store.accounts.user('pm'))!.practice, 'P81001');
      assert.equal(await store.accounts.userCount(), 2);
      const o = { idleMs: 100, maxAgeMs: 250, touchEveryMs: 10 };
      await store.accounts.createSession('tok', 'amy', 'c', 1000);
      assert.deepEqual({ ...(await store.accounts.session('tok', 1050, o)) }, { username: 'amy', csrf: 'c', created_at: 1000, last_seen: 1000 });
      assert.equal((await store.accounts.session('tok', 1140, o))?.username, 'amy', 'used within the idle time: still live');
      assert.equal(await store.accounts.session('tok', 1251, o), undefined, 'absolute lifetime over, though used 111 ms ago');
      await store.accounts.createSession('tok2', 'amy', 'c', 2000);
      assert.equal(await store.accounts.session('tok2', 2101, o), undefined, 'idle timeout');
      // Lockout: maxFailed wrong passwords lock the account; a lock that has run out starts a fresh count.
      const lk = { now: 10_000, maxFailed: 3, lockoutMs: 500 };
      assert.equal(await store.accounts.loginFailed('pm', lk), null);
      assert.equal(await store.accounts.loginFailed('pm', lk), null);
      assert.equal(await store.accounts.loginFailed('pm', lk), 10_500);
      assert.equal(await store.accounts.loginFailed('pm', { ...lk, now: 10_600 }), null, 'expired lock: count starts again');
      assert.equal((await store.accounts.user('pm'))!.failed_attempts, 1);
      // Account changes end the user's sessions.
      await store.accounts.createSession('tok3', 'pm', 'c', 3000);
      assert.equal(await store.accounts.setDisabled('pm', true), true);
      assert.equal(await store.accounts.session('tok3', 3001, o), undefined);
      assert.equal(await store.accounts.adminCount(), 1);
      assert.equal(await store.accounts.deleteUser('nobody'), false);
      const id = await store.accounts.audit({ at: 5, username: 'amy', device_id: 'd1', action: 'drill', args: '{}', outcome: 'sent', detail: null });
      await store.accounts.finishAudit(id, 'ok', 'passed');
      const log = await store.accounts.auditLog(10);
      assert.deepEqual([log[0]!.action, log[0]!.outcome, log[0]!.detail], ['drill', 'ok', 'passed']);
    });

    it('alerts are de-duplicated while open, acknowledged once, and open again after clearing', async () => {
      const a = await store.ops.openAlert({ device_id: 'd1', kind: 'offline', level: '', summary: 'x', at: 1 });
      assert.ok(a);
      assert.equal(await store.ops.openAlert({ device_id: 'd1', kind: 'offline', level: '', summary: 'x', at: 2 }), undefined);
      assert.ok(await store.ops.openAlert({ device_id: 'd1', kind: 'data-cap', level: '75', summary: 'x', at: 2 }));
      assert.equal(await store.ops.ackAlert(a.id, 'amy', 3), true);
      assert.equal(await store.ops.ackAlert(a.id, 'amy', 4), false);
      await store.ops.clearAlert(a.id, 5);
      assert.ok(await store.ops.openAlert({ device_id: 'd1', kind: 'offline', level: '', summary: 'x', at: 6 }));
      assert.equal((await store.ops.openAlerts()).length, 2);
      assert.deepEqual(
        (await store.devices.list({ state: 'alerting' })).map((x) => x.id),
        ['d1'],
      );
    });

    it('triage: worst-first and column sorts, alert filters by state/kind/practice, snooze, maintenance windows', async () => {
      const other: Placement = { ...place, practice: 'Y00009', practiceName: 'Canal Side' };
      await store.devices.ingest([
        state('tri-ok', true, 1, 10_000),
        tele('tri-ok', 10_100),
        state('tri-4g', true, 1, 10_000),
        tele('tri-4g', 10_200, { activeKind: 'cellular', activeUplink: '4g', cellularSince: 9000 }),
        state('tri-stale', true, 1, 10_000),
        tele('tri-stale', 10_300, { recordsStale: true }),
        { ...state('tri-off', true, 1, 10_000), place: other },
        { ...state('tri-off', false, 1, 11_000), place: other },
      ]);
      const ids = async (o: object) => (await store.devices.list({ q: 'tri-', ...o })).map((x) => x.id);
      assert.deepEqual(await ids({}), ['tri-off', 'tri-4g', 'tri-stale', 'tri-ok'], 'offline, then on 4G, then records stale');
      assert.deepEqual(await ids({ dir: 'desc' }), ['tri-ok', 'tri-stale', 'tri-4g', 'tri-off']);
      assert.deepEqual(await ids({ sort: 'device' }), ['tri-4g', 'tri-off', 'tri-ok', 'tri-stale']);
      assert.deepEqual(await ids({ sort: 'seen', dir: 'desc' }), ['tri-off', 'tri-stale', 'tri-4g', 'tri-ok'], 'the death message is the last heard');

      const now = 50_000;
      const a1 = (await store.ops.openAlert({ device_id: 'tri-off', kind: 'offline', level: '', summary: 'x', at: 20_000 }))!;
      const a2 = (await store.ops.openAlert({ device_id: 'tri-4g', kind: 'on-4g', level: '', summary: 'x', at: 21_000 }))!;
      const a3 = (await store.ops.openAlert({ device_id: 'tri-stale', kind: 'records-stale', level: '', summary: 'x', at: 22_000 }))!;
      assert.equal(await store.ops.snoozeAlert(a2.id, 'amy', now + 1000), true);
      assert.equal(await store.ops.ackAlert(a3.id, 'amy', now), true);
      const tri = async (status: 'open' | 'snoozed' | 'acknowledged' | 'active', o: object = {}, at = now) =>
        (await store.ops.listAlerts({ status, now: at, deviceIds: ['tri-off', 'tri-4g', 'tri-stale'], ...o })).map((a) => a.id);
      assert.deepEqual(await tri('open'), [a1.id]);
      assert.deepEqual(await tri('snoozed'), [a2.id]);
      assert.deepEqual(await tri('acknowledged'), [a3.id]);
      assert.deepEqual(await tri('open', {}, now + 2000), [a2.id, a1.id], 'the snooze is over: open again');
      assert.deepEqual(await tri('active', { practice: 'Y00009' }), [a1.id]);
      assert.deepEqual(await tri('active', { kind: 'on-4g' }), [a2.id]);
      const one = (await store.ops.listAlerts({ status: 'open', now, deviceIds: ['tri-off'] }))[0]!;
      assert.deepEqual([one.practice, one.practice_name], ['Y00009', 'Canal Side']);
      assert.equal(await store.ops.countAlerts({ status: 'active', now, deviceIds: ['tri-off', 'tri-4g', 'tri-stale'] }), 3);
      assert.ok((await store.ops.alertKinds()).includes('records-stale'));

      const w = await store.ops.addMaintenance({
        scope: 'practice',
        scope_id: 'Y00009',
        starts_at: now,
        ends_at: now + 5000,
        reason: 'works',
        created_by: 'amy',
        created_at: now,
      });
      assert.deepEqual(
        (await store.ops.currentMaintenance(now + 1)).map((x) => [x.id, x.scope, x.scope_id]),
        [[w, 'practice', 'Y00009']],
      );
      assert.equal(await store.ops.endMaintenance(w, 'bob', now + 100), true);
      assert.equal(await store.ops.endMaintenance(w, 'bob', now + 200), false);
      assert.deepEqual(
        (await store.ops.currentMaintenance(now + 101)).map((x) => x.id),
        [],
      );
      assert.equal((await store.ops.maintenance(w))!.ended_by, 'bob');
    });

    it('recovery codes: spent once, counted, replaced as a set, gone with a factor reset; a snooze end is claimed once', async () => {
      await store.accounts.putUser({ username: 'rc', hash: 'h', role: 'icb-admin', practice: null }, 1);
      await store.accounts.setRecoveryCodes('rc', ['h1', 'h2', 'h3'], 10);
      assert.equal(await store.accounts.recoveryCodesLeft('rc'), 3);
      assert.equal(await store.accounts.useRecoveryCode('rc', 'h2', 11), true);
      assert.equal(await store.accounts.useRecoveryCode('rc', 'h2', 12), false, 'once');
      assert.equal(await store.accounts.useRecoveryCode('other', 'h1', 12), false, 'another account');
      assert.equal(await store.accounts.recoveryCodesLeft('rc'), 2);
      await store.accounts.setRecoveryCodes('rc', ['h4'], 13);
      assert.equal(await store.accounts.useRecoveryCode('rc', 'h1', 14), false, 'the old set is gone');
      assert.equal(await store.accounts.recoveryCodesLeft('rc'), 1);
      await store.accounts.resetTotp('rc');
      assert.equal(await store.accounts.recoveryCodesLeft('rc'), 0);

      const a = (await store.ops.openAlert({ device_id: 'rn1', kind: 'offline', level: '', summary: 's', at: 100 }))!;
      await store.ops.snoozeAlert(a.id, 'amy', 200);
      assert.deepEqual(await store.ops.snoozesEnded(199), []);
      assert.deepEqual(
        (await store.ops.snoozesEnded(200)).map((x) => [x.id, x.snoozed_until]),
        [[a.id, 200]],
      );
      assert.equal(await store.ops.claimRenotify(a.id, 200, 199), false, 'not before the end');
      assert.equal(await store.ops.claimRenotify(a.id, 200, 201), true);
      assert.equal(await store.ops.claimRenotify(a.id, 200, 202), false, 'once');
      assert.deepEqual(await store.ops.snoozesEnded(300), []);
      await store.ops.markRenotified(a.id, 'email');
      const r = (await store.ops.alert(a.id))!;
      assert.deepEqual([r.snooze_notified_until, r.renotified_at, r.renotified], [200, 201, 'email']);
      await store.ops.snoozeAlert(a.id, 'bob', 400);
      assert.equal(await store.ops.claimRenotify(a.id, 400, 401), true, 'a new snooze can end with one more');
      await store.ops.snoozeAlert(a.id, 'bob', 500);
      await store.ops.ackAlert(a.id, 'bob', 450);
      assert.equal(await store.ops.claimRenotify(a.id, 500, 501), false, 'acknowledged');
    });

    it('templates (versioned, optimistic locking), PCN map, desired docs', async () => {
      assert.deepEqual(await store.config.saveTemplate('icb', '', '{"a":1}', 'amy', 1, 0), { ok: true, version: 1 });
      assert.deepEqual(await store.config.saveTemplate('icb', '', '{"a":2}', 'amy', 2, 1), { ok: true, version: 2 });
      assert.deepEqual(await store.config.saveTemplate('icb', '', '{"a":3}', 'bob', 3, 1), { ok: false, current: 2 }, 'a save over a newer version is refused');
      assert.deepEqual(
        (await store.config.templates()).map((t) => [t.doc, t.version]),
        [['{"a":2}', 2]],
      );
      assert.deepEqual(
        (await store.config.templateVersions('icb', '')).map((v) => [v.version, v.doc, v.by_user]),
        [
          [2, '{"a":2}', 'amy'],
          [1, '{"a":1}', 'amy'],
        ],
      );
      await store.config.setPcn('P81001', 'PCN-S', 'amy', 4);
      assert.equal(await store.config.pcnOf('P81001'), 'PCN-S');
      assert.equal((await store.devices.get('d1'))!.pcn, 'PCN-S', "the practice's devices are re-filed");
      await store.config.setPcn('P81001', null, 'amy', 5);
      assert.equal((await store.devices.get('d1'))!.pcn, null);
      assert.equal(await store.config.pcnOf('P81001'), undefined);
      await store.config.putDesired({ device_id: 'd1', revision: 4, doc: '{}', published_at: 1, rollout_id: null });
      assert.equal((await store.config.desired('d1'))!.revision, 4);
    });

    it('rollouts: steps, compare-and-set phases and claims', async () => {
      const id = await store.config.createRollout(
        {
          created_at: 1,
          created_by: 'amy',
          scope: 'icb',
          scope_id: '',
          phase: 'draft',
          canary: '["d1"]',
          targets: '["d1","d2"]',
          message: null,
          updated_at: 1,
          soak_ms: 1000,
        },
        [
          { device_id: 'd1', canary: 1, rank: 0, revision: 5, doc: '{"x":1}' },
          { device_id: 'd2', canary: 0, rank: 1, revision: 1, doc: '{"x":1}' },
        ],
      );
      assert.deepEqual(
        (await store.config.inActiveRollout(['d2', 'd9'])).map((x) => [x.device_id, x.rollout_id]),
        [['d2', id]],
      );
      assert.equal(await store.config.setPhase(id, ['draft'], 'canary', 'go', 2), true);
      assert.equal(await store.config.setPhase(id, ['draft'], 'canary', 'go', 2), false, 'only one caller wins');
      assert.equal((await store.config.rollout(id))!.started_at, 2);
      assert.equal(await store.config.claim(id, 'd1', 10, 0), true);
      assert.equal(await store.config.claim(id, 'd1', 11, 5), false, 'a fresh claim is not taken twice');
      assert.equal(await store.config.claim(id, 'd1', 20, 15), true, 'a stale claim is taken over');
      const [s1] = await store.config.steps(id);
      await store.config.published(s1!, 21);
      assert.deepEqual([(await store.config.steps(id))[0]!.state, (await store.config.desired('d1'))!.revision], ['published', 5]);
      assert.equal(await store.config.claim(id, 'd1', 30, 30), false, 'published steps are never claimed again');
      assert.equal(await store.config.settle(id, 'd1', 'published', 'applied', null, 31), true);
      assert.equal(await store.config.settle(id, 'd1', 'published', 'applied', null, 31), false, 'settled once');
      assert.equal(await store.config.setPaused(id, true, 32), true);
      assert.equal(await store.config.setPaused(id, true, 33), false);
      assert.equal(await store.config.setPhase(id, ['canary', 'all'], 'stopped', 'canary unhealthy', 34), true);
      assert.deepEqual(
        (await store.config.rollouts()).map((r) => [r.id, r.phase, r.message]),
        [[id, 'stopped', 'canary unhealthy']],
      );
      assert.equal((await store.config.rollouts(true)).length, 0);
      assert.equal((await store.config.inActiveRollout(['d2'])).length, 0);
    });

    it('update campaigns (migrations 7, 9, 10): update hours, steps, compare-and-set phases, pause and resume, claims, settles, what to watch', async () => {
      const id = await store.campaigns.create(
        {
          created_at: 1000,
          created_by: 'amy',
          bundle_url: 'https://u.example/se-0.2.0.seb',
          version: '0.2.0',
          arch: 'amd64',
          practices: '["P81001"]',
          canary_pct: 5,
          soak_ms: 60_000,
          allow_cellular: 0,
          hours: '19:00-07:00',
          message: null,
          updated_at: 1000,
        },
        [
          { device_id: 'c1', canary: 1, rank: 0, from_version: '0.1.0' },
          { device_id: 'c2', canary: 0, rank: 1, from_version: null },
        ],
      );
      assert.deepEqual(
        (await store.campaigns.inActive(['c2', 'zz'])).map((r) => [r.device_id, Number(r.campaign_id)]),
        [['c2', id]],
      );
      assert.equal((await store.campaigns.toWatch()).length, 0, 'a draft is not stepped');
      assert.ok(await store.campaigns.setPhase(id, ['draft'], 'canary', 'go', 2000, 'bob'));
      assert.equal(await store.campaigns.setPhase(id, ['draft'], 'canary', 'go', 2000, 'bob'), false, 'second start loses');
      let c = (await store.campaigns.get(id))!;
      assert.deepEqual([c.phase, c.started_at, c.started_by, c.allow_cellular, c.canary_pct, c.hours], ['canary', 2000, 'bob', 0, 5, '19:00-07:00']);
      const anyTime = await store.campaigns.create(
        {
          created_at: 1500,
          created_by: 'amy',
          bundle_url: 'https://u.example/se-0.2.0.seb',
          version: '0.2.0',
          arch: 'arm64',
          practices: '[]',
          canary_pct: 100,
          soak_ms: 0,
          allow_cellular: 1,
          message: null,
          updated_at: 1500,
        },
        [{ device_id: 'c9', canary: 1, rank: 0, from_version: null }],
      );
      assert.equal((await store.campaigns.get(anyTime))!.hours, null, 'no hours: NULL, any time');
      assert.ok(await store.campaigns.setPhase(anyTime, ['draft'], 'aborted', 'x', 1600, 'bob'));
      assert.deepEqual([c.paused_at, c.paused_by], [null, null], 'migration 10: not paused');
      assert.equal(await store.campaigns.pause(anyTime, 'bob', 1700), false, 'an aborted campaign is not paused');
      assert.equal(await store.campaigns.resume(id, 'bob', 2100), false, 'not paused: nothing to resume');
      assert.ok(await store.campaigns.pause(id, 'bob', 2200));
      assert.equal(await store.campaigns.pause(id, 'carol', 2300), false, 'paused once');
      c = (await store.campaigns.get(id))!;
      assert.deepEqual([c.paused_at, c.paused_by, c.phase, c.updated_at], [2200, 'bob', 'canary', 2200]);
      assert.equal(await store.campaigns.claim(id, 'c1', 2400, 0), false, 'no claim while paused');
      assert.ok(await store.campaigns.resume(id, 'carol', 2500));
      assert.equal(await store.campaigns.resume(id, 'carol', 2600), false, 'resumed once');
      c = (await store.campaigns.get(id))!;
      assert.deepEqual([c.paused_at, c.paused_by, c.message, c.phase], [null, null, 'resumed by carol', 'canary']);
      assert.ok(await store.campaigns.claim(id, 'c1', 3000, 0));
      assert.equal(await store.campaigns.claim(id, 'c1', 3001, 0), false, 'claimed once');
      assert.ok(await store.campaigns.claim(id, 'c1', 9000, 5000), 'a stale claim can be retaken');
      assert.ok(await store.campaigns.settle(id, 'c1', 'sending', 'sent', 9100, { detail: 'accepted', updateId: 'u1', sentAt: 9100, progress: null }));
      assert.ok(await store.campaigns.settle(id, 'c1', 'sent', 'sent', 9200, { progress: 'downloading 40 %' }));
      assert.equal(await store.campaigns.settle(id, 'c1', 'sending', 'failed', 9300, { detail: 'x' }), false, 'compare-and-set on the state');
      let s = (await store.campaigns.steps(id))[0]!;
      assert.deepEqual(
        [s.device_id, s.state, s.update_id, s.sent_at, s.progress, s.detail, s.settled_at],
        ['c1', 'sent', 'u1', 9100, 'downloading 40 %', 'accepted', null],
      );
      assert.ok(await store.campaigns.setPhase(id, ['canary', 'all'], 'aborted', 'aborted by bob', 9400, 'bob'));
      c = (await store.campaigns.get(id))!;
      assert.deepEqual([c.phase, c.ended_by, c.started_by], ['aborted', 'bob', 'bob']);
      assert.deepEqual(
        (await store.campaigns.toWatch()).map((x) => Number(x.id)),
        [id],
        'aborted with a box mid-update: still followed',
      );
      assert.equal((await store.campaigns.inActive(['c2'])).length, 0);
      assert.ok(await store.campaigns.settle(id, 'c1', 'sent', 'healthy', 9500, { detail: 'from 0.1.0', progress: null }));
      s = (await store.campaigns.steps(id))[0]!;
      assert.deepEqual([s.state, s.settled_at, s.progress], ['healthy', 9500, null]);
      assert.equal((await store.campaigns.toWatch()).length, 0);
      assert.deepEqual({ ...(await store.campaigns.counts([id])).get(id) }, { healthy: 1, pending: 1 });
      assert.equal(await store.campaigns.get(Number.NaN), undefined);
    });

    it('state survives closing and re-opening the store', async () => {
      await store.close();
      store = await Store.open(env.driver());
      const d = (await store.devices.get('d1'))!;
      assert.deepEqual([d.online, d.birth_bd_seq], [1, 6]);
    });

    it("a 4G heartbeat (v1.3): last_seen moves, the last report's columns stay, one history sample repeats them", async () => {
      const hb = (deviceId: string, at: number, receivedAt: number): Inbound => ({
        kind: 'heartbeat',
        deviceId,
        receivedAt,
        place,
        msg: { at, bootId: 'boot-1', reportId: null, reportAt: null },
      });
      await store.devices.ingest([tele('hb1', 10_000, { activeKind: 'cellular', activeUplink: '4g', dataPct: 7, telephonyMode: 'survivable' })]);
      const r = await store.devices.ingest([hb('hb1', 70_000, 70_100), hb('hb1', 70_000, 70_200)]);
      assert.equal(r.applied, 2);
      const d = (await store.devices.get('hb1'))!;
      const cols = [d.last_seen, d.telemetry_at, d.active_kind, d.data_pct, d.telephony_mode, d.online];
      assert.deepEqual(cols, [70_200, 10_000, 'cellular', 7, 'survivable', 1]);
      const samples = await store.devices.samples('hb1', 0, 1e12);
      const rows = samples.map((x) => [Number(x.at), x.active_kind, Number(x.data_pct)]);
      assert.deepEqual(
        rows,
        [
          [10_000, 'cellular', 7],
          [70_000, 'cellular', 7],
        ],
        'a repeated heartbeat adds no sample',
      );
      await store.devices.ingest([hb('hb2', 5000, 5000)]);
      const fresh = (await store.devices.get('hb2'))!;
      assert.deepEqual([fresh.online, fresh.last_seen, fresh.telemetry_at], [1, 5000, null], 'a heartbeat before any report: up, nothing to repeat');
      assert.equal((await store.devices.samples('hb2', 0, 1e12)).length, 0);
    });
  });
}

contract(
  'sqlite',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fl-store-'));
    return { driver: () => new SqliteDriver(join(dir, 'fleet.db')), done: async () => rmSync(dir, { recursive: true, force: true }) };
  },
  false,
);

const pgSkip = postgresMissing();
contract(
  'postgresql',
  async () => {
    const pg = await new TestPostgres().start();
    return { driver: () => new PgDriver(pg.url), done: () => pg.stop() };
  },
  pgSkip,
);
