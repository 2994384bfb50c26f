/**
 * `make bench-memory`: steady-state RSS and CPU of the agent as it ships, the `make dist` bundle on
 * plain Node 24 (no tsx), with every capability on, in the namespace lab (test/lab/lab.ts, prefix
 * mb; needs root): two uplinks probed (wan0 + wwan0 with the fake mmcli modem), failover actuating
 * routes/rules/nft, records unlocked and synced from the synthetic practice (local FHIR server),
 * offline capture forwarder, telemetry to a real mosquitto with TLS client certs, telephony
 * (kamailio on lan0), backup to a local restic repository, Wi-Fi (no radio here: it reports why),
 * update, drills and the HTTPS status page. The broker and the FHIR server run in the appliance's
 * own namespace (its loopback), so nothing leaves the lab.
 *
 * Prints one JSON line: RSS (avg/max over the window, from /proc/PID/status), CPU % of one core over
 * the window (utime+stime from /proc/PID/stat), the V8 heap (from the agent's own metrics line), the
 * flags the bundle ran with. Env: BENCH_SECONDS (60), BENCH_WARMUP_S (45), NODE_FLAGS (default: the
 * systemd unit's flags, image/systemd/surgery-edge.service), HEAP_SNAPSHOT=1 (also write a heap
 * snapshot of the steady agent: node --heapsnapshot-signal, summarised by test/bench/heap-summary.ts),
 * BENCH_WITHOUT=records,telephony (diagnosis: leave capabilities out to see what each costs; not the figure).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

const here = dirname(fileURLToPath(import.meta.url));
const REPO = join(here, '../..');
const BUNDLE = join(REPO, 'dist/surgery-edge.mjs');
const NODE = join(REPO, 'scripts/node');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 45);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const out = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify({ bench: 'memory', ...o }) + '\n');
const note = (m: string) => process.stderr.write(`bench-memory: ${m}\n`);

/** The node flags of the shipped unit: what runs on the appliance is what is measured. */
export function unitNodeFlags(): string[] {
  const unit = readFileSync(join(REPO, 'image/systemd/surgery-edge.service'), 'utf8');
  const exec = /^ExecStart=(\S+)\s+(.*)$/m.exec(unit)?.[2] ?? '';
  const args = exec.split(/\s+/);
  const bundleAt = args.findIndex((a) => !a.startsWith('-'));
  return args.slice(0, bundleAt < 0 ? 0 : bundleAt);
}

/** The Environment= lines of the shipped unit (e.g. MALLOC_ARENA_MAX): measured as shipped too. */
export function unitEnvironment(): Record<string, string> {
  const unit = readFileSync(join(REPO, 'image/systemd/surgery-edge.service'), 'utf8');
  const out: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment=(\S+?)=(\S*)$/gm)) out[m[1]!] = m[2]!;
  return out;
}

function procStat(pid: number): { cpuTicks: number; rssKb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { cpuTicks: Number(f[11]) + Number(f[12]), rssKb: Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) };
}

/**
 * The pages staff keep open, fetched over the LAN server's HTTPS (self-signed certificate) as a browser
 * tab would: one kept-alive connection (fastify keeps an idle one 72 s; a look comes every 15 s), so
 * the TLS handshake is not repeated for every page. `handshakes` counts new connections.
 */
class StaffViewer {
  readonly counts = { views: 0, errors: 0, lastError: '', handshakes: 0 };
  private cookie = '';
  private readonly agent = new HttpsAgent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
  constructor(
    private readonly port: number,
    private readonly clinician: { user: string; password: string } | null,
  ) {}

  private request(method: string, path: string, body?: string): Promise<{ status: number; body: string; setCookie: string[] }> {
    const headers: Record<string, string> = { host: `127.0.0.1:${this.port}`, ...(this.cookie ? { cookie: this.cookie } : {}) };
    if (body !== undefined) Object.assign(headers, { 'content-type': 'application/x-www-form-urlencoded', origin: `https://127.0.0.1:${this.port}` });
    return new Promise((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: this.port, method, path, headers, agent: this.agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, setCookie: res.headers['set-cookie'] ?? [] }));
      });
      req.on('socket', (sock) => {
        if (!(sock as { seen?: boolean }).seen) (((sock as { seen?: boolean }).seen = true), this.counts.handshakes++);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  private async page(path: string): Promise<string> {
    const r = await this.request('GET', path);
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status}`);
    this.counts.views++;
    return r.body;
  }

  async look(): Promise<void> {
    try {
      await this.page('/');
      if (!this.clinician) return;
      if (!this.cookie) {
        const form = new URLSearchParams({ username: this.clinician.user, password: this.clinician.password }).toString();
        const r = await this.request('POST', '/login', form);
        this.cookie = r.setCookie.map((c) => c.split(';')[0]).join('; ');
        if (!this.cookie) throw new Error(`login: ${r.status}`);
      }
      const day = await this.page('/records/day');
      const id = /href="\/records\/patient\?id=([^"]+)"/.exec(day)?.[1];
      if (id) await this.page(`/records/patient?id=${id}`);
    } catch (e) {
      this.counts.errors++;
      this.counts.lastError = (e as Error).message;
    }
  }
}

/** Inside the appliance namespace: broker, FHIR server, records key, then the bundle. Prints `agent-pid N`. */
async function inner(): Promise<void> {
  const { startBroker } = await import('../helpers/mosquitto.js');
  const { startFhirServer } = await import('../fhir-server/server.js');
  type Job = { dir: string; base: Record<string, unknown>; modemFile: string; nodeFlags: string[]; fakeMmcli: string };
  const job = JSON.parse(readFileSync(process.argv[3]!, 'utf8')) as Job;
  spawnSync('ip', ['link', 'set', 'lo', 'up']);
  const broker = await startBroker(['mb-lab-appliance']);
  const fhir = await startFhirServer();
  const id = broker.identity('mb-lab-appliance');
  const dir = job.dir;
  mkdirSync(join(dir, 'restic'), { recursive: true });
  // A real key's length: the agent refuses one under 32 characters (checkKeyFile), which is why earlier runs showed backup "failed".
  writeFileSync(join(dir, 'backup.key'), randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  spawnSync('restic', ['init', '--repo', join(dir, 'restic'), '--password-file', join(dir, 'backup.key')], { stdio: 'ignore' });
  const doc = {
    ...job.base,
    log: { level: 'warn', format: 'json' },
    telemetry: { enabled: true, brokers: [broker.url], prefix: broker.prefix, caPath: id.ca, certPath: id.cert, keyPath: id.key, intervalMs: 10_000 },
    records: {
      enabled: true,
      tpm: 'off',
      gpconnect: { baseUrl: fhir.gpcBase, fromAsid: '200000000359', toAsid: '918999198738' },
      dayList: { source: 'fhir', fhirBaseUrl: fhir.r4Base },
      capture: { upstreamUrl: `${fhir.r4Base.replace(/\/$/, '')}/captures` },
    },
    telephony: {
      enabled: true,
      listen: '192.168.50.1',
      port: 5060,
      lanInterface: 'lan0',
      lanSubnets: ['192.168.50.0/24'],
      extensions: [{ ext: '1001', password: 'secret-1001' }],
      pbx: { host: '198.51.100.9', port: 5060 },
    },
    backup: { enabled: true, repository: join(dir, 'restic'), keyFile: join(dir, 'backup.key') },
    wifi: { enabled: true, ssid: 'Surgery-Backup' },
    status: { port: 8443 },
  };
  // BENCH_CAPS=lab: only what the failover lab runs (uplinks, cellular, failover, status, drills, update,
  // enrolment): the like-for-like comparison with the "101 MB" figure measured before this bench existed.
  const lab = process.env.BENCH_CAPS === 'lab';
  if (lab) for (const k of ['telemetry', 'records', 'telephony', 'backup', 'wifi'] as const) delete (doc as Record<string, unknown>)[k];
  if (lab) (doc as Record<string, unknown>).uplinks = (job.base.uplinks as { kind: string }[]).filter((u) => u.kind !== 'wifi');
  // BENCH_WITHOUT=records,telephony (diagnosis only, never the figure): leave those capabilities out, to see
  // what each one costs (docs/architecture.md, memory).
  const without = (process.env.BENCH_WITHOUT ?? '').split(',').filter(Boolean);
  for (const k of without) {
    if (!(k in doc) || k === 'log') throw new Error(`BENCH_WITHOUT: no capability section "${k}" in the bench config`);
    if (k === 'status') (doc as Record<string, unknown>).status = { enabled: false };
    else delete (doc as Record<string, unknown>)[k];
  }
  if (without.includes('wifi')) (doc as Record<string, unknown>).uplinks = (job.base.uplinks as { kind: string }[]).filter((u) => u.kind !== 'wifi');
  const cfg = join(dir, 'config.yaml');
  writeFileSync(cfg, stringify(doc));
  // AGENT_ENV="K=V ..." adds to the agent's environment (experiments, e.g. MALLOC_ARENA_MAX=2).
  const extra: Record<string, string> = {
    ...unitEnvironment(),
    ...Object.fromEntries(
      (process.env.AGENT_ENV ?? '')
        .split(/\s+/)
        .filter(Boolean)
        .map((kv) => [kv.split('=')[0]!, kv.split('=').slice(1).join('=')]),
    ),
  };
  const env = {
    ...process.env,
    ...extra,
    MEM_TRACE_FILE: join(dir, 'mem-trace.json'),
    PATH: `${job.fakeMmcli}:${process.env.PATH ?? ''}`,
    FAKE_MMCLI_STATE: job.modemFile,
  };
  for (const cmd of lab || without.includes('records') ? [] : ['init', 'unlock']) {
    const r = spawnSync(NODE, [BUNDLE, 'records', cmd, '-c', cfg], { input: 'bench records passphrase\n', env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`records ${cmd}: ${r.stderr}${r.stdout}`);
  }
  // Staff looking at the box: a receptionist's status page and a clinician's day list and one booked
  // patient's summary, fetched every 15 s from 20 s after the start, so the steady state is a box that
  // renders pages (times, dates, records), not an idle one (BENCH_VIEWS=0 turns this off, diagnosis only).
  const views = process.env.BENCH_VIEWS !== '0' && !without.includes('status');
  const clinician = { user: 'bench-gp', password: 'bench viewer passphrase 1' };
  if (views && !lab && !without.includes('records')) {
    const r = spawnSync(NODE, [BUNDLE, 'user', 'add', clinician.user, '-r', 'clinician', '-c', cfg], {
      input: `${clinician.password}\n`,
      env,
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`user add: ${r.stderr}${r.stdout}`);
  }
  const agent = spawn(NODE, [...job.nodeFlags, BUNDLE, 'run', '--config', cfg], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  if (views) {
    const viewer = new StaffViewer(8443, lab || without.includes('records') ? null : clinician);
    const look = () => void viewer.look().then(() => writeFileSync(join(dir, 'views.json'), JSON.stringify(viewer.counts)));
    setTimeout(() => {
      look();
      setInterval(look, 15_000).unref();
    }, 20_000).unref();
  }
  let errLines = 0;
  agent.stderr!.on('data', (b: Buffer) => {
    for (const l of b.toString().split('\n').filter(Boolean)) if (errLines++ < 20) process.stderr.write(`agent: ${l.slice(0, 300)}\n`);
  });
  agent.once('spawn', () => process.stdout.write(`agent-pid ${agent.pid}\n`));
  // One backup during the warm-up (restic is a child process: its memory is not the agent's), so the
  // steady state is a box that has backed up, as the nightly run leaves it.
  if (!lab && !without.includes('backup')) {
    setTimeout(() => {
      const b = spawn(NODE, [BUNDLE, 'backup', 'now', '--force', '-c', cfg], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      b.stderr.on('data', (d: Buffer) => process.stderr.write(`backup now: ${d.toString().slice(0, 300)}`));
    }, 15_000).unref();
  }
  const stop = () => {
    agent.kill('SIGTERM');
    setTimeout(() => agent.kill('SIGKILL'), 10_000).unref();
  };
  process.once('SIGTERM', stop);
  await new Promise((r) => agent.once('exit', r));
  await broker.close();
  await fhir.close();
}

async function outer(): Promise<void> {
  if (process.getuid?.() !== 0) return out({ skipped: 'needs root (network namespaces)' });
  if (!existsSync(BUNDLE)) throw new Error('dist/surgery-edge.mjs is missing: run make dist');
  const { createLab } = await import('../lab/lab.js');
  const { missingTools } = await import('../lab/tools.js');
  const missing = missingTools();
  if (missing) return out({ skipped: missing });
  const lab = createLab({ prefix: 'mb' });
  await lab.up();
  let child: ChildProcess | undefined;
  try {
    const base = lab.agentConfig();
    const labTmp = dirname((base.paths as { stateDir: string }).stateDir);
    // The lab's fake modem state (written by lab.up()); startAgent would point the fake mmcli at it, the bench runs the bundle itself.
    const modemFile = join(labTmp, 'modem.json');
    // The appliance's own probe cadence (the schema's defaults), not the lab's fast one: CPU is measured too.
    const uplinks = (base.uplinks as { probes: { targets: unknown } }[]).map((u) => ({ ...u, probes: { targets: u.probes.targets } }));
    // Wi-Fi backup needs an uplink of kind wifi; the lab has no radio, so it is probed and found down, as on a box without one.
    base.uplinks = [...uplinks, { name: 'wifi', interface: 'wlan0', kind: 'wifi', priority: 3, table: 103, probes: { targets: uplinks[0]!.probes.targets } }];
    const dir = join(labTmp, 'bench');
    mkdirSync(dir, { recursive: true });
    const nodeFlags = process.env.NODE_FLAGS !== undefined ? process.env.NODE_FLAGS.split(/\s+/).filter(Boolean) : unitNodeFlags();
    if (process.env.HEAP_SNAPSHOT) nodeFlags.push('--heapsnapshot-signal=SIGUSR2');
    if (process.env.MEM_TRACE) nodeFlags.push('--import', join(here, 'memory-trace.mjs'));
    const jobFile = join(dir, 'job.json');
    writeFileSync(jobFile, JSON.stringify({ dir, base, modemFile, nodeFlags, fakeMmcli: join(REPO, 'test/helpers/fake-mmcli') }));
    child = spawn('ip', ['netns', 'exec', lab.ns.app, NODE, '--import', 'tsx', fileURLToPath(import.meta.url), 'inner', jobFile], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const pid = await new Promise<number>((res, rej) => {
      child!.stdout!.on('data', (b: Buffer) => {
        const m = /agent-pid (\d+)/.exec(b.toString());
        if (m) res(Number(m[1]));
      });
      child!.once('exit', (c) => rej(new Error(`bench helper exited (${c}) before the agent started`)));
    });
    note(`agent pid ${pid} (${nodeFlags.join(' ') || 'no node flags'}); warming up ${WARMUP_S} s`);
    await sleep(WARMUP_S * 1000);
    const status = JSON.parse(readFileSync(join((base.paths as { runDir: string }).runDir, 'status.json'), 'utf8')) as {
      capabilities: Record<string, { status: string; summary: string }>;
    };
    const caps = Object.fromEntries(Object.entries(status.capabilities).map(([k, v]) => [k, v.status]));
    note(`capabilities: ${JSON.stringify(caps)}`);
    const t0 = performance.now();
    const s0 = procStat(pid);
    const rss: number[] = [];
    while (performance.now() - t0 < SECONDS * 1000) {
      await sleep(2000);
      rss.push(procStat(pid).rssKb);
    }
    const s1 = procStat(pid);
    const elapsed = (performance.now() - t0) / 1000;
    // Where the file-backed part of RSS comes from (the node binary, native addons, ...), largest first.
    const byFile = new Map<string, number>();
    let cur = '';
    for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
      const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (head) cur = head[1] || '[anon]';
      const rssLine = /^Rss:\s+(\d+) kB/.exec(line);
      if (rssLine) byFile.set(cur, (byFile.get(cur) ?? 0) + Number(rssLine[1]));
    }
    const topMappings = Object.fromEntries(
      [...byFile]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8)
        .map(([k, v]) => [k.replace(/^.*node_modules\//, ''), Math.round(v / 102.4) / 10]),
    );
    const trace = existsSync(join(dir, 'mem-trace.json'))
      ? (JSON.parse(readFileSync(join(dir, 'mem-trace.json'), 'utf8')) as Record<string, unknown>)
      : undefined;
    const smaps = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(smaps)?.[1] ?? 0);
    if (process.env.HEAP_SNAPSHOT) {
      process.kill(pid, 'SIGUSR2');
      // The snapshot is written in pieces: wait until its size has stopped changing.
      let last = -1;
      for (let i = 0; i < 60; i++) {
        await sleep(2000);
        const f = readdirSync(dir).find((x) => x.endsWith('.heapsnapshot'));
        const size = f ? statSync(join(dir, f)).size : -1;
        if (size > 0 && size === last) break;
        last = size;
      }
      const snap = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot'));
      if (snap) {
        // RSS, smaps and the V8 figures are all taken before the snapshot: writing one allocates a lot.
        const dest = join(REPO, 'dist', snap);
        writeFileSync(dest, readFileSync(join(dir, snap)));
        note(`heap snapshot: ${dest} (summarise: scripts/node --import tsx test/bench/heap-summary.ts ${dest})`);
      }
    }
    const rssMb = (x: number) => Math.round(x / 102.4) / 10;
    const avg = rss.reduce((a, b) => a + b, 0) / rss.length;
    // Pages staff had open (StaffViewer): a figure taken with no page views would flatter the agent.
    const viewsFile = join(dir, 'views.json');
    const staffViews = existsSync(viewsFile)
      ? (JSON.parse(readFileSync(viewsFile, 'utf8')) as { views: number; errors: number; lastError: string; handshakes: number })
      : null;
    if (staffViews?.errors) note(`page views failed ${staffViews.errors} time(s): ${staffViews.lastError}`);
    out({
      figure:
        process.env.BENCH_CAPS === 'lab'
          ? 'agent-steady-state-lab-capabilities'
          : process.env.BENCH_WITHOUT
            ? `diagnosis-without-${process.env.BENCH_WITHOUT}`
            : 'agent-steady-state',
      bundle: 'dist/surgery-edge.mjs',
      nodeFlags,
      warmupS: WARMUP_S,
      seconds: Math.round(elapsed),
      targetRssMb: 80,
      rssMbAvg: rssMb(avg),
      rssMbMax: rssMb(Math.max(...rss)),
      // Every 2 s sample: where a peak comes from (a records sync, a backup, a page view).
      rssMbSeries: rss.map(rssMb),
      pass: Math.max(...rss) / 1024 <= 80 && (process.env.BENCH_VIEWS === '0' || (staffViews !== null && staffViews.views > 0 && staffViews.errors === 0)),
      staffViews,
      anonMb: rssMb(kb('Anonymous')),
      fileBackedMb: rssMb(kb('Rss') - kb('Anonymous')),
      cpuPctOfOneCore: Math.round(((s1.cpuTicks - s0.cpuTicks) / 100 / elapsed) * 1000) / 10,
      capabilities: caps,
      recordsSummary: status.capabilities.records?.summary,
      backupSummary: status.capabilities.backup?.summary,
      topMappingsMb: topMappings,
      ...(process.env.AGENT_ENV ? { agentEnv: process.env.AGENT_ENV } : {}),
      ...(trace ? { v8: trace } : {}),
    });
  } finally {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM'); // the helper stops the agent, then the broker and the FHIR server
      await Promise.race([exited, sleep(20_000)]);
    }
    await lab.down();
  }
}

if (process.argv[2] === 'inner') await inner();
else await outer();
