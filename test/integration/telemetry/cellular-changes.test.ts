import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Fleet } from '../../../fleet/src/fleet.js';
import { SqliteDriver } from '../../../fleet/src/store/driver.js';
import { Store } from '../../../fleet/src/store/store.js';
import { fleetConfig, startFleet, tempDir, waitFor } from '../../helpers/fleet.js';
import { mosquittoMissing, startBroker, type TestBroker } from '../../helpers/mosquitto.js';
import { AgentProc, agentConfig, fleetCollector, until, type Received } from './fixture.js';

const skip = mosquittoMissing();
const ID = 'P81001-01';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Telemetry on 4G with `cellularReport: changes`, end to end: a real agent (the harness: the real
 * composition root and TelemetryCapability, representative capabilities) on a real mosquitto (TLS,
 * client certificates, the contract's ACL), and a real fleet instance ingesting into SQLite. The
 * 4G intervals are scaled down (heartbeat 2 s, check 1 s) so the test runs in seconds.
 */
describe('telemetry on 4G: heartbeats while unchanged, a change sent at once, the fleet keeps the box online (real mosquitto)', { skip }, () => {
  let broker: TestBroker;
  let tmp: ReturnType<typeof tempDir>;
  let store: Store;
  let fleet: Fleet;
  let agent: AgentProc | undefined;

  before(async () => {
    broker = await startBroker([ID]);
    tmp = tempDir('lc-tel4g-');
    store = await Store.open(new SqliteDriver(join(tmp.dir, 'fleet.db')));
    fleet = await startFleet(fleetConfig(broker, tmp.dir, { instanceId: 'fleet-1' }), store);
    await waitFor(async () => fleet.ctx.mqtt.connected, 10_000, 'fleet connected');
  });
  after(async () => {
    await agent?.kill();
    await fleet?.stop();
    await store?.close();
    await broker?.close();
    tmp?.rm();
  });

  it('an unchanged box sends heartbeats only; a changed field goes out within a check; the fleet shows it online with the last values', async () => {
    const { client, got } = await fleetCollector(broker, `${broker.prefix}/${ID}/+`);
    const uplinks = [
      { name: 'wan', interface: 'wan0', kind: 'wired', priority: 1, table: 101 },
      { name: '4g', interface: 'wwan0', kind: 'cellular', priority: 2, table: 102 },
    ];
    const telemetry = { intervalMs: 1000, cellularIntervalMs: 2000, cellularCheckMs: 1000, cellularFullEveryMs: 600_000, keepaliveS: 5 };
    agent = new AgentProc(agentConfig(broker, ID, join(tmp.dir, 'agent'), telemetry, { uplinks }), ['--representative', '--active', '4g']);
    await agent.ready;
    const of = (suffix: string) => got.filter((g) => g.topic.endsWith(`/${suffix}`));
    const tele = () => of('telemetry').map((g) => g.json as { id: string; at: number; activeKind: string; trigger?: string; changed?: string[] });
    const beats = () => of('heartbeat');

    // Settled: a heartbeat has arrived, so the box found nothing new since its last full report.
    await until(() => beats().length >= 1, 15_000, 'the first heartbeat');
    const settled = tele().length;
    assert.ok(settled >= 1, 'a full report first');
    const first = tele()[0]!;
    assert.deepEqual([first.activeKind, first.trigger], ['cellular', 'change']);

    // Unchanged for 9 s: heartbeats only (about one per 2 s), and each vouches for the last report.
    const b0 = beats().length;
    await sleep(9000);
    assert.equal(
      tele().length,
      settled,
      `no full report while unchanged: ${JSON.stringify(
        tele()
          .slice(settled)
          .map((t) => t.changed),
      )}`,
    );
    const window: Received[] = beats().slice(b0);
    assert.ok(window.length >= 3 && window.length <= 6, `${window.length} heartbeats in 9 s at a 2 s heartbeat`);
    const last = tele().at(-1)!;
    for (const h of window) assert.deepEqual([h.json.reportId, h.json.reportAt, h.retain], [last.id, last.at, false]);

    // The fleet: online, last_seen kept fresh by the heartbeats, the full report's values kept.
    const d = (await store.devices.get(ID))!;
    assert.equal(d.online, 1);
    assert.equal(d.telemetry_at, last.at, 'the columns come from the last full report');
    assert.ok(d.last_seen! - d.telemetry_at! >= 4000, `last_seen ${d.last_seen} moved on by heartbeats past telemetry_at ${d.telemetry_at}`);
    assert.ok(Date.now() - d.last_seen! < 4000, 'last_seen is fresh');
    assert.deepEqual([d.active_kind, d.data_pct, d.records_stale], ['cellular', 6.8, 0]);
    // History keeps a sample per heartbeat, so "minutes on 4G" and the data-use chart read as before.
    const history = await store.devices.samples(ID, d.telemetry_at! + 1, Date.now() + 1);
    assert.ok(history.length >= window.length && history.every((h) => h.active_kind === 'cellular'), `${history.length} samples after the last report`);

    // A meaningful change (the records cache goes stale) is sent at once, not at the next refresh.
    agent.proc.kill('SIGUSR2');
    const changedAt = Date.now();
    await until(() => tele().length > settled, 5000, 'the change report');
    const change = tele()[settled]!;
    assert.equal(change.trigger, 'change');
    assert.deepEqual(change.changed, ['records.stale']);
    assert.ok(Date.now() - changedAt < 3000, `sent ${Date.now() - changedAt} ms after the change (check every 1 s)`);
    const stale = await waitFor(
      async () => {
        const r = await store.devices.get(ID);
        return r?.records_stale === 1 ? r : undefined;
      },
      5000,
      'the fleet shows the stale cache',
    );
    assert.equal(stale.online, 1);
    assert.equal(fleet.ingest.totals.dropped, 0, 'every heartbeat and report passed the contract schemas');
    client.end(true);
  });
});
