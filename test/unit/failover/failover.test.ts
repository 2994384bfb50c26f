import assert from 'node:assert/strict';
import { reported } from '../../helpers/reports.js';
import { CapabilitySet } from '../../../agent/src/core/capability-set.js';
import { afterEach, describe, it } from 'node:test';
import type { Capability, Health } from '../../../agent/src/core/capability.js';
import { FailoverCapability } from '../../../agent/src/failover/failover.js';
import type { Prober, ProbeSource, Target } from '../../../agent/src/uplinks/probes.js';
import { UplinksCapability } from '../../../agent/src/uplinks/uplinks.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeNet } from '../../helpers/fake-net.js';
import { FakeLinkMonitor } from '../../helpers/fake-link-monitor.js';

/** Probes answer from a per-source-address switch the test flips. */
class SwitchProber implements Prober {
  dead = new Set<string>();
  async probe(_t: Target, src: ProbeSource): Promise<{ ok: boolean; rttMs: number }> {
    return { ok: !this.dead.has(src.address), rttMs: 12 };
  }
}

const targets = [1, 2, 3].map((i) => ({ kind: 'tcp', host: `198.51.100.${i}`, port: 80 }));
const config = {
  uplinks: [
    { name: 'wan', interface: 'wan0', kind: 'wired', priority: 1, table: 101, gateway: '10.0.1.1', probes: { intervalMs: 250, timeoutMs: 500, targets } },
    { name: '4g', interface: 'wwan0', kind: 'cellular', priority: 2, table: 102, gateway: '10.0.2.1', probes: { intervalMs: 250, timeoutMs: 500, targets } },
  ],
  failover: { holdDownMs: 5000, maxHoldDownMs: 20_000, reconcileMs: 2000 },
};

function setup(cfg: typeof config = config) {
  const clock = new FakeClock();
  const net = new FakeNet([
    { name: 'wan0', carrier: true, ipv4: ['10.0.1.2'] },
    { name: 'wwan0', carrier: true, ipv4: ['10.0.2.2'] },
  ]);
  const ctx = createTestCtx({ config: cfg, clock, commands: net.runner });
  const prober = new SwitchProber();
  const monitor = new FakeLinkMonitor();
  const uplinks = new UplinksCapability({ prober, monitor });
  const failover = new FailoverCapability();
  const caps: Capability[] = [uplinks, failover];
  ctx.capabilities = new CapabilitySet(caps);
  const switched: string[] = [];
  ctx.bus.on('failover.switched', (e) => switched.push(`${e.kind}:${e.from}->${e.to}`));
  return { clock, net, ctx, prober, monitor, uplinks, failover, switched };
}

let current: TestCtx | undefined;
afterEach(() => current?.cleanup());

describe('failover capability (fake kernel)', () => {
  it('sets up tables, rules and NAT, picks the primary, fails over on blackhole, puts back hand edits, fails back after hold-down', async () => {
    const s = setup();
    current = s.ctx;
    await s.uplinks.start(s.ctx);
    await s.failover.start(s.ctx);
    assert.deepEqual(
      s.net.rules.map((r) => [r.priority, r.src, r.table]),
      [
        [1000, '10.0.1.2', '101'],
        [1001, '10.0.2.2', '102'],
      ],
    );
    assert.equal(s.net.defaultVia('101'), 'wan0');
    assert.equal(s.net.defaultVia('102'), 'wwan0');
    assert.match(s.net.nftTables.get('surgery_edge') ?? '', /ip saddr 192\.168\.50\.0\/24 oifname \{ "wan0", "wwan0" \} masquerade/);
    assert.equal(s.net.defaultVia('main'), undefined, 'nothing proven yet: main table untouched');

    await s.clock.advance(1500);
    assert.deepEqual(s.switched, ['initial:null->wan']);
    assert.equal(s.net.defaultVia('main'), 'wan0');

    s.prober.dead.add('10.0.1.2');
    await s.clock.advance(1000);
    assert.deepEqual(s.switched.slice(1), ['failover:wan->4g']);
    assert.equal(s.net.defaultVia('main'), 'wwan0');
    assert.ok(s.net.conntrackFlushes.includes('-D --reply-dst 10.0.1.2'), 'failed uplink flows flushed');
    assert.ok(!s.net.conntrackFlushes.some((f) => f.includes('10.0.2.2')), 'healthy uplink flows kept');

    // Someone edits the routing by hand: the periodic reconcile puts it back.
    s.net.routes.set('main', [{ dst: 'default', dev: 'wan0', gateway: '10.0.1.1' }]);
    s.net.rules = s.net.rules.filter((r) => r.priority !== 1001);
    s.net.nftTables.delete('surgery_edge');
    await s.clock.advance(2000);
    assert.equal(s.net.defaultVia('main'), 'wwan0');
    assert.ok(s.net.rules.some((r) => r.priority === 1001 && r.src === '10.0.2.2'));
    assert.ok(s.net.nftTables.has('surgery_edge'));

    s.prober.dead.clear();
    await s.clock.advance(4000);
    assert.equal(s.net.defaultVia('main'), 'wwan0', 'still inside the 5 s hold-down');
    const h = reported(s.failover);
    assert.match((h.details!.lines as string[])[0]!, /active: 4g .*wan (answering but not clean|clean for \d+ s of 5 s hold-down)/);
    // Clean = up (not degraded: the loss window must clear, ~5 s) for the 5 s hold-down.
    await s.clock.advance(7000);
    assert.deepEqual(s.switched.slice(2), ['failback:4g->wan']);
    assert.equal(s.net.defaultVia('main'), 'wan0');
    // Failback: LAN flows NATed behind 4G are dropped (they would leave by wan with 4G's address);
    // the appliance's own 4G-sourced flows (its probes) and wan's flows are kept.
    await s.clock.advance(10);
    assert.ok(s.net.conntrackFlushes.includes('-D --reply-dst 10.0.2.2'), '4G LAN flows flushed on failback');
    assert.ok(!s.net.conntrackFlushes.includes('-D --orig-src 10.0.2.2'));
    assert.equal(s.net.conntrackFlushes.filter((f) => f.includes('10.0.1.2')).length, 2, 'wan flushed once, at the failover');
    await s.failover.stop();
    await s.uplinks.stop();
  });

  it('carrier loss counts at once; ip failing is logged and the agent keeps its last good state', async () => {
    const s = setup();
    current = s.ctx;
    await s.uplinks.start(s.ctx);
    await s.failover.start(s.ctx);
    await s.clock.advance(1500);
    assert.equal(s.net.defaultVia('main'), 'wan0');

    s.net.fail.add('ip');
    s.net.links.get('wan0')!.carrier = false;
    s.monitor.emit({ ifname: 'wan0', carrier: false, deleted: false });
    await s.clock.advance(10);
    assert.deepEqual(s.switched.slice(1), ['failover:wan->4g'], 'decided on the carrier event, no probe round needed');
    assert.equal(s.net.defaultVia('main'), 'wan0', 'ip failed: kernel unchanged');
    const err = s.ctx.logged.find((e) => e.level === 'error' && /routing change failed/.test(e.msg));
    assert.ok(err, 'clear error logged');
    assert.match(String(err.error), /Operation not permitted/);
    const h = reported(s.failover);
    assert.equal(h.details!.active, '4g');
    assert.ok((h.details!.lines as string[]).some((l) => /routing errors/.test(l)));

    s.net.fail.delete('ip');
    await s.clock.advance(2000);
    assert.equal(s.net.defaultVia('main'), 'wwan0', 'next reconcile succeeds');
    await s.failover.stop();
    await s.uplinks.stop();
  });

  it('both down: stays on the last uplink, no switch storm; force() and its expiry', async () => {
    const s = setup();
    current = s.ctx;
    await s.uplinks.start(s.ctx);
    await s.failover.start(s.ctx);
    await s.clock.advance(1500);
    s.prober.dead.add('10.0.2.2');
    await s.clock.advance(2000);
    s.prober.dead.add('10.0.1.2');
    await s.clock.advance(30_000);
    assert.deepEqual(s.switched, ['initial:null->wan']);
    assert.equal(reported(s.failover).status, 'failed');
    s.prober.dead.clear();
    await s.clock.advance(1500);
    s.failover.force('4g', 3000);
    await s.clock.advance(10);
    assert.equal(s.switched.at(-1), 'forced:wan->4g');
    assert.equal((reported(s.failover).details!.forced as { uplink: string }).uplink, '4g');
    await s.clock.advance(12_000);
    assert.equal(s.switched.at(-1), 'failback:4g->wan');
    assert.throws(() => s.failover.force('nope', 1000), /no uplink named nope/);
    await s.failover.stop();
    await s.uplinks.stop();
  });

  it('ip and nft printing something that is not their JSON: clear errors, last good state kept', async () => {
    const s = setup();
    current = s.ctx;
    await s.uplinks.start(s.ctx);
    await s.failover.start(s.ctx);
    await s.clock.advance(1500);
    const before = s.uplinks.views().map((u) => [u.name, u.address, u.state]);
    s.net.garbage.add('ip');
    s.net.garbage.add('nft');
    await s.clock.advance(6000);
    assert.deepEqual(
      s.uplinks.views().map((u) => [u.name, u.address, u.state]),
      before,
      'addresses and states kept',
    );
    assert.equal(reported(s.failover).details!.active, 'wan');
    assert.equal(s.net.defaultVia('main'), 'wan0');
    assert.ok(
      s.ctx.logged.some((e) => e.level === 'warn' && /could not read interfaces/.test(e.msg) && /not a JSON array/.test(String(e.message))),
      'ip garbage named',
    );
    assert.ok(
      s.ctx.logged.some((e) => e.level === 'error' && /nat: nft -j list table ip surgery_edge: output is not nft JSON/.test(String(e.error))),
      'nft garbage named',
    );
    assert.deepEqual(s.switched, ['initial:null->wan']);
    await s.failover.stop();
    await s.uplinks.stop();
  });

  it('config order does not decide: the preferred uplink is chosen at boot and its hold-down reported', async () => {
    const s = setup({ ...config, uplinks: [...config.uplinks].reverse() });
    current = s.ctx;
    await s.uplinks.start(s.ctx);
    await s.failover.start(s.ctx);
    await s.clock.advance(1500);
    assert.equal(reported(s.failover).details!.active, 'wan');
    // Two flaps of wan within the hour: its hold-down doubles (5 s -> 10 s); 4G's stays 5 s.
    for (let i = 0; i < 2; i++) {
      s.prober.dead.add('10.0.1.2');
      await s.clock.advance(1500);
      s.prober.dead.clear();
      await s.clock.advance(2000);
    }
    assert.equal(reported(s.failover).details!.holdDownMs, 10_000);
    await s.failover.stop();
    await s.uplinks.stop();
  });

  it('a missing interface: clear errors, the other uplink carries traffic, nothing crashes', async () => {
    const s = setup();
    current = s.ctx;
    s.net.links.delete('wwan0');
    await s.uplinks.start(s.ctx);
    await s.failover.start(s.ctx);
    await s.clock.advance(3000);
    const lte = s.uplinks.views().find((u) => u.name === '4g')!;
    assert.equal(lte.state, 'down');
    assert.match(lte.reason, /interface wwan0 missing/);
    assert.equal(s.net.defaultVia('main'), 'wan0');
    assert.equal(s.net.defaultVia('101'), 'wan0', 'the working uplink was still set up');
    const err = s.ctx.logged.find((e) => e.level === 'error' && /Cannot find device "wwan0"/.test(String(e.error)));
    assert.ok(err, 'ip failure logged with the tool message');
    await s.failover.stop();
    await s.uplinks.stop();
  });
});
