import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Health } from '../../../agent/src/core/capability.js';
import type { RecordsReport } from '../../../contract/reports/index.js';
import { healthOf } from '../../helpers/reports.js';
import { renderState } from '../../../agent/src/status/cards.js';
import { ledPatternFor, LED_PATTERNS } from '../../../agent/src/status/led.js';
import { deriveState } from '../../../agent/src/status/state.js';
import { failoverHealth, recordsHealth } from './fixtures.js';

/**
 * Issue 16, "status that never lies": a records cache that would fail the practice in the next
 * outage, a box not enrolled or not set up, must never give the green headline or steady green LED.
 */
const fmt = (t: number) => new Date(t).toISOString().slice(11, 16);
const T1042 = Date.parse('2026-11-27T10:42:00Z');
const T1030 = Date.parse('2026-11-27T10:30:00Z');
const GREEN = { color: 'green', mode: 'steady' };

const records = (over: Partial<RecordsReport>): Health<RecordsReport> => {
  const h = recordsHealth(T1030);
  return { ...h, status: 'degraded', details: { ...h.details!, ...over } };
};
const healthy = () => ({ failover: failoverHealth('wan', T1042, 'up', 'up') });
const setup = (setUp: boolean) => healthOf('setup', { setUp, required: true }, setUp ? 'ok' : 'degraded', 'x');
const enrolment = (enrolled: boolean) => healthOf('enrolment', { enrolled, required: true, reason: enrolled ? null : 'no certificate' }, 'ok', 'x');

describe('status never lies', () => {
  it('control: everything healthy is green, steady green LED, "Nothing to do."', () => {
    const s = deriveState({ ...healthy(), records: recordsHealth(T1030), setup: setup(true), enrolment: enrolment(true) }, fmt);
    assert.equal(s.text, 'All systems normal');
    assert.equal(s.todo, 'Nothing to do.');
    assert.deepEqual(ledPatternFor(s.level, false), GREEN);
  });

  it('locked cache after a restart: says so, what to do, links the unlock page; LED not green', () => {
    const s = deriveState({ ...healthy(), records: records({ locked: true, provisioned: true, asOf: null }) }, fmt);
    assert.equal(s.level, 'attention');
    assert.equal(s.text, 'Records cache locked after a restart - an admin must unlock it');
    assert.deepEqual(s.action, { label: 'Unlock', href: '/records/key' });
    assert.match(s.todo, /admin to unlock/);
    assert.notDeepEqual(ledPatternFor(s.level, false), GREEN);
    const html = renderState(s);
    assert.match(html, /<a class="act" href="\/records\/key">Unlock<\/a>/);
    assert.match(html, /What to do now: Ask an admin/);
  });

  it('a locked cache from an older agent (no `provisioned` field) is still "locked"', () => {
    const s = deriveState({ ...healthy(), records: records({ locked: true }) }, fmt);
    assert.match(s.text, /^Records cache locked/);
  });

  it('never initialised (no key): not green, points at set-up', () => {
    const s = deriveState({ ...healthy(), records: records({ locked: true, provisioned: false, asOf: null }) }, fmt);
    assert.equal(s.level, 'attention');
    assert.equal(s.text, 'Records cache not set up - no records key yet');
    assert.equal(s.action?.href, '/records/key');
    const beforeSetup = deriveState({ ...healthy(), setup: setup(false), records: records({ locked: true, provisioned: false, asOf: null }) }, fmt);
    assert.equal(beforeSetup.level, 'setup', 'a box not set up says that first');
    assert.equal(beforeSetup.action?.href, '/setup');
  });

  it('never synced: not green', () => {
    const s = deriveState({ ...healthy(), records: records({ locked: false, asOf: null, stale: true }) }, fmt);
    assert.equal(s.level, 'attention');
    assert.match(s.text, /never synced/);
    assert.notDeepEqual(ledPatternFor(s.level, false), GREEN);
  });

  it('not set up: blue, "Set up this box"', () => {
    const s = deriveState({ ...healthy(), setup: setup(false) }, fmt);
    assert.equal(s.level, 'setup');
    assert.deepEqual(s.action, { label: 'Set up this box', href: '/setup' });
    assert.deepEqual(ledPatternFor(s.level, false), { color: 'blue', mode: 'slow' });
  });

  it('not enrolled comes before not set up (the set-up code travels through the fleet)', () => {
    const s = deriveState({ ...healthy(), setup: setup(false), enrolment: enrolment(false) }, fmt);
    assert.equal(s.level, 'unenrolled');
    assert.match(s.todo, /ICB engineer must claim/);
  });

  it('offline: the outage start and the records "as of" are two separate times', () => {
    const s = deriveState({ failover: failoverHealth(null, T1042, 'down', 'down'), records: recordsHealth(T1030) }, fmt);
    assert.equal(s.text, 'Offline since 10:42 - records cache available, as of 10:30');
  });

  it('offline with a locked cache never says "records cache available"', () => {
    const s = deriveState({ failover: failoverHealth(null, T1042, 'down', 'down'), records: records({ locked: true, provisioned: true }) }, fmt);
    assert.equal(s.level, 'offline');
    assert.equal(s.text, 'Offline since 10:42 - records cache LOCKED: an admin must unlock it');
    assert.doesNotMatch(s.text, /available/);
    assert.equal(s.action?.href, '/records/key');
  });

  it('on backup with a locked cache: outage headline, the lock as the first note', () => {
    const s = deriveState({ failover: failoverHealth('lte', T1042, 'down', 'up'), records: records({ locked: true, provisioned: true }) }, fmt);
    assert.equal(s.level, 'backup');
    assert.match(s.notes[0]!, /^Records cache locked/);
  });

  it('clock not confirmed since start (hazard H7): amber, never "All systems normal", with what to do', () => {
    const s = deriveState({ ...healthy(), records: records({ clock: 'unconfirmed' }), setup: setup(true), enrolment: enrolment(true) }, fmt);
    assert.equal(s.level, 'attention');
    assert.equal(s.text, 'Clock not confirmed since start - times and "as of" may be wrong');
    assert.match(s.todo, /check times against a watch or phone/);
    assert.notDeepEqual(ledPatternFor(s.level, false), GREEN);
    assert.match(renderState(s), /What to do now: Carry on, but check times/);
    const synced = deriveState({ ...healthy(), records: { ...recordsHealth(T1030), details: { ...recordsHealth(T1030).details!, clock: 'synced' } } }, fmt);
    assert.equal(synced.text, 'All systems normal', 'a confirmed clock changes nothing');
  });

  it('clock earlier than the floor reads "Clock wrong", not green', () => {
    const s = deriveState({ ...healthy(), records: records({ clock: 'wrong' }) }, fmt);
    assert.equal(s.level, 'attention');
    assert.match(s.text, /^Clock wrong - /);
    assert.match(s.todo, /not this box/);
  });

  it('a records problem keeps the headline over the clock; the clock is the first note', () => {
    const s = deriveState({ ...healthy(), records: records({ locked: true, provisioned: true, clock: 'unconfirmed' }) }, fmt);
    assert.match(s.text, /^Records cache locked/);
    assert.match(s.notes[0]!, /^Clock not confirmed/);
  });

  it('an outage keeps the headline; an unconfirmed clock is said under it', () => {
    const off = deriveState({ failover: failoverHealth(null, T1042, 'down', 'down'), records: records({ clock: 'unconfirmed', asOf: T1030 }) }, fmt);
    assert.equal(off.level, 'offline');
    assert.match(off.notes[0]!, /^Clock not confirmed/);
    const backup = deriveState({ failover: failoverHealth('lte', T1042, 'down', 'up'), records: records({ clock: 'unconfirmed' }) }, fmt);
    assert.equal(backup.level, 'backup');
    assert.ok(backup.notes.some((n) => n.startsWith('Clock not confirmed')));
  });

  it("labels from the wizard are used in the practice's words", () => {
    const h = failoverHealth('lte', T1042, 'down', 'up');
    const ups = (h.details as { uplinks: { name: string; label?: string }[] }).uplinks;
    ups[1]!.label = 'EE 4G backup';
    const s = deriveState({ failover: h, records: recordsHealth(T1030) }, fmt);
    assert.equal(s.text, 'Internet down - running on EE 4G backup since 10:42');
  });

  it('every state has a "what to do now" line, and steady green is only ever "normal"', () => {
    const cases = [
      healthy(),
      { failover: failoverHealth('wan', T1042, 'up', 'down') },
      { failover: failoverHealth('lte', T1042, 'down', 'up') },
      { failover: failoverHealth(null, T1042, 'down', 'down') },
      {},
      { ...healthy(), setup: setup(false) },
      { ...healthy(), enrolment: enrolment(false) },
      { ...healthy(), records: records({ locked: true }) },
      { ...healthy(), records: records({ clock: 'unconfirmed' }) },
      { ...healthy(), records: records({ clock: 'wrong' }) },
    ];
    for (const c of cases) {
      const s = deriveState(c, fmt);
      assert.ok(s.todo.length > 5, s.level);
    }
    for (const [level, p] of Object.entries(LED_PATTERNS)) {
      if (level !== 'normal') assert.notDeepEqual({ color: p.color, mode: p.mode }, GREEN, level);
    }
  });
});
