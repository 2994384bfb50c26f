/**
 * DNS from the practice's point of view, in the namespace lab: a LAN PC resolving a name through
 * the appliance's NAT, with no fault and with DNS (UDP/TCP 53) dropped upstream of the primary
 * while everything else on that line is fine. Root only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deriveState } from '../../../agent/src/status/state.js';
import type { Health } from '../../../agent/src/core/capability.js';
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
    await until(() => uplink(agent, 'wan')?.dns === 'ok', 10_000, () => `wan DNS never ok: ${JSON.stringify(uplink(agent, 'wan'))}`);
    const t0 = Date.now();
    await lab.blockDns('primary');
    // Default policy (onDnsFailure: failover): only the standby resolves, so traffic moves.
    await agent.waitForLog((e) => typeof e.msg === 'string' && e.msg.startsWith('switched wan -> 4g'), 15_000);
    const detect = Date.now() - t0;
    await until(() => uplink(agent, 'wan')?.dns === 'failing', 5000, () => JSON.stringify(uplink(agent, 'wan')));
    const wan = uplink(agent, 'wan')!;
    assert.equal(wan.state, 'degraded', 'the line still carries packets');
    assert.match(wan.reason, /^DNS not answering on BT broadband \(every DNS target failed 12\+ probes in a row\); 3\/4 targets answering/);
    const caps = agent.status()!.capabilities as unknown as Record<string, Health>;
    const lines = (caps.failover!.details!.lines as string[]).join('\n');
    assert.match(lines, /wan "BT broadband" \(wired, wan0\): degraded .* - DNS not answering on BT broadband/);
    assert.match(lines, /active: 4g since \d+ s ago - on 4g; DNS not answering on wan: no failback until it answers/);
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
    await until(() => uplink(agent, 'wan')?.dns === 'ok', 10_000, () => JSON.stringify(uplink(agent, 'wan')));
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
    await until(() => uplink(agent, 'wan')?.dns === 'ok', 10_000, () => JSON.stringify(uplink(agent, 'wan')));
    const t0 = Date.now();
    await lab.blockDns('primary');
    await until(() => uplink(agent, 'wan')?.dns === 'failing', 10_000, () => JSON.stringify(uplink(agent, 'wan')));
    const wan = uplink(agent, 'wan')!;
    assert.equal(wan.state, 'degraded');
    assert.match(wan.reason, /^DNS not answering on wan \(every DNS target failed 12\+ probes in a row\); 3\/4 targets answering/);
    await sleep(2000);
    assert.equal(agent.status()!.capabilities.failover!.details!.active, 'wan');
    assert.deepEqual(agent.logs.filter((e) => typeof e.msg === 'string' && e.msg.startsWith('switched') && (e.receivedAt as number) >= t0), []);
    assert.equal((await lab.lanResolve('nhs.uk')).ok, false, 'as configured: the LAN resolver is not reachable through the primary');
    // For scripts: never "all ok" while the PCs cannot resolve.
    const r = await new ProcessRunner().run(join(REPO, 'agent/bin/surgery-edge'), ['status', '--config', agent.configFile], { allowFailure: true });
    assert.equal(r.code, 3, r.stdout);
    assert.match(r.stdout, /\[WARN\] failover\s+traffic on wan \(wired\); DNS not answering on wan/);
  });
});
