/**
 * DNS from the practice's point of view, in the namespace lab: a LAN PC resolving a name through
 * the appliance's NAT, with no fault and with DNS (UDP/TCP 53) dropped upstream of the primary
 * while everything else on that line is fine. Root only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLab, LAB, type LabAgent } from '../../lab/lab.js';
import { requireRoot } from '../../helpers/ctx.js';

const skip = requireRoot();

describe('DNS for the LAN in the lab', { skip }, () => {
  const lab = createLab({ prefix: 'dq' });
  let agent: LabAgent;

  before(async () => {
    await lab.up();
    agent = await lab.startAgent({ config: { failover: { holdDownMs: 3000 }, status: { enabled: false } }, cellular: false });
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
});
