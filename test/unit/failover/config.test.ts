import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../agent/src/config/load.js';

const uplink = (over: Record<string, unknown> = {}) => ({ name: 'wan', interface: 'wan0', kind: 'wired', priority: 1, table: 101, ...over });
const paths = (doc: unknown) => {
  const r = validateConfig(doc);
  return r.ok ? [] : r.problems.map((p) => p.path);
};

describe('uplink and failover config', () => {
  it('accepts an uplink without a gateway (discovered) and one with an IPv4 gateway', () => {
    const doc = {
      uplinks: [uplink(), uplink({ name: 'wan2', interface: 'eth1', table: 102, priority: 2, gateway: '192.168.1.254' })],
      cellular: { enabled: false },
    };
    assert.deepEqual(paths(doc), []);
  });

  it('refuses, by path, what would reach ip/nft as garbage: a bad gateway, a quoted interface name, a LAN subnet that is not a CIDR', () => {
    const doc = {
      uplinks: [uplink({ gateway: '10.0.0.256' }), uplink({ name: 'b', interface: 'x" } flush', table: 102, priority: 2 })],
      failover: { lan: { subnet: '10.0.0.0/24; flush ruleset' } },
      cellular: { enabled: false },
    };
    assert.deepEqual(paths(doc).sort(), ['/failover/lan/subnet', '/uplinks/0/gateway', '/uplinks/1/interface']);
  });
});
