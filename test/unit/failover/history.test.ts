import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openStateDb } from '../../../agent/src/core/db.js';
import { migrateHistory, outagesSince, recordSwitch } from '../../../agent/src/failover/history.js';
import { outagesCard } from '../../../agent/src/status/cards.js';

const H = (h: number, m = 0) => Date.parse(`2026-11-27T${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:00Z`);
const fmt = (t: number) => new Date(t).toISOString().slice(11, 16);

describe("failover switch history -> today's outages", () => {
  it('merges a backup-then-offline spell into one outage, keeps one still going on, survives reopening', () => {
    const db = openStateDb(':memory:');
    migrateHistory(db);
    const day = H(0);
    recordSwitch(db, { at: H(23) - 86_400_000, from: 'wan', to: 'lte', kind: 'failover', primary: false }); // yesterday 23:00
    recordSwitch(db, { at: H(1), from: 'lte', to: 'wan', kind: 'failback', primary: true });
    recordSwitch(db, { at: H(10, 42), from: 'wan', to: 'lte', kind: 'failover', primary: false });
    recordSwitch(db, { at: H(10, 50), from: 'lte', to: null, kind: 'none-available', primary: false });
    recordSwitch(db, { at: H(11, 5), from: null, to: 'wan', kind: 'failback', primary: true });
    recordSwitch(db, { at: H(14, 0), from: 'wan', to: 'lte', kind: 'forced', primary: false });
    recordSwitch(db, { at: H(14, 30), from: 'lte', to: 'wan', kind: 'forced', primary: true });
    recordSwitch(db, { at: H(16, 0), from: 'wan', to: null, kind: 'none-available', primary: false });
    const o = outagesSince(db, day, H(16, 20));
    assert.equal(o.length, 4);
    assert.deepEqual(o[0], { start: H(23) - 86_400_000, end: H(1), via: ['lte'], offline: false, maintenance: false }, 'began last night');
    assert.deepEqual(o[1], { start: H(10, 42), end: H(11, 5), via: ['lte'], offline: true, maintenance: false });
    assert.equal(o[2]!.maintenance, true);
    assert.deepEqual(o[3], { start: H(16), end: null, via: [], offline: true, maintenance: false });
    const html = outagesCard(o, { lte: 'EE 4G backup' }, H(16, 20), fmt);
    assert.match(html, /10:42 - 11:05 \(23 min\): on EE 4G backup; offline for part of it/);
    assert.match(html, /16:00 - now \(20 min\): offline, no internet at all <strong>\(still going on\)<\/strong>/);
    assert.match(html, /maintenance on EE 4G backup/);
  });

  it('a day with none says so', () => {
    const db = openStateDb(':memory:');
    migrateHistory(db);
    recordSwitch(db, { at: H(8), from: null, to: 'wan', kind: 'initial', primary: true });
    assert.deepEqual(outagesSince(db, H(0), H(9)), []);
    assert.match(outagesCard([], {}, H(9), fmt), /No outages today/);
  });

  it('drops rows older than 8 days', () => {
    const db = openStateDb(':memory:');
    migrateHistory(db);
    recordSwitch(db, { at: H(1) - 10 * 86_400_000, from: 'wan', to: 'lte', kind: 'failover', primary: false });
    recordSwitch(db, { at: H(1), from: 'lte', to: 'wan', kind: 'failback', primary: true });
    assert.equal((db.prepare('SELECT COUNT(*) AS n FROM failover_switches').get() as { n: number }).n, 1);
  });
});
