/**
 * The uplinks tracker on a fake clock: what it publishes (`uplinks.snapshot`), confirmation
 * probing (issue 20: a silent blackhole proven in about one timeout, without extra traffic for a
 * dead target or false downs on a slower line), and the drill step that proves a standby (moved
 * here from failover, issue 18).
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { UplinksSnapshot } from '../../../agent/src/core/events.js';
import { FakeLinkMonitor } from '../../helpers/fake-link-monitor.js';
import type { LateAnswer, Prober, ProbeResult, ProbeSource, Target } from '../../../agent/src/uplinks/probes.js';
import { UplinksCapability } from '../../../agent/src/uplinks/uplinks.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeNet } from '../../helpers/fake-net.js';

const WAN = '10.0.1.2';
const LTE = '10.0.2.2';

/**
 * Probes on the fake clock: a blackholed source never hears back (an answer still on its way when
 * the blackhole starts is lost too); a dead target never answers.
 */
class WorldProber implements Prober {
  blackholed = new Set<string>();
  deadTargets = new Set<string>();
  rtt = new Map<string, number>();
  /** Drop exactly the next probe from this source (one lost packet). */
  loseNext = new Set<string>();
  sent: { at: number; src: string; host: string }[] = [];
  constructor(private readonly clock: FakeClock) {}
  probe(t: Target, src: ProbeSource, timeoutMs: number, late?: LateAnswer): Promise<ProbeResult> {
    this.sent.push({ at: this.clock.monotonic(), src: src.address, host: t.host });
    const rt = this.rtt.get(src.address) ?? 2;
    const lost = this.loseNext.delete(src.address);
    const answers = !lost && !this.blackholed.has(src.address) && !this.deadTargets.has(t.host);
    return new Promise((resolve) => {
      const timedOut = () => resolve({ ok: false, rttMs: timeoutMs, error: 'timeout', ...(late ? { pending: true } : {}) });
      if (answers && rt < timeoutMs) {
        this.clock.setTimeout(() => {
          if (!this.blackholed.has(src.address)) resolve({ ok: true, rttMs: rt });
          else this.clock.setTimeout(timedOut, timeoutMs - rt);
        }, rt);
        return;
      }
      this.clock.setTimeout(timedOut, timeoutMs);
      if (!late) return;
      if (answers && rt < timeoutMs + late.graceMs) this.clock.setTimeout(() => late.onLate({ ok: true, rttMs: rt }), rt);
      else this.clock.setTimeout(() => late.onLate({ ok: false, rttMs: timeoutMs + late.graceMs, error: 'timeout' }), timeoutMs + late.graceMs);
    });
  }
  count(src: string, from: number, to: number): number {
    return this.sent.filter((p) => p.src === src && p.at >= from && p.at < to).length;
  }
}

const targets = [1, 2, 3, 4].map((i) => ({ kind: 'tcp', host: `198.51.100.${i}`, port: 80 }));

function setup(probes: Record<string, unknown> = {}) {
  const p = { intervalMs: 250, timeoutMs: 600, targets, ...probes };
  const config = {
    uplinks: [
      { name: 'wan', interface: 'wan0', kind: 'wired', priority: 1, table: 101, gateway: '10.0.1.1', probes: p },
      { name: '4g', interface: 'wwan0', kind: 'cellular', priority: 2, table: 102, gateway: '10.0.2.1', probes: p },
    ],
  };
  const clock = new FakeClock();
  const net = new FakeNet([
    { name: 'wan0', carrier: true, ipv4: [WAN] },
    { name: 'wwan0', carrier: true, ipv4: [LTE] },
  ]);
  const ctx = createTestCtx({ config, clock, commands: net.runner });
  const prober = new WorldProber(clock);
  const uplinks = new UplinksCapability({ prober, monitor: new FakeLinkMonitor() });
  const downs: number[] = [];
  ctx.bus.on('uplink.changed', (e) => e.name === 'wan' && e.to === 'down' && downs.push(clock.monotonic()));
  return { clock, ctx, prober, uplinks, downs };
}

let current: TestCtx | undefined;
afterEach(() => current?.cleanup());

async function running(probes?: Record<string, unknown>) {
  const s = setup(probes);
  current = s.ctx;
  await s.uplinks.start(s.ctx);
  await s.clock.advance(3000);
  assert.equal(s.uplinks.views().find((u) => u.name === 'wan')!.state, 'up');
  return s;
}

/** Blackhole the primary at several phases against the probe timers; ms from fault to down. */
async function blackholeTimes(probes: Record<string, unknown>): Promise<number[]> {
  const times: number[] = [];
  for (const phase of [0, 40, 90, 130, 170, 210, 240]) {
    const s = await running(probes);
    await s.clock.advance(phase);
    const t0 = s.clock.monotonic();
    s.prober.blackholed.add(WAN);
    await s.clock.advance(3000);
    assert.equal(s.downs.length, 1, 'down exactly once');
    times.push(s.downs[0]! - t0);
    await s.uplinks.stop();
    s.ctx.cleanup();
  }
  return times;
}

describe('uplinks tracker (fake clock)', () => {
  it('publishes a snapshot on every state change (before the next second) and every second, local to the process', async () => {
    const s = setup();
    current = s.ctx;
    const snaps: UplinksSnapshot[] = [];
    const any: string[] = [];
    s.ctx.bus.on('uplinks.snapshot', (x) => snaps.push(x));
    s.ctx.bus.onAny((n) => any.push(n));
    await s.uplinks.start(s.ctx);
    assert.equal(snaps.length, 1, 'one at start, with the addresses');
    assert.deepEqual(
      snaps[0]!.uplinks.map((u) => [u.name, u.address, u.state]),
      [
        ['wan', WAN, 'unknown'],
        ['4g', LTE, 'unknown'],
      ],
    );
    let states = 0;
    s.ctx.bus.on('uplink.changed', (e) => {
      states++;
      // The snapshot follows its uplink.changed at once, carrying the new state.
      queueMicrotask(() => assert.equal(snaps.at(-1)!.uplinks.find((u) => u.name === e.name)!.state, e.to));
    });
    await s.clock.advance(5000);
    assert.ok(states >= 2);
    assert.ok(snaps.length >= 1 + 5, `every second: ${snaps.length}`);
    assert.ok(!any.includes('uplinks.snapshot'), 'not for the outbox');
    assert.deepEqual(
      s.ctx.bus.last('uplinks.snapshot')!.uplinks.map((u) => u.state),
      ['up', 'up'],
    );
    await s.uplinks.stop();
    const n = snaps.length;
    await s.clock.advance(3000);
    assert.equal(snaps.length, n, 'nothing after stop');
  });

  it('confirmation proves a silent blackhole in about one timeout; without it, 3 intervals + one timeout', async () => {
    const fast = await blackholeTimes({});
    const slow = await blackholeTimes({ confirmMs: 0 });
    // 600 ms timeout + overdue (50 ms: 2 x the 2 ms answers is less) + 2 rounds x 50 ms + the phase of the first probe (<= 62 ms).
    assert.ok(Math.max(...fast) <= 820, `with confirmation: ${fast.join(', ')} ms`);
    assert.ok(Math.min(...fast) >= 700, `never sooner than a timeout after the first overdue probe: ${fast.join(', ')} ms`);
    assert.ok(Math.min(...slow) >= 1100, `without: ${slow.join(', ')} ms`);
  });

  it('one lost probe: one confirmation round, ended by the first answer; a lossy line: one a second on average', async () => {
    const s = await running();
    const t = s.clock.monotonic();
    const base = s.prober.count(WAN, t - 2000, t) / 2; // probes a second, normally (4 targets / 250 ms = 16)
    assert.equal(base, 16);
    s.prober.loseNext.add(WAN);
    await s.clock.advance(1000);
    // The lost probe is overdue after 50 ms: one probe per target (4), then an answer ends it.
    assert.equal(s.prober.count(WAN, t, t + 1000), 16 + 4);
    // A loss every 100 ms for 5 s: without a limit 50 confirmations (200 extra probes); the bucket
    // allows its burst of 2 (one was spent above, one refilled since) plus one a second.
    const u = s.clock.monotonic();
    for (let i = 0; i < 50; i++) {
      s.prober.loseNext.add(WAN);
      await s.clock.advance(100);
    }
    const extra = s.prober.count(WAN, u, u + 5000) - 5 * 16;
    assert.ok(extra >= 4 && extra <= (2 + 5) * 4, `extra probes ${extra}`);
    assert.equal(s.downs.length, 0);
    assert.notEqual(s.uplinks.views().find((v) => v.name === 'wan')!.state, 'down');
  });

  it('a dead target starts no confirmations (no extra traffic) and never takes the uplink down', async () => {
    const s = await running();
    s.prober.deadTargets.add('198.51.100.2');
    await s.clock.advance(2000);
    const t = s.clock.monotonic();
    await s.clock.advance(10_000);
    assert.equal(s.prober.count(WAN, t, t + 10_000), 160, 'exactly the regular 16 a second');
    assert.equal(s.downs.length, 0);
  });

  it('a line turning +500 ms slower confirms once and is never judged down', async () => {
    const s = await running();
    s.prober.rtt.set(WAN, 500);
    await s.clock.advance(10_000);
    assert.equal(s.downs.length, 0, 'slow is not down');
    assert.equal(s.uplinks.views().find((u) => u.name === 'wan')!.state, 'slow');
  });

  it('a steady slow line (400 ms answers) starts no confirmations, yet a blackhole on it is still confirmed early', async () => {
    const s = setup();
    current = s.ctx;
    s.prober.rtt.set(WAN, 400);
    await s.uplinks.start(s.ctx);
    await s.clock.advance(8000);
    const t = s.clock.monotonic();
    await s.clock.advance(5000);
    assert.equal(s.prober.count(WAN, t, t + 5000), 80, 'the line keeps answering: overdue probes are no alarm');
    s.prober.blackholed.add(WAN);
    await s.clock.advance(3000);
    assert.equal(s.downs.length, 1);
    // Overdue at a sixth of the timeout (2 x 400 ms would be past it): at most 100 + 2 x 50 + 600 ms
    // after the first probe after the fault (answers on their way are lost too, so often sooner);
    // without confirmation 3 intervals + one timeout (~1.3 s).
    const took = s.downs[0]! - t - 5000;
    assert.ok(took <= 100 + 100 + 600 + 63, `blackhole on a slow line down after ${took} ms`);
  });

  it('the drill proves every uplink except the one carrying traffic, through its own address', async () => {
    const s = await running();
    assert.deepEqual(
      s.uplinks.drillSteps().map((d) => d.name),
      ['uplink wan carries traffic', 'uplink 4g carries traffic'],
      'before any switch: all',
    );
    s.ctx.bus.emit('failover.switched', { from: null, to: 'wan', kind: 'initial', reason: 'test', at: s.clock.now() });
    const [step, ...rest] = s.uplinks.drillSteps();
    assert.equal(rest.length, 0);
    assert.equal(step!.name, 'uplink 4g carries traffic');
    const from = s.prober.sent.length;
    const ok = step!.run();
    await s.clock.advance(10);
    const r = await ok;
    assert.equal(r.passed, true);
    assert.equal(r.detail, '4/4 targets answered via wwan0 (table 102)');
    assert.ok(
      s.prober.sent.slice(from).some((p) => p.src === LTE),
      'probed from the 4G address',
    );
    s.prober.blackholed.add(LTE);
    const bad = s.uplinks.drillSteps()[0]!.run();
    await s.clock.advance(1300);
    const rb = await bad;
    assert.equal(rb.passed, false);
    assert.match(rb.detail, /^0\/4 targets answered via wwan0/);
    await s.uplinks.stop();
  });
});
