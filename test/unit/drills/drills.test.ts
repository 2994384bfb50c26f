process.env.TZ = 'Europe/London';
import assert from 'node:assert/strict';
import { reported } from '../../helpers/reports.js';
import { describe, it } from 'node:test';
import { DrillsCapability } from '../../../agent/src/drills/drills.js';
import { nextLocalTimeAt } from '../../../common/local-time.js';
import type { DrillStep } from '../../../agent/src/core/capability.js';
import { createTestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeCap, registry } from '../status/fixtures.js';

const step = (name: string, passed: boolean, detail = passed ? 'ok' : 'no reply', figures?: Record<string, number>): DrillStep => ({
  name,
  run: async () => ({ passed, detail, ...(figures ? { figures } : {}) }),
});
const ok = { status: 'ok' as const, summary: 'ok' };

function setup(steps: Record<string, DrillStep[]>, config: Record<string, unknown> = {}) {
  const clock = new FakeClock();
  const ctx = createTestCtx({ clock, config });
  const drills = new DrillsCapability();
  const caps = [...Object.entries(steps).map(([n, s]) => new FakeCap(n, ok, s)), drills];
  ctx.capabilities = registry(caps);
  return { ctx, clock, drills };
}

describe('drill runner', () => {
  it('passes when every step passes; stores, emits drill.completed with figures', async () => {
    const { ctx, drills } = setup({
      failover: [step('lte end-to-end', true, '5/5 probes answered', { rttMs: 48 })],
      records: [step('records cache freshness', true)],
    });
    try {
      await drills.start(ctx);
      const events: unknown[] = [];
      ctx.bus.on('drill.completed', (e) => events.push(e));
      const r = await drills.runNow('manual');
      assert.equal(r.passed, true);
      assert.deepEqual(
        r.steps.map((s) => s.name),
        ['lte end-to-end', 'records cache freshness'],
      );
      assert.equal(r.steps[0]!.figures?.rttMs, 48);
      assert.equal(events.length, 1);
      assert.equal(drills.history(5)[0]!.id, r.id);
      assert.equal(drills.history(5)[0]!.trigger, 'manual');
      assert.equal(reported(drills).status, 'ok');
    } finally {
      ctx.cleanup();
    }
  });

  it('fails naming the failed step; a throwing step fails with its error; health says which', async () => {
    const boom: DrillStep = { name: 'wifi end-to-end', run: async () => Promise.reject(new Error('interface wlan0 missing')) };
    const { ctx, drills } = setup({
      failover: [step('lte end-to-end', false, '0/5 probes answered via table 102')],
      wifi: [boom],
      records: [step('records cache freshness', true)],
    });
    try {
      await drills.start(ctx);
      const r = await drills.runNow('remote');
      assert.equal(r.passed, false);
      assert.deepEqual(
        r.steps.filter((s) => !s.passed).map((s) => s.name),
        ['lte end-to-end', 'wifi end-to-end'],
      );
      assert.equal(r.steps[1]!.detail, 'interface wlan0 missing');
      assert.equal(r.steps[2]!.passed, true, 'later steps still run');
      const h = reported(drills);
      assert.equal(h.status, 'degraded');
      assert.equal(h.summary, 'last drill FAILED: lte end-to-end');
    } finally {
      ctx.cleanup();
    }
  });

  it('a step that hangs fails at the step timeout', async () => {
    const hang: DrillStep = { name: 'hangs', run: () => new Promise(() => {}) };
    const { ctx, clock, drills } = setup({ failover: [hang] }, { status: { drills: { stepTimeoutMs: 5000 } } });
    try {
      await drills.start(ctx);
      const p = drills.runNow('manual');
      assert.equal(drills.runNow('manual'), p, 'no concurrent drills');
      await clock.advance(5000);
      const r = await p;
      assert.equal(r.passed, false);
      assert.match(r.steps[0]!.detail, /timed out after 5 s/);
    } finally {
      ctx.cleanup();
    }
  });

  it('no steps at all is a failure, not a silent pass', async () => {
    const { ctx, drills } = setup({});
    try {
      await drills.start(ctx);
      const r = await drills.runNow('manual');
      assert.equal(r.passed, false);
      assert.match(r.steps[0]!.detail, /nothing was proven/);
    } finally {
      ctx.cleanup();
    }
  });

  it('results survive a restart (state db)', async () => {
    const { ctx, drills } = setup({ failover: [step('lte end-to-end', true)] });
    try {
      await drills.start(ctx);
      const r = await drills.runNow('manual');
      await drills.stop();
      const again = new DrillsCapability();
      await again.start(ctx);
      assert.equal((reported(again).details as { last: { id: string } }).last.id, r.id);
    } finally {
      ctx.cleanup();
    }
  });
});

describe('drill schedule', () => {
  it('next Sunday 06:30 local, across the clocks changing', () => {
    // Friday 27 Nov 2026 09:00 GMT -> Sunday 29 Nov 06:30 GMT.
    assert.equal(new Date(nextLocalTimeAt(Date.parse('2026-11-27T09:00:00Z'), 0, '06:30')).toISOString(), '2026-11-29T06:30:00.000Z');
    // Sunday 06:30 itself -> the following Sunday.
    assert.equal(new Date(nextLocalTimeAt(Date.parse('2026-11-29T06:30:00Z'), 0, '06:30')).toISOString(), '2026-12-06T06:30:00.000Z');
    // Summer time: 06:30 BST is 05:30 UTC.
    assert.equal(new Date(nextLocalTimeAt(Date.parse('2026-06-01T12:00:00Z'), 0, '06:30')).toISOString(), '2026-06-07T05:30:00.000Z');
    // Daily.
    assert.equal(new Date(nextLocalTimeAt(Date.parse('2026-11-27T09:00:00Z'), -1, '06:30')).toISOString(), '2026-11-28T06:30:00.000Z');
  });

  it('runs the scheduled drill at the quiet time, once', async () => {
    const { ctx, clock, drills } = setup({ failover: [step('lte end-to-end', true)] });
    try {
      await drills.start(ctx);
      const due = (reported(drills).details as { next: number }).next;
      assert.equal(new Date(due).toISOString(), '2026-11-29T06:30:00.000Z');
      const done = ctx.bus.waitFor('drill.completed', () => true, 5000);
      await clock.advance(due - clock.now() - 1000);
      assert.equal(drills.history(5).length, 0, 'not early');
      await clock.advance(1000);
      await done;
      await clock.advance(3600_000);
      assert.equal(drills.history(5).length, 1);
      assert.equal(drills.history(5)[0]!.trigger, 'schedule');
      assert.equal(new Date((reported(drills).details as { next: number }).next).toISOString(), '2026-12-06T06:30:00.000Z');
    } finally {
      ctx.cleanup();
    }
  });

  it('a slot missed because the wall clock jumped (no RTC, NTP) is skipped, not run in surgery hours', async () => {
    const { ctx, clock, drills } = setup({ failover: [step('lte end-to-end', true)] });
    try {
      await drills.start(ctx); // Friday 09:00 (stale boot time): next is Sunday 06:30
      // NTP sets the real time: Tuesday 10:00, long past that Sunday slot. Monotonic time barely moved.
      (clock as unknown as { t: number }).t = Date.parse('2026-12-01T10:00:00Z');
      await clock.advance(3600_000);
      assert.equal(drills.history(5).length, 0, 'no drill on Tuesday morning');
      assert.ok(ctx.logged.some((e) => e.msg.startsWith('scheduled drill slot missed')));
      assert.equal(new Date((reported(drills).details as { next: number }).next).toISOString(), '2026-12-06T06:30:00.000Z');
    } finally {
      ctx.cleanup();
    }
  });
});
