/**
 * make bench-fleet: 10,000 simulated appliances at 60 s telemetry against the fleet manager running
 * as its own process (SQLite by default; STORE=pg (or FL_BENCH_DB=postgres) for a PostgreSQL the bench
 * starts itself, with fsync on as a deployment would run it), over a
 * real mosquitto with TLS. Prints JSON lines: ingest lag p50/p99 (device timestamp -> committed in
 * the database, measured by the fleet), dashboard page p50/p95 while ingesting, fleet RSS.
 * Env: FL_BENCH_DEVICES (10000), FL_BENCH_S (180 s of steady state), FL_BENCH_CONNS (1000 separate TLS
 * connections, ten devices on each: mosquitto and this process each hold one descriptor per connection,
 * so `make bench-fleet` raises the open-file limit first).
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { MqttClient } from 'mqtt';
import { freePort, startBroker } from '../helpers/mosquitto.js';
import { postgresMissing, TestPostgres } from '../helpers/postgres.js';
import { pub, SimDevice } from '../helpers/fleet-sim.js';
import { tempDir } from '../helpers/fleet.js';

const N = Number(process.env.FL_BENCH_DEVICES ?? 10_000);
const STEADY_S = Number(process.env.FL_BENCH_S ?? 180);
const CONNS = Number(process.env.FL_BENCH_CONNS ?? 1000);
const INTERVAL_MS = 60_000;
const ROOT = resolve(import.meta.dirname, '../..');
const out = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ bench: 'fleet', ...o }) + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : null);

const broker = await startBroker([]);
const tmp = tempDir('fl-bench-');
let pg: TestPostgres | undefined;
const dbKind = ['pg', 'postgres'].includes(process.env.STORE ?? process.env.FL_BENCH_DB ?? '') ? 'postgres' : 'sqlite';
if (dbKind === 'postgres') {
  const why = postgresMissing();
  if (why) throw new Error(why);
  pg = await new TestPostgres().start({ fsync: true });
}
const httpPort = await freePort();
const id = broker.identity('fleet');
const cfgFile = join(tmp.dir, 'fleet.json');
writeFileSync(
  cfgFile,
  JSON.stringify({
    dataDir: tmp.dir,
    instanceId: 'fleet-bench',
    log: { level: 'warn' },
    db: dbKind === 'postgres' ? { kind: 'postgres', url: pg!.url } : {},
    mqtt: { url: broker.url, prefix: broker.prefix, caPath: id.ca, certPath: id.cert, keyPath: id.key },
    http: { port: httpPort },
    alerts: { evaluateMs: 60_000 },
  }),
);
const fleet = spawn(join(ROOT, 'fleet/bin/fleet'), ['run', '--config', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
let stdout = '';
let stderr = '';
fleet.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
fleet.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-20_000)));
const cleanup = async () => {
  fleet.kill('SIGTERM');
  await new Promise((r) => (fleet.exitCode !== null ? r(null) : fleet.once('exit', r)));
  await broker.close();
  await pg?.stop();
  tmp.rm();
};
try {
  const t0 = Date.now();
  while (!/first admin login: admin \/ (\S+)/.test(stdout)) {
    if (fleet.exitCode !== null || Date.now() - t0 > 60_000) throw new Error(`fleet did not start: ${stderr.slice(-2000)}`);
    await sleep(100);
  }
  const password = /first admin login: admin \/ (\S+)/.exec(stdout)![1]!;
  const base = `http://127.0.0.1:${httpPort}`;
  const login = await fetch(`${base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: 'admin', password }),
  });
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
  const get = async (path: string) => {
    const s = performance.now();
    const r = await fetch(`${base}${path}`, { headers: { cookie } });
    const body = await r.text();
    if (r.status !== 200) throw new Error(`${path}: ${r.status}`);
    return { ms: performance.now() - s, body };
  };
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${fleet.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  // The PostgreSQL server's own memory (postmaster and its backends), reported beside the fleet's.
  const pgRss = () => (pg ? pg.rssMb() : null);

  // Simulator: CONNS MQTT connections (fleet identity, which the ACL lets publish for any device), devices spread over them.
  const nofile = Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 0);
  if (nofile && nofile < CONNS + 200) throw new Error(`open-file limit ${nofile} is too low for ${CONNS} connections: ulimit -n ${CONNS + 1024}`);
  const conns: MqttClient[] = [];
  const connecting = performance.now();
  // 50 TLS handshakes at a time: all at once would be a connect storm this bench is not about.
  for (let i = 0; i < CONNS; i += 50) {
    const ids = Array.from({ length: Math.min(50, CONNS - i) }, (_, j) => `sim-${i + j}`);
    conns.push(...(await Promise.all(ids.map((clientId) => broker.connect('fleet', { clientId, connectTimeout: 30_000 })))));
  }
  out({ phase: 'connections', connections: conns.length, connectMs: Math.round(performance.now() - connecting) });
  const devs = Array.from(
    { length: N },
    (_, i) => new SimDevice(`S${String(10000 + Math.floor(i / 2)).padStart(5, '0')}-${String((i % 2) + 1).padStart(2, '0')}`, broker.prefix),
  );
  devs.forEach((d, i) => (d.cellular = i % 20 === 0)); // 5 % on 4G
  const conn = (i: number) => conns[i % CONNS]!;
  const births = performance.now();
  for (let i = 0; i < N; i += 200) await Promise.all(devs.slice(i, i + 200).map((d, j) => pub(conn(i + j), d.birth(Date.now()), true)));
  out({ phase: 'births', devices: N, connections: CONNS, publishMs: Math.round(performance.now() - births) });

  // Steady state: each device publishes every 60 s at its own offset; 1 in 200 sends a failover event per minute.
  const start = Date.now();
  const end = start + STEADY_S * 1000;
  const offsets = devs.map(() => Math.random() * INTERVAL_MS);
  const next = offsets.map((o) => start + o);
  let sent = 0;
  let publishErrors = 0;
  const pages: { list: number[]; filtered: number[]; device: number[] } = { list: [], filtered: [], device: [] };
  const rssSamples: number[] = [];
  const pgRssSamples: number[] = [];
  let pageLoop = true;
  const pager = (async () => {
    await sleep(Math.min(30_000, STEADY_S * 250)); // let the first round land
    let k = 0;
    while (pageLoop && Date.now() < end) {
      pages.list.push((await get('/')).ms);
      pages.filtered.push((await get('/?state=cellular')).ms);
      pages.device.push((await get(`/devices/${devs[(k++ * 37) % N]!.id}`)).ms);
      rssSamples.push(rss());
      const p = pgRss();
      if (p !== null) pgRssSamples.push(p);
      await sleep(1000);
    }
  })();
  while (Date.now() < end) {
    const now = Date.now();
    const due: Promise<void>[] = [];
    for (let i = 0; i < N; i++) {
      if (next[i]! > now) continue;
      next[i]! += INTERVAL_MS;
      const d = devs[i]!;
      due.push(
        pub(conn(i), d.telemetry(now)).then(
          () => void sent++,
          () => void publishErrors++,
        ),
      );
      if (i % 200 === 0)
        due.push(
          pub(conn(i), d.event(now, 'uplink.changed', { name: 'wan', from: 'up', to: 'degraded', reason: 'bench', at: now })).catch(() => void publishErrors++),
        );
    }
    await Promise.all(due);
    await sleep(50);
  }
  pageLoop = false;
  await pager;
  await sleep(3000); // drain
  const health = JSON.parse((await get('/api/health')).body) as {
    components: { ingest: { details: Record<string, unknown> } };
    counters: Record<string, number>;
  };
  const ing = health.components.ingest.details;
  const summary = await get('/');
  const total = /data-card="all"><b>(\d+)</.exec(summary.body)?.[1];
  const all = [...pages.list, ...pages.filtered, ...pages.device];
  out({
    result: 'fleet',
    db: dbKind,
    devices: N,
    devicesListed: Number(total),
    connections: CONNS,
    steadyS: STEADY_S,
    telemetrySent: sent,
    publishErrors,
    msgPerS: Math.round((sent / STEADY_S) * 10) / 10,
    ingestLagP50Ms: ing.lagP50Ms,
    ingestLagP99Ms: ing.lagP99Ms,
    targetLagP99Ms: 2000,
    applied: ing.applied,
    dropped: ing.dropped,
    duplicates: ing.duplicates,
    pageP50Ms: Math.round(pct(all, 50)! * 10) / 10,
    pageP95Ms: Math.round(pct(all, 95)! * 10) / 10,
    targetPageP95Ms: 300,
    listP95Ms: Math.round(pct(pages.list, 95)! * 10) / 10,
    filteredP95Ms: Math.round(pct(pages.filtered, 95)! * 10) / 10,
    deviceP95Ms: Math.round(pct(pages.device, 95)! * 10) / 10,
    pages: all.length,
    rssMbMax: Math.round(Math.max(...rssSamples)),
    rssMbEnd: Math.round(rss()),
    ...(pg ? { postgresRssMbMax: Math.round(Math.max(...pgRssSamples)), postgresFsync: true } : {}),
  });
  for (const c of conns) c.end(true);
} finally {
  await cleanup();
}
