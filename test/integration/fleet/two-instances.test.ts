import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { topicFor } from '../../../contract/mqtt.js';
import { PgDriver } from '../../../fleet/src/store/pg-driver.js';
import { tempDir, waitFor } from '../../helpers/fleet.js';
import { pub, SimDevice } from '../../helpers/fleet-sim.js';
import { freePort, mosquittoMissing, startBroker, type TestBroker } from '../../helpers/mosquitto.js';
import { postgresMissing, TestPostgres } from '../../helpers/postgres.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const P = 'surgery-edge/v1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Issue 17, deployment: two fleet instances (separate processes, as systemd runs them) in one
 * shared-subscription group on real mosquitto, one real PostgreSQL. Simulated devices publish
 * throughout; one instance is SIGKILLed mid-stream. Every message the broker acknowledged to a
 * device must end up stored exactly once: the dead instance's unacknowledged and queued messages
 * are drained by the survivor (peers.ts), not left in the broker. Alerts run on both under one
 * lock, so an offline device yields one offline alert; both dashboards serve.
 */
describe(
  'two fleet instances, one PostgreSQL, one instance killed (real mosquitto, real PostgreSQL)',
  { skip: mosquittoMissing() || postgresMissing() },
  () => {
    let broker: TestBroker;
    let pg: TestPostgres;
    let db: PgDriver;
    let tmp: ReturnType<typeof tempDir>;
    const procs: Record<string, { proc: ChildProcess; port: number; log: string }> = {};
    const sims: MqttClient[] = [];

    const launch = async (id: string) => {
      const port = await freePort();
      const f = broker.identity('fleet');
      const cfg = join(tmp.dir, `${id}.json`);
      writeFileSync(
        cfg,
        JSON.stringify({
          dataDir: join(tmp.dir, id),
          instanceId: id,
          log: { level: 'info' },
          db: { kind: 'postgres', url: pg.url },
          mqtt: { url: broker.url, prefix: P, caPath: f.ca, certPath: f.cert, keyPath: f.key, canaryMs: 0, backoffInitialMs: 100, backoffMaxMs: 1000 },
          http: { port },
          claim: { enabled: false },
          ingest: { batchMs: 50, peerHeartbeatMs: 300, peerDeadMs: 2000, peerDrainIdleMs: 1000, peerTakeoverTimeoutMs: 20_000 },
          alerts: { evaluateMs: 300, offlineMin: 0 },
        }),
      );
      const proc = spawn(join(ROOT, 'fleet/bin/fleet'), ['run', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
      const p = (procs[id] = { proc, port, log: '' });
      const keep = (b: Buffer) => (p.log = (p.log + b.toString()).slice(-50_000));
      proc.stdout!.on('data', keep);
      proc.stderr!.on('data', keep);
      return p;
    };
    const serves = async (id: string) => (await fetch(`http://127.0.0.1:${procs[id]!.port}/login`).catch(() => null))?.status === 200;

    before(async () => {
      broker = await startBroker([]);
      pg = await new TestPostgres().start();
      tmp = tempDir('fl-two-');
      // Both at once against an empty database: the migrations run once, under the lock.
      await Promise.all([launch('fleet-a'), launch('fleet-b')]);
      await waitFor(async () => (await serves('fleet-a')) && (await serves('fleet-b')), 60_000, 'both dashboards up').catch((e: Error) => {
        throw new Error(`${e.message}\n${procs['fleet-a']!.log.slice(-3000)}\n${procs['fleet-b']!.log.slice(-3000)}`);
      });
      db = new PgDriver(pg.url, 2);
      await waitFor(async () => (await db.all('SELECT id FROM fleet_instances')).length === 2, 10_000, 'both instances registered');
      for (let i = 0; i < 4; i++) sims.push(await broker.connect('fleet', { clientId: `sim-${i}` }));
    });
    after(async () => {
      for (const c of sims) c.end(true);
      for (const p of Object.values(procs)) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
      await db?.close();
      await pg?.stop();
      await broker?.close();
      tmp?.rm();
    });

    it('every acknowledged message is stored once after SIGKILL; one offline alert; the survivor drains the dead session', async () => {
      const devs = Array.from({ length: 20 }, (_, i) => new SimDevice(`P8${String(1000 + i)}-01`, P));
      const acked = new Set<string>();
      let failed = 0;
      for (const [i, d] of devs.entries()) await pub(sims[i % sims.length]!, d.birth(Date.now()), true);
      // One device goes offline (its Will) while both instances run.
      const off = devs[0]!;
      await pub(sims[0]!, [topicFor(P, off.id, 'state'), JSON.stringify({ online: false, bootId: off.bootId, bdSeq: off.bdSeq, at: Date.now() })], true);

      let streaming = true;
      const stream = (async () => {
        while (streaming) {
          await Promise.all(
            devs.slice(1).map(async (d, i) => {
              const m = d.telemetry(Date.now());
              const id = (JSON.parse(m[1]) as { id: string }).id;
              try {
                await pub(sims[i % sims.length]!, m);
                acked.add(id);
              } catch {
                failed++;
              }
            }),
          );
          await sleep(25);
        }
      })();
      await sleep(2500);
      assert.ok(acked.size > 100, `streaming (${acked.size} acknowledged so far)`);
      procs['fleet-a']!.proc.kill('SIGKILL');
      await sleep(4000);
      streaming = false;
      await stream;
      assert.equal(failed, 0, 'the broker acknowledged every publish');

      const stored = async () => {
        const ids = [...acked];
        const rows = await db.all<{ id: string }>(`SELECT id FROM samples WHERE id IN (${ids.map(() => '?').join(',')})`, ids);
        return rows.length;
      };
      await waitFor(async () => (await stored()) === acked.size, 30_000, `all ${acked.size} acknowledged telemetry messages stored`).catch(async (e: Error) => {
        throw new Error(`${e.message} (stored ${await stored()})\n${procs['fleet-b']!.log.slice(-4000)}`);
      });
      const total = await db.get<{ n: number; d: number }>('SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS d FROM samples');
      assert.equal(Number(total!.n), acked.size, 'nothing stored that was not sent');
      assert.equal(Number(total!.d), acked.size, 'each stored once');

      // The survivor claimed the dead instance and drained its session (the messages it held were among those stored).
      const a = await db.get<{ takeover_by: string | null; drained_at: number | null; drained_messages: number | null }>(
        "SELECT takeover_by, drained_at, drained_messages FROM fleet_instances WHERE id = 'fleet-a'",
      );
      assert.equal(a?.takeover_by, 'fleet-b');
      assert.ok(a?.drained_at, 'drained');
      assert.ok(Number(a?.drained_messages) > 0, `the dead instance's session held messages (${a?.drained_messages})`);
      assert.match(procs['fleet-b']!.log, /drained a dead peer instance/);
      // ... and ended it: the broker no longer keeps a session (nor a share of the group) for fleet-a.
      const f = broker.identity('fleet');
      const probe = mqtt.connect(broker.url, {
        protocolVersion: 5,
        clientId: 'fleet-a',
        clean: false,
        properties: { sessionExpiryInterval: 0 },
        ca: readFileSync(f.ca),
        cert: readFileSync(f.cert),
        key: readFileSync(f.key),
        reconnectPeriod: 0,
      });
      const ack = await new Promise<{ sessionPresent: boolean }>((res, rej) => (probe.once('connect', res), probe.once('error', rej)));
      probe.end(true);
      assert.equal(ack.sessionPresent, false, "fleet-a's session was ended after the drain");

      await waitFor(async () => (await db.all("SELECT id FROM alerts WHERE device_id = ? AND kind = 'offline'", [off.id])).length > 0, 10_000, 'offline alert');
      await sleep(1500); // several more evaluation ticks on the survivor
      assert.equal((await db.all("SELECT id FROM alerts WHERE device_id = ? AND kind = 'offline'", [off.id])).length, 1, 'one offline alert');
      assert.equal((await db.all("SELECT id FROM alerts WHERE kind = 'offline'")).length, 1, 'and none for the devices still reporting');

      assert.ok(await serves('fleet-b'), 'the survivor still serves its dashboard');
      assert.equal(await serves('fleet-a'), false);
    });

    it('the killed instance comes back on a fresh session and both serve again', async () => {
      await launch('fleet-a');
      await waitFor(async () => serves('fleet-a'), 60_000, 'fleet-a back');
      await waitFor(
        async () => (await db.get<{ drained_at: number | null }>("SELECT drained_at FROM fleet_instances WHERE id = 'fleet-a'"))?.drained_at === null,
        10_000,
        'its claim cleared',
      );
      assert.ok(await serves('fleet-b'));
    });
  },
);
