/**
 * `make bench-records`: records cache figures, printed as JSON lines.
 *  1. full sync of the synthetic practice's two working days (12,000 patients, 30 clinicians) from the
 *     local FHIR server into a fresh encrypted store (target <= 120 s);
 *  2. incremental sync when nothing changed: (a) the regular 15-minute run (summaries still fresh),
 *     (b) a forced re-fetch of every summary where content is unchanged (hash match, no rewrite);
 *  3. server-side latency of the day list and the patient summary under 20 concurrent viewers
 *     (targets p99 <= 50 ms and <= 20 ms): through the store methods from 20 async workers, and through
 *     the viewer's real HTTP routes on a loopback listener (auth, audit, HTML), as a burst of 20 requests
 *     sent at once and as 20 viewers requesting back to back.
 *  4. RECORDS_BENCH_BACKUP=agent|plain: the HTTP figures again while a real restic backs up 256 MB in a
 *     loop beside the viewer (a backup during clinic: one starts after every offline capture), started
 *     as the agent starts it (agent/src/backup/restic.ts: niced, common/priority.ts) or plainly (nice 0,
 *     as before that change). The figures carry `background`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { systemClock, type Clock } from '../../common/clock.js';
import { createLogger } from '../../common/log.js';
import { FhirDayListSource } from '../../agent/src/records/day-list.js';
import { GpConnectClient } from '../../agent/src/records/gpconnect/client.js';
import { RecordsStore } from '../../agent/src/records/store.js';
import { runSync, type SyncResult } from '../../agent/src/records/sync.js';
import { gpcOptions } from '../fhir-server/client-options.js';
import { startFhirServer } from '../fhir-server/server.js';
import type { LoadJob, LoadResult } from './records-http-load.js';

const NOW = process.env.RECORDS_BENCH_NOW ?? '2026-11-27T08:00:00Z';
const VIEWERS = 20;
const emit = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ bench: 'records', ...o }) + '\n');

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round((s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0) * 100) / 100;
}
const stats = (xs: number[]) => ({ n: xs.length, p50Ms: pct(xs, 50), p95Ms: pct(xs, 95), p99Ms: pct(xs, 99), maxMs: pct(xs, 100) });

/** 20 workers issue requests concurrently; latency = issue to completion (includes waiting behind the others). */
async function concurrent(perWorker: number, op: (worker: number, i: number) => Promise<unknown> | unknown): Promise<number[]> {
  const lat: number[] = [];
  await Promise.all(
    Array.from({ length: VIEWERS }, async (_, w) => {
      for (let i = 0; i < perWorker; i++) {
        await new Promise<void>((r) => setImmediate(r));
        const t0 = performance.now();
        await op(w, i);
        lat.push(performance.now() - t0);
      }
    }),
  );
  return lat;
}

/**
 * restic backing up 256 MB of incompressible files (--force: every file re-read and re-chunked each
 * run) to a local repository, over and over until stopped. 'agent': through the agent's Restic class,
 * so with the priority the agent gives it; 'plain': the same command spawned directly (nice 0).
 */
async function startBackupLoop(mode: string): Promise<{ label: string; runs: () => number; stop: () => Promise<void> }> {
  if (mode !== 'agent' && mode !== 'plain') throw new Error(`RECORDS_BENCH_BACKUP must be agent or plain, not ${mode}`);
  const { Restic } = await import('../../agent/src/backup/restic.js');
  const { spawn } = await import('node:child_process');
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const bdir = join(dir, 'backup');
  const src = join(bdir, 'src');
  mkdirSync(src, { recursive: true });
  for (let i = 0; i < 8; i++) writeFileSync(join(src, `f${i}`), randomBytes(32 << 20));
  writeFileSync(join(bdir, 'key'), randomBytes(24).toString('hex'), { mode: 0o600 });
  const restic = new Restic({
    binary: 'restic',
    repository: join(bdir, 'repo'),
    passwordFile: join(bdir, 'key'),
    cacheDir: join(bdir, 'cache'),
    sftp: { identityFile: '', knownHostsFile: '' },
    s3: { accessKeyId: '', accessKeySecret: '', region: '' },
    uploadLimitKiBs: 0,
  });
  const init = await restic.run(['init']);
  if (init.code !== 0) throw new Error(`restic init: ${init.stderr.trim()}`);
  const args = ['backup', '--force', '--quiet', src];
  const plain = () =>
    new Promise<void>((resolve) => {
      const child = spawn('restic', [...restic.globalArgs(), ...args], { env: { ...process.env, ...restic.env() }, stdio: 'ignore' });
      child.on('close', () => resolve());
    });
  let stopping = false;
  let runs = 0;
  const loop = (async () => {
    while (!stopping) {
      if (mode === 'agent') await restic.run(args);
      else await plain();
      runs++;
    }
  })();
  await sleep(2000); // the first run under way
  return {
    label: mode === 'agent' ? 'restic backup loop, started as the agent starts it (niced)' : 'restic backup loop, nice 0 (before)',
    runs: () => runs,
    stop: async () => {
      stopping = true;
      await loop;
    },
  };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const server = await startFhirServer();
const dir = mkdtempSync(join(tmpdir(), 'c1-bench-'));
const offset = Date.parse(NOW) - Date.now();
const clock: Clock = { ...systemClock, now: () => Date.now() + offset };
const store = RecordsStore.open(join(dir, 'records.db'), { key: randomBytes(32) });
const sync = (summaryMaxAgeMs: number): Promise<SyncResult> =>
  runSync(
    store,
    new FhirDayListSource({ baseUrl: server.r4Base, timeoutMs: 30_000 }),
    new GpConnectClient({ ...gpcOptions(server.gpcBase), requestTimeoutMs: 30_000 }),
    {
      timeZone: 'Europe/London',
      workingDays: [1, 2, 3, 4, 5],
      concurrency: Number(process.env.RECORDS_BENCH_CONCURRENCY ?? 6),
      summaryMaxAgeMs,
      retries: 2,
      clock,
      log: createLogger({ level: 'warn' }),
    },
  );
const pick = (r: SyncResult) => ({
  durationMs: r.durationMs,
  dates: r.dates,
  patients: r.patients,
  appointments: r.appointments,
  fetched: r.fetched,
  changed: r.changed,
  unchanged: r.unchanged,
  withheld: r.withheld,
  skippedFresh: r.skippedFresh,
  errors: r.errors + r.dayListErrors.length,
});

try {
  const full = await sync(3_600_000);
  emit({
    figure: 'full-sync',
    targetMs: 120_000,
    pass: full.durationMs <= 120_000 && full.errors === 0,
    ...pick(full),
    upstreamRequests: server.stats.structured + server.stats.appointments + server.stats.dayList,
  });
  const inc = await sync(3_600_000);
  emit({ figure: 'incremental-sync-nothing-changed', ...pick(inc) });
  const refetch = await sync(0);
  emit({ figure: 'incremental-sync-refetch-unchanged', ...pick(refetch) });

  const date = full.dates[0]!;
  const clinicians = store.clinicians(date).map((c) => c.id);
  const patients = store
    .dayList(date)
    .filter((e) => e.hasSummary)
    .map((e) => e.patientId!);
  const dayLat = await concurrent(100, (w, i) => store.dayList(date, clinicians[(w + i) % clinicians.length]));
  const sumLat = await concurrent(100, (w, i) => store.patientSummary(patients[(w * 97 + i) % patients.length]!));
  const wholeDay = await concurrent(10, () => store.dayList(date));
  // Burst: 20 viewers' requests arrive at the same instant; each one's latency includes waiting for
  // the ones served before it (SQLite calls are synchronous on the one event loop).
  const burst = (rounds: number, op: (w: number, i: number) => unknown) => {
    const lat: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      for (let w = 0; w < VIEWERS; w++) (op(w, i), lat.push(performance.now() - t0));
    }
    return lat;
  };
  const dayBurst = burst(100, (w, i) => store.dayList(date, clinicians[(w + i) % clinicians.length]));
  const sumBurst = burst(100, (w, i) => store.patientSummary(patients[(w * 97 + i) % patients.length]!));
  emit({
    figure: 'store-day-list-20-viewers',
    targetP99Ms: 50,
    ...stats(dayLat),
    pass: pct(dayLat, 99) <= 50,
    rowsPerList: Math.round(store.dayList(date).length / clinicians.length),
  });
  emit({ figure: 'store-day-list-whole-practice-20-viewers', ...stats(wholeDay), rows: store.dayList(date).length });
  emit({ figure: 'store-patient-summary-20-viewers', targetP99Ms: 20, ...stats(sumLat), pass: pct(sumLat, 99) <= 20 });
  emit({ figure: 'store-day-list-burst-of-20', targetP99Ms: 50, ...stats(dayBurst), pass: pct(dayBurst, 99) <= 50 });
  emit({ figure: 'store-patient-summary-burst-of-20', targetP99Ms: 20, ...stats(sumBurst), pass: pct(sumBurst, 99) <= 20 });

  // Through the viewer's real HTTP routes (a listening server on loopback; the viewers are a worker
  // thread, records-http-load.ts, with one keep-alive socket each): login, session lookup, audit write (synchronous=FULL, on disk before the reply) and
  // HTML rendering all included. Two shapes: a burst (all 20 viewers' requests sent at the same
  // instant, repeated) and sustained (20 viewers each issuing requests back to back). Latency is
  // measured at the viewer (request written -> whole body read), which bounds the server-side time
  // from above; `server*` figures are the server's own time from the parsed request to the last byte written.
  try {
    const { buildWebApp } = await import('../../agent/src/web/app.js');
    const { createUser } = await import('../../agent/src/auth/index.js');
    const { RecordsFrontDesk } = await import('../../agent/src/records/viewer/index.js');
    const { createTestCtx } = await import('../helpers/ctx.js');
    const http = await import('node:http');
    const ctx = createTestCtx({ clock, config: { records: { timeZone: 'Europe/London' }, status: { https: false, auth: { idleTimeoutMs: 4 * 3600_000 } } } });
    const desk = new RecordsFrontDesk(() => store);
    desk.start(ctx);
    const app = await buildWebApp(ctx, { https: false });
    const serverMs: number[] = [];
    await app.listen({ host: '127.0.0.1', port: 0 });
    app.server.prependListener('request', (_req, res) => {
      const t0 = performance.now();
      res.on('finish', () => serverMs.push(performance.now() - t0));
    });
    const port = (app.server.address() as { port: number }).port;
    createUser(ctx.db, 'bench', 'bench passphrase 123', 'clinician');
    const agent = new http.Agent({ keepAlive: true });
    const request = (method: string, path: string, headers: Record<string, string>, payload?: string) =>
      new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
        const r = http.request({ host: '127.0.0.1', port, method, path, agent, headers }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
        });
        r.on('error', reject);
        r.end(payload);
      });
    const cookies: string[] = [];
    for (let i = 0; i < VIEWERS; i++) {
      const form = new URLSearchParams({ username: 'bench', password: 'bench passphrase 123' }).toString();
      const r = await request('POST', '/login', { 'content-type': 'application/x-www-form-urlencoded' }, form);
      cookies.push(String(r.headers['set-cookie']).split(';')[0]!);
    }
    agent.destroy();
    const auditBefore = desk.services()!.audit.count();
    // Commits of the audit trail (each one an fsync under synchronous=FULL): group commit writes one
    // per batch of views that arrived together, not one per view.
    const auditLog = desk.services()!.audit;
    const appendMany = auditLog.appendMany.bind(auditLog);
    let auditCommits = 0;
    auditLog.appendMany = (inputs) => (auditCommits++, appendMany(inputs));
    let requests = 0;
    const dayUrl = (w: number, i: number) => `/records/day?date=${date}&clinician=${encodeURIComponent(clinicians[(w + i) % clinicians.length]!)}`;
    const sumUrl = (w: number, i: number) => `/records/patient?id=${encodeURIComponent(patients[(w * 97 + i) % patients.length]!)}`;
    const load = (shape: LoadJob['shape'], rounds: number, url: (w: number, i: number) => string, thinkMs?: number) =>
      new Promise<LoadResult>((resolve, reject) => {
        const urls = Array.from({ length: rounds }, (_, i) => Array.from({ length: VIEWERS }, (_, w) => url(w, i)));
        const worker = new Worker(new URL('./records-http-load.ts', import.meta.url), {
          workerData: { port, cookies, shape, urls, ...(thinkMs ? { thinkMs } : {}) } satisfies LoadJob,
        });
        worker.once('message', (m: LoadResult) => ((requests += m.latMs.length), resolve(m)));
        worker.once('error', reject);
      });
    // serverCpuMsPerPage: CPU time of the server's thread (process.threadCpuUsage: user + system, so
    // the audit commit's write and fsync call are in it) per page. It is what a page view costs the
    // one thread that serves all 20 viewers, and unlike latency it barely moves when other programs
    // load the machine (loadAvg1m says how loaded it was): 20 x serverCpuMsPerPage is the floor of a
    // burst's p99 on an idle machine of this speed.
    const figure = async (name: string, target: number, run: () => Promise<LoadResult>) => {
      serverMs.length = 0;
      const cpu0 = process.threadCpuUsage();
      const r = await run();
      const cpu = process.threadCpuUsage(cpu0);
      const busy = (cpu.user + cpu.system) / 1000;
      emit({
        figure: name,
        targetP99Ms: target,
        ...stats(r.latMs),
        pass: pct(r.latMs, 99) <= target && r.bad === 0,
        serverP50Ms: pct(serverMs, 50),
        serverP99Ms: pct(serverMs, 99),
        serverCpuMsPerPage: Math.round((busy / r.latMs.length) * 100) / 100,
        loadAvg1m: Math.round(loadavg()[0]! * 10) / 10,
        bytesPerPage: Math.round(r.bytes / r.latMs.length),
        non200: r.bad,
        loadGenerator: process.env.LOADGEN === 'node-http' ? 'node-http' : 'raw-socket',
        nodeFlags: process.execArgv.filter((a, i, all) => a !== '--import' && all[i - 1] !== '--import').join(' '),
        ...(background ? { background: background.label, backupRuns: background.runs() } : {}),
      });
    };
    await load('burst', 5, dayUrl); // warm-up (JIT, page cache)
    const background = process.env.RECORDS_BENCH_BACKUP ? await startBackupLoop(process.env.RECORDS_BENCH_BACKUP) : null;
    // 20 viewers each reading for ~2 s between pages (10 pages/s in all: several times a practice's
    // real peak); then the two stress shapes, which put all 20 requests in flight at once.
    await figure('http-day-list-20-viewers-think-2s', 50, () => load('think', 15, dayUrl, 2000));
    await figure('http-patient-summary-20-viewers-think-2s', 20, () => load('think', 15, sumUrl, 2000));
    await figure('http-day-list-burst-of-20', 50, () => load('burst', 25, dayUrl));
    await figure('http-patient-summary-burst-of-20', 20, () => load('burst', 25, sumUrl));
    await figure('http-day-list-20-viewers-saturated', 50, () => load('sustained', 25, dayUrl));
    await figure('http-patient-summary-20-viewers-saturated', 20, () => load('sustained', 25, sumUrl));
    await background?.stop();
    // Audit is on: every served page wrote exactly one entry, and the chain still verifies.
    const s = desk.services()!;
    const v = s.audit.verify();
    emit({
      figure: 'http-audit',
      requests,
      entriesWritten: s.audit.count() - auditBefore,
      auditCommits,
      chainOk: v.ok,
      pass: v.ok && s.audit.count() - auditBefore === requests,
    });
    await app.close();
    await desk.stop();
    ctx.cleanup();
  } catch (e) {
    emit({ figure: 'http', skipped: `viewer routes unavailable: ${(e as Error).message}` });
  }
} finally {
  store.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
