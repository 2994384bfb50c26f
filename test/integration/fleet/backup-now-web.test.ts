import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { BackupCapability } from '../../../agent/src/backup/backup.js';
import type { Capability, Health } from '../../../agent/src/core/capability.js';
import { runCommand, type CommandHost } from '../../../agent/src/telemetry/commands.js';
import { hashPassword } from '../../../common/password.js';
import { topicFor } from '../../../contract/mqtt.js';
import type { Fleet } from '../../../fleet/src/fleet.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { telemetryInbound } from '../../helpers/fleet-inbound.js';
import { fleetConfig, startFleet, tempDir } from '../../helpers/fleet.js';
import { formClient, type FormResponse } from '../../helpers/https-form.js';
import { mosquittoMissing, startBroker, type TestBroker } from '../../helpers/mosquitto.js';

const DEV = 'P81001-01';
const PW = 'backup now web password';

/**
 * "Back up now" on the device page, end to end over the real HTTPS dashboard and real mosquitto
 * (TLS, device certificate, ACL): the button, the confirmation step (nothing sent or audited before
 * it), CSRF and role checks, and the device's answer in words. The device side is the agent's own
 * command handler (telemetry/commands.ts runCommand) over the real BackupCapability and its link
 * policy, connected with the device's own certificate and answering on the responseTopic with the
 * correlation data as the agent's telemetry does; only the uplink and records state are stand-ins
 * (on 4G, no capture pending), so the box refuses with CONFLICT and the page offers to force it.
 */
describe('device page: back up now (real HTTPS dashboard, real mosquitto, the agent command handler)', { skip: mosquittoMissing() }, () => {
  let broker: TestBroker;
  let tmp: ReturnType<typeof tempDir>;
  let fleet: Fleet;
  let box: MqttClient;
  let agentCtx: TestCtx;
  let cap: BackupCapability;
  const link = { active: '4g', pending: 0 };
  let oldAgent = false;
  let port: number;
  let ca: Buffer;
  const send = formClient(() => ({ port, ca }));
  const session: Record<string, { cookie: string; csrf: string }> = {};
  const post = (path: string, as: string, form: Record<string, string> = {}) =>
    send('POST', path, { cookie: session[as]!.cookie, form: { csrf: session[as]!.csrf, ...form } });
  const commandsAudit = async () => (await fleet.ctx.store.accounts.auditLog(100)).filter((a) => a.action === 'backup-now');
  const stand = (name: string, details: () => Record<string, unknown>): Capability => ({
    name,
    start: async () => {},
    stop: async () => {},
    health: (): Health => ({ status: 'ok', summary: '', details: details() }),
  });

  before(async () => {
    broker = await startBroker([DEV]);
    tmp = tempDir();
    fleet = await startFleet(
      fleetConfig(broker, join(tmp.dir, 'fleet'), {
        http: { port: 0, tls: { enabled: true } },
        inventory: [{ deviceId: DEV, practice: 'P81001', practiceName: 'High Street Surgery' }],
      }),
    );
    port = Number(new URL(fleet.web.url).port);
    ca = fleet.web.tls!.cert;
    await fleet.ctx.store.devices.ingest([telemetryInbound(DEV, Date.now(), fleet.ctx.inventory.place(DEV), { activeUplink: '4g', activeKind: 'cellular' })]);
    for (const [u, role] of [
      ['amy', 'icb-admin'],
      ['vic', 'icb-viewer'],
    ] as const) {
      await fleet.ctx.store.accounts.putUser({ username: u, hash: hashPassword(PW), role, practice: null }, Date.now());
      const r = await send('POST', '/login', { form: { username: u, password: PW, next: '/' } });
      const cookie = String(r.headers['set-cookie']).split(';')[0]!;
      session[u] = { cookie, csrf: /name="csrf" value="([^"]+)"/.exec((await send('GET', '/', { cookie })).body)![1]! };
    }

    // The box: backup configured (a key, a repository), on 4G, nothing waiting.
    agentCtx = createTestCtx({
      config: {
        uplinks: [
          { name: 'wan', interface: 'wan0', kind: 'wired', priority: 1, table: 101 },
          { name: '4g', interface: 'wwan0', kind: 'cellular', priority: 2, table: 102 },
        ],
        backup: { enabled: true, repository: join(tmp.dir, 'repo'), resticPath: '/nonexistent/restic' },
      },
    });
    writeFileSync(join(agentCtx.config.paths.stateDir, 'backup.key'), 'k'.repeat(43), { mode: 0o600 });
    cap = new BackupCapability();
    (agentCtx.capabilities.list() as Capability[]).push(
      stand('failover', () => ({ active: link.active })),
      stand('records', () => ({ pendingCaptures: link.pending })),
      cap,
    );
    await cap.start(agentCtx);
    box = await broker.connect(DEV);
    const host = { ctx: agentCtx, handleDesired: async () => ({}), after: () => {} } as unknown as CommandHost;
    box.on('message', (_topic, payload, packet) => {
      const props = packet.properties ?? {};
      // An agent from before contract v1.3 has no backup-now: runCommand's answer for a name it does not know.
      const asked = oldAgent ? Buffer.from(payload.toString().replace('"backup-now"', '"backup-now-unknown-here"')) : payload;
      void runCommand(host, asked, 65536, false).then((res) =>
        box.publish(props.responseTopic!, JSON.stringify(res), { qos: 1, properties: { correlationData: props.correlationData } }),
      );
    });
    await box.subscribeAsync(topicFor(broker.prefix, DEV, 'commands'), { qos: 1 });
  });
  after(async () => {
    box?.end(true);
    await cap?.stop();
    agentCtx?.cleanup();
    await fleet?.stop();
    await broker?.close();
    tmp?.rm();
  });

  const page = async (location?: string) => (await send('GET', location ?? `/devices/${DEV}`, { cookie: session.amy!.cookie })).body;
  const flashOf = (body: string) => /<p class="flash[^"]*"[^>]*>([\s\S]*?)<\/p>/.exec(body)?.[1] ?? '';

  it('the button asks first: nothing is sent or audited until confirmed', async () => {
    assert.match(await page(), new RegExp(`<form class="inline" method="post" action="/devices/${DEV}/commands/backup-now">[^]*?<button>Back up now</button>`));
    const r = await post(`/devices/${DEV}/commands/backup-now`, 'amy');
    assert.equal(r.status, 200);
    assert.match(r.body, /Back up <b>P81001-01<\/b> at High Street Surgery \(P81001\) off-box now\?/);
    assert.match(r.body, /<input type="hidden" name="confirm" value="yes">\s*<button>Yes, back up now<\/button>/);
    assert.deepEqual(await commandsAudit(), []);
    assert.equal((await send('POST', `/devices/${DEV}/commands/backup-now`, { cookie: session.amy!.cookie, form: { confirm: 'yes' } })).status, 403, 'CSRF');
    assert.equal((await post(`/devices/${DEV}/commands/backup-now`, 'vic', { confirm: 'yes' })).status, 403, 'a viewer');
    assert.doesNotMatch((await send('GET', `/devices/${DEV}`, { cookie: session.vic!.cookie })).body, /Back up now/, 'a viewer has no button');
    assert.deepEqual(await commandsAudit(), []);
  });

  it('on 4G the box refuses (CONFLICT) with its reason; the page shows it and offers to force', async () => {
    const r = await post(`/devices/${DEV}/commands/backup-now`, 'amy', { confirm: 'yes' });
    assert.equal(r.status, 303);
    const body = await page(String(r.headers.location));
    const flash = flashOf(body);
    assert.match(flash, /Back up now: the box did not start it\. backup not started: not on the primary link \(4g active\) and no capture pending/);
    assert.match(flash, /<input type="hidden" name="force" value="yes"><button>Back up over 4G anyway<\/button>/);
    const [a] = await commandsAudit();
    assert.equal(a!.username, 'amy');
    assert.equal(a!.device_id, DEV);
    assert.deepEqual(JSON.parse(a!.args!), { force: false });
    assert.equal(a!.outcome, 'error');
    assert.match(a!.detail!, /^CONFLICT: backup not started/);
    assert.doesNotMatch(
      (await send('GET', `/devices/${DEV}?error=x&offer=force`, { cookie: session.vic!.cookie })).body,
      /Back up over 4G anyway/,
      'the offer is for an admin only',
    );
  });

  it('forcing is confirmed again (with the data cost) and the box accepts it', async () => {
    const ask = await post(`/devices/${DEV}/commands/backup-now`, 'amy', { force: 'yes' });
    assert.equal(ask.status, 200);
    assert.match(ask.body, /over 4G if that is the link it is on/);
    assert.match(ask.body, /counts against the practice's 4G data allowance/);
    assert.match(ask.body, /<input type="hidden" name="force" value="yes">/);
    assert.equal((await commandsAudit()).length, 1, 'not sent yet');
    const r = await post(`/devices/${DEV}/commands/backup-now`, 'amy', { force: 'yes', confirm: 'yes' });
    assert.equal(r.status, 303);
    assert.match(
      flashOf(await page(String(r.headers.location))),
      /Back up now: the box started a backup forced \(forced: not on the primary link \(4g active\)/,
    );
    const [a] = await commandsAudit();
    assert.deepEqual(JSON.parse(a!.args!), { force: true });
    assert.equal(a!.outcome, 'ok');
    assert.match(a!.detail!, /"accepted":true/);
    assert.match(a!.detail!, /"forced":true/);
  });

  it('on the primary link it starts without forcing; an agent too old for the command is told apart', async () => {
    // Let the forced run (which fails: no restic here) finish first, so this one is not "already running".
    for (let i = 0; i < 100 && cap.health().details?.running; i++) await new Promise((r) => setTimeout(r, 50));
    agentCtx.bus.emit('failover.switched', { from: '4g', to: 'wan', kind: 'failback', reason: 'wan back', at: Date.now() });
    const r = await post(`/devices/${DEV}/commands/backup-now`, 'amy', { confirm: 'yes' });
    assert.match(flashOf(await page(String(r.headers.location))), /Back up now: the box started a backup over the primary link\./);
    assert.doesNotMatch(await page(String(r.headers.location)), /Back up over 4G anyway/);

    oldAgent = true;
    const o = await post(`/devices/${DEV}/commands/backup-now`, 'amy', { confirm: 'yes' });
    assert.match(flashOf(await page(String(o.headers.location))), /this box runs software too old for the command \(update it first\)/);
    assert.equal((await commandsAudit())[0]!.outcome, 'error');
  });
});
