import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { Fleet } from '../../../fleet/src/fleet.js';
import { fleetConfig, startFleet, tempDir, waitFor } from '../../helpers/fleet.js';
import { pub, SimDevice } from '../../helpers/fleet-sim.js';
import { mosquittoMissing, startBroker, type TestBroker } from '../../helpers/mosquitto.js';

const P = 'surgery-edge/v1';

/**
 * Issue 17 (deployment): the fleet acknowledges a device's QoS 1 message only once the store has
 * committed it. Against real mosquitto: an instance whose database refuses every write receives the
 * messages but never acknowledges them, so when it drops off the broker they are still in its
 * persistent session and the next holder of the session (here a fresh instance with the same id and
 * an empty store) gets every one. Had the fleet acknowledged on receipt, the broker would have
 * forgotten them and the second store would be empty.
 */
describe('fleet ingest acknowledges after the commit (real mosquitto)', { skip: mosquittoMissing() }, () => {
  let broker: TestBroker;
  let tmp: ReturnType<typeof tempDir>;
  let a: Fleet | undefined;
  let b: Fleet | undefined;
  let sim: MqttClient;

  before(async () => {
    broker = await startBroker([]);
    tmp = tempDir();
    sim = await broker.connect('fleet');
  });
  after(async () => {
    sim?.end(true);
    await a?.stop();
    await b?.stop();
    await broker?.close();
    tmp?.rm();
  });

  it('messages received but not stored are delivered again to the next holder of the session', async () => {
    const cfg = (dir: string) => fleetConfig(broker, join(tmp.dir, dir), { instanceId: 'fleet-ack', mqtt: { canaryMs: 0 } });
    a = await startFleet(cfg('a'));
    await waitFor(async () => a!.ctx.mqtt.connected, 10_000, 'first instance connected');
    const devices = a.ctx.store.devices;
    const realIngest = devices.ingest.bind(devices);
    devices.ingest = async () => {
      throw new Error('simulated: database unreachable');
    };
    const d = new SimDevice('P81001-01', P);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const m = d.telemetry(Date.now() + i);
      ids.push((JSON.parse(m[1]) as { id: string }).id);
      await pub(sim, m);
    }
    try {
      await waitFor(async () => a!.ingest.totals.received >= 20, 10_000, 'the first instance received them');
      assert.equal(a.ctx.mqtt.unacked, 20, 'none acknowledged while the store refuses them');
      // Off the broker before any commit (as a crash would be), then let it finish against its own store.
      await a.ctx.mqtt.stop();
    } finally {
      devices.ingest = realIngest;
    }
    await a.stop();
    a = undefined;

    b = await startFleet(cfg('b'));
    await waitFor(async () => (await b!.ctx.store.devices.samples('P81001-01', 0, Date.now() + 60_000)).length >= 20, 15_000, 'redelivered and stored');
    const got = (await b.ctx.store.devices.samples('P81001-01', 0, Date.now() + 60_000)).map((s) => s.id).sort();
    assert.deepEqual(got, [...ids].sort());
    await waitFor(async () => b!.ctx.mqtt.unacked === 0, 5000, 'acknowledged once stored');
  });
});
