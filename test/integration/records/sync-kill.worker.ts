// Child process for sync-kill.test.ts: one sync of the encrypted store against the test server.
// Prints "opened" once the store is open and "progress <done> <total>" per summary, so the parent
// kills it at a chosen point of real work (not a wall-clock guess that a fast or loaded machine misses).
import { systemClock } from '../../../common/clock.js';
import { createLogger } from '../../../common/log.js';
import { FhirDayListSource } from '../../../agent/src/records/day-list.js';
import { GpConnectClient } from '../../../agent/src/records/gpconnect/client.js';
import { RecordsStore } from '../../../agent/src/records/store.js';
import { runSync } from '../../../agent/src/records/sync.js';
import { gpcOptions } from '../../fhir-server/client-options.js';

const [dbPath, keyHex, url, nowIso] = process.argv.slice(2) as [string, string, string, string];
const store = RecordsStore.open(dbPath, { key: Buffer.from(keyHex, 'hex') });
process.stdout.write('opened\n');
const offset = Date.parse(nowIso) - Date.now();
const clock = { ...systemClock, now: () => Date.now() + offset };
const res = await runSync(store, new FhirDayListSource({ baseUrl: `${url}/r4`, timeoutMs: 10_000 }), new GpConnectClient(gpcOptions(`${url}/gpc`)), {
  timeZone: 'Europe/London',
  workingDays: [1, 2, 3, 4, 5],
  concurrency: 4,
  summaryMaxAgeMs: 0,
  retries: 0,
  clock,
  log: createLogger({ level: 'silent' }),
  onProgress: (p) => {
    if (p.phase === 'summaries') process.stdout.write(`progress ${p.done} ${p.total}\n`);
  },
});
store.close();
process.stdout.write(`done ${JSON.stringify(res)}\n`);
