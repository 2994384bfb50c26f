/**
 * One contract, two implementations: the same sequence through IpAdapter / NftAdapter /
 * ConntrackAdapter against the real tools in a scratch namespace and against FakeNet, so the fake
 * the unit tests rely on cannot drift from the real output formats. Root only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ProcessRunner, type CommandRunner, type RunOptions } from '../../../agent/src/platform/command.js';
import { ConntrackAdapter } from '../../../agent/src/platform/conntrack.js';
import { IpAdapter } from '../../../agent/src/platform/ip.js';
import { NftAdapter } from '../../../agent/src/platform/nft.js';
import { requireRoot } from '../../helpers/ctx.js';
import { FakeNet } from '../../helpers/fake-net.js';

const NS = 'lr-contract';
const real = new ProcessRunner();
/** Runs every command inside the scratch namespace. */
const inNs: CommandRunner = { run: (cmd, args, o?: RunOptions) => real.run('ip', ['netns', 'exec', NS, cmd, ...args], o) };

function contract(name: string, runner: () => CommandRunner) {
  it(`${name}: interfaces, tables, rules, nft, conntrack`, async () => {
    const ip = new IpAdapter(runner());
    const ifs = await ip.interfaces();
    const { ifindex, ...wan } = ifs.get('wan0')!;
    assert.deepEqual(wan, { name: 'wan0', adminUp: true, carrier: true, ipv4: ['10.77.0.2'], pointToPoint: false });
    assert.ok(ifindex > 0);
    assert.equal(ifs.get('wwan0')?.carrier, false);
    assert.equal(ifs.get('wwan0')?.pointToPoint, true, 'a /32 (raw-IP style) address is point-to-point');
    assert.deepEqual(await ip.defaultRoutes(150), [], 'a table that does not exist yet is empty');
    await ip.replaceDefault(150, 'wan0', '10.77.0.1');
    await ip.replaceDefault(150, 'wan0', '10.77.0.1');
    const routes = await ip.defaultRoutes(150);
    assert.equal(routes.length, 1, 'replace is idempotent');
    assert.deepEqual([routes[0]!.dst, routes[0]!.gateway, routes[0]!.dev], ['default', '10.77.0.1', 'wan0']);
    // Next-hop discovery reads every table at once; our routes carry `onlink` (ranked last there).
    const all = (await ip.allDefaultRoutes()).filter((r) => r.table === '150');
    assert.deepEqual(
      all.map((r) => [r.dst, r.gateway, r.dev, r.flags]),
      [['default', '10.77.0.1', 'wan0', ['onlink']]],
    );
    await assert.rejects(ip.replaceDefault(151, 'nope0', '10.77.0.1'), /Cannot find device "nope0"/);
    await ip.addRule(1500, '10.77.0.2', 150);
    const rule = (await ip.rules()).find((r) => r.priority === 1500);
    assert.deepEqual([rule?.src, rule?.table], ['10.77.0.2', '150']);
    await ip.deleteRule(1500);
    assert.equal(
      (await ip.rules()).find((r) => r.priority === 1500),
      undefined,
    );

    const nft = new NftAdapter(runner());
    assert.equal(await nft.listTable('ip', 'la_contract'), null);
    await nft.apply(
      'table ip la_contract {\n  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr 192.168.77.0/24 ' +
        'oifname { "wan0" } masquerade comment "se:abc"\n  }\n}\n',
    );
    const items = (await nft.listTable('ip', 'la_contract'))!;
    assert.equal(items.filter((i) => typeof i === 'object' && i !== null && 'rule' in i).length, 1);
    assert.ok(JSON.stringify(items).includes('se:abc'));
    await nft.deleteTable('ip', 'la_contract');

    assert.equal(await new ConntrackAdapter(runner()).flushAddress('10.77.0.2'), 0);
  });
}

describe('platform adapters contract', { skip: requireRoot() }, () => {
  const fake = new FakeNet([
    { name: 'wan0', carrier: true, ipv4: ['10.77.0.2'] },
    { name: 'wwan0', carrier: false, ipv4: ['10.78.0.2'], pointToPoint: true },
  ]);
  before(async () => {
    await real.run('ip', ['netns', 'del', NS], { allowFailure: true });
    await real.run('ip', ['netns', 'add', NS]);
    await real.run('ip', ['-n', NS, 'link', 'add', 'wan0', 'type', 'veth', 'peer', 'name', 'peer0']);
    await real.run('ip', ['-n', NS, 'link', 'add', 'wwan0', 'type', 'veth', 'peer', 'name', 'peer1']);
    for (const d of ['wan0', 'peer0', 'wwan0']) await real.run('ip', ['-n', NS, 'link', 'set', d, 'up']);
    await real.run('ip', ['-n', NS, 'addr', 'add', '10.77.0.2/24', 'dev', 'wan0']);
    await real.run('ip', ['-n', NS, 'addr', 'add', '10.78.0.2/32', 'dev', 'wwan0']);
  });
  after(async () => {
    await real.run('ip', ['netns', 'del', NS], { allowFailure: true });
  });
  contract('real tools', () => inNs);
  contract('FakeNet', () => fake.runner);
});
