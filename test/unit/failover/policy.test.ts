import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { UplinkState } from '../../../agent/src/core/events.js';
import { FailoverPolicy, type PolicyUplink } from '../../../agent/src/failover/policy.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const opts = { holdDownMs: 60_000, maxHoldDownMs: 900_000, maxFailbacksPerHour: 2 };

/** Two uplinks whose states the test sets; transitions are fed to the policy like the capability does. */
function world(clock: FakeClock, extra: { bootGraceMs?: number } = {}) {
  const p = new FailoverPolicy({ ...opts, ...extra });
  const links: PolicyUplink[] = [
    { name: 'wan', priority: 1, state: 'unknown', since: clock.now() },
    { name: 'lte', priority: 2, state: 'unknown', since: clock.now() },
  ];
  const set = (name: string, state: UplinkState) => {
    const l = links.find((x) => x.name === name)!;
    if (l.state === state) return;
    l.state = state;
    l.since = clock.now();
    p.noteTransition(name, state, clock.now());
  };
  const ev = () => p.evaluate(clock.now(), links);
  return { p, set, ev };
}

describe('failover policy', () => {
  it('does nothing until an uplink is proven up, then picks the preferred one', () => {
    const clock = new FakeClock();
    const { set, ev } = world(clock);
    assert.equal(ev().active, null);
    set('lte', 'up');
    const d = ev();
    assert.equal(d.active, 'lte');
    assert.equal(d.switched?.kind, 'initial');
    set('wan', 'up');
    assert.equal(ev().active, 'lte', 'a newly-up primary still waits for the hold-down');
  });

  it('at boot waits up to bootGraceMs for a preferred uplink still being proven, then starts on what is up', async () => {
    const clock = new FakeClock();
    const a = world(clock, { bootGraceMs: 3000 });
    a.ev();
    a.set('lte', 'up');
    assert.equal(a.ev().active, null, 'wan (preferred) still unknown: wait');
    assert.match(a.p.reason, /waiting up to 3 s for wan/);
    await clock.advance(1000);
    a.set('wan', 'up');
    const d = a.ev();
    assert.deepEqual([d.active, d.switched?.kind], ['wan', 'initial'], 'the primary, without a hold-down or a failback');
    // A primary that never proves itself (no DHCP lease) only delays the start by the grace.
    const clock2 = new FakeClock();
    const b = world(clock2, { bootGraceMs: 3000 });
    b.ev();
    b.set('lte', 'up');
    await clock2.advance(2999);
    assert.equal(b.ev().active, null);
    await clock2.advance(1);
    assert.equal(b.ev().active, 'lte');
    // A preferred uplink already known down is not waited for.
    const clock3 = new FakeClock();
    const c = world(clock3, { bootGraceMs: 3000 });
    c.set('wan', 'down');
    c.set('lte', 'up');
    assert.equal(c.ev().active, 'lte');
  });

  it('fails over only when the active is down and the other is up; never tears down to nowhere', async () => {
    const clock = new FakeClock();
    const { set, ev } = world(clock);
    set('wan', 'up');
    set('lte', 'down');
    assert.equal(ev().active, 'wan');
    set('wan', 'degraded');
    assert.equal(ev().switched, undefined, 'degraded is not a reason to move');
    set('wan', 'down');
    const stay = ev();
    assert.equal(stay.active, 'wan');
    assert.equal(stay.switched, undefined);
    assert.match(stay.reason, /staying put/);
    set('lte', 'up');
    const d = ev();
    assert.deepEqual(d.switched, { from: 'wan', to: 'lte', kind: 'failover' });
  });

  it('fails back only after the hold-down, doubling per flap, at most 2 an hour', async () => {
    const clock = new FakeClock();
    const { p, set, ev } = world(clock);
    set('wan', 'up');
    set('lte', 'up');
    ev();
    const cycle = async (cleanMs: number) => {
      set('wan', 'down');
      assert.equal(ev().active, 'lte');
      await clock.advance(1000);
      set('wan', 'up');
      await clock.advance(cleanMs);
      return ev();
    };
    let d = await cycle(59_000);
    assert.equal(d.active, 'lte', 'not before 60 s');
    assert.match(d.reason, /hold-down/);
    await clock.advance(1000);
    d = ev();
    assert.equal(d.switched?.kind, 'failback');
    assert.equal(p.holdDownFor('wan', clock.now()), 60_000);
    // Second flap within the hour: 120 s.
    d = await cycle(119_000);
    assert.equal(d.active, 'lte');
    await clock.advance(1000);
    assert.equal(ev().switched?.kind, 'failback');
    // Third flap: hold-down 240 s would pass, but 2 failbacks already this hour.
    d = await cycle(241_000);
    assert.equal(d.active, 'lte');
    assert.match(d.reason, /2 failbacks in the last hour/);
    await clock.advance(3_600_000);
    assert.equal(ev().switched?.kind, 'failback', 'once the hour has passed');
  });

  it('caps the hold-down at maxHoldDownMs', () => {
    const p = new FailoverPolicy(opts);
    for (let i = 0; i < 10; i++) p.noteTransition('wan', 'down', 1000 + i);
    assert.equal(p.holdDownFor('wan', 2000), 900_000);
  });

  it('force overrides until it expires, and null clears it', async () => {
    const clock = new FakeClock();
    const { p, set, ev } = world(clock);
    set('wan', 'up');
    set('lte', 'up');
    ev();
    p.force('lte', clock.now() + 10_000);
    assert.deepEqual(ev().switched, { from: 'wan', to: 'lte', kind: 'forced' });
    await clock.advance(5000);
    assert.equal(ev().active, 'lte');
    await clock.advance(6000);
    const held = ev();
    assert.equal(held.active, 'lte', 'after expiry the normal failback rules apply: wan clean 11 s of 60 s');
    await clock.advance(50_000);
    assert.equal(ev().switched?.kind, 'failback');
    p.force('lte', clock.now() + 60_000);
    ev();
    p.force(null, 0);
    await clock.advance(60_000);
    assert.equal(ev().active, 'wan');
  });

  it('both down: stays put, no flapping', async () => {
    const clock = new FakeClock();
    const { set, ev } = world(clock);
    set('wan', 'up');
    set('lte', 'up');
    ev();
    set('wan', 'down');
    ev();
    set('lte', 'down');
    const seen = new Set<string | null>();
    for (let i = 0; i < 100; i++) {
      await clock.advance(1000);
      const d = ev();
      assert.equal(d.switched, undefined);
      seen.add(d.active);
    }
    assert.deepEqual([...seen], ['lte']);
  });
});
