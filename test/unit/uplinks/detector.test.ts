import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UplinkDetector, type DetectorOptions } from '../../../agent/src/uplinks/detector.js';

const opts: DetectorOptions = { window: 20, allFailRun: 3, quorumFailRun: 6, upRun: 3, degradedLossPct: 10, slowLatencyMs: 400 };

/** Deterministic PRNG (mulberry32) so the loss simulation is reproducible. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Round-robin over targets, like the staggered probe timers. */
function feed(d: UplinkDetector, targets: number, rounds: number, ok: (t: number) => boolean) {
  const states: string[] = [];
  for (let r = 0; r < rounds; r++) for (let t = 0; t < targets; t++) states.push(d.record(t, ok(t), 10).state);
  return states;
}

describe('uplink detector', () => {
  it('starts unknown and is up only once a majority of targets answered repeatedly', () => {
    const d = new UplinkDetector(4, opts);
    assert.equal(d.current, 'unknown');
    feed(d, 4, 2, () => true);
    assert.equal(d.current, 'unknown');
    feed(d, 4, 1, () => true);
    assert.equal(d.current, 'up');
  });

  it('a silent blackhole goes down after allFailRun probes per target', () => {
    const d = new UplinkDetector(4, opts);
    feed(d, 4, 5, () => true);
    const states = feed(d, 4, 3, () => false);
    assert.equal(states.indexOf('down'), 4 * 3 - 1, 'down exactly when the last target completes its 3rd failure');
    assert.match(d.reason, /all 4 targets/);
  });

  it('one dead target never flips the uplink', () => {
    const d = new UplinkDetector(4, opts);
    feed(d, 4, 5, () => true);
    assert.equal(d.current, 'up');
    const states = feed(d, 4, 500, (t) => t !== 2);
    assert.ok(!states.includes('down'));
    // Still usable (a dead target's loss may show as degraded), not stuck in some other state.
    assert.ok(
      states.every((st) => st === 'up' || st === 'degraded'),
      `states seen: ${[...new Set(states)].join(',')}`,
    );
  });

  it('a majority of dead targets does take it down (after quorumFailRun)', () => {
    const d = new UplinkDetector(4, opts);
    feed(d, 4, 5, () => true);
    const states = feed(d, 4, 6, (t) => t === 0);
    assert.equal(states.at(-1), 'down');
    assert.match(d.reason, /3\/4 targets/);
  });

  it('20% loss each way (36% probe failure) never flips it in 200k probes', () => {
    const rand = rng(42);
    const d = new UplinkDetector(4, opts);
    feed(d, 4, 5, () => true);
    const pFail = 1 - 0.8 * 0.8;
    const states = feed(d, 4, 50_000, () => rand() >= pFail);
    assert.ok(!states.includes('down'), 'no false down');
    assert.ok(states.includes('degraded'), 'but the loss is reported');
  });

  it('carrier loss is down at once; carrier back is unknown until probes prove it', () => {
    const d = new UplinkDetector(2, opts);
    feed(d, 2, 3, () => true);
    assert.equal(d.current, 'up');
    assert.equal(d.setCarrier(false).state, 'down');
    assert.equal(d.record(0, true).state, 'down');
    assert.equal(d.setCarrier(true).state, 'unknown');
    feed(d, 2, 3, () => true);
    assert.equal(d.current, 'up');
  });

  it('reports a slow line as slow (not degraded) and recovers from down only with proof', () => {
    const d = new UplinkDetector(2, opts);
    for (let i = 0; i < 3; i++) for (let t = 0; t < 2; t++) d.record(t, true, 900);
    assert.equal(d.current, 'slow');
    assert.match(d.reason, /slow: round trip 900 ms \(too slow at 400 ms or more\)/);
    feed(d, 2, 3, () => false);
    assert.equal(d.current, 'down');
    feed(d, 2, 2, () => true);
    assert.equal(d.current, 'down');
    feed(d, 2, 1, () => true);
    assert.equal(d.current, 'degraded', 'usable again, but the window still remembers the outage');
    assert.match(d.reason, /loss/);
  });
});
