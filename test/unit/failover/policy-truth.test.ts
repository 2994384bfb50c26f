/**
 * Issue 20: what the policy says must be what it will do. Fake clock; the policy is pure.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { UplinkState } from '../../../agent/src/core/events.js';
import { FailoverPolicy, type PolicyUplink } from '../../../agent/src/failover/policy.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const HOUR = 3_600_000;

function world(clock: FakeClock, opts = { holdDownMs: 60_000, maxHoldDownMs: 900_000, maxFailbacksPerHour: 2 }) {
  const p = new FailoverPolicy(opts);
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

/** Wait in 1 s steps (like the capability's 1 s evaluation) until the active uplink is `name`. */
async function until(clock: FakeClock, ev: () => { active: string | null }, name: string, maxMs: number): Promise<number> {
  const t0 = clock.now();
  while (ev().active !== name) {
    if (clock.now() - t0 > maxMs) throw new Error(`not on ${name} within ${maxMs} ms`);
    await clock.advance(1000);
  }
  return clock.now();
}

describe('failover policy tells the truth', () => {
  it('a slow primary is never a reason to fail over; a slow preferred uplink is not failed back to', async () => {
    const clock = new FakeClock();
    const { set, ev, p } = world(clock);
    set('wan', 'up');
    set('lte', 'up');
    assert.equal(ev().active, 'wan');
    set('wan', 'slow');
    for (let i = 0; i < 120; i++) {
      assert.equal(ev().active, 'wan', 'no failover on a line merely slower than usual');
      await clock.advance(1000);
    }
    assert.match(p.reason, /on wan, the preferred uplink, slow/);
    // On the backup with the primary back but slow: stay, and say why.
    set('wan', 'down');
    assert.equal(ev().active, 'lte');
    set('wan', 'slow');
    await clock.advance(300_000);
    assert.equal(ev().active, 'lte');
    assert.match(p.reason, /wan answering but slow/);
    assert.equal(p.failbackAt, null);
  });

  it('a failover prefers a clean standby over a slow one over a lossy one', () => {
    const clock = new FakeClock();
    const p = new FailoverPolicy({ holdDownMs: 60_000, maxHoldDownMs: 900_000, maxFailbacksPerHour: 2 });
    const links: PolicyUplink[] = [
      { name: 'wan', priority: 1, state: 'up', since: 0 },
      { name: 'wifi', priority: 2, state: 'degraded', since: 0 },
      { name: 'lte', priority: 3, state: 'slow', since: 0 },
    ];
    assert.equal(p.evaluate(clock.now(), links).active, 'wan');
    links[0]!.state = 'down';
    assert.equal(p.evaluate(clock.now(), links).active, 'lte');
  });

  it('after flapping, the line names the real failback time including the hourly cap, and failback happens then', async () => {
    const clock = new FakeClock();
    const { set, ev, p } = world(clock);
    set('wan', 'up');
    set('lte', 'up');
    ev();
    // Two flaps with failbacks: the hour's cap (2) is used up.
    for (let i = 0; i < 2; i++) {
      set('wan', 'down');
      assert.equal(ev().active, 'lte');
      set('wan', 'up');
      await until(clock, ev, 'wan', 20 * 60_000);
    }
    const secondFailback = clock.now();
    // Third flap: the hold-down alone would allow failback soon, the cap does not.
    set('wan', 'down');
    ev();
    set('wan', 'up');
    const upAt = clock.now();
    ev();
    const hold = p.holdDownFor('wan', clock.now());
    assert.ok(hold < HOUR / 4, `hold-down ${hold} ms is far shorter than the cap`);
    await clock.advance(hold / 2);
    ev();
    const promised = p.failbackAt!;
    assert.ok(promised > upAt + hold, 'the cap, not the hold-down, sets the time');
    assert.match(p.reason, /failback if it stays clean: 2 failbacks in the last hour \(max 2\), so not before \d\d:\d\d:\d\d UTC/);
    assert.ok(p.reason.includes(new Date(promised).toISOString().slice(11, 19)));
    assert.doesNotMatch(p.reason, /of \d+ s hold-down/, 'no "clean for 45 s of 80 s" that suggests failback soon');
    // It really happens then (to the second, on a 1 s evaluation tick), not before.
    const at = await until(clock, ev, 'wan', 2 * HOUR);
    assert.ok(at >= promised && at - promised <= 1000, `failback at ${at - promised} ms from the promised time`);
    assert.ok(promised - secondFailback <= HOUR, 'the cap slot frees an hour after the older failback');
  });

  it('before the cap is reached the line gives the hold-down end as a clock time', async () => {
    const clock = new FakeClock();
    const { set, ev, p } = world(clock);
    set('wan', 'up');
    set('lte', 'up');
    ev();
    set('wan', 'down');
    ev();
    set('wan', 'up');
    const upAt = clock.now();
    await clock.advance(15_000);
    ev();
    assert.equal(p.failbackAt, upAt + 60_000);
    assert.match(p.reason, /^on lte; wan clean for 15 s; failback if it stays clean: hold-down 60 s, so at \d\d:\d\d:\d\d UTC$/);
  });

  it('once settled, the reason is the present; the last switch only as dated history', async () => {
    const clock = new FakeClock();
    const { set, ev, p } = world(clock);
    set('wan', 'up');
    set('lte', 'up');
    ev();
    set('wan', 'down');
    ev();
    set('wan', 'up');
    await until(clock, ev, 'wan', 5 * 60_000);
    await clock.advance(5000);
    ev();
    assert.match(p.reason, /^on wan, the preferred uplink, up; last switch \d\d:\d\d:\d\d UTC: wan clean for/);
    set('wan', 'slow'); // a latency spike: the line must say slow now, not the old switch reason first
    ev();
    assert.match(p.reason, /^on wan, the preferred uplink, slow/);
  });

  it('DNS failing on the active uplink moves traffic to one that resolves and counts as a flap; report-only does not', async () => {
    const clock = new FakeClock();
    const p = new FailoverPolicy({ holdDownMs: 60_000, maxHoldDownMs: 900_000, maxFailbacksPerHour: 2 });
    const links: PolicyUplink[] = [
      { name: 'wan', priority: 1, state: 'up', since: 0, dns: 'ok', dnsAnswering: true },
      { name: 'lte', priority: 2, state: 'up', since: 0, dns: 'ok', dnsAnswering: true },
    ];
    assert.equal(p.evaluate(clock.now(), links).active, 'wan');
    links[0] = { ...links[0]!, state: 'degraded', dns: 'failing', dnsAnswering: false, since: clock.now() };
    const d = p.evaluate(clock.now(), links);
    assert.deepEqual([d.active, d.switched?.kind], ['lte', 'failover']);
    assert.equal(d.reason, 'DNS not answering on wan (lte is up and resolves)');
    assert.equal(p.holdDownFor('wan', clock.now()), 60_000, 'first flap: base hold-down');
    // DNS back, then failing again: the second flap doubles the hold-down.
    await clock.advance(1000);
    links[0] = { ...links[0]!, state: 'up', dns: 'ok', dnsAnswering: true, since: clock.now() };
    p.evaluate(clock.now(), links);
    links[0] = { ...links[0]!, state: 'degraded', dns: 'failing', dnsAnswering: false, since: clock.now() };
    p.evaluate(clock.now(), links);
    assert.equal(p.holdDownFor('wan', clock.now()), 120_000);

    const r = new FailoverPolicy({ holdDownMs: 60_000, maxHoldDownMs: 900_000, maxFailbacksPerHour: 2, onDnsFailure: 'report' });
    const l2: PolicyUplink[] = [
      { name: 'wan', priority: 1, state: 'up', since: 0, dns: 'ok', dnsAnswering: true },
      { name: 'lte', priority: 2, state: 'up', since: 0, dns: 'ok', dnsAnswering: true },
    ];
    r.evaluate(clock.now(), l2);
    l2[0] = { ...l2[0]!, state: 'degraded', dns: 'failing', dnsAnswering: false };
    assert.equal(r.evaluate(clock.now(), l2).active, 'wan');
    assert.equal(r.holdDownFor('wan', clock.now()), 60_000);
  });

  it('with DNS failing everywhere (the standby too, not yet for long) traffic stays put', () => {
    const p = new FailoverPolicy({ holdDownMs: 60_000, maxHoldDownMs: 900_000, maxFailbacksPerHour: 2 });
    const links: PolicyUplink[] = [
      { name: 'wan', priority: 1, state: 'up', since: 0, dns: 'ok', dnsAnswering: true },
      { name: 'lte', priority: 2, state: 'up', since: 0, dns: 'ok', dnsAnswering: false },
    ];
    p.evaluate(0, links);
    links[0] = { ...links[0]!, state: 'degraded', dns: 'failing', dnsAnswering: false };
    const d = p.evaluate(1000, links);
    assert.equal(d.active, 'wan');
    assert.equal(d.reason, 'DNS not answering on wan and nothing better is up: staying put');
  });
});
