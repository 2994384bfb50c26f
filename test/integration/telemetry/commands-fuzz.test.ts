import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { mosquittoMissing, startBroker, type TestBroker } from '../../helpers/mosquitto.js';
import { AgentProc, agentConfig, fleetCollector, until, type Received } from './fixture.js';

const skip = mosquittoMissing();

describe('telemetry: commands, fuzz and remote config (real mosquitto)', { skip }, () => {
  let broker: TestBroker;
  let dir: string;
  let agent: AgentProc;
  let cfgFile: string;
  let fleet: { client: MqttClient; got: Received[] };
  const P = () => `${broker.prefix}/dev-f`;

  before(async () => {
    broker = await startBroker(['dev-f']);
    dir = mkdtempSync(join(tmpdir(), 'lc-tel-'));
    cfgFile = agentConfig(broker, 'dev-f', join(dir, 'f'));
    fleet = await fleetCollector(broker, `${broker.prefix}/dev-f/#`);
    agent = new AgentProc(cfgFile);
    await agent.ready;
    await until(() => fleet.got.some((g) => g.topic === `${P()}/state` && g.json.online === true), 10_000, 'birth');
  });
  after(async () => {
    fleet?.client.end(true);
    await agent?.kill();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  let n = 0;
  async function ask(
    payload: string | Buffer,
    props: { responseTopic?: string | null; expiry?: number; answeredOn?: string } = {},
  ): Promise<Record<string, unknown>> {
    const corr = `c${++n}`;
    const responseTopic = props.responseTopic === null ? undefined : (props.responseTopic ?? `${P()}/responses/fleet`);
    const before = fleet.got.length;
    await fleet.client.publishAsync(`${P()}/commands`, payload, {
      qos: 1,
      properties: {
        ...(responseTopic ? { responseTopic } : {}),
        correlationData: Buffer.from(corr),
        ...(props.expiry ? { messageExpiryInterval: props.expiry } : {}),
      },
    });
    const on = props.answeredOn ?? responseTopic ?? `${P()}/responses`;
    const match = () => fleet.got.slice(before).find((g) => g.topic === on && g.json.at !== undefined);
    await until(() => !!match(), 10_000, `response to ${String(payload).slice(0, 60)}`);
    return match()!.json;
  }

  it('answers every malformed command with an error response and keeps running', async () => {
    const cases: [string | Buffer, string][] = [
      ['{not json', 'BAD_REQUEST'],
      [Buffer.from([0xff, 0xfe, 0x00, 0x01]), 'BAD_REQUEST'],
      ['null', 'BAD_REQUEST'],
      ['[1,2,3]', 'BAD_REQUEST'],
      ['42', 'BAD_REQUEST'],
      ['{"command":5}', 'BAD_REQUEST'],
      ['{"command":""}', 'BAD_REQUEST'],
      ['{"command":"ping","args":"x"}', 'BAD_REQUEST'],
      ['{"command":"self-destruct"}', 'NOT_FOUND'],
      ['{"command":"__proto__"}', 'NOT_FOUND'],
      ['{"command":"logs","args":{"limit":"many"}}', 'BAD_REQUEST'],
      ['{"command":"logs","args":{"limit":100000}}', 'BAD_REQUEST'],
      ['{"command":"reboot","args":{"now":true}}', 'BAD_REQUEST'],
      ['{"command":"drill"}', 'UNAVAILABLE'],
      [JSON.stringify({ command: 'ping', expiresAt: Date.now() - 1000 }), 'BAD_REQUEST'],
      [JSON.stringify({ command: 'ping', pad: 'x'.repeat(1024 * 1024) }), 'BAD_REQUEST'],
      ['['.repeat(200_000), 'BAD_REQUEST'],
      [JSON.stringify({ command: 'set-config', args: { revision: 'two', config: {} } }), 'BAD_REQUEST'],
      [JSON.stringify({ command: 'set-config', args: { revision: 3, config: { telemetry: { enabled: 'yes' } } } }), 'CONFIG_INVALID'],
    ];
    for (const [payload, code] of cases) {
      const r = await ask(payload);
      assert.equal(r.ok, false, `${String(payload).slice(0, 60)} -> ${JSON.stringify(r).slice(0, 200)}`);
      assert.equal((r.error as { code: string }).code, code, `${String(payload).slice(0, 60)}: ${JSON.stringify(r.error).slice(0, 300)}`);
    }
    const expired = await ask(JSON.stringify({ command: 'ping', expiresAt: Date.now() - 1 }));
    assert.match((expired.error as { message: string }).message, /expired/);
    // No responseTopic: answered on the device's default responses topic.
    const noTopic = await ask('{"command":"nope"}', { responseTopic: null });
    assert.equal(noTopic.ok, false);
    // A responseTopic outside the device's own prefix is not used (the ACL would refuse it anyway).
    const outside = await ask('{"command":"ping"}', { responseTopic: `${broker.prefix}/other/responses`, answeredOn: `${P()}/responses` });
    assert.equal(outside.ok, true);
    // Wildcards (a PUBLISH to them is a protocol error: the broker would drop the agent's connection)
    // and look-alike prefixes are not used either; the agent answers on its default topic and stays up.
    for (const t of [`${P()}/responses/#`, `${P()}/responses/+/x`, `${P()}/responses-x`]) {
      const r = await ask('{"command":"ping"}', { responseTopic: t, answeredOn: `${P()}/responses` });
      assert.equal(r.ok, true, t);
    }
    // Still alive and answering.
    assert.ok(agent.alive);
    const pong = await ask('{"command":"ping"}', { expiry: 30 });
    assert.equal(pong.ok, true);
    assert.equal((pong.result as { pong: boolean }).pong, true);
    const logs = await ask('{"command":"logs","args":{"limit":50,"level":"warn"}}');
    assert.equal(logs.ok, true);
    const entries = (logs.result as { entries: { msg: string }[] }).entries;
    assert.ok(
      entries.some((e) => e.msg === 'command refused'),
      'refusals are logged',
    );
  });

  it('applies a newer desired config, ignores a stale one, rejects an invalid one and keeps the last good config', async () => {
    const base = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
    const reported = () => fleet.got.filter((g) => g.topic === `${P()}/config/reported`).map((g) => g.json);
    const births = () => fleet.got.filter((g) => g.topic === `${P()}/state` && g.json.online === true).map((g) => g.json);
    await fleet.client.publishAsync(`${P()}/config/desired`, JSON.stringify({ revision: 5, config: base }), { qos: 1, retain: true });
    await until(() => reported().some((r) => r.status === 'applied' && r.appliedRevision === 5), 10_000, 'applied 5');
    await until(() => births().some((b) => b.configRevision === 5), 15_000, 'birth with revision 5');
    await fleet.client.publishAsync(`${P()}/config/desired`, JSON.stringify({ revision: 4, config: base }), { qos: 1, retain: true });
    await until(() => reported().some((r) => r.status === 'ignored' && r.lastDesiredRevision === 4), 10_000, 'ignored 4');
    const bad = { ...base, telemetry: { ...(base.telemetry as object), intervalMs: 5 } };
    await fleet.client.publishAsync(`${P()}/config/desired`, JSON.stringify({ revision: 6, config: bad }), { qos: 1, retain: true });
    await until(() => reported().some((r) => r.status === 'rejected' && r.lastDesiredRevision === 6), 10_000, 'rejected 6');
    const rej = reported().find((r) => r.status === 'rejected' && r.lastDesiredRevision === 6)!;
    assert.equal(rej.appliedRevision, 5, 'last good config stays');
    assert.ok((rej.reasons as { path: string }[]).some((p) => p.path === '/telemetry/intervalMs'));
    await fleet.client.publishAsync(`${P()}/config/desired`, '{oops', { qos: 1, retain: true });
    await until(() => reported().some((r) => r.status === 'rejected' && r.lastDesiredRevision === null), 10_000, 'rejected bad JSON');
    const pong = await ask('{"command":"ping"}');
    assert.equal(pong.ok, true);
    assert.ok(agent.alive);
    // Clear the retained desired document.
    await fleet.client.publishAsync(`${P()}/config/desired`, '', { qos: 1, retain: true });
  });

  it('answers reboot before asking the host to reboot', async () => {
    const r = await ask('{"command":"reboot","args":{"reason":"test"}}');
    assert.equal(r.ok, true);
    await until(() => agent.stdout.includes('reboot remote: test'), 5000, 'reboot requested');
  });
});
