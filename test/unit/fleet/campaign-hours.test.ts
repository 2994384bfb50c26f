import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hoursProblems, inHours, parseHours, ukMinutes } from '../../../fleet/src/campaigns/hours.js';
import { inputProblems } from '../../../fleet/src/campaigns/plan.js';
import { holdReason } from '../../../fleet/src/campaigns/words.js';

const at = (iso: string) => Date.parse(iso);

/** Update hours (fleet/src/campaigns/hours.ts): UK wall-clock windows, GMT in winter, BST in summer, across midnight. */
describe('campaign update hours', () => {
  it('parses "HH:MM-HH:MM"; start equal to end, 24:00, one time alone or a missing zero are refused in words', () => {
    assert.deepEqual(parseHours('19:00-07:00'), { start: 19 * 60, end: 7 * 60 });
    assert.deepEqual(parseHours('00:00-23:59'), { start: 0, end: 23 * 60 + 59 });
    for (const bad of ['07:00-07:00', '24:00-07:00', '7:00-19:00', '19:00-', '-07:00', '19:00 - 07:00', '19:60-07:00', 'evenings'])
      assert.equal(parseHours(bad), undefined, bad);
    assert.deepEqual(hoursProblems(null), []);
    assert.deepEqual(hoursProblems(''), []);
    assert.deepEqual(hoursProblems('19:00-07:00'), []);
    assert.match(hoursProblems('07:00-07:00')[0]!, /start and end must differ/);
    assert.match(hoursProblems('19:00-')[0]!, /two UK times like 19:00-07:00 \(give both/);
    assert.match(hoursProblems('25:00-07:00')[0]!, /two UK times like/);
  });

  it('inputProblems reports bad hours with the other fields; empty or absent hours are any time', () => {
    const base = { url: 'https://u.example/x.seb', version: '0.2.0', arch: 'amd64', practices: [], canaryPct: 5, soakMin: 0, allowCellular: false };
    assert.deepEqual(inputProblems(base), []);
    assert.deepEqual(inputProblems({ ...base, hours: null }), []);
    assert.deepEqual(inputProblems({ ...base, hours: '' }), []);
    assert.deepEqual(inputProblems({ ...base, hours: '19:00-07:00' }), []);
    assert.deepEqual(inputProblems({ ...base, version: 'x', hours: '19:00-19:00' }), [
      'version must look like 1.2.3',
      'update hours: the start and end must differ (19:00-07:00 is overnight; leave both empty for any time)',
    ]);
  });

  it('UK wall clock: GMT in January, BST (UTC+1) in July, and across the March change', () => {
    assert.equal(ukMinutes(at('2026-01-15T00:00:00Z')), 0, 'midnight is 00:00, not 24:00');
    assert.equal(ukMinutes(at('2026-01-15T18:30:00Z')), 18 * 60 + 30);
    assert.equal(ukMinutes(at('2026-07-15T18:30:00Z')), 19 * 60 + 30);
    assert.equal(ukMinutes(at('2026-07-15T23:30:00Z')), 30, 'already tomorrow in the UK');
    assert.equal(ukMinutes(at('2026-03-29T00:30:00Z')), 30, '00:30 GMT');
    assert.equal(ukMinutes(at('2026-03-29T01:30:00Z')), 2 * 60 + 30, '02:30 BST, the clocks went forward at 01:00 UTC');
  });

  it('a window across midnight (19:00-07:00), start included, end not, on a GMT date', () => {
    const w = '19:00-07:00';
    const cases: [string, boolean][] = [
      ['2026-01-15T12:00:00Z', false],
      ['2026-01-15T18:59:00Z', false],
      ['2026-01-15T19:00:00Z', true],
      ['2026-01-15T23:59:00Z', true],
      ['2026-01-16T00:00:00Z', true],
      ['2026-01-16T03:00:00Z', true],
      ['2026-01-16T06:59:00Z', true],
      ['2026-01-16T07:00:00Z', false],
    ];
    for (const [t, want] of cases) assert.equal(inHours(w, at(t)), want, `${t} in ${w}`);
  });

  it('the same window on a BST date is an hour earlier in UTC', () => {
    const w = '19:00-07:00';
    assert.equal(inHours(w, at('2026-07-15T18:00:00Z')), true, '19:00 BST');
    assert.equal(inHours(w, at('2026-07-15T17:59:00Z')), false, '18:59 BST');
    assert.equal(inHours(w, at('2026-07-16T05:59:00Z')), true, '06:59 BST');
    assert.equal(inHours(w, at('2026-07-16T06:00:00Z')), false, '07:00 BST, though 06:00 UTC');
    assert.equal(inHours(w, at('2026-07-15T23:30:00Z')), true, '00:30 BST');
  });

  it('a daytime window (not across midnight); no hours is any time; an unparsable value allows nothing', () => {
    assert.equal(inHours('12:30-14:00', at('2026-01-15T12:30:00Z')), true);
    assert.equal(inHours('12:30-14:00', at('2026-01-15T14:00:00Z')), false);
    assert.equal(inHours('12:30-14:00', at('2026-07-15T12:30:00Z')), true, '13:30 BST');
    assert.equal(inHours('12:30-14:00', at('2026-07-15T13:00:00Z')), false, '14:00 BST');
    assert.equal(inHours(null, at('2026-01-15T12:00:00Z')), true);
    assert.equal(inHours('', at('2026-01-15T12:00:00Z')), true);
    assert.equal(inHours('07:00-07:00', at('2026-01-15T12:00:00Z')), false);
  });

  it('holdReason: outside the hours every box waits, before its link is looked at; inside, the usual reasons', () => {
    const noon = at('2026-01-15T12:00:00Z');
    assert.equal(holdReason({ allow_cellular: 1, hours: '19:00-07:00' }, undefined, noon, 60_000), 'waiting: outside update hours 19:00-07:00 (UK time)');
    assert.equal(holdReason({ allow_cellular: 1, hours: '19:00-07:00' }, undefined, noon + 8 * 3_600_000, 60_000), 'waiting: offline');
    assert.equal(holdReason({ allow_cellular: 1, hours: null }, undefined, noon, 60_000), 'waiting: offline');
  });
});
