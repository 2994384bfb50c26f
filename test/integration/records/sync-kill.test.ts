import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { systemClock } from '../../../common/clock.js';
import { createLogger } from '../../../common/log.js';
import { FhirDayListSource } from '../../../agent/src/records/day-list.js';
import { GpConnectClient } from '../../../agent/src/records/gpconnect/client.js';
import type { PatientSummary } from '../../../agent/src/records/model.js';
import { RecordsStore } from '../../../agent/src/records/store.js';
import { runSync } from '../../../agent/src/records/sync.js';
import { gpcOptions } from '../../fhir-server/client-options.js';
import { startFhirServer } from '../../fhir-server/server.js';

const ROUNDS = Number(process.env.RECORDS_KILL_ROUNDS ?? 20);
const NOW = '2026-11-27T09:00:00Z';
const node = process.execPath;

/**
 * Run the worker and SIGKILL it at `at`: a fraction of the way through the summaries it has to
 * fetch in this run, or, when `at` is 'early', a few ms after it opened the store (day lists and
 * the first writes). Resolves whether it was killed or finished first.
 */
function runWorker(args: string[], at: number | 'early'): Promise<'killed' | 'finished'> {
  return new Promise((resolve, reject) => {
    const child = spawn(node, ['--import', 'tsx', join(import.meta.dirname, 'sync-kill.worker.ts'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let timer: NodeJS.Timeout | undefined;
    const kill = () => child.kill('SIGKILL');
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (at === 'early') {
        if (!timer && out.includes('opened')) timer = setTimeout(kill, Math.floor(Math.random() * 30));
        return;
      }
      const last = /progress (\d+) (\d+)\n(?![\s\S]*progress)/.exec(out);
      if (last && Number(last[1]) >= Math.floor(at * Number(last[2]))) kill();
      if (out.length > 1e6) out = out.slice(-1000);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve('killed');
      else if (code === 0) resolve('finished');
      else reject(new Error(`worker exited ${code}: ${out.slice(-2000)}`));
    });
  });
}

describe('records sync survives kill -9', () => {
  it(`keeps the encrypted cache readable and consistent over ${ROUNDS} random kills, then completes`, { timeout: 600_000 }, async (t) => {
    const server = await startFhirServer({ practice: { patients: 12_000, clinicians: 30, perClinicianPerDay: 24 }, faults: { delayMs: 5 } });
    const dir = mkdtempSync(join(tmpdir(), 'c1-kill-'));
    const key = randomBytes(32);
    const dbPath = join(dir, 'records.db');
    try {
      let killed = 0;
      let lastPatients = 0;
      for (let round = 0; round < ROUNDS; round++) {
        // Random moments: early (day list / first writes) to late (deep in summaries).
        const at = Math.random() < 0.2 ? 'early' : Math.random() * 0.95;
        const outcome = await runWorker([dbPath, key.toString('hex'), server.url, NOW], at);
        if (outcome === 'killed') killed++;
        const store = RecordsStore.open(dbPath, { key });
        try {
          assert.equal(store.db.pragma('integrity_check', { simple: true }), 'ok', `round ${round}`);
          const meta = store.meta();
          assert.ok(meta.patients >= lastPatients, `round ${round}: cached patients went from ${lastPatients} to ${meta.patients}`);
          lastPatients = meta.patients;
          for (const row of store.db.prepare('SELECT id, summary FROM rec_patients').all() as { id: string; summary: string }[]) {
            const s = JSON.parse(row.summary) as PatientSummary;
            assert.equal(s.patient.id, row.id);
            assert.ok(Array.isArray(s.medications) && Array.isArray(s.allergies));
          }
          // A day list is all or nothing: each cached date holds the full list the server serves.
          for (const d of meta.dates) assert.equal(store.dayList(d).length, server.practice.appointments(d).length, `round ${round} date ${d}`);
          const states = store.db.prepare('SELECT DISTINCT state FROM rec_sync_queue').all() as { state: string }[];
          for (const s of states) assert.ok(['pending', 'done', 'error', 'withheld'].includes(s.state));
        } finally {
          store.close();
        }
      }
      t.diagnostic(`killed mid-sync in ${killed} of ${ROUNDS} rounds; ${lastPatients} patients cached before the final run`);
      assert.ok(killed >= ROUNDS / 2, `only ${killed} of ${ROUNDS} workers were killed mid-sync`);
      // Finally a complete sync in this process: resumes and ends with everything cached.
      const store = RecordsStore.open(dbPath, { key });
      const offset = Date.parse(NOW) - Date.now();
      const res = await runSync(store, new FhirDayListSource({ baseUrl: server.r4Base, timeoutMs: 10_000 }), new GpConnectClient(gpcOptions(server.gpcBase)), {
        timeZone: 'Europe/London',
        workingDays: [1, 2, 3, 4, 5],
        concurrency: 4,
        summaryMaxAgeMs: 3_600_000,
        retries: 0,
        clock: { ...systemClock, now: () => Date.now() + offset },
        log: createLogger({ level: 'silent' }),
      });
      const booked = new Set<number>();
      for (const d of res.dates) for (const a of server.practice.appointments(d)) if (a.status !== 'cancelled') booked.add(a.patient);
      const restricted = [...booked].filter((i) => server.practice.patient(i).restricted).length;
      assert.equal(res.errors, 0);
      assert.equal(res.patients, booked.size - restricted);
      assert.equal(store.getMeta('syncRun'), null);
      store.close();
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
