import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { ulid } from '../../../agent/src/core/ids.js';
import type { Fleet } from '../../../fleet/src/fleet.js';
import { SqliteDriver } from '../../../fleet/src/store/driver.js';
import { Store } from '../../../fleet/src/store/store.js';
import { fleetConfig, startFleet, tempDir, waitFor } from '../../helpers/fleet.js';
import { mosquittoMissing, startBroker, type TestBroker } from '../../helpers/mosquitto.js';
import { AgentProc, agentConfig } from '../telemetry/fixture.js';

const skip = mosquittoMissing();
const A = 'P81001-01';
const B = 'P81002-01';

/**
 * Real mosquitto (TLS, client certs, the contract's ACL), real agents (the telemetry integration
 * harness: the agent's own composition root and TelemetryCapability), two fleet instances in one
 * shared-subscription group over one store.
 */
describe('fleet ingest (real mosquitto, real agents)', { skip }, () => {
  let broker: TestBroker;
  let tmp: ReturnType<typeof tempDir>;
  let store: Store;
  let f1: Fleet;
  let f2: Fleet;
  let agent: AgentProc | undefined;
  let raw: MqttClient;
  const agents: AgentProc[] = [];

  before(async () => {
    broker = await startBroker([A, B, 'evil-01']);
    tmp = tempDir();
    store = await Store.open(new SqliteDriver(join(tmp.dir, 'fleet.db')));
    f1 = await startFleet(fleetConfig(broker, tmp.dir, { instanceId: 'fleet-1' }), store);
    f2 = await startFleet(fleetConfig(broker, tmp.dir, { instanceId: 'fleet-2' }), store);
    await waitFor(async () => f1.ctx.mqtt.connected && f2.ctx.mqtt.connected, 10_000, 'fleet connected');
    raw = await broker.connect('fleet');
  });
  after(async () => {
    raw?.end(true);
    for (const a of agents) await a.kill();
    await f1?.stop();
    await f2?.stop();
    await store?.close();
    await broker?.close();
    tmp?.rm();
  });

  const startAgent = async (id: string) => {
    const cfg = agentConfig(broker, id, join(tmp.dir, id), { intervalMs: 1000, keepaliveS: 5 });
    const p = new AgentProc(cfg, ['--representative']);
    agents.push(p);
    await p.ready;
    return p;
  };

  it('a real agent: birth, telemetry with derived columns, both instances share the load', async () => {
    agent = await startAgent(A);
    const d = await waitFor(
      async () => {
        const r = await store.devices.get(A);
        return r && r.online === 1 && r.telemetry_at !== null && (await store.devices.samples(A, 0, 1e13)).length >= 4 ? r : undefined;
      },
      20_000,
      'agent online with telemetry',
    );
    assert.equal(d.practice, 'P81001', 'practice from the device id convention');
    assert.equal(d.data_pct, 6.8, 'cellular usage from the representative health');
    assert.equal(d.records_stale, 0);
    assert.equal(typeof d.version, 'string');
    const health = JSON.parse(d.health_json!) as Record<string, { status: string }>;
    assert.ok(health.failover && health.telemetry, 'capability health kept');
    // Shared subscription: mosquitto hands messages round-robin within the group.
    await waitFor(async () => f1.ingest.totals.applied > 0 && f2.ingest.totals.applied > 0, 10_000, 'both instances ingesting');
  });

  it('malformed, oversized and identity-claiming payloads are counted and dropped; the service keeps going', async () => {
    const t = `${broker.prefix}/${B}/telemetry`;
    const before = (await store.devices.get(A))!;
    await raw.publishAsync(t, 'not json {', { qos: 1 });
    await raw.publishAsync(t, JSON.stringify({ id: 'x', at: 'yesterday' }), { qos: 1 });
    await raw.publishAsync(t, Buffer.alloc(300 * 1024, 0x7b), { qos: 1 });
    await raw.publishAsync(
      `${broker.prefix}/${B}/events`,
      JSON.stringify({ id: ulid(), name: 'drill.completed', at: Date.now(), bootId: 'b', payload: { deviceId: A, passed: false } }),
      { qos: 1 },
    );
    await raw.publishAsync(`${broker.prefix}/${B}/state`, JSON.stringify({ online: true, bootId: 'b', bdSeq: 1, deviceId: A }), { qos: 1 });
    await raw.publishAsync(`${broker.prefix}/bad+id/state`.replace('+', '_x/'), '{}', { qos: 1 });
    const c = await waitFor(
      async () => {
        const c = await store.devices.counters();
        return (c.dropped_malformed ?? 0) >= 2 && (c.dropped_oversized ?? 0) >= 1 && (c.dropped_identity ?? 0) >= 2 ? c : undefined;
      },
      10_000,
      'drop counters',
    );
    assert.equal(c.dropped_malformed, 2);
    assert.equal(c.dropped_oversized, 1);
    assert.equal(c.dropped_identity, 2);
    assert.equal(await store.devices.get(B), undefined, 'nothing was stored for the claimed or claiming device');
    const a = (await store.devices.get(A))!;
    assert.equal(a.drill_at, before.drill_at, "another device's claim did not touch A");
    assert.ok(f1.ingest.health().status === 'ok' && f2.ingest.health().status === 'ok');
  });

  it("the broker's ACL keeps a device from publishing as another (PUBACK 0x87), so A's record is untouched", async () => {
    const evil = await broker.connect('evil-01');
    await assert.rejects(
      evil.publishAsync(`${broker.prefix}/${A}/state`, JSON.stringify({ online: false, bootId: 'x', bdSeq: 999 }), { qos: 1 }),
      (e: { code?: number }) => e.code === 0x87,
    );
    evil.end(true);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await store.devices.get(A))!.online, 1);
  });

  it('commands over MQTT 5 request/response, audited', async () => {
    const ok = await f1.commander.send('amy', A, 'ping');
    assert.equal(ok.response?.ok, true);
    assert.equal((ok.response?.result as { pong?: boolean }).pong, true);
    const drill = await f2.commander.send('amy', A, 'drill');
    assert.equal(drill.response?.ok, false, 'the harness runs no drills capability');
    assert.equal(drill.response?.error?.code, 'UNAVAILABLE');
    const off = await f1.commander.send('amy', 'P99999-01', 'ping');
    assert.equal(off.response, null);
    const log = await store.accounts.auditLog(10);
    assert.deepEqual(
      log.slice(0, 3).map((l) => [l.device_id, l.action, l.outcome]),
      [
        ['P99999-01', 'ping', 'timeout'],
        [A, 'drill', 'error'],
        [A, 'ping', 'ok'],
      ],
    );
  });

  it('survives a broker restart: reconnects, keeps state, ingests new telemetry', async () => {
    const before = (await store.devices.get(A))!;
    await broker.restart();
    await waitFor(async () => f1.ctx.mqtt.connects >= 2 && f2.ctx.mqtt.connects >= 2, 20_000, 'fleet reconnected');
    const after = await waitFor(
      async () => {
        const r = await store.devices.get(A);
        return r && r.telemetry_at! > before.telemetry_at! + 1500 && r.online === 1 ? r : undefined;
      },
      30_000,
      'telemetry after the broker restart',
    );
    assert.equal(after.first_seen, before.first_seen);
  });

  it('a new instance with an empty store learns current state from the retained births', async () => {
    const t2 = tempDir();
    const fresh = await startFleet(fleetConfig(broker, t2.dir, { instanceId: 'fleet-3', shareGroup: 'other' }));
    try {
      const d = await waitFor(
        async () => {
          const r = await fresh.ctx.store.devices.get(A);
          return r?.online === 1 && r.bd_seq !== null ? r : undefined;
        },
        10_000,
        'retained birth',
      );
      assert.equal(d.boot_id, (await store.devices.get(A))!.boot_id);
    } finally {
      await fresh.stop();
      t2.rm();
    }
  });

  it('SIGKILL: the Will marks the device offline, with offline-since; state persists across a fleet restart', async () => {
    await agent!.kill('SIGKILL');
    const killedAt = Date.now();
    const d = await waitFor(
      async () => {
        const r = await store.devices.get(A);
        return r?.online === 0 ? r : undefined;
      },
      15_000,
      'death',
    );
    assert.ok(d.state_since! >= killedAt - 1000);
    await f2.stop();
    f2 = await startFleet(fleetConfig(broker, tmp.dir, { instanceId: 'fleet-2' }), store);
    assert.equal((await f2.ctx.store.devices.get(A))!.online, 0);
  });
});
