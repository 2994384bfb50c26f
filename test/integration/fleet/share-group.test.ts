import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { Fleet } from '../../../fleet/src/fleet.js';
import type { Inbound } from '../../../fleet/src/store/types.js';
import { fleetConfig, startFleet, tempDir, waitFor } from '../../helpers/fleet.js';
import { pub, SimDevice } from '../../helpers/fleet-sim.js';
import { mosquittoMissing, startBroker, TestBroker } from '../../helpers/mosquitto.js';

/**
 * Issue 17, high: a device certificate joining the fleet's shared-subscription group took a share
 * of every device's messages (mosquitto's acl_file grants any SUBSCRIBE, then drops what it
 * delivers). Against real mosquitto with TLS device certificates: the broker now refuses the
 * attacker's subscriptions, nothing the fleet should get is lost, and on a broker still configured
 * the old way the fleet's canaries detect the foreign member.
 */
const P = 'surgery-edge/v1';
const FILTERS = ['state', 'telemetry', 'events', 'config/reported'].map((s) => `$share/fleet/${P}/+/${s}`);

async function subscribeResult(c: MqttClient, filter: string): Promise<number> {
  return new Promise((res) => c.subscribe(filter, { qos: 1 }, (err, granted) => res(err ? 0x87 : (granted?.[0]?.qos ?? -1))));
}

describe('fleet shared group: a device cannot join it, and a foreign member is detected (real mosquitto)', { skip: mosquittoMissing() }, () => {
  let broker: TestBroker;
  let fleet: Fleet;
  let tmp: ReturnType<typeof tempDir>;
  const batches: Inbound[] = [];
  const attackers: MqttClient[] = [];

  before(async () => {
    broker = await startBroker(['P81001-01', 'P81002-01', 'P81666-01', 'P81666-02']);
    tmp = tempDir();
    fleet = await startFleet(fleetConfig(broker, tmp.dir, { instanceId: 'fleet-sg', mqtt: { canaryMs: 200, canaryTimeoutMs: 3000 } }));
    fleet.ingest.onBatch = (b) => batches.push(...b);
    await waitFor(async () => fleet.ctx.mqtt.connected, 10_000, 'fleet connected');
  });
  after(async () => {
    for (const a of attackers) a.end(true);
    await fleet?.stop();
    await broker?.close();
    tmp?.rm();
  });

  it("refuses every subscription outside the device's own topics, $share included, and any broker administration", async () => {
    for (const id of ['P81666-01', 'P81666-02']) {
      const a = await broker.connect(id);
      attackers.push(a);
      for (const f of [
        ...FILTERS,
        `$share/fleet/${P}/#`,
        `$share/other/${P}/+/state`,
        `${P}/+/state`,
        `${P}/P81001-01/commands`,
        '#',
        '$CONTROL/dynamic-security/#',
      ]) {
        assert.equal(await subscribeResult(a, f), 0x87, `${id} must not subscribe to ${f}`);
      }
      // Positive control: its own topics are fine (the refusals above are the broker's rules, not a broken cert).
      assert.equal(await subscribeResult(a, `${P}/${id}/commands`), 1);
      // It cannot make itself a fleet (or register a client) through the plugin's control topic.
      await assert.rejects(
        a.publishAsync('$CONTROL/dynamic-security/v1', JSON.stringify({ commands: [{ command: 'addClientRole', username: `CN=${id}`, rolename: 'fleet' }] }), {
          qos: 1,
        }),
        (e: { code?: number }) => e.code === 0x87,
      );
    }
  });

  it('a certificate with CN=fleet minted from the device CA (the old pki.sh) gets no fleet rights', async () => {
    const k = join(broker.dir, 'fake-fleet.key');
    const crt = join(broker.dir, 'fake-fleet.crt');
    execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', k]);
    execFileSync('openssl', ['req', '-new', '-key', k, '-subj', '/CN=fleet', '-out', `${crt}.csr`]);
    writeFileSync(`${crt}.ext`, 'extendedKeyUsage=clientAuth\n');
    execFileSync(
      'openssl',
      [
        'x509',
        '-req',
        '-in',
        `${crt}.csr`,
        '-CA',
        join(broker.pki, 'ca.crt'),
        '-CAkey',
        join(broker.pki, 'ca.key'),
        '-CAcreateserial',
        '-days',
        '2',
        '-extfile',
        `${crt}.ext`,
        '-out',
        crt,
      ],
      { stdio: 'ignore' },
    );
    const fake = await mqtt.connectAsync(broker.url, {
      protocolVersion: 5,
      clientId: 'fake-fleet',
      ca: readFileSync(join(broker.pki, 'ca.crt')),
      cert: readFileSync(crt),
      key: readFileSync(k),
      reconnectPeriod: 0,
    });
    attackers.push(fake);
    assert.equal(await subscribeResult(fake, FILTERS[0]!), 0x87);
    assert.equal(await subscribeResult(fake, `${P}/+/state`), 0x87);
    await assert.rejects(fake.publishAsync(`${P}/P81001-01/commands`, '{"command":"reboot"}', { qos: 1 }), (e: { code?: number }) => e.code === 0x87);
  });

  it('every message from the devices reaches the fleet while the attackers are connected', async () => {
    const devs = [new SimDevice('P81001-01', P), new SimDevice('P81002-01', P)];
    const clients = await Promise.all(devs.map((d) => broker.connect(d.id)));
    const N = 40;
    const now = Date.now();
    for (let i = 0; i < N; i++) {
      for (const [k, d] of devs.entries()) {
        d.bdSeq = i;
        await pub(clients[k]!, d.birth(now + i));
        await pub(clients[k]!, d.telemetry(now + i));
        await pub(clients[k]!, d.event(now + i, 'uplink.changed', { from: 'wan', to: 'wan' }));
      }
    }
    for (const c of clients) c.end(true);
    await waitFor(
      async () =>
        batches.filter((m) => m.kind === 'telemetry').length >= 2 * N &&
        batches.filter((m) => m.kind === 'event').length >= 2 * N &&
        batches.filter((m) => m.kind === 'state').length >= 2 * N,
      20_000,
      'every message ingested',
    );
    assert.equal(batches.filter((m) => m.kind === 'telemetry').length, 2 * N);
    assert.equal(batches.filter((m) => m.kind === 'event').length, 2 * N);
    // The canaries went through the group and every one came back: no foreign member.
    await waitFor(async () => fleet.ingest.guard.totals.answered >= 8, 10_000, 'canaries answered');
    assert.equal(fleet.ingest.guard.totals.lost, 0);
    assert.equal(fleet.health()['group-guard']!.status, 'ok');
  });

  // mosquitto ties no client id to a certificate (use_username_as_clientid would give every fleet
  // instance the same id): a device using the fleet's client id takes its session over, and
  // mosquitto 2.0 just closes the fleet's connection. Not prevented on this broker
  // (docs/threat-model.md); the fleet takes its session back each time and reports the flapping.
  it("a device certificate using the fleet's client id: reported as degraded, and the fleet takes its session back", async () => {
    assert.equal(fleet.ctx.mqtt.drops.length, 0, 'control: no lost connection before the attacker');
    assert.equal(fleet.health()['group-guard']!.status, 'ok');
    for (let i = 0; i < 3; i++) {
      const before = fleet.ctx.mqtt.connects;
      const thief = await broker.connect('P81666-01', { clientId: 'fleet-sg', clean: false, properties: { sessionExpiryInterval: 60 } });
      await waitFor(async () => fleet.ctx.mqtt.drops.length > i, 10_000, 'the fleet pushed off its session');
      thief.end(true);
      await waitFor(async () => fleet.ctx.mqtt.connected && fleet.ctx.mqtt.connects > before, 15_000, 'the fleet back on its session');
    }
    const h = fleet.health()['group-guard']!;
    assert.equal(h.status, 'degraded');
    assert.match(h.summary, /lost 3 times in 10 minutes: another connection may be using this instance's client id/);
    // Device messages reach the fleet again once it holds its session.
    const d = new SimDevice('P81002-01', P);
    const c = await broker.connect(d.id);
    const n = batches.length;
    d.bdSeq = 99;
    await pub(c, d.telemetry(Date.now()));
    c.end(true);
    await waitFor(async () => batches.length > n, 10_000, 'telemetry after the takeover ingested');
  });
});

describe('broker registration: a device unknown to the broker gets nothing until registered', { skip: mosquittoMissing() }, () => {
  let broker: TestBroker;
  before(async () => {
    broker = await new TestBroker(P, { autoRegister: false }).init([]);
    await broker.start();
  });
  after(async () => broker?.close());

  it('provisioning/broker-register.sh (the ICB runbook step) registers it, confined to its own topics', async () => {
    broker.enrol('P81003-01');
    const c = await broker.connect('P81003-01');
    try {
      assert.equal(await subscribeResult(c, `${P}/P81003-01/commands`), 0x87, 'enrolled but not registered: refused');
      const sh = resolve(import.meta.dirname, '../../../provisioning/broker-register.sh');
      assert.match(execFileSync(sh, [broker.pki, 'P81003-01', broker.url], { encoding: 'utf8' }), /registered P81003-01/);
      assert.throws(() => execFileSync(sh, [broker.pki, 'fleet', broker.url], { stdio: 'pipe' }), /reserved identity/);
      assert.equal(await subscribeResult(c, `${P}/P81003-01/commands`), 1, 'registered: its own topics');
      assert.equal(await subscribeResult(c, `$share/fleet/${P}/+/state`), 0x87, 'and nothing else');
      await c.publishAsync(`${P}/P81003-01/state`, '{"online":true}', { qos: 1 });
    } finally {
      c.end(true);
    }
  });
});

describe('fleet shared group: on a broker still run with the old acl_file, the canaries detect an attacker in the group', { skip: mosquittoMissing() }, () => {
  let broker: TestBroker;
  let fleet: Fleet;
  let tmp: ReturnType<typeof tempDir>;
  let attacker: MqttClient | undefined;

  before(async () => {
    broker = await new TestBroker().init(['P81666-01']);
    // The configuration issue 17 found: acl_file (grants every SUBSCRIBE), CN as the user name.
    const conf = join(broker.dir, 'mosquitto.conf');
    writeFileSync(join(broker.dir, 'acl'), `user fleet\ntopic readwrite ${P}/#\n\npattern readwrite ${P}/%u/#\n`);
    writeFileSync(
      conf,
      readFileSync(conf, 'utf8')
        .replace('use_subject_as_username true', 'use_identity_as_username true')
        .replace(/^plugin .*\n/m, `acl_file ${join(broker.dir, 'acl')}\n`)
        .replace(/^plugin_opt_config_file .*\n/m, ''),
    );
    await broker.start();
    tmp = tempDir();
    fleet = await startFleet(fleetConfig(broker, tmp.dir, { instanceId: 'fleet-old', mqtt: { canaryMs: 150, canaryTimeoutMs: 1500 } }));
    await waitFor(async () => fleet.ctx.mqtt.connected, 10_000, 'fleet connected');
  });
  after(async () => {
    attacker?.end(true);
    await fleet?.stop();
    await broker?.close();
    tmp?.rm();
  });

  it('no loss without the attacker; losses logged and health degraded once it joins', async () => {
    await waitFor(async () => fleet.ingest.guard.totals.answered >= 8, 10_000, 'canaries answered');
    assert.equal(fleet.ingest.guard.totals.lost, 0, 'control: nothing lost before the attacker joins');
    attacker = await broker.connect('P81666-01');
    for (const f of FILTERS) assert.equal(await subscribeResult(attacker, f), 1, 'the old broker grants the attack (the reason for the new one)');
    await waitFor(async () => fleet.ingest.guard.totals.lost > 0, 15_000, 'a canary lost to the foreign member');
    const h = fleet.health()['group-guard']!;
    assert.equal(h.status, 'degraded');
    assert.match(h.summary, /foreign member/);
  });
});
