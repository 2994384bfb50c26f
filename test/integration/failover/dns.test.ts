/**
 * DNS from the practice's point of view, in the namespace lab: a LAN PC resolving a name through
 * the appliance's NAT, with no fault and with DNS (UDP/TCP 53) dropped upstream of the primary
 * while everything else on that line is fine. Root only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deriveState } from '../../../agent/src/status/state.js';
import type { HealthMap } from '../../../agent/src/core/capability.js';
import { join } from 'node:path';
import { ProcessRunner } from '../../../agent/src/platform/command.js';
import { createLab, LAB, REPO, type LabAgent } from '../../lab/lab.js';
import { requireRoot } from '../../helpers/ctx.js';

const skip = requireRoot();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Up = { name: string; state: string; dns: string; reason: string };
const uplink = (a: LabAgent, name: string) => (a.status()?.capabilities.failover?.details?.uplinks as Up[] | undefined)?.find((u) => u.name === name);
async function until(cond: () => boolean, ms: number, why: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(why());
    await sleep(250);
  }
}

describe('DNS for the LAN in the lab', { skip }, () => {
  const lab = createLab({ prefix: 'dq' });
  let agent: LabAgent;

  before(async () => {
    await lab.up();
    // Display names, as a practice would set them: the words must use them.
    const uplinks = (lab.agentConfig().uplinks as Record<string, unknown>[]).map((u) => ({ ...u, label: u.name === 'wan' ? 'BT broadband' : 'EE 4G' }));
    agent = await lab.startAgent({ config: { uplinks, failover: { holdDownMs: 3000 }, status: { enabled: false } }, cellular: false });
    await agent.waitForLog((e) => typeof e.msg === 'string' && e.msg.startsWith('switched') && e.to === 'wan', 30_000);
  });

  after(async () => {
    await agent?.stop();
    await lab.down();
  });

  it('with no fault a LAN PC behind the NAT resolves names through the internet resolver', async () => {
    for (const name of ['nhs.uk', 'emis.example', 'pharmacy.example']) {
      const r = await lab.lanResolve(name);
      assert.equal(r.ok, true, `${name}: ${r.error}`);
      assert.deepEqual(r.addresses, ['192.0.2.1']);
    }
  });

  it('every lab resolver answers from the address it was asked (else NAT cannot translate the reply)', async () => {
    for (const t of LAB.targets) {
      const r = await lab.lanResolve('nhs.uk', t);
      assert.equal(r.ok, true, `${t}: ${r.error}`);
    }
  });

  it('DNS dropped upstream of the primary, all else fine: reported in words, and the LAN PC still resolves (via 4G)', async () => {
    await until(
      () => uplink(agent, 'wan')?.dns === 'ok',
      10_000,
      () => `wan DNS never ok: ${JSON.stringify(uplink(agent, 'wan'))}`,
    );
    const t0 = Date.now();
    await lab.blockDns('primary');
    // Default policy (onDnsFailure: failover): only the standby resolves, so traffic moves.
    await agent.waitForLog((e) => typeof e.msg === 'string' && e.msg.startsWith('switched wan -> 4g'), 15_000);
    const detect = Date.now() - t0;
    await until(
      () => uplink(agent, 'wan')?.dns === 'failing',
      5000,
      () => JSON.stringify(uplink(agent, 'wan')),
    );
    const wan = uplink(agent, 'wan')!;
    assert.equal(wan.state, 'degraded', 'the line still carries packets');
    assert.match(wan.reason, /^DNS not answering on BT broadband \(every DNS target failed 12\+ probes in a row\); 3\/4 targets answering/);
    const caps = agent.status()!.capabilities as unknown as HealthMap;
    const lines = (caps.failover!.details!.lines ?? []).join('\n');
    assert.match(lines, /wan "BT broadband" \(wired, wan0\): degraded .* - DNS not answering on BT broadband/);
    // Right after the switch the snapshot may still carry the switch's own reason; either says why in words.
    assert.match(
      lines,
      /active: 4g since \d+ s ago - (on 4g; DNS not answering on wan: no failback until it answers|DNS not answering on wan \(4g is up and resolves\))/,
    );
    const page = deriveState(caps, (t) => new Date(t).toISOString().slice(11, 16));
    assert.ok(page.notes.includes('DNS not answering on BT broadband'), page.notes.join(' | '));
    // The practice's point of view: 5 of 5 names resolve.
    let ok = 0;
    for (const name of ['nhs.uk', 'a.example', 'b.example', 'c.example', 'd.example']) if ((await lab.lanResolve(name)).ok) ok++;
    assert.equal(ok, 5, 'the LAN PC resolves every name');
    assert.ok(detect < 8000, `failover ${detect} ms after DNS stopped`);
  });

  it('DNS back on the primary: ok again and traffic fails back after the hold-down', async () => {
    await lab.restore('primary');
    await until(
      () => uplink(agent, 'wan')?.dns === 'ok',
      10_000,
      () => JSON.stringify(uplink(agent, 'wan')),
    );
    await agent.waitForLog((e) => typeof e.msg === 'string' && e.msg.startsWith('switched 4g -> wan'), 30_000);
    assert.ok((await lab.lanResolve('nhs.uk')).ok);
  });
});

describe("DNS dropped on the primary with failover.onDnsFailure 'report'", { skip }, () => {
  const lab = createLab({ prefix: 'dr' });
  let agent: LabAgent;
  before(async () => {
    await lab.up();
    agent = await lab.startAgent({ config: { failover: { onDnsFailure: 'report' }, status: { enabled: false } }, cellular: false });
    await agent.waitForLog((e) => typeof e.msg === 'string' && e.msg.startsWith('switched') && e.to === 'wan', 30_000);
  });
  after(async () => {
    await agent?.stop();
    await lab.down();
  });

  it('reports it (degraded, in words) and stays on the primary', async () => {
    await until(
      () => uplink(agent, 'wan')?.dns === 'ok',
      10_000,
      () => JSON.stringify(uplink(agent, 'wan')),
    );
    const t0 = Date.now();
    await lab.blockDns('primary');
    await until(
      () => uplink(agent, 'wan')?.dns === 'failing',
      10_000,
      () => JSON.stringify(uplink(agent, 'wan')),
    );
    const wan = uplink(agent, 'wan')!;
    assert.equal(wan.state, 'degraded');
    assert.match(wan.reason, /^DNS not answering on wan \(every DNS target failed 12\+ probes in a row\); 3\/4 targets answering/);
    await sleep(2000);
    assert.equal(agent.status()!.capabilities.failover!.details!.active, 'wan');
    assert.deepEqual(
      agent.logs.filter((e) => typeof e.msg === 'string' && e.msg.startsWith('switched') && (e.receivedAt as number) >= t0),
      [],
    );
    assert.equal((await lab.lanResolve('nhs.uk')).ok, false, 'as configured: the LAN resolver is not reachable through the primary');
    // For scripts: never "all ok" while the PCs cannot resolve.
    const r = await new ProcessRunner().run(join(REPO, 'agent/bin/surgery-edge'), ['status', '--config', agent.configFile], { allowFailure: true });
    assert.equal(r.code, 3, r.stdout);
    assert.match(r.stdout, /\[WARN\] failover\s+traffic on wan \(wired\); DNS not answering on wan/);
  });
});

describe("the appliance's LAN DNS forwarder follows an uplink that resolves", { skip }, () => {
  const lab = createLab({ prefix: 'df' });
  let agent: LabAgent;
  type Fwd = { listening: string | null; via: string | null; answered: number; failed: number };
  const fwd = () => agent.status()?.capabilities.failover?.details?.dnsForwarder as Fwd | undefined;
  before(async () => {
    await lab.up();
    // Traffic stays on the primary ('report'); only the LAN's lookups move.
    agent = await lab.startAgent({
      config: { failover: { onDnsFailure: 'report', dnsForwarder: { enabled: true, listen: LAB.lanGateway } }, status: { enabled: false } },
      cellular: false,
    });
    await agent.waitForLog((e) => typeof e.msg === 'string' && e.msg.startsWith('switched') && e.to === 'wan', 30_000);
  });
  after(async () => {
    await agent?.stop();
    await lab.down();
  });

  it('answers the LAN through the active uplink, then through 4G while the primary DNS is dropped; traffic stays', async () => {
    await until(
      () => uplink(agent, 'wan')?.dns === 'ok' && uplink(agent, '4g')?.dns === 'ok',
      10_000,
      () => JSON.stringify(agent.status()?.capabilities.failover?.details),
    );
    const r1 = await lab.lanResolve('nhs.uk', LAB.lanGateway);
    assert.equal(r1.ok, true, r1.error);
    assert.deepEqual(r1.addresses, ['192.0.2.1']);
    await until(
      () => fwd()?.via === 'wan' && fwd()!.answered >= 1,
      5000,
      () => JSON.stringify(fwd()),
    );

    await lab.blockDns('primary');
    await until(
      () => uplink(agent, 'wan')?.dns === 'failing',
      10_000,
      () => JSON.stringify(uplink(agent, 'wan')),
    );
    let ok = 0;
    for (const name of ['nhs.uk', 'a.example', 'b.example', 'c.example', 'd.example']) if ((await lab.lanResolve(name, LAB.lanGateway)).ok) ok++;
    assert.equal(ok, 5, 'every lookup through the appliance resolves');
    await until(
      () => fwd()?.via === '4g',
      3000,
      () => JSON.stringify(fwd()),
    );
    assert.equal(agent.status()!.capabilities.failover!.details!.active, 'wan', 'the rest of the traffic stays on the primary');
    assert.equal((await lab.lanResolve('nhs.uk')).ok, false, 'the internet resolver straight through the primary does not answer');
    const lines = (agent.status()!.capabilities.failover!.details!.lines as string[]).join('\n');
    assert.match(lines, /LAN DNS forwarder on 192\.168\.50\.1:53: via 4g \(\d+ answered, 0 failed\)/);
  });

  it('with DNS dropped on both uplinks it answers SERVFAIL at once instead of hanging the PC', async () => {
    await lab.blockDns('cellular');
    const r = await lab.lanResolve('nhs.uk', LAB.lanGateway);
    assert.equal(r.ok, false);
    assert.equal(r.error, 'ESERVFAIL');
    assert.ok(r.ms < 1500 * 2 + 500, `answered in ${r.ms} ms`);
  });
});
