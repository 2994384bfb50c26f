import assert from 'node:assert/strict';
import { reported } from '../../helpers/reports.js';
import { CapabilitySet } from '../../../agent/src/core/capability-set.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type { Capability, Health } from '../../../agent/src/core/capability.js';
import { FailoverCapability } from '../../../agent/src/failover/failover.js';
import { IpAdapter } from '../../../agent/src/platform/ip.js';
import { kernelGateway, parseLease, resolveNextHop } from '../../../agent/src/uplinks/next-hop.js';
import type { Prober } from '../../../agent/src/uplinks/probes.js';
import { UplinksCapability } from '../../../agent/src/uplinks/uplinks.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeNet } from '../../helpers/fake-net.js';
import { FakeLinkMonitor } from '../../helpers/fake-link-monitor.js';

const targets = [1, 2, 3].map((i) => ({ kind: 'tcp', host: `198.51.100.${i}`, port: 80 }));
const probes = { intervalMs: 250, timeoutMs: 500, targets };
const okProber: Prober = { probe: async () => ({ ok: true, rttMs: 10 }) };

/** No `gateway` in the config: wan0 is Ethernet behind the practice router (DHCP), wwan0 raw-IP. */
function setup(opts: { dhcpRoute?: boolean } = {}) {
  const clock = new FakeClock();
  const net = new FakeNet([
    { name: 'wan0', carrier: true, ipv4: ['192.168.1.20'] },
    { name: 'wwan0', carrier: true, ipv4: ['10.64.23.17'], pointToPoint: true },
  ]);
  if (opts.dhcpRoute !== false) net.routes.set('main', [{ dst: 'default', gateway: '192.168.1.1', dev: 'wan0', metric: 100, protocol: 'dhcp' }]);
  const config = {
    uplinks: [
      { name: 'wan', interface: 'wan0', kind: 'wired', priority: 1, table: 101, probes },
      { name: '4g', interface: 'wwan0', kind: 'cellular', priority: 2, table: 102, probes },
    ],
    failover: { holdDownMs: 5000, reconcileMs: 2000 },
  };
  const ctx = createTestCtx({ config, clock, commands: net.runner });
  const uplinks = new UplinksCapability({ prober: okProber, monitor: new FakeLinkMonitor() });
  const failover = new FailoverCapability();
  const caps: Capability[] = [uplinks, failover];
  ctx.capabilities = new CapabilitySet(caps);
  return { clock, net, ctx, uplinks, failover };
}

let current: TestCtx | undefined;
afterEach(() => current?.cleanup());

describe('next hop discovery (no configured gateway)', () => {
  it("reads real `ip -j` shapes: point-to-point flags and every table's default routes", async () => {
    const net = new FakeNet([
      { name: 'wan0', carrier: true, ipv4: ['192.168.1.20'] },
      { name: 'wwan0', carrier: true, ipv4: ['10.64.23.17'], pointToPoint: true },
    ]);
    net.routes.set('main', [{ dst: 'default', gateway: '192.168.1.1', dev: 'wan0', metric: 100, protocol: 'dhcp' }]);
    net.routes.set('101', [{ dst: 'default', gateway: '192.168.1.99', dev: 'wan0' }]);
    const ip = new IpAdapter(net.runner);
    const ifs = await ip.interfaces();
    assert.equal(ifs.get('wan0')!.pointToPoint, false);
    assert.equal(ifs.get('wwan0')!.pointToPoint, true);
    const routes = await ip.allDefaultRoutes();
    assert.equal(kernelGateway(routes, 'wan0', new Set(['101', '102'])), '192.168.1.1', 'our own table is not a source');
    assert.equal(kernelGateway(routes, 'wan0', new Set()), '192.168.1.1', 'main wins over other tables');
    assert.equal(kernelGateway(routes, 'wwan0', new Set()), undefined);
  });

  it('keeps a learnt router when the kernel no longer shows it; an unreadable route list changes nothing', () => {
    const info = { name: 'wan0', adminUp: true, carrier: true, ipv4: ['192.168.1.20'], ifindex: 2, pointToPoint: false };
    const prev = { gateway: '192.168.1.1', source: 'kernel' as const };
    assert.deepEqual(
      resolveNextHop(undefined, info, [{ dst: 'default', dev: 'wwan0' }], new Set(), () => undefined, prev),
      { gateway: '192.168.1.1', source: 'remembered' },
    );
    assert.deepEqual(
      resolveNextHop(undefined, info, [], new Set(), () => undefined, undefined),
      { gateway: undefined, source: 'unknown' },
    );
    assert.deepEqual(
      resolveNextHop('10.0.0.1', info, [], new Set(), () => undefined, undefined),
      { gateway: '10.0.0.1', source: 'config' },
    );
    assert.deepEqual(
      resolveNextHop(undefined, { ...info, pointToPoint: true }, [], new Set(), () => '1.2.3.4', prev),
      { gateway: undefined, source: 'point-to-point' },
    );
  });

  it('parses systemd-networkd and dhclient leases (the newest dhclient lease wins)', () => {
    assert.equal(parseLease('# This is private data.\nADDRESS=192.168.1.20\nNETMASK=255.255.255.0\nROUTER=192.168.1.254\n'), '192.168.1.254');
    const dhclient = 'lease {\n  interface "wan0";\n  option routers 192.168.1.1;\n}\nlease {\n  interface "wan0";\n  option routers 192.168.1.2;\n}\n';
    assert.equal(parseLease(dhclient), '192.168.1.2');
    assert.equal(parseLease('option routers 999.1.1.1;'), undefined);
  });

  it('wired WAN behind a DHCP router: tables and main default go via the learnt router; raw-IP wwan is bound to the interface', async () => {
    const s = setup();
    current = s.ctx;
    await s.uplinks.start(s.ctx);
    await s.failover.start(s.ctx);
    const v = s.uplinks.views();
    assert.deepEqual(
      v.map((u) => [u.name, u.gateway, u.nextHop]),
      [
        ['wan', '192.168.1.1', 'kernel'],
        ['4g', undefined, 'point-to-point'],
      ],
    );
    assert.deepEqual(s.net.routes.get('101'), [{ dst: 'default', dev: 'wan0', gateway: '192.168.1.1', flags: ['onlink'] }]);
    assert.deepEqual(s.net.routes.get('102'), [{ dst: 'default', dev: 'wwan0' }]);
    await s.clock.advance(1500);
    const main = s.net.routes.get('main')!.find((r) => !r.metric);
    assert.deepEqual(main, { dst: 'default', dev: 'wan0', gateway: '192.168.1.1', flags: ['onlink'] });
    assert.ok(
      s.net.routes.get('main')!.some((r) => r.metric === 100),
      "the DHCP client's own route is left alone",
    );

    // The DHCP route vanishes: the learnt router is kept (and main is put back via it).
    s.net.routes.set('main', [{ dst: 'default', dev: 'wwan0' }]);
    await s.clock.advance(2500);
    assert.equal(s.uplinks.views()[0]!.gateway, '192.168.1.1');
    assert.equal(s.net.routes.get('101')![0]!.gateway, '192.168.1.1');
    // A renew brings a new router: tables follow.
    s.net.routes.get('main')!.push({ dst: 'default', gateway: '192.168.1.254', dev: 'wan0', metric: 100, protocol: 'dhcp' });
    await s.clock.advance(3000);
    assert.equal(s.net.routes.get('101')![0]!.gateway, '192.168.1.254');
    await s.failover.stop();
    await s.uplinks.stop();
  });

  it('falls back to the DHCP lease file; with neither route nor lease a broadcast link gets no route and a clear error', async () => {
    const s = setup({ dhcpRoute: false });
    current = s.ctx;
    // The address arrives after the first look (DHCP still running): the reason must still say why.
    const wanAddr = s.net.links.get('wan0')!.ipv4.splice(0);
    await s.uplinks.start(s.ctx);
    s.net.links.get('wan0')!.ipv4.push(...wanAddr);
    await s.failover.start(s.ctx);
    await s.clock.advance(3500); // past the boot grace for the preferred (unknown) wan
    assert.equal(s.uplinks.views()[0]!.nextHop, 'unknown');
    assert.deepEqual([s.uplinks.views()[0]!.state, s.uplinks.views()[0]!.reason], ['unknown', 'no next hop on wan0'], 'not probed, and says why');
    assert.equal(s.net.routes.get('101'), undefined, 'no interface-only route on a broadcast link');
    assert.ok(s.ctx.logged.some((e) => e.level === 'error' && /no next hop on wan0/.test(e.msg)));
    assert.equal(reported(s.failover).details!.active, '4g', 'the uplink with a route carries traffic');

    const leases = s.ctx.platform.hostPath('/var/lib/dhcp');
    mkdirSync(leases, { recursive: true });
    writeFileSync(join(leases, 'dhclient.wan0.leases'), 'lease {\n  interface "wan0";\n  fixed-address 192.168.1.20;\n  option routers 192.168.1.1;\n}\n');
    await s.clock.advance(2500);
    assert.deepEqual([s.uplinks.views()[0]!.gateway, s.uplinks.views()[0]!.nextHop], ['192.168.1.1', 'lease']);
    assert.equal(s.net.routes.get('101')?.[0]?.gateway, '192.168.1.1');
    await s.failover.stop();
    await s.uplinks.stop();
  });
});
