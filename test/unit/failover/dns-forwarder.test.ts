import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pickUplink, servfail } from '../../../agent/src/failover/dns-forwarder.js';
import type { UplinkView } from '../../../agent/src/uplinks/uplinks.js';
import { encodeDnsQuery } from '../../../agent/src/uplinks/probes.js';

const view = (name: string, priority: number, over: Partial<UplinkView> = {}): UplinkView => ({
  name,
  label: name,
  kind: 'wired',
  interface: `${name}0`,
  priority,
  table: 100 + priority,
  gateway: undefined,
  nextHop: 'point-to-point',
  address: `10.0.${priority}.2`,
  carrier: true,
  state: 'up',
  since: 0,
  reason: '',
  latencyMs: 5,
  lossPct: 0,
  dns: 'ok',
  dnsAnswering: true,
  ...over,
});

describe('LAN DNS forwarder: which uplink a query leaves by', () => {
  it('the active uplink while its DNS is not failing', () => {
    assert.equal(pickUplink([view('wan', 1), view('lte', 2)], 'lte')?.name, 'lte');
    assert.equal(pickUplink([view('wan', 1, { dns: 'unmeasured' }), view('lte', 2)], 'wan')?.name, 'wan');
  });
  it('the preferred uplink whose DNS is ok when the active one is failing', () => {
    const v = [view('wan', 1, { dns: 'failing', state: 'degraded' }), view('wifi', 3), view('lte', 2)];
    assert.equal(pickUplink(v, 'wan')?.name, 'lte');
  });
  it('never an unusable uplink or one without an address; the active one when nothing resolves', () => {
    const v = [view('wan', 1, { dns: 'failing' }), view('lte', 2, { state: 'down' }), view('wifi', 3, { address: null })];
    assert.equal(pickUplink(v, 'wan')?.name, 'wan');
    assert.equal(pickUplink([view('wan', 1, { state: 'down' })], 'wan'), undefined);
  });
  it('SERVFAIL keeps the id and question, sets QR and RCODE 2, no records', () => {
    const q = encodeDnsQuery(0x1234, 'nhs.uk');
    const r = servfail(q);
    assert.equal(r.readUInt16BE(0), 0x1234);
    assert.equal(r[2]! & 0x80, 0x80);
    assert.equal(r[3]! & 0x0f, 2);
    assert.equal(r.readUInt16BE(4), 1);
    assert.equal(r.readUInt16BE(6), 0);
    assert.deepEqual(r.subarray(12), q.subarray(12));
  });
});
