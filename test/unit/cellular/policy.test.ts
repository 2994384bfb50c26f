import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addrFamily, PolicyApplier, renderPolicy, resolveDestinations, type PolicySpec } from '../../../agent/src/cellular/policy.js';
import { isAppError } from '../../../common/errors.js';
import { FakeRunner } from '../../helpers/fake-runner.js';

const spec = (over: Partial<PolicySpec> = {}): PolicySpec => ({
  iface: 'wwan0',
  nonCritical: 'block',
  rateLimitKbytes: 128,
  allowDns: true,
  critical: [
    { name: 'clinical', addrs: ['10.1.0.0/16', '2001:db8::/32'], protocol: 'tcp', ports: ['443'] },
    { name: 'nhsmail', addrs: ['192.0.2.10'], protocol: 'any', ports: [] },
  ],
  voice: { udpPorts: ['5060', '10000-20000'], tcpPorts: ['5061'] },
  ...over,
});
const lines = (s: string) => s.split('\n').map((l) => l.trim());

describe('4G policy ruleset generator', () => {
  it('replaces its own table atomically in one script', () => {
    const l = lines(renderPolicy(spec()));
    assert.deepEqual(l.slice(0, 3), ['table inet surgery_edge_4g', 'delete table inet surgery_edge_4g', 'table inet surgery_edge_4g {']);
  });

  it('accepts critical destinations both ways before the non-critical verdict', () => {
    const l = lines(renderPolicy(spec()));
    const crit = l.indexOf('oifname "wwan0" ip daddr 10.1.0.0/16 tcp dport 443 counter accept comment "critical clinical"');
    const back = l.indexOf('iifname "wwan0" ip saddr 10.1.0.0/16 tcp sport 443 counter accept comment "critical clinical"');
    const v6 = l.indexOf('oifname "wwan0" ip6 daddr 2001:db8::/32 tcp dport 443 counter accept comment "critical clinical"');
    const mail = l.indexOf('oifname "wwan0" ip daddr 192.0.2.10 counter accept comment "critical nhsmail"');
    const drop = l.indexOf('oifname "wwan0" counter drop comment "non-critical blocked on 4G"');
    for (const i of [crit, back, v6, mail]) assert.ok(i > 0 && i < drop, `critical rule before the drop (${i} < ${drop})`);
  });

  it('renders allow / rate-limit / block', () => {
    const allow = renderPolicy(spec({ nonCritical: 'allow' }));
    assert.doesNotMatch(allow, /drop/);
    const rl = renderPolicy(spec({ nonCritical: 'rate-limit' }));
    assert.match(rl, /oifname "wwan0" limit rate over 128 kbytes\/second counter drop/);
    assert.match(rl, /iifname "wwan0" limit rate over 128 kbytes\/second counter drop/);
    assert.doesNotMatch(rl, /blocked/);
    assert.match(renderPolicy(spec({ allowDns: false, nonCritical: 'block' })), /^(?![\s\S]*dport 53)/);
  });

  it('marks SIP/RTP leaving on 4G as DSCP EF for IPv4 and IPv6', () => {
    const s = renderPolicy(spec());
    assert.match(s, /oifname "wwan0" meta nfproto ipv4 udp dport \{ 5060, 10000-20000 \} ip dscp set ef/);
    assert.match(s, /oifname "wwan0" meta nfproto ipv6 tcp dport 5061 ip6 dscp set ef/);
  });

  it('refuses bad interface names and ports instead of emitting a broken ruleset', () => {
    assert.throws(
      () => renderPolicy(spec({ iface: 'wwan0"; flush ruleset' })),
      (e) => isAppError(e, 'CONFIG_INVALID'),
    );
    assert.throws(
      () => renderPolicy(spec({ voice: { udpPorts: ['70000'], tcpPorts: [] } })),
      (e) => isAppError(e, 'CONFIG_INVALID'),
    );
    assert.throws(
      () => renderPolicy(spec({ voice: { udpPorts: ['20-10'], tcpPorts: [] } })),
      (e) => isAppError(e, 'CONFIG_INVALID'),
    );
  });

  it('skips a destination with no addresses (nft refuses empty sets)', () => {
    const s = renderPolicy(spec({ critical: [{ name: 'gone', addrs: [], protocol: 'any', ports: [] }] }));
    assert.doesNotMatch(s, /critical gone/);
  });
});

describe('destinations', () => {
  it('classifies addresses and CIDRs', () => {
    assert.equal(addrFamily('10.0.0.1'), 4);
    assert.equal(addrFamily('10.0.0.0/8'), 4);
    assert.equal(addrFamily('2001:db8::/32'), 6);
    assert.equal(addrFamily('10.0.0.0/33'), 0);
    assert.equal(addrFamily('nhs.net'), 0);
  });

  it('resolves host names and keeps the last known addresses when DNS fails', async () => {
    const prev = new Map<string, string[]>();
    const list = [
      { name: 'mail', destination: 'mail.example', protocol: 'tcp' as const, ports: ['443'] },
      { name: 'ip', destination: '192.0.2.1', protocol: 'any' as const, ports: [] },
    ];
    const ok = await resolveDestinations(list, async () => ['192.0.2.20', '192.0.2.20', 'garbage'], prev);
    assert.deepEqual(
      ok.resolved.map((d) => d.addrs),
      [['192.0.2.20'], ['192.0.2.1']],
    );
    assert.deepEqual(ok.failures, []);
    const bad = await resolveDestinations(
      list,
      async () => {
        throw new Error('SERVFAIL');
      },
      prev,
    );
    assert.deepEqual(bad.resolved[0]?.addrs, ['192.0.2.20']);
    assert.deepEqual(bad.failures, ['mail']);
  });
});

describe('PolicyApplier', () => {
  it('applies with nft -f - and skips an unchanged ruleset that is still present', async () => {
    let present = false;
    const runner = new FakeRunner().on('nft', (args, input) => {
      if (args[0] === '-f') {
        assert.ok(input?.includes('table inet surgery_edge_4g {'));
        present = true;
        return {};
      }
      return present ? { stdout: 'table inet surgery_edge_4g {\n}\n' } : { code: 1, stderr: 'Error: No such file or directory' };
    });
    const a = new PolicyApplier(runner);
    const s = renderPolicy(spec());
    assert.equal(await a.apply(s), true);
    assert.equal(await a.apply(s), false);
    present = false; // someone ran `nft flush ruleset`
    assert.equal(await a.apply(s), true);
    assert.equal(runner.calls.filter((c) => c.args[0] === '-f').length, 2);
  });
});
