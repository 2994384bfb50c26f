import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { adoptTimeZone, dayMonth, hhmm, isoDate, ukDate, wallClock, weekdayName } from '../../common/zoned-time.js';

// Instants around the UK clock changes (last Sunday of March and October, 01:00 UTC) and midnight,
// 2024-2027, plus every 97 minutes through a year: the local-getter path must agree with Intl.
function instants(): number[] {
  const out: number[] = [];
  for (const iso of [
    '2024-03-31T01:00:00Z',
    '2024-10-27T01:00:00Z',
    '2025-03-30T01:00:00Z',
    '2025-10-26T01:00:00Z',
    '2026-03-29T01:00:00Z',
    '2026-10-25T01:00:00Z',
  ]) {
    const t = Date.parse(iso);
    for (let m = -130; m <= 130; m += 1) out.push(t + m * 60_000);
  }
  for (let t = Date.parse('2026-01-01T00:00:00Z'); t < Date.parse('2027-01-02T00:00:00Z'); t += 97 * 60_000) out.push(t);
  out.push(Date.parse('2026-12-31T23:59:59Z'), Date.parse('2027-01-01T00:00:00Z'), Date.parse('2026-07-14T23:30:00Z'));
  return out;
}

const ref = (zone: string, o: Intl.DateTimeFormatOptions) => new Intl.DateTimeFormat('en-GB', { ...o, timeZone: zone });

describe('zoned time (common/zoned-time.ts)', () => {
  let savedTz: string | undefined;
  beforeEach(() => {
    savedTz = process.env.TZ;
  });
  afterEach(() => {
    if (savedTz === undefined) delete process.env.TZ;
    else process.env.TZ = savedTz;
  });

  for (const path of ['adopted zone (Date local getters)', 'another zone (Intl)'] as const) {
    it(`formats as en-GB does in Europe/London, across clock changes: ${path}`, () => {
      process.env.TZ = path.startsWith('adopted') ? 'Europe/London' : 'America/New_York';
      const z = 'Europe/London';
      const time = ref(z, { hour: '2-digit', minute: '2-digit', hour12: false });
      const date = ref(z, { day: '2-digit', month: '2-digit', year: 'numeric' });
      const dm = ref(z, { weekday: 'short', day: 'numeric', month: 'short' });
      const wd = ref(z, { weekday: 'long' });
      const ymd = new Intl.DateTimeFormat('en-CA', { timeZone: z, year: 'numeric', month: '2-digit', day: '2-digit' });
      for (const t of instants()) {
        const at = new Date(t).toISOString();
        assert.equal(hhmm(t, z), time.format(t), at);
        assert.equal(ukDate(t, z), date.format(t), at);
        assert.equal(dayMonth(t, z), dm.format(t), at);
        assert.equal(weekdayName(t, z), wd.format(t), at);
        assert.equal(isoDate(t, z), ymd.format(t), at);
      }
    });
  }

  it('the clock changes themselves: 00:59 GMT -> 02:00 BST in March, 01:59 BST -> 01:00 GMT in October', () => {
    process.env.TZ = 'Europe/London';
    const spring = Date.parse('2026-03-29T01:00:00Z');
    assert.equal(hhmm(spring - 60_000, 'Europe/London'), '00:59');
    assert.equal(hhmm(spring, 'Europe/London'), '02:00');
    const autumn = Date.parse('2026-10-25T01:00:00Z');
    assert.equal(hhmm(autumn - 60_000, 'Europe/London'), '01:59');
    assert.equal(hhmm(autumn, 'Europe/London'), '01:00');
    // Day boundaries of the day list: 23:30 UTC in July is already tomorrow in London.
    assert.equal(isoDate(Date.parse('2026-07-14T23:30:00Z'), 'Europe/London'), '2026-07-15');
    assert.deepEqual(wallClock(Date.parse('2026-07-14T23:30:00Z'), 'Europe/London'), { year: 2026, month: 7, day: 15, hour: 0, minute: 30, weekday: 3 });
  });

  it('in the adopted zone it never builds an Intl formatter (that would load ICU formatting data into the agent)', () => {
    assert.equal(adoptTimeZone('Europe/London'), true);
    assert.equal(process.env.TZ, 'Europe/London');
    const real = Intl.DateTimeFormat;
    const realToLocale = Date.prototype.toLocaleString;
    Object.defineProperty(Intl, 'DateTimeFormat', { value: () => assert.fail('Intl.DateTimeFormat used'), configurable: true, writable: true });
    Date.prototype.toLocaleString = () => assert.fail('toLocaleString used');
    try {
      const t = Date.parse('2026-12-06T23:15:00Z');
      assert.deepEqual(
        [hhmm(t, 'Europe/London'), isoDate(t, 'Europe/London'), ukDate(t), dayMonth(t), weekdayName(t)],
        ['23:15', '2026-12-06', '06/12/2026', 'Sun 6 Dec', 'Sunday'],
      );
    } finally {
      Object.defineProperty(Intl, 'DateTimeFormat', { value: real, configurable: true, writable: true });
      Date.prototype.toLocaleString = realToLocale;
    }
  });

  it('refuses to adopt a name that is not a canonical zone, leaving TZ alone; Intl still formats an alias', () => {
    process.env.TZ = 'UTC';
    assert.equal(adoptTimeZone('Europe/Lodnon'), false);
    assert.equal(adoptTimeZone('GB'), false);
    assert.equal(process.env.TZ, 'UTC');
    assert.equal(hhmm(Date.parse('2026-07-01T12:00:00Z'), 'GB'), '13:00');
    assert.throws(() => hhmm(0, 'Europe/Lodnon'), RangeError);
  });
});

describe('records.timeZone in the config', () => {
  it('a misspelt zone is a config problem with its path; a canonical name and an alias are accepted', async () => {
    const { validateConfig } = await import('../../agent/src/config/load.js');
    const bad = validateConfig({ records: { timeZone: 'Europe/Lodnon' } });
    assert.equal(bad.ok, false);
    assert.ok(!bad.ok && bad.problems.some((p) => p.path === '/records/timeZone' && /not a time zone/.test(p.message)), JSON.stringify(bad));
    for (const tz of ['Europe/London', 'GB']) assert.equal(validateConfig({ records: { timeZone: tz } }).ok, true, tz);
  });
});
