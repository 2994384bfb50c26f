import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { cycleStartFor, UsageMeter } from '../../../agent/src/cellular/usage.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const MB = 1_000_000;

describe('billing cycle', () => {
  it('starts on billingDay at 00:00 UTC, previous month before that day', () => {
    assert.equal(cycleStartFor(Date.parse('2026-11-27T09:00:00Z'), 1), Date.parse('2026-11-01T00:00:00Z'));
    assert.equal(cycleStartFor(Date.parse('2026-11-27T09:00:00Z'), 28), Date.parse('2026-10-28T00:00:00Z'));
    assert.equal(cycleStartFor(Date.parse('2026-01-03T00:00:00Z'), 15), Date.parse('2025-12-15T00:00:00Z'));
    assert.equal(cycleStartFor(Date.parse('2026-03-15T00:00:00Z'), 15), Date.parse('2026-03-15T00:00:00Z'));
  });
});

describe('UsageMeter', () => {
  let ctx: TestCtx;
  let clock: FakeClock;
  let meter: UsageMeter;
  const setCounters = (iface: string, rx: number, tx: number) => {
    const dir = ctx.platform.hostPath(`/sys/class/net/${iface}/statistics`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'rx_bytes'), `${rx}\n`);
    writeFileSync(join(dir, 'tx_bytes'), `${tx}\n`);
  };
  const make = () => {
    meter = new UsageMeter(ctx.db, ctx.platform.hostPath, clock, ctx.bus, { allowanceBytes: 100 * MB, billingDay: 28 });
    meter.init();
  };

  beforeEach(() => {
    clock = new FakeClock(Date.parse('2026-11-27T09:00:00Z'));
    ctx = createTestCtx({ clock });
    make();
  });
  afterEach(() => ctx.cleanup());

  it('takes the first reading as a baseline and counts deltas after it', () => {
    setCounters('wwan0', 5 * MB, 1 * MB);
    assert.equal(meter.sample('wwan0'), true);
    assert.equal(meter.snapshot().usedBytes, 0);
    setCounters('wwan0', 8 * MB, 2 * MB);
    meter.sample('wwan0');
    assert.equal(meter.snapshot().usedBytes, 4 * MB);
    assert.equal(meter.snapshot().usedPct, 4);
    assert.equal(meter.snapshot().cycleStart, Date.parse('2026-10-28T00:00:00Z'));
  });

  it('tolerates a counter reset (reboot / modem re-created wwan0) without losing or double counting', () => {
    setCounters('wwan0', 50 * MB, 0);
    meter.sample('wwan0');
    setCounters('wwan0', 60 * MB, 0);
    meter.sample('wwan0'); // +10
    setCounters('wwan0', 3 * MB, 1 * MB); // reset, then 4 MB of new traffic
    meter.sample('wwan0');
    assert.equal(meter.snapshot().usedBytes, 14 * MB);
  });

  it('survives an agent restart (state in the db) and a vanished interface', () => {
    setCounters('wwan0', 0, 0);
    meter.sample('wwan0');
    setCounters('wwan0', 7 * MB, 0);
    meter.sample('wwan0');
    make(); // a new meter on the same db, as after an agent restart
    setCounters('wwan0', 9 * MB, 0);
    meter.sample('wwan0');
    assert.equal(meter.snapshot().usedBytes, 9 * MB);
    rmSync(ctx.platform.hostPath('/sys/class/net/wwan0'), { recursive: true });
    assert.equal(meter.sample('wwan0'), false);
    assert.equal(meter.snapshot().usedBytes, 9 * MB);
  });

  it('fires 75/95/100% once each per cycle and again in the next cycle', async () => {
    const seen: number[] = [];
    ctx.bus.on('cellular.usage-threshold', (e) => seen.push(e.pct));
    setCounters('wwan0', 0, 0);
    meter.sample('wwan0');
    setCounters('wwan0', 74 * MB, 0);
    meter.sample('wwan0');
    assert.deepEqual(seen, []);
    setCounters('wwan0', 80 * MB, 0);
    meter.sample('wwan0');
    meter.sample('wwan0');
    assert.deepEqual(seen, [75]);
    setCounters('wwan0', 120 * MB, 0); // jumps past 95 and 100 in one sample: both fire, in order
    meter.sample('wwan0');
    assert.deepEqual(seen, [75, 95, 100]);
    make(); // restart must not repeat them
    setCounters('wwan0', 121 * MB, 0);
    meter.sample('wwan0');
    assert.deepEqual(seen, [75, 95, 100]);

    await clock.advance(Date.parse('2026-11-28T00:00:01Z') - clock.now()); // next cycle
    setCounters('wwan0', 121 * MB, 0);
    meter.sample('wwan0');
    assert.equal(meter.snapshot().usedBytes, 0);
    assert.equal(meter.snapshot().cycleStart, Date.parse('2026-11-28T00:00:00Z'));
    setCounters('wwan0', 217 * MB, 0); // 96 MB into the new cycle
    meter.sample('wwan0');
    assert.deepEqual(seen, [75, 95, 100, 75, 95]);
  });
});
