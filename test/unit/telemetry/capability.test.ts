import assert from 'node:assert/strict';
import { reported } from '../../helpers/reports.js';
import { afterEach, describe, it } from 'node:test';
import type { Capability, Health } from '../../../agent/src/core/capability.js';
import { HostSystemInfo, parseThrottled } from '../../../agent/src/platform/system-info.js';
import { runCommand, type CommandHost } from '../../../agent/src/telemetry/commands.js';
import { SystemHealthSchema } from '../../../contract/mqtt.js';
import { TelemetryCapability } from '../../../agent/src/telemetry/telemetry.js';
import { Value } from '@sinclair/typebox/value';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeSystemInfo } from '../../helpers/fake-system-info.js';
import { FakeRunner } from '../../helpers/fake-runner.js';

const uplinks = [
  { name: 'wan', interface: 'wan0', kind: 'wired', priority: 1, table: 101 },
  { name: '4g', interface: 'wwan0', kind: 'cellular', priority: 2, table: 102 },
];

function build(extra: Record<string, unknown> = {}) {
  const clock = new FakeClock();
  const ctx = createTestCtx({
    clock,
    config: {
      uplinks,
      // Port 1 on loopback refuses at once: the capability runs "offline" and everything queues.
      telemetry: { enabled: true, brokers: ['mqtt://127.0.0.1:1'], intervalMs: 10_000, cellularIntervalMs: 60_000, backoffInitialMs: 1000, ...extra },
    },
  });
  const sys = new FakeSystemInfo();
  const cap = new TelemetryCapability({ systemInfo: sys });
  (ctx.capabilities.list() as Capability[]).push(cap, {
    name: 'failover',
    start: async () => {},
    stop: async () => {},
    health: (): Health => ({ status: 'ok', summary: 'on wan', details: { active: 'wan', lines: [] } }),
  });
  return { ctx, clock, sys, cap };
}

const rows = (ctx: TestCtx) =>
  ctx.db.prepare('SELECT kind, topic, payload FROM telemetry_outbox ORDER BY seq').all() as { kind: string; topic: string; payload: string }[];

describe('telemetry capability (fake clock, no broker)', () => {
  let ctx: TestCtx | undefined;
  let cap: TelemetryCapability | undefined;
  afterEach(async () => {
    await cap?.stop();
    ctx?.cleanup();
  });

  it('samples system + every capability health on the wired interval, slows to cellularIntervalMs on 4G (cellularReport interval)', async () => {
    const b = build({ cellularReport: 'interval' });
    ({ ctx, cap } = b);
    await cap.start(ctx);
    await b.clock.advance(10_000);
    let tele = rows(ctx).filter((r) => r.kind === 'telemetry');
    assert.equal(tele.length, 1);
    const msg = JSON.parse(tele[0]!.payload);
    assert.equal(tele[0]!.topic, 'surgery-edge/v1/dev-appliance/telemetry');
    assert.equal(msg.activeUplink, 'wan');
    assert.equal(msg.activeKind, 'wired');
    assert.equal(msg.system.cpuTempC, 48.2);
    assert.equal(msg.capabilities.failover.details.active, 'wan');
    assert.equal(msg.capabilities.telemetry.details.connected, false);
    ctx.bus.emit('failover.switched', { from: 'wan', to: '4g', kind: 'failover', reason: 'wan down', at: ctx.clock.now() });
    await b.clock.advance(50_000);
    tele = rows(ctx).filter((r) => r.kind === 'telemetry');
    assert.equal(tele.length, 1, 'no sample 50 s into 4G');
    await b.clock.advance(10_000);
    tele = rows(ctx).filter((r) => r.kind === 'telemetry');
    assert.equal(tele.length, 2);
    const onCell = JSON.parse(tele[1]!.payload);
    assert.equal(onCell.activeKind, 'cellular');
    assert.equal(onCell.capabilities.failover.details.lines, undefined, 'human lines left out on 4G');
    assert.equal(onCell.capabilities.failover.details.active, 'wan');
    assert.equal(reported(cap).details!.intervalMs, 60_000);
    ctx.bus.emit('failover.switched', { from: '4g', to: 'wan', kind: 'failback', reason: 'wan up', at: ctx.clock.now() });
    await b.clock.advance(10_000);
    assert.equal(rows(ctx).filter((r) => r.kind === 'telemetry').length, 3);
  });

  it('on 4G (cellularReport changes): an unchanged box queues no report for 15 min; a change is queued within one check', async () => {
    const b = build({ cellularCheckMs: 10_000, cellularFullEveryMs: 900_000 });
    ({ ctx, cap } = b);
    let records: Health = { status: 'ok', summary: 'cache fresh', details: { stale: false } };
    (ctx.capabilities.list() as Capability[]).push({ name: 'records-ish', start: async () => {}, stop: async () => {}, health: () => records });
    await cap.start(ctx);
    ctx.bus.emit('failover.switched', { from: 'wan', to: '4g', kind: 'failover', reason: 'wan down', at: ctx.clock.now() });
    type Sent = { trigger?: string; changed?: string[]; at: number };
    const tele = () =>
      rows(ctx!)
        .filter((r) => r.kind === 'telemetry')
        .map((r) => JSON.parse(r.payload) as Sent);
    await b.clock.advance(10_000);
    assert.deepEqual(
      tele().map((m) => m.trigger),
      ['change'],
      'the first 4G sample is a full report',
    );
    await b.clock.advance(600_000);
    assert.equal(tele().length, 1, '10 minutes unchanged: nothing more queued (heartbeats go direct, and only when connected)');
    assert.match(reported(cap).details!.lines!.join('\n'), /on 4G: a full report on a meaningful change .* every 15 min, a heartbeat every 60 s/);
    records = { status: 'degraded', summary: 'cache stale', details: { stale: true } };
    const changedAt = ctx.clock.now();
    await b.clock.advance(10_000);
    const last = tele().at(-1)!;
    assert.deepEqual([last.trigger, last.changed, last.at - changedAt <= 10_000], ['change', ['records-ish.status'], true]);
    await b.clock.advance(900_000);
    assert.deepEqual(
      tele().map((m) => m.trigger),
      ['change', 'change', 'refresh'],
      'a full refresh 15 min after the last report',
    );
  });

  it('forwards every bus event with a sortable ULID, raises telemetry.outbox-full at the bound, and reports health per contract', async () => {
    const b = build({ outboxMaxRows: 10 });
    ({ ctx, cap } = b);
    await cap.start(ctx);
    const full: unknown[] = [];
    ctx.bus.on('telemetry.outbox-full', (e) => full.push(e));
    for (let i = 0; i < 12; i++) ctx.bus.emit('uplink.changed', { name: 'wan', from: 'up', to: 'down', reason: `r${i}`, at: ctx.clock.now() });
    const ev = rows(ctx)
      .filter((r) => r.kind === 'event')
      .map((r) => JSON.parse(r.payload));
    assert.ok(ev.length <= 10);
    assert.equal(ev.at(-1).payload.reason, 'r11', 'newest event kept');
    const ids = ev.map((e) => e.id);
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(full.length, 1, 'raised once, not per message');
    assert.ok(
      ev.some((e) => e.name === 'telemetry.outbox-full'),
      'the outbox-full event itself goes to the fleet',
    );
    const h = reported(cap);
    assert.equal(h.status, 'degraded');
    const d = h.details as { connected: boolean; broker: string | null; outboxDepth: number; lastPublishAt: number | null; lines: string[] };
    assert.deepEqual([d.connected, d.broker, d.outboxDepth, d.lastPublishAt], [false, null, 10, null]);
    assert.match(d.lines.join('\n'), /outbox 10 message/);
  });

  it('does nothing when disabled', async () => {
    ctx = createTestCtx();
    cap = new TelemetryCapability({ systemInfo: new FakeSystemInfo() });
    await cap.start(ctx);
    assert.equal(reported(cap).status, 'disabled');
  });
});

describe('telemetry commands', () => {
  const host = (ctx: TestCtx, afters: (() => Promise<void>)[] = []): CommandHost => ({
    ctx,
    handleDesired: async () => ({ status: 'applying' }),
    after: (fn) => afters.push(fn),
  });

  it('runs a drill through the drills capability with trigger remote, and errors without one', async () => {
    const ctx = createTestCtx();
    try {
      const none = await runCommand(host(ctx), Buffer.from('{"command":"drill"}'), 65536, false);
      assert.deepEqual([none.ok, none.error?.code], [false, 'UNAVAILABLE']);
      const triggers: string[] = [];
      (ctx.capabilities.list() as Capability[]).push(
        Object.assign(
          { name: 'drills', start: async () => {}, stop: async () => {}, health: (): Health => ({ status: 'ok', summary: '' }) },
          { runNow: async (t: string) => (triggers.push(t), { id: 'd1', at: 1, passed: true, steps: [] }) },
        ),
      );
      const ok = await runCommand(host(ctx), Buffer.from('{"command":"drill"}'), 65536, false);
      assert.deepEqual([ok.ok, (ok.result as { id: string }).id, triggers], [true, 'd1', ['remote']]);
    } finally {
      ctx.cleanup();
    }
  });

  it('answers reboot first and reboots after; refuses broker-expired and oversized commands', async () => {
    const ctx = createTestCtx();
    try {
      const afters: (() => Promise<void>)[] = [];
      const reasons: string[] = [];
      ctx.control.reboot = async (r) => void reasons.push(r);
      const r = await runCommand(host(ctx, afters), Buffer.from('{"command":"reboot"}'), 65536, false);
      assert.equal(r.ok, true);
      assert.deepEqual(reasons, [], 'not before the response');
      await afters[0]!();
      assert.deepEqual(reasons, ['remote: remote command']);
      assert.match((await runCommand(host(ctx), Buffer.from('{"command":"ping"}'), 65536, true)).error!.message, /expired/);
      assert.match((await runCommand(host(ctx), Buffer.alloc(2000, 32), 1024, false)).error!.message, /exceeds/);
    } finally {
      ctx.cleanup();
    }
  });
});

describe('logs command', () => {
  it('returns the newest entries, trimmed to fit one response', async () => {
    const ctx = createTestCtx();
    try {
      for (let i = 0; i < 500; i++) ctx.logs.push({ time: 't', level: 'warn', ns: 'x', msg: `m${i}`, pad: 'p'.repeat(1000) });
      const host: CommandHost = { ctx, handleDesired: async () => undefined, after: () => {} };
      const r = await runCommand(host, Buffer.from('{"command":"logs","args":{"limit":500}}'), 65536, false);
      const entries = (r.result as { entries: { msg: string }[] }).entries;
      assert.ok(JSON.stringify(r).length < 140 * 1024);
      assert.ok(entries.length > 50 && entries.length < 500);
      assert.equal(entries.at(-1)!.msg, 'm499');
    } finally {
      ctx.cleanup();
    }
  });
});

describe('system info', () => {
  it('parses vcgencmd get_throttled bits', () => {
    assert.deepEqual(parseThrottled('throttled=0x10005\n'), {
      raw: '0x10005',
      underVoltageNow: true,
      throttledNow: true,
      underVoltageSinceBoot: true,
      throttledSinceBoot: false,
    });
    assert.equal(parseThrottled('error'), null);
  });

  it('the real reader (/proc and /sys) and the fake give the same shape', async () => {
    const runner = new FakeRunner();
    const real = await new HostSystemInfo(runner).read();
    assert.ok(Value.Check(SystemHealthSchema, real), JSON.stringify([...Value.Errors(SystemHealthSchema, real)].slice(0, 3)));
    assert.ok(real.uptimeS > 0);
    assert.ok(real.memTotalBytes! > 0);
    assert.ok(Value.Check(SystemHealthSchema, await new FakeSystemInfo().read()));
  });
});
