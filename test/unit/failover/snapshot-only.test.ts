/**
 * Issue 18: failover decides on the uplinks tracker's published `uplinks.snapshot` alone (as mwan3
 * reads mwan3track's state), never by calling into the uplinks capability and never by probing.
 * Here there is no uplinks capability at all: the test publishes the snapshots itself, and the
 * registry throws if anything asks it for `uplinks`.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { UplinkView } from '../../../contract/reports/index.js';
import type { Capability, CapabilityRegistry } from '../../../agent/src/core/capability.js';
import { FailoverCapability } from '../../../agent/src/failover/failover.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeNet } from '../../helpers/fake-net.js';
import { reported } from '../../helpers/reports.js';

const targets = [1, 2, 3].map((i) => ({ kind: 'tcp', host: `198.51.100.${i}`, port: 80 }));
const config = {
  uplinks: [
    { name: 'wan', interface: 'wan0', kind: 'wired', priority: 1, table: 101, gateway: '10.0.1.1', probes: { targets } },
    { name: '4g', interface: 'wwan0', kind: 'cellular', priority: 2, table: 102, gateway: '10.0.2.1', probes: { targets } },
  ],
  failover: { holdDownMs: 5000, maxHoldDownMs: 20_000, reconcileMs: 60_000, bootGraceMs: 0 },
};

function view(name: 'wan' | '4g', patch: Partial<UplinkView>): UplinkView {
  const wan = name === 'wan';
  return {
    name,
    label: name,
    kind: wan ? 'wired' : 'cellular',
    interface: wan ? 'wan0' : 'wwan0',
    priority: wan ? 1 : 2,
    table: wan ? 101 : 102,
    gateway: wan ? '10.0.1.1' : '10.0.2.1',
    nextHop: 'config',
    address: wan ? '10.0.1.2' : '10.0.2.2',
    carrier: true,
    state: 'unknown',
    since: 0,
    reason: 'waiting for probes',
    latencyMs: null,
    lossPct: null,
    dns: 'unmeasured',
    dnsAnswering: null,
    ...patch,
  };
}

function setup() {
  const clock = new FakeClock();
  const net = new FakeNet([
    { name: 'wan0', carrier: true, ipv4: ['10.0.1.2'] },
    { name: 'wwan0', carrier: true, ipv4: ['10.0.2.2'] },
  ]);
  const ctx = createTestCtx({ config, clock, commands: net.runner });
  const failover = new FailoverCapability();
  const asked: string[] = [];
  const registry: CapabilityRegistry = {
    list: () => [failover as Capability],
    get: ((name: string) => {
      asked.push(name);
      if (name === 'uplinks') throw new Error('failover asked the registry for uplinks');
      return undefined;
    }) as CapabilityRegistry['get'],
    health: () => ({}),
  };
  ctx.capabilities = registry;
  const switched: string[] = [];
  ctx.bus.on('failover.switched', (e) => switched.push(`${e.kind}:${e.from}->${e.to}`));
  const publish = (wan: Partial<UplinkView>, lte: Partial<UplinkView>) =>
    ctx.bus.emit('uplinks.snapshot', { at: clock.now(), uplinks: [view('wan', wan), view('4g', lte)] }, { local: true });
  return { clock, net, ctx, failover, asked, switched, publish };
}

let current: TestCtx | undefined;
afterEach(() => current?.cleanup());

describe('failover consumes uplinks.snapshot only', () => {
  it('sets up from the retained snapshot, switches on published states, and never probes or asks for uplinks', async () => {
    const s = setup();
    current = s.ctx;
    // Published before failover starts (the tracker starts first): the bus keeps the last one.
    s.publish({}, { address: null });
    await s.failover.start(s.ctx);
    assert.deepEqual(
      s.net.rules.map((r) => [r.priority, r.src, r.table]),
      [[1000, '10.0.1.2', '101']],
      'rule for the address known at start; none for the 4G without one',
    );
    assert.deepEqual(s.switched, [], 'nothing proven: no switch');

    // The 4G bearer gets its address: its rule follows from the snapshot at once.
    s.publish({}, {});
    await s.clock.advance(10);
    assert.ok(s.net.rules.some((r) => r.priority === 1001 && r.src === '10.0.2.2' && r.table === '102'));

    s.publish({ state: 'up', since: s.clock.now(), latencyMs: 12.34, lossPct: 0 }, { state: 'up', since: s.clock.now() });
    await s.clock.advance(10);
    assert.deepEqual(s.switched, ['initial:null->wan']);
    assert.equal(s.net.defaultVia('main'), 'wan0');
    const h = reported(s.failover);
    assert.equal(h.details!.uplinks.find((u) => u.name === 'wan')!.latencyMs, 12.3, 'figures come from the snapshot');

    // The primary published down: failover acts at once, no timer tick needed.
    s.publish({ state: 'down', since: s.clock.now(), reason: 'all 3 targets failed 3+ probes in a row' }, { state: 'up' });
    await s.clock.advance(1);
    assert.deepEqual(s.switched.slice(1), ['failover:wan->4g']);
    assert.equal(s.net.defaultVia('main'), 'wwan0');
    assert.ok(s.net.conntrackFlushes.includes('-D --reply-dst 10.0.1.2'), 'flows of the failed uplink flushed');
    assert.equal(reported(s.failover).details!.active, '4g');

    // Flap counting comes from the snapshots' transitions: two downs of wan double its hold-down.
    s.publish({ state: 'up', since: s.clock.now() }, { state: 'up' });
    await s.clock.advance(10);
    s.publish({ state: 'down', since: s.clock.now() }, { state: 'up' });
    await s.clock.advance(10);
    assert.equal(reported(s.failover).details!.holdDownMs, 10_000);

    // Nothing published for a while: failover keeps the last snapshot, probes nothing itself.
    await s.clock.advance(30_000);
    assert.equal(reported(s.failover).details!.active, '4g');
    assert.ok(!s.net.runner.calls.some((c) => c.cmd === 'ping'), 'failover never probes');
    assert.ok(!s.asked.includes('uplinks'), `asked the registry for: ${s.asked.join(', ')}`);
    assert.throws(() => s.failover.force('nope', 1000), /no uplink named nope/);
    await s.failover.stop();
  });

  it('a snapshot is local (not for the MQTT outbox) and retained for late subscribers', () => {
    const s = setup();
    current = s.ctx;
    const any: string[] = [];
    s.ctx.bus.onAny((name) => any.push(name));
    s.publish({ state: 'up' }, {});
    assert.deepEqual(any, [], 'onAny (telemetry, status push) does not see snapshots');
    assert.equal(s.ctx.bus.last('uplinks.snapshot')?.uplinks[0]?.state, 'up');
  });
});
