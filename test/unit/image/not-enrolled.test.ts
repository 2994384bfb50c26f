import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ledPatternFor } from '../../../agent/src/status/led.js';
import { deriveState } from '../../../agent/src/status/state.js';
import { failoverHealth } from '../status/fixtures.js';
import { healthOf } from '../../helpers/reports.js';

describe('"Not enrolled" on the status page and LED', () => {
  const en = (enrolled: boolean, required = true) => healthOf('enrolment', { enrolled, required, reason: 'device certificate missing' }, 'degraded', '');
  const T = Date.parse('2026-11-27T10:42:00Z');

  it('a box that must be enrolled and is not says so, with the connection state as its first note', () => {
    const s = deriveState({ failover: failoverHealth('wan', T, 'up', 'up'), enrolment: en(false) });
    assert.equal(s.level, 'unenrolled');
    assert.match(s.text, /^Not enrolled/);
    assert.equal(s.notes[0], 'All systems normal');
    assert.deepEqual(ledPatternFor('unenrolled', false), { color: 'blue', mode: 'steady' });
  });

  it('an outage keeps the headline; enrolled or not-required boxes are unchanged', () => {
    const off = deriveState({ failover: failoverHealth(null, T, 'down', 'down'), enrolment: en(false) });
    assert.equal(off.level, 'offline');
    assert.match(off.notes[0]!, /Not enrolled/);
    assert.equal(deriveState({ failover: failoverHealth('wan', T, 'up', 'up'), enrolment: en(true) }).level, 'normal');
    assert.equal(deriveState({ failover: failoverHealth('wan', T, 'up', 'up'), enrolment: en(false, false) }).level, 'normal');
  });
});
