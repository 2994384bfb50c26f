import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { covers, highestCapOnly } from '../../../fleet/src/alerts/alerts.js';
import type { Firing } from '../../../fleet/src/alerts/rules.js';
import { axis, midnights } from '../../../fleet/src/web/charts.js';
import { dataCell, recordsCell, telephonyCell, uplinkCell } from '../../../fleet/src/web/device-cells.js';
import { eventWords } from '../../../fleet/src/web/event-words.js';
import { local, localInput, parseLocal } from '../../../fleet/src/web/html.js';
import type { DeviceRow } from '../../../fleet/src/store/types.js';

const H = 3_600_000;

describe('fleet triage: UK time', () => {
  it('shows Europe/London wall time, GMT in winter and BST in summer', () => {
    assert.match(local(Date.UTC(2026, 11, 6, 9, 5)), />Sun, 6 Dec 2026, 09:05 GMT</);
    assert.match(local(Date.UTC(2026, 6, 1, 9, 5)), />Wed, 1 Jul 2026, 10:05 BST</);
    assert.match(local(Date.UTC(2026, 6, 1, 9, 5)), /datetime="2026-07-01T09:05:00.000Z"/);
    assert.equal(local(null), '-');
  });
  it('reads a typed UK time back as the right instant either side of a clock change; a time that does not exist is refused', () => {
    assert.equal(parseLocal('2026-12-06T09:05'), Date.UTC(2026, 11, 6, 9, 5));
    assert.equal(parseLocal('2026-07-01T10:05'), Date.UTC(2026, 6, 1, 9, 5));
    assert.equal(parseLocal('2026-03-29T01:30'), null, 'clocks go forward at 01:00: 01:30 never happens');
    assert.equal(parseLocal('2026-03-29T02:30'), Date.UTC(2026, 2, 29, 1, 30));
    for (const bad of ['', 'tomorrow', '2026-13-01T00:00', '2026-12-06 09:05']) assert.equal(parseLocal(bad), null, bad);
    for (const t of [Date.UTC(2026, 0, 1), Date.UTC(2026, 5, 30, 23, 59)]) assert.equal(parseLocal(localInput(t)), t);
  });
  it('puts axis ticks on UK midnights (23 h and 25 h days included) and labels them as dates', () => {
    // The week of the October clock change: 25 October 2026 is 25 hours long.
    const from = Date.UTC(2026, 9, 22, 12);
    const ticks = midnights(from, from + 7 * 24 * H, 1);
    assert.deepEqual(
      ticks.map((t) => localInput(t)),
      ['2026-10-23T00:00', '2026-10-24T00:00', '2026-10-25T00:00', '2026-10-26T00:00', '2026-10-27T00:00', '2026-10-28T00:00', '2026-10-29T00:00'],
    );
    assert.equal(ticks[3]! - ticks[2]!, 25 * H);
    const week = [...axis(from, from + 7 * 24 * H).matchAll(/class="tick">([^<]+)</g)].map((m) => m[1]);
    assert.deepEqual(week, ['Fri 23 Oct', 'Sat 24 Oct', 'Sun 25 Oct', 'Mon 26 Oct', 'Tue 27 Oct', 'Wed 28 Oct', 'Thu 29 Oct']);
    const month = [...axis(from, from + 30 * 24 * H).matchAll(/class="tick">([^<]+)</g)].map((m) => m[1]);
    assert.ok(month.length <= 8 && month.every((l) => /^\d{1,2} (Oct|Nov)$/.test(l!)), month.join());
  });
});

describe('fleet triage: device values and events', () => {
  const row = (o: Partial<DeviceRow>): DeviceRow =>
    ({
      id: 'Y1-01',
      practice: 'Y1',
      practice_name: null,
      online: 1,
      telemetry_at: 0,
      last_seen: 0,
      telephony_mode: 'cloud',
      telephony_calls: 0,
      records_stale: 0,
      records_as_of: 0,
      data_pct: 50,
      active_uplink: 'wan',
      active_kind: 'wired',
      cellular_since: null,
      ...o,
    }) as DeviceRow;
  it('an offline device shows last-known values greyed with their age, never a live colour', () => {
    const now = 5 * H;
    const d = row({ online: 0, telemetry_at: 2 * H });
    for (const cell of [telephonyCell(d, now), recordsCell(d, now), dataCell(d, now), uplinkCell(d, now)]) {
      assert.match(cell, /^<span class="lk"[^>]*>.*\(last known, 3 h ago\)<\/span><\/span>$/);
      assert.doesNotMatch(cell, /class="(ok|bad|warn)"/);
    }
    assert.equal(telephonyCell(row({}), now), '<span class="ok">cloud</span>');
  });
  it('says what happened in words; an unknown event is still shown by name; odd payloads do not throw', () => {
    assert.equal(
      eventWords('failover.switched', JSON.stringify({ from: 'wan', to: '4g', kind: 'failover', reason: 'wan down' })),
      'Switched from wan to <b>4G</b>: wan down',
    );
    assert.equal(
      eventWords('failover.switched', JSON.stringify({ from: '4g', to: 'wan', kind: 'failback', reason: 'wan healthy' })),
      'Back on wan (from 4G): wan healthy',
    );
    assert.match(
      eventWords(
        'drill.completed',
        JSON.stringify({
          passed: false,
          steps: [
            { name: 'records', passed: false },
            { name: 'sip', passed: true },
          ],
        }),
      ),
      /failed<\/span>: records$/,
    );
    assert.equal(eventWords('thing.happened', JSON.stringify({ a: 1, at: 5 })), 'thing.happened: a 1');
    assert.equal(eventWords('telephony.mode', '{not json'), 'telephony.mode');
    assert.equal(eventWords('x.y', JSON.stringify({ v: '<img src=x onerror=alert(1)>' })), 'x.y: v &lt;img src=x onerror=alert(1)&gt;');
  });
});

describe('fleet triage: alert rules around the store', () => {
  const f = (kind: Firing['kind'], level = ''): Firing => ({ kind, level, summary: '' });
  it('keeps only the highest data-cap level that fires', () => {
    assert.deepEqual(
      highestCapOnly([f('data-cap', '75'), f('data-cap', '95'), f('records-stale'), f('data-cap', '100')]).map((x) => `${x.kind}${x.level}`),
      ['records-stale', 'data-cap100'],
    );
    assert.deepEqual(
      highestCapOnly([f('data-cap', '75')]).map((x) => x.level),
      ['75'],
    );
  });
  it('a maintenance window covers its device, its practice, or everything', () => {
    const d = { id: 'Y1-01', practice: 'Y1' };
    assert.ok(covers({ scope: 'icb', scope_id: '' }, d));
    assert.ok(covers({ scope: 'practice', scope_id: 'Y1' }, d));
    assert.ok(!covers({ scope: 'practice', scope_id: 'Y2' }, d));
    assert.ok(covers({ scope: 'device', scope_id: 'Y1-01' }, d));
    assert.ok(!covers({ scope: 'device', scope_id: 'Y1-02' }, d));
  });
});
