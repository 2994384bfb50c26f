import assert from 'node:assert/strict';
import { reported } from '../../helpers/reports.js';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type { EventMap } from '../../../agent/src/core/events.js';
import { isActive, parseDispatcherFlags, parseStats } from '../../../agent/src/telephony/kamcmd.js';
import type { Child, Spawner } from '../../../agent/src/telephony/supervisor.js';
import { TelephonyCapability } from '../../../agent/src/telephony/telephony.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeRunner } from '../../helpers/fake-runner.js';

/** kamcmd's real text output (captured from kamailio 5.6.3), parameterised. */
const dispatcherList = (flags: string) =>
  `{\n\tNRSETS: 1\n\tRECORDS: {\n\t\tSET: {\n\t\t\tID: 1\n\t\t\tTARGETS: {\n` +
  `\t\t\t\tDEST: {\n\t\t\t\t\tURI: sip:192.0.2.10:5060\n\t\t\t\t\tFLAGS: ${flags}\n\t\t\t\t\tPRIORITY: 0\n\t\t\t\t}\n\t\t\t}\n\t\t}\n\t}\n}\n`;
const stats = (reg: number, dlg: number) => `dialog:active_dialogs = ${dlg}\nusrloc:location_contacts = ${reg}\n`;
const shv = (v: number) => `{\n\tname: force_local\n\ttype: int\n\tvalue: ${v}\n}\n`;

class FakeChild implements Child {
  pid = 4242;
  private exitFns: ((c: number | null, s: NodeJS.Signals | null) => void)[] = [];
  kills: string[] = [];
  kill(sig: NodeJS.Signals): boolean {
    this.kills.push(sig);
    this.exit(null, sig);
    return true;
  }
  onExit(fn: (c: number | null, s: NodeJS.Signals | null) => void) {
    this.exitFns.push(fn);
  }
  onLine() {}
  exit(c: number | null, s: NodeJS.Signals | null) {
    for (const f of this.exitFns.splice(0)) f(c, s);
  }
}

function harness(doc: Record<string, unknown> = {}, opts: { kamailio?: boolean; top?: Record<string, unknown> } = {}) {
  const clock = new FakeClock();
  const runner = new FakeRunner();
  const kam = { flags: 'AP', reg: 2, dlg: 0, forceLocal: 0, rpcUp: true };
  if (opts.kamailio !== false) runner.on('kamailio', () => ({ stdout: 'version: kamailio 5.6.3 (x86_64/linux)\n' }));
  runner.on('nft', () => ({}));
  runner.on('kamcmd', (args) => {
    if (!kam.rpcUp) return { code: 255, stderr: 'ERROR: connecting to unix socket: No such file or directory\n' };
    const cmd = args[2];
    if (cmd === 'dispatcher.list') return { stdout: dispatcherList(kam.flags) };
    if (cmd === 'stats.get_statistics') return { stdout: stats(kam.reg, kam.dlg) };
    if (cmd === 'pv.shvGet') return { stdout: shv(kam.forceLocal) };
    if (cmd === 'pv.shvSet') {
      kam.forceLocal = Number(args[5]);
      return { stdout: '' };
    }
    return { stdout: '' };
  });
  const children: FakeChild[] = [];
  const spawner: Spawner = () => {
    const c = new FakeChild();
    children.push(c);
    return c;
  };
  const ctx = createTestCtx({
    clock,
    commands: runner,
    config: {
      ...opts.top,
      telephony: {
        enabled: true,
        listen: '192.0.2.1',
        pbx: { host: '192.0.2.10' },
        extensions: [{ ext: '1001', password: 'secret-1001' }],
        pollMs: 1000,
        ...doc,
      },
    },
  });
  const cap = new TelephonyCapability({ spawner });
  const events: EventMap['telephony.mode'][] = [];
  ctx.bus.on('telephony.mode', (e) => events.push(e));
  return { clock, runner, kam, ctx, cap, children, events };
}

let ctxs: TestCtx[] = [];
afterEach(() => {
  for (const c of ctxs.splice(0)) c.cleanup();
});

describe('kamcmd output parsing', () => {
  it('reads statistics and dispatcher flags', () => {
    assert.deepEqual(parseStats(stats(3, 1)), { 'dialog:active_dialogs': 1, 'usrloc:location_contacts': 3 });
    assert.equal(parseDispatcherFlags(dispatcherList('IP')), 'IP');
    assert.equal(parseDispatcherFlags('{}'), null);
    assert.equal(isActive('AP'), true);
    assert.equal(isActive('TP'), true, 'trying: below the failure threshold, still routed to');
    assert.equal(isActive('IP'), false);
    assert.equal(isActive('DX'), false);
  });
});

describe('TelephonyCapability', () => {
  it('stays disabled (and starts nothing) by default', async () => {
    const h = harness({ enabled: false });
    ctxs.push(h.ctx);
    await h.cap.start(h.ctx);
    assert.equal(reported(h.cap).status, 'disabled');
    assert.equal(reported(h.cap).details?.mode, 'disabled');
    assert.equal(h.children.length, 0);
    assert.equal(h.runner.calls.length, 0);
  });

  it('is disabled, not failed, when kamailio is not installed', async () => {
    const h = harness({}, { kamailio: false });
    ctxs.push(h.ctx);
    await h.cap.start(h.ctx);
    const hl = reported(h.cap);
    assert.equal(hl.status, 'disabled');
    assert.match(hl.summary, /not installed/);
    assert.equal(h.children.length, 0);
  });

  it('writes a 0600 config, runs kamailio in the foreground, reports cloud mode', async () => {
    const h = harness();
    ctxs.push(h.ctx);
    await h.cap.start(h.ctx);
    const cfg = join(h.cap.dir, 'kamailio.cfg');
    assert.equal(statSync(cfg).mode & 0o777, 0o600);
    assert.ok(!readFileSync(cfg, 'utf8').includes('secret-1001'));
    assert.deepEqual(
      h.runner.callsTo('kamailio').map((c) => c.args[0]),
      ['-v', '-c'],
    );
    assert.equal(h.children.length, 1);
    await h.clock.advance(1000);
    const d = reported(h.cap).details!;
    assert.equal(d.mode, 'cloud');
    assert.equal(d.registered, 2);
    assert.equal(d.pbxReachable, true);
    assert.equal(h.events.at(-1)?.to, 'cloud');
    await h.cap.stop();
    assert.deepEqual(h.children[0]!.kills, ['SIGTERM']);
  });

  it('PBX stops answering OPTIONS -> survivable, with one telephony.mode event; answers again -> cloud', async () => {
    const h = harness();
    ctxs.push(h.ctx);
    await h.cap.start(h.ctx);
    await h.clock.advance(1000);
    h.kam.flags = 'IP';
    h.kam.dlg = 1;
    await h.clock.advance(1000);
    await h.clock.advance(1000);
    assert.equal(reported(h.cap).details?.mode, 'survivable');
    assert.equal(reported(h.cap).status, 'degraded');
    assert.equal(h.events.filter((e) => e.to === 'survivable').length, 1);
    assert.equal(h.events.at(-1)?.callsInProgress, 1);
    const since = reported(h.cap).details?.since;
    h.kam.flags = 'AP';
    await h.clock.advance(1000);
    assert.equal(reported(h.cap).details?.mode, 'cloud');
    assert.ok((reported(h.cap).details?.since as number) > (since as number));
    await h.cap.stop();
  });

  it('no uplink left (failover.switched to null) sets force_local at once; an uplink back clears it', async () => {
    const h = harness();
    ctxs.push(h.ctx);
    await h.cap.start(h.ctx);
    await h.clock.advance(1000);
    h.ctx.bus.emit('failover.switched', { from: 'wan', to: null, kind: 'none-available', reason: 'all down', at: h.clock.now() });
    await h.clock.advance(0);
    assert.equal(h.kam.forceLocal, 1);
    assert.equal(reported(h.cap).details?.mode, 'survivable');
    assert.match(h.events.at(-1)!.reason, /no uplink/);
    h.ctx.bus.emit('failover.switched', { from: null, to: '4g', kind: 'failover', reason: '4g up', at: h.clock.now() });
    await h.clock.advance(0);
    assert.equal(h.kam.forceLocal, 0);
    assert.equal(reported(h.cap).details?.mode, 'cloud');
    await h.cap.stop();
  });

  it('every uplink reported down (failover still naming the last one) also forces local at once', async () => {
    const uplinks = [
      { name: 'wan', interface: 'wan0', kind: 'wired', priority: 1, table: 101 },
      { name: '4g', interface: 'wwan0', kind: 'cellular', priority: 2, table: 102 },
    ];
    const h = harness({}, { top: { uplinks, cellular: { enabled: false } } });
    ctxs.push(h.ctx);
    await h.cap.start(h.ctx);
    await h.clock.advance(1000);
    const names = h.ctx.config.uplinks.map((u) => u.name);
    assert.ok(names.length >= 1, 'the test config has uplinks');
    h.ctx.bus.emit('failover.switched', { from: names[0]!, to: names.at(-1)!, kind: 'failover', reason: 'x', at: h.clock.now() });
    for (const n of names.slice(0, -1)) h.ctx.bus.emit('uplink.changed', { name: n, from: 'up', to: 'down', reason: 'no carrier', at: h.clock.now() });
    await h.clock.advance(0);
    assert.equal(h.kam.forceLocal, 0, 'one uplink still up: not forced');
    h.ctx.bus.emit('uplink.changed', { name: names.at(-1)!, from: 'up', to: 'down', reason: 'no carrier', at: h.clock.now() });
    await h.clock.advance(0);
    assert.equal(h.kam.forceLocal, 1);
    assert.equal(reported(h.cap).details?.mode, 'survivable');
    assert.match(h.events.at(-1)!.reason, /every uplink down/);
    h.ctx.bus.emit('uplink.changed', { name: names[0]!, from: 'down', to: 'up', reason: 'carrier', at: h.clock.now() });
    await h.clock.advance(0);
    assert.equal(h.kam.forceLocal, 0);
    assert.equal(reported(h.cap).details?.mode, 'cloud');
    await h.cap.stop();
  });

  it('kamailio crashes -> down, restarted with backoff, force_local pushed again after the restart', async () => {
    const h = harness({ restart: { initialMs: 1000, maxMs: 8000 } });
    ctxs.push(h.ctx);
    await h.cap.start(h.ctx);
    h.ctx.bus.emit('failover.switched', { from: 'wan', to: null, kind: 'none-available', reason: 'all down', at: h.clock.now() });
    await h.clock.advance(1000);
    h.kam.rpcUp = false;
    h.children[0]!.exit(null, 'SIGSEGV');
    await h.clock.advance(1000);
    assert.equal(reported(h.cap).details?.mode, 'down');
    assert.equal(reported(h.cap).status, 'failed');
    await h.clock.advance(2000);
    assert.equal(h.children.length, 2, 'restarted');
    h.kam.rpcUp = true;
    h.kam.forceLocal = 0; // a fresh kamailio starts with the cfg default
    await h.clock.advance(1000);
    assert.equal(h.kam.forceLocal, 1);
    assert.equal(reported(h.cap).details?.mode, 'survivable');
    assert.equal(reported(h.cap).details?.restarts, 1);
    await h.cap.stop();
  });

  it('a crash loop backs off instead of spinning', async () => {
    const h = harness({ restart: { initialMs: 1000, maxMs: 8000 } });
    ctxs.push(h.ctx);
    await h.cap.start(h.ctx);
    for (let i = 0; i < 6; i++) {
      h.children.at(-1)!.exit(1, null);
      await h.clock.advance(10_000);
    }
    const n = h.children.length;
    h.children.at(-1)!.exit(1, null);
    await h.clock.advance(3000);
    assert.equal(h.children.length, n, 'at the cap the next restart waits more than 3 s');
    await h.cap.stop();
  });
});
