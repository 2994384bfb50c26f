import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { monthlyOutages } from '../../../fleet/src/reports/outages.js';
import { SqliteDriver } from '../../../fleet/src/store/driver.js';
import { Store } from '../../../fleet/src/store/store.js';
import { tempDir } from '../../helpers/fleet.js';

/**
 * The monthly outage report's counts, on a real SQLite store fed through the ingest path: a
 * clinical-system outage is a run of failing syncs (the agent retries every few minutes), not each
 * failed attempt; failovers and failed drills count one each; events outside the month do not count.
 */
describe('monthly outage report', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: Store;
  const month = Date.UTC(2026, 10, 1); // November 2026
  const min = 60_000;
  let seq = 0;
  const place = { practice: 'P81001', practiceName: 'Test Surgery', pcn: 'PCN-1', clinicalSystem: 'EMIS' };
  const event = (name: string, at: number, payload: unknown) =>
    store.devices.ingest([{ kind: 'event', deviceId: 'P81001-01', receivedAt: at, place, msg: { id: `e${++seq}`, name, at, payload } as never }]);
  const sync = (at: number, errors: number) => event('records.synced', at, { patients: 10, appointments: 5, asOf: at, durationMs: 100, errors });

  before(async () => {
    tmp = tempDir();
    store = await Store.open(new SqliteDriver(join(tmp.dir, 'fleet.db')));
    await store.devices.ingest([
      { kind: 'state', deviceId: 'P81001-01', receivedAt: month, place, msg: { online: true, bootId: 'b', bdSeq: 1, at: month } as never },
    ]);
    // Outage 1: five failed syncs five minutes apart, then a clean one.
    for (let i = 0; i < 5; i++) await sync(month + 86_400_000 + i * 5 * min, 3);
    await sync(month + 86_400_000 + 30 * min, 0);
    // Outage 2: two failed syncs, still failing at the month's end.
    await sync(month + 10 * 86_400_000, 1);
    await sync(month + 10 * 86_400_000 + 5 * min, 2);
    // Not in November.
    await sync(month - min, 4);
    await event('failover.switched', month + 2 * 86_400_000, { from: 'wan', to: '4g', kind: 'failover', reason: 'x' });
    await event('failover.switched', month + 2 * 86_400_000 + 20 * min, { from: '4g', to: 'wan', kind: 'failback', reason: 'x' });
    await event('drill.completed', month + 3 * 86_400_000, { id: 'd1', at: 0, passed: false, steps: [] });
    await event('drill.completed', month + 4 * 86_400_000, { id: 'd2', at: 0, passed: true, steps: [] });
  });
  after(async () => {
    await store.close();
    tmp.rm();
  });

  it('counts runs of failing syncs as outages, failovers and failed drills once each', async () => {
    const rows = await monthlyOutages(store, 2026, 11, undefined, 'ICB');
    const r = rows.find((x) => x.practice === 'P81001');
    assert.ok(r, JSON.stringify(rows));
    assert.equal(r.clinicalSystem, 'EMIS');
    assert.equal(r.clinicalOutages, 2);
    assert.equal(r.outagesSurvived, 1);
    assert.equal(r.drillsFailed, 1);
  });
});
