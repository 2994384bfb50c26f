/**
 * The fallback trunk with SIPp stand-ins: 999/112 reach the trunk in every mode (cloud with a PBX
 * that refuses the call, no uplink left, PBX dead), outside numbers go out through the trunk in
 * survivable mode, and an inbound DDI from the trunk rings the hunt group: reception first, the
 * next member when reception does not pick up.
 */
import assert from 'node:assert/strict';
import { reported } from '../../helpers/reports.js';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../helpers/mosquitto.js';
import { call, register, sipSkip, FAST_PROBE, LAB_SIP, StandIns, startLabTelephony, type startTelephony, waitMode } from '../../helpers/sipp.js';

const skip = sipSkip();
const K = LAB_SIP.listen;
const A = '127.0.1.11';
const RECEPTION = '127.0.1.12';
const NURSE = '127.0.1.13';
const PBX = '127.0.0.3';
const TRUNK = '127.0.0.5';
const DDI = '01632960000';

describe('fallback trunk: 999 in every mode, outbound calls, inbound DDI -> hunt group', { skip }, () => {
  let t: Awaited<ReturnType<typeof startTelephony>>;
  const standIns = new StandIns();
  const p: Record<string, number> = {};
  let pbx: ChildProcess;

  before(async () => {
    for (const k of ['k', 'pbx', 'trunk', 'trunkCaller', 'reception', 'away', 'nurse']) p[k] = await freePort();
    // A PBX that is alive (answers OPTIONS) but refuses every call with 503.
    pbx = standIns.start('reject.xml', PBX, p.pbx!, 'pbx');
    standIns.start('handset.xml', TRUNK, p.trunk!, 'trunk');
    standIns.start('handset.xml', RECEPTION, p.reception!, 'reception');
    standIns.start('noanswer.xml', RECEPTION, p.away!, 'reception-away');
    standIns.start('handset.xml', NURSE, p.nurse!, 'nurse');
    await standIns.alive();
    t = await startLabTelephony(p.k!, ['1001', '1002', '1003'], {
      pbx: { host: PBX, port: p.pbx },
      // No separate emergency trunk: the fallback trunk carries 999/112.
      trunk: { host: TRUNK, port: p.trunk },
      huntGroup: { ddis: [DDI], members: ['1002', '1003'], ringMs: 3000 },
      probe: FAST_PROBE,
    });
    await waitMode(t.cap, 'cloud', 8000);
  });
  after(async () => {
    await t?.stop();
    await standIns.killAll();
  });

  const target = () => `${K}:${p.k}`;
  const dial = (to: string, expect: string, holdMs = 100) => call({ target: target(), ip: A, from: '1001', to, password: 'secret-1001', expect, holdMs });
  const fromTrunk = (to: string, expect: string) => call({ target: target(), ip: TRUNK, port: p.trunkCaller, from: '07700900123', to, expect, timeoutS: 12 });
  const reg = (ext: string, ip: string, cport: number, expires = 300) =>
    register({ target: target(), ip, ext, password: `secret-${ext}`, cport, expect: 'appliance', expires });
  // (registrations below all happen in survivable mode: kamailio itself answers them)

  it('cloud mode, PBX refuses the emergency call (503): 999 and 112 fall over to the trunk', async () => {
    const t0 = Date.now();
    assert.equal(await call({ target: target(), ip: A, from: '5555', to: '999', expect: 'trunk' }), 0);
    // Fast: the PBX's 503 triggered the fall-over, not the 3 s no-answer timer.
    assert.ok(Date.now() - t0 < 2500, `999 via the trunk took ${Date.now() - t0} ms`);
    assert.equal(await call({ target: target(), ip: A, from: '5555', to: '112', expect: 'trunk' }), 0);
  });

  it('no uplink left (failover.switched to null): survivable at once, 999 to the trunk', async () => {
    t.ctx.bus.emit('failover.switched', { from: 'wan', to: null, kind: 'none-available', reason: 'test', at: Date.now() });
    await waitMode(t.cap, 'survivable', 2000);
    assert.equal(await call({ target: target(), ip: A, from: '5555', to: '999', expect: 'trunk' }), 0);
    t.ctx.bus.emit('failover.switched', { from: null, to: 'wan', kind: 'failback', reason: 'test', at: Date.now() });
    await waitMode(t.cap, 'cloud', 3000);
  });

  it('cloud mode, PBX alive but silent on the call: 999 goes to the trunk after the 3 s no-answer timer', async () => {
    await standIns.kill(pbx);
    pbx = standIns.start('silent.xml', PBX, p.pbx!, 'pbx');
    await standIns.alive();
    await waitMode(t.cap, 'cloud', 3000);
    const t0 = Date.now();
    assert.equal(await call({ target: target(), ip: A, from: '5555', to: '999', expect: 'trunk', timeoutS: 10 }), 0);
    const ms = Date.now() - t0;
    assert.ok(ms >= 2900 && ms < 6000, `999 reached the trunk after ${ms} ms (3 s timer)`);
    assert.equal(reported(t.cap).details?.mode, 'cloud', 'the PBX kept answering OPTIONS all along');
  });

  it('PBX dead -> survivable: 999 to the trunk; an outside number out through the trunk; a number outside the pattern refused', async () => {
    await standIns.kill(pbx);
    await waitMode(t.cap, 'survivable', 10_000);
    assert.equal(await call({ target: target(), ip: A, from: '5555', to: '112', expect: 'trunk' }), 0);
    assert.equal(await dial('01632960123', 'trunk'), 0);
    assert.notEqual(await call({ target: target(), ip: A, from: '1001', to: '4471', password: 'secret-1001', expect: 'trunk', timeoutS: 4 }), 0);
  });

  it('inbound DDI from the trunk rings reception first', async () => {
    assert.equal(await reg('1002', RECEPTION, p.reception!), 0);
    assert.equal(await reg('1003', NURSE, p.nurse!), 0);
    assert.equal(await fromTrunk(DDI, 'reception'), 0);
  });

  it('reception rings without answering: after ringMs the next member (1003) gets the call', async () => {
    // Reception's phone now only rings (moved away from the desk).
    assert.equal(await reg('1002', RECEPTION, p.reception!, 0), 0);
    assert.equal(await reg('1002', RECEPTION, p.away!), 0);
    const t0 = Date.now();
    assert.equal(await fromTrunk(DDI, 'nurse'), 0);
    assert.ok(Date.now() - t0 >= 2900, `the next member rang only after reception's ringMs (${Date.now() - t0} ms)`);
  });

  it('reception not registered at all: the next member rings at once', async () => {
    assert.equal(await reg('1002', RECEPTION, p.away!, 0), 0);
    const t0 = Date.now();
    assert.equal(await fromTrunk(DDI, 'nurse'), 0);
    assert.ok(Date.now() - t0 < 2500);
  });
});
