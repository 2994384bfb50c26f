/**
 * Failover scenarios in the namespace lab, asserted from the LAN client's point of view: its NEW
 * connections reach the internet, and the address the internet saw says which uplink carried them.
 * One lab and one agent for the sequence (fast); short hold-downs via config. Root only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { ProcessRunner } from '../../../agent/src/platform/command.js';
import { createLab, LAB, REPO, type LabAgent, type LanClient } from '../../lab/lab.js';
import { requireRoot } from '../../helpers/ctx.js';

const skip = requireRoot();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Polls a status-file condition (the agent rewrites status.json every second; no event to await). */
async function waitUntil(cond: () => boolean, ms: number, why: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(why);
    await sleep(200);
  }
}
const switches = (a: LabAgent, since = 0) =>
  a.logs.filter((e) => typeof e.msg === 'string' && e.msg.startsWith('switched') && (e.receivedAt as number) >= since) as Array<
    Record<string, unknown> & { kind: string; to: string; receivedAt: number }
  >;

describe('failover in the lab', { skip }, () => {
  const lab = createLab({ prefix: 'la' });
  let agent: LabAgent;
  let client: LanClient;

  before(async () => {
    await lab.up();
    agent = await lab.startAgent({
      config: {
        failover: { holdDownMs: 3000, maxHoldDownMs: 24_000, maxFailbacksPerHour: 20 },
        status: { enabled: false },
        cellular: { pollIntervalMs: 1000, policy: { nonCritical: 'allow' } },
      },
    });
    client = await lab.startClient({ intervalMs: 100, timeoutMs: 1500 });
    await client.waitFor((r) => r.ok && r.via === LAB.wan, 30_000);
    await agent.waitForLog((e) => e.msg === 'uplink 4g unknown -> up' || (String(e.msg).startsWith('uplink 4g') && String(e.msg).endsWith('up')), 15_000);
  });

  after(async () => {
    await client?.stop();
    await agent?.stop();
    await lab.down();
  });

  it('`surgery-edge status` shows the uplinks, their health, the active one, since when and why', async () => {
    await sleep(1500); // the snapshot is written every second
    const r = await new ProcessRunner().run(join(REPO, 'agent/bin/surgery-edge'), ['status', '--config', agent.configFile], { allowFailure: true });
    assert.match(r.stdout, /failover\s+traffic on wan \(wired\)/);
    assert.match(
      r.stdout,
      /active: wan since \d+ s ago - on wan, the preferred uplink, (up|degraded); last switch \d\d:\d\d:\d\d UTC: wan proven (up|degraded)/,
    );
    assert.match(r.stdout, /\* wan \(wired, wan0\): (up|degraded) for \d+ s/);
    assert.match(r.stdout, /4g \(cellular, wwan0\): up for \d+ s \[[\d.]+ ms, \d+% loss\]/);
  });

  it('the fake modem is connected on wwan0; when it vanishes the agent says so and keeps routing', async () => {
    const cell = () => agent.status()?.capabilities.cellular?.details as { modem: string } | undefined;
    await waitUntil(() => cell()?.modem === 'connected', 10_000, 'cellular never reported the fake modem connected');
    const t0 = Date.now();
    lab.modem({ present: false });
    try {
      const warned = await agent.waitForLog(
        (e) => (e.receivedAt as number) >= t0 && e.level === 'warn' && /^cellular: (modem vanished|ModemManager lists no modem)/.test(String(e.msg)),
        10_000,
      );
      assert.equal(warned.modem, 'absent');
      await waitUntil(() => cell()?.modem === 'absent', 5000, 'status does not show the modem absent');
      // A window long enough to see the LAN keep going (the warning can come within 0.5 s).
      await sleep(Math.max(0, t0 + 3000 - Date.now()));
      assert.deepEqual(switches(agent, t0), []);
      const mine = client.results.filter((r) => r.start > t0);
      assert.ok(mine.length > 5 && mine.every((r) => r.ok && r.via === LAB.wan), 'LAN kept going out of the primary');
    } finally {
      lab.modem({ present: true });
    }
    await waitUntil(() => cell()?.modem === 'connected', 15_000, 'modem not seen again');
  });

  it('one probe target dead: no failover', async () => {
    const t0 = Date.now();
    await lab.killTarget(LAB.targets[3]);
    await sleep(8000);
    await lab.reviveTarget(LAB.targets[3]);
    assert.deepEqual(switches(agent, t0), []);
    const mine = client.results.filter((r) => r.start > t0 + 500 && r.end < Date.now() - 1600);
    assert.ok(mine.length > 50 && mine.every((r) => r.ok && r.via === LAB.wan), 'LAN kept going out of the primary');
  });

  it('20% random loss on the primary: no failover', async () => {
    const t0 = Date.now();
    await lab.loss('primary', 20);
    await sleep(15_000);
    const wan = (agent.status()?.capabilities.failover?.details?.uplinks as { name: string; state: string; lossPct: number }[]).find((u) => u.name === 'wan');
    await lab.restore('primary');
    assert.deepEqual(switches(agent, t0), []);
    assert.equal(wan?.state, 'degraded', 'the loss is reported');
    assert.ok(wan!.lossPct >= 10);
    const seen = client.results.filter((r) => r.start > t0 && r.ok);
    assert.ok(seen.length > 0 && seen.every((r) => r.via === LAB.wan));
  });

  it('carrier loss: LAN fails over to 4G within a second; failback only after the hold-down', async () => {
    await agent.waitForLog((e) => e.msg === 'uplink wan degraded -> up' || e.msg === 'uplink wan up -> up', 10_000).catch(() => undefined);
    const t0 = Date.now();
    await lab.cutCarrier('primary');
    const r = await client.waitFor((x) => x.ok && x.via === LAB.wwan && x.start >= t0, 10_000);
    assert.ok(r.end - t0 < 2000, `LAN via 4G after ${r.end - t0} ms`);
    assert.equal(switches(agent, t0)[0]?.kind, 'failover');
    await sleep(1000);
    const restoredAt = Date.now();
    await lab.restore('primary');
    const back = await client.waitFor((x) => x.ok && x.via === LAB.wan && x.start >= restoredAt, 30_000);
    const upAt = agent.logs.find((e) => String(e.msg).match(/^uplink wan \w+ -> up$/) && (e.receivedAt as number) >= restoredAt)?.receivedAt as number;
    assert.ok(upAt, 'primary proven up again');
    const fb = switches(agent, restoredAt).find((s) => s.kind === 'failback');
    assert.ok(fb && fb.receivedAt - upAt >= 2900, `failback ${fb && fb.receivedAt - upAt} ms after the primary was up (hold-down 3 s)`);
    assert.ok(back.start >= fb!.receivedAt - 200);
  });

  it('silent blackhole, then a flapping primary: hold-down doubles per flap', async () => {
    const t0 = Date.now();
    await lab.blackhole('primary');
    const r = await client.waitFor((x) => x.ok && x.via === LAB.wwan && x.start >= t0, 10_000);
    assert.ok(r.end - t0 < 3000, `LAN via 4G ${r.end - t0} ms after the blackhole`);
    await lab.restore('primary');
    const fb1 = (await agent.waitForLog((e) => String(e.msg).startsWith('switched 4g -> wan') && (e.receivedAt as number) > t0, 40_000)) as Record<
      string,
      unknown
    >;
    assert.match(String(fb1.msg), /hold-down 6 s/, 'second flap this hour: 6 s');
    const t1 = Date.now();
    await lab.blackhole('primary');
    await client.waitFor((x) => x.ok && x.via === LAB.wwan && x.start >= t1, 10_000);
    await lab.restore('primary');
    const fb2 = (await agent.waitForLog((e) => String(e.msg).startsWith('switched 4g -> wan') && (e.receivedAt as number) > t1, 60_000)) as Record<
      string,
      unknown
    >;
    assert.match(String(fb2.msg), /hold-down 12 s/, 'third flap: 12 s');
    await client.waitFor((x) => x.ok && x.via === LAB.wan && x.start >= (fb2.receivedAt as number), 10_000);
  });

  it('both uplinks dead: no flapping, no crash; recovers when one returns', async () => {
    await lab.blackhole('cellular');
    await agent.waitForLog((e) => String(e.msg).match(/^uplink 4g \w+ -> down$/) !== null, 10_000);
    const t0 = Date.now();
    await lab.blackhole('primary');
    await sleep(10_000);
    assert.deepEqual(switches(agent, t0), [], 'stays put on the last uplink');
    const st = agent.status();
    assert.equal(st?.capabilities.failover?.details?.active, 'wan');
    const t1 = Date.now();
    await lab.restore('cellular');
    const r = await client.waitFor((x) => x.ok && x.via === LAB.wwan && x.start >= t1, 15_000);
    assert.ok(r);
    await lab.restore('primary');
  });
});

describe('4G attaches late', { skip }, () => {
  const lab = createLab({ prefix: 'lb', lateAttach4g: true });
  after(async () => lab.down());

  it('runs on the primary without a 4G address, stays put when the primary dies, moves to 4G once it attaches', async () => {
    await lab.up();
    const agent = await lab.startAgent({ config: { status: { enabled: false } } });
    const client = await lab.startClient();
    try {
      await client.waitFor((r) => r.ok && r.via === LAB.wan, 30_000);
      const st = agent.status();
      const fourG = (st?.capabilities.failover?.details?.uplinks as { name: string; state: string }[] | undefined)?.find((u) => u.name === '4g');
      assert.equal(fourG?.state, 'unknown', 'never assumed up before proven');
      const t0 = Date.now();
      await lab.blackhole('primary');
      await agent.waitForLog((e) => String(e.msg).match(/^uplink wan \w+ -> down$/) !== null, 10_000);
      await sleep(2000);
      assert.deepEqual(switches(agent, t0), [], 'nowhere better: stays');
      await lab.attach4g();
      const r = await client.waitFor((x) => x.ok && x.via === LAB.wwan, 20_000);
      assert.ok(r.start > t0);
      assert.equal(switches(agent, t0)[0]?.kind, 'failover');
    } finally {
      await client.stop();
      await agent.stop();
    }
  });

  it('down() leaves no namespace and no process behind', async () => {
    await lab.up();
    await lab.startAgent({ config: { status: { enabled: false } } });
    await lab.startClient();
    const runner = new ProcessRunner();
    // `ip netns del` does not end the processes inside: collect them first, all must be gone after.
    const pids: number[] = [];
    for (const n of Object.values(lab.ns)) pids.push(...(await runner.run('ip', ['netns', 'pids', n])).stdout.split(/\s+/).filter(Boolean).map(Number));
    assert.ok(pids.length >= 3, `agent, LAN client and target server found (${pids.length})`);
    await lab.down();
    const ns = await runner.run('ip', ['netns', 'list']);
    assert.doesNotMatch(ns.stdout, /^lb-/m);
    // Still running = present and not a zombie (this container's init does not reap orphans; a
    // zombie holds nothing but its pid).
    const { readFileSync } = await import('node:fs');
    const running = pids.flatMap((pid) => {
      try {
        const st = readFileSync(`/proc/${pid}/status`, 'utf8');
        return /^State:\s+Z/m.test(st) ? [] : [`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()}`];
      } catch {
        return [];
      }
    });
    assert.deepEqual(running, []);
  });
});

describe('wired WAN without a configured gateway (DHCP router)', { skip }, () => {
  const lab = createLab({ prefix: 'lr' });
  after(async () => lab.down());

  it('learns the router from the DHCP default route and carries the LAN through it', async () => {
    await lab.up();
    // What a DHCP client leaves behind: its default route at its own metric.
    await lab.exec(lab.ns.app, 'ip', ['route', 'add', 'default', 'via', LAB.wanGateway, 'dev', 'wan0', 'proto', 'dhcp', 'metric', '100']);
    const uplinks = (lab.agentConfig().uplinks as Record<string, unknown>[]).map((u) => (u.name === 'wan' ? { ...u, gateway: undefined } : u));
    const agent = await lab.startAgent({ config: { uplinks: JSON.parse(JSON.stringify(uplinks)) as unknown, status: { enabled: false } } });
    const client = await lab.startClient();
    try {
      const learnt = await agent.waitForLog((e) => e.msg === `uplink wan: next hop ${LAB.wanGateway} (kernel)`, 10_000);
      assert.equal(learnt.source, 'kernel');
      await client.waitFor((r) => r.ok && r.via === LAB.wan, 30_000);
      const t101 = JSON.parse((await lab.exec(lab.ns.app, 'ip', ['-j', 'route', 'show', 'table', '101', 'default'])).stdout) as {
        gateway?: string;
        dev: string;
      }[];
      assert.deepEqual(
        t101.map((r) => [r.dev, r.gateway]),
        [['wan0', LAB.wanGateway]],
      );
    } finally {
      await client.stop();
      await agent.stop();
    }
  });
});
