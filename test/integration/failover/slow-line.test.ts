/**
 * A slow primary in the namespace lab: +500 ms on every round trip through the primary ISP, no
 * loss (a userspace TUN delay line; this kernel has no netem). The appliance must report it as
 * slow with its latency, not as loss, and must not fail over. Root only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLab, LAB, type LabAgent } from '../../lab/lab.js';
import { requireRoot } from '../../helpers/ctx.js';

const skip = requireRoot();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Up = { name: string; state: string; latencyMs: number | null; lossPct: number | null; reason: string };

/** Mean ping round trip from the appliance through one uplink (ping -I <uplink address>). */
async function pingRtt(lab: ReturnType<typeof createLab>, from: string): Promise<number> {
  const r = await lab.exec(lab.ns.app, 'ping', ['-n', '-q', '-c', '3', '-i', '0.2', '-W', '3', '-I', from, LAB.targets[0]]);
  const m = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  assert.ok(m, r.stdout);
  return Number(m[1]);
}

describe('slow primary (+500 ms, no loss) in the lab', { skip }, () => {
  const lab = createLab({ prefix: 'dz' });
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

  it('the delay line really adds 500 ms per round trip on the primary only', async () => {
    const before = await pingRtt(lab, LAB.wan);
    await lab.delay('primary', 500);
    const slow = await pingRtt(lab, LAB.wan);
    const other = await pingRtt(lab, LAB.wwan);
    assert.ok(before < 50, `baseline ${before} ms`);
    assert.ok(slow >= 500 && slow < 650, `with the delay line ${slow} ms`);
    assert.ok(other < 50, `4G unaffected: ${other} ms`);
  });

  it('the appliance reports slow with the latency, 0% loss, and no failover; the LAN still works', async () => {
    const t0 = Date.now();
    let wan: Up | undefined;
    for (let i = 0; i < 40; i++) {
      await sleep(500);
      wan = (agent.status()?.capabilities.failover?.details?.uplinks as Up[] | undefined)?.find((u) => u.name === 'wan');
      if (wan?.state === 'slow' && wan.lossPct === 0) break;
    }
    assert.equal(wan?.state, 'slow', JSON.stringify(wan));
    // Let the whole probe window (20 samples at 250 ms) fill with slow answers.
    await sleep(6000);
    const h = agent.status()!.capabilities.failover!;
    wan = (h.details!.uplinks as Up[]).find((u) => u.name === 'wan')!;
    assert.equal(wan.state, 'slow', wan.reason);
    assert.equal(wan.lossPct, 0, `late answers are latency, not loss: ${wan.reason}`);
    assert.ok(wan.latencyMs! >= 500, `latency ${wan.latencyMs}`);
    assert.match(wan.reason, /slow: round trip \d+ ms \(too slow at 400 ms or more\)/);
    assert.equal(h.details!.active, 'wan');
    const switches = agent.logs.filter((e) => typeof e.msg === 'string' && e.msg.startsWith('switched') && (e.receivedAt as number) >= t0);
    assert.deepEqual(switches, [], 'no failover on a line that is merely slow');
    const lines = (h.details!.lines as string[]).join('\n');
    assert.match(lines, /\* wan \(wired, wan0\): slow for \d+ s \[\d+(\.\d)? ms, 0% loss\]/);
    // A LAN PC still gets through the primary, just slowly.
    const client = await lab.startClient({ intervalMs: 300, timeoutMs: 3000 });
    try {
      const r = await client.waitFor((x) => x.ok, 15_000);
      assert.equal(r.via, LAB.wan);
      assert.ok(r.end - r.start >= 900, `a new connection + request takes two slow round trips: ${r.end - r.start} ms`);
    } finally {
      await client.stop();
    }
  });

  it('delay removed: back to up', async () => {
    await lab.restore('primary');
    for (let i = 0; i < 40; i++) {
      await sleep(500);
      const wan = (agent.status()?.capabilities.failover?.details?.uplinks as Up[] | undefined)?.find((u) => u.name === 'wan');
      if (wan?.state === 'up') return;
    }
    assert.fail('wan never back to up after the delay was removed');
  });
});
