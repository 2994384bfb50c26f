/**
 * Telemetry benchmark (`make bench-telemetry`), against a real mosquitto with TLS client certs.
 * Prints JSON lines:
 *  - steady state of the agent (real Agent + telemetry + stand-in capabilities with contract-shaped
 *    health) reporting every 10 s: CPU % of one core and RSS, sampled from /proc over BENCH_SECONDS;
 *  - wire bytes (TLS records both ways, through a counting TCP proxy) per telemetry sample and per
 *    keepalive ping, and from them bytes/hour on 4G at the default cellularIntervalMs;
 *  - 4G before/after: `cellularReport: interval` (a full report every cellularIntervalMs, the
 *    behaviour before contract v1.3) against `changes` (a full report on a meaningful change or every
 *    cellularFullEveryMs, a heartbeat every cellularIntervalMs), from the measured wire bytes of a
 *    full report, a heartbeat and a ping, at the defaults.
 * Env: BENCH_SECONDS (default 150), BENCH_WARMUP_S (15), BENCH_CHANGES_PER_HOUR (meaningful changes
 * assumed per hour on 4G for the "after" figure; default 4, i.e. a state change every 15 minutes).
 */
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { TelemetrySection } from '../../agent/src/telemetry/config-schema.js';
import { freePort, startBroker, mosquittoMissing } from '../helpers/mosquitto.js';
import { AgentProc, agentConfig, fleetCollector } from '../integration/telemetry/fixture.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 150);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 15);
const CHANGES_PER_HOUR = Number(process.env.BENCH_CHANGES_PER_HOUR ?? 4);
const defaults = Value.Default(TelemetrySection, {}) as { cellularIntervalMs: number; keepaliveS: number; cellularFullEveryMs: number };
const out = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ bench: 'telemetry', ...o }) + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP relay that counts bytes each way: what the modem would carry (TLS included). */
async function countingProxy(targetPort: number): Promise<{ port: number; bytes: () => number; server: Server }> {
  let total = 0;
  const server = createServer((c) => {
    const up = connect(targetPort, '127.0.0.1');
    c.on('data', (b) => (total += b.length));
    up.on('data', (b) => (total += b.length));
    c.pipe(up).pipe(c);
    const close = () => (c.destroy(), up.destroy());
    c.on('error', close);
    up.on('error', close);
    c.on('close', close);
    up.on('close', close);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { port, bytes: () => total, server };
}

function procStat(pid: number): { cpuTicks: number; rssKb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuTicks = Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return { cpuTicks, rssKb };
}

async function main(): Promise<void> {
  const missing = mosquittoMissing();
  if (missing) {
    out({ skipped: missing });
    return;
  }
  const broker = await startBroker(['bench-dev']);
  const dir = mkdtempSync(join(tmpdir(), 'lc-bench-'));
  const proxy = await countingProxy(broker.port);
  const procs: AgentProc[] = [];
  try {
    const viaProxy = { brokers: [`mqtts://localhost:${proxy.port}`] };
    const fleet = await fleetCollector(broker, `${broker.prefix}/bench-dev/telemetry`);

    // 1. Steady state on a wired uplink, reporting every 10 s.
    const cfg = agentConfig(broker, 'bench-dev', join(dir, 'a'), { ...viaProxy, intervalMs: 10_000, keepaliveS: defaults.keepaliveS });
    const agent = new AgentProc(cfg, ['--representative']);
    procs.push(agent);
    await agent.ready;
    await sleep(WARMUP_S * 1000);
    const pid = agent.proc.pid!;
    const t0 = performance.now();
    const s0 = procStat(pid);
    const b0 = proxy.bytes();
    const n0 = fleet.got.length;
    const rss: number[] = [];
    while (performance.now() - t0 < SECONDS * 1000) {
      await sleep(5000);
      rss.push(procStat(pid).rssKb);
    }
    const s1 = procStat(pid);
    const elapsedS = (performance.now() - t0) / 1000;
    const samples = fleet.got.length - n0;
    const wire = proxy.bytes() - b0;
    const payloadBytes = fleet.got.slice(n0).reduce((a, g) => a + JSON.stringify(g.json).length, 0);
    out({
      figure: 'steady-state',
      intervalMs: 10_000,
      seconds: Math.round(elapsedS),
      cpuPctOfOneCore: Math.round(((s1.cpuTicks - s0.cpuTicks) / 100 / elapsedS) * 1000) / 10,
      rssMbAvg: Math.round(rss.reduce((a, b) => a + b, 0) / rss.length / 102.4) / 10,
      rssMbMax: Math.round(Math.max(...rss) / 102.4) / 10,
      samples,
      wireBytesPerSample: samples ? Math.round(wire / samples) : null,
      payloadBytesPerSample: samples ? Math.round(payloadBytes / samples) : null,
    });
    await agent.kill('SIGTERM');

    // 2. Keepalive cost: an idle session with a short keepalive, so pings are all that flows.
    const cfgIdle = agentConfig(broker, 'bench-dev', join(dir, 'b'), { ...viaProxy, intervalMs: 3_600_000, keepaliveS: 5 });
    const idle = new AgentProc(cfgIdle);
    procs.push(idle);
    await idle.ready;
    await sleep(3000);
    const i0 = proxy.bytes();
    await sleep(20_500);
    const bytesPerPing = Math.round((proxy.bytes() - i0) / 4);
    await idle.kill('SIGTERM');

    // 3. 4G: the payload as sent on 4G (active uplink cellular), sampled fast to measure bytes per
    // sample, then scaled to cellularIntervalMs plus the pings between samples (MQTT.js pings only when idle).
    const uplinks = [
      { name: 'wan', interface: 'wan0', kind: 'wired', priority: 1, table: 101 },
      { name: '4g', interface: 'wwan0', kind: 'cellular', priority: 2, table: 102 },
    ];
    const cfgCell = agentConfig(broker, 'bench-dev', join(dir, 'c'), { ...viaProxy, cellularIntervalMs: 2000, cellularReport: 'interval' }, { uplinks });
    const cell = new AgentProc(cfgCell, ['--representative', '--active', '4g']);
    procs.push(cell);
    await cell.ready;
    await sleep(3000);
    const c0 = proxy.bytes();
    const m0 = fleet.got.length;
    await sleep(20_000);
    const cellSamples = fleet.got.length - m0;
    const perSample = cellSamples ? (proxy.bytes() - c0) / cellSamples : 0;
    const cellPayload = cellSamples ? Math.round(fleet.got.slice(m0).reduce((a, g) => a + JSON.stringify(g.json).length, 0) / cellSamples) : null;
    await cell.kill('SIGTERM');
    const interval = defaults.cellularIntervalMs;
    const pingsPerSample = Math.max(0, Math.ceil(interval / (defaults.keepaliveS * 1000)) - 1);
    const perHour = (3_600_000 / interval) * (perSample + pingsPerSample * bytesPerPing);
    out({
      figure: '4g-bytes-per-hour',
      cellularIntervalMs: interval,
      keepaliveS: defaults.keepaliveS,
      samplesMeasured: cellSamples,
      wireBytesPerSample: Math.round(perSample),
      payloadBytesPerSample: cellPayload,
      wireBytesPerPing: bytesPerPing,
      bytesPerHour: Math.round(perHour),
      mbPer30Days: Math.round((perHour * 24 * 30) / 1e5) / 10,
      note: 'excludes TLS handshakes on reconnect and events; 10 s wired figure for comparison',
      wiredBytesPerHourAt10s: samples ? Math.round((360 * wire) / samples) : null,
    });

    // 4. 4G with cellularReport changes, an unchanged box: heartbeats only (2 s here, to measure many).
    const hbFleet = await fleetCollector(broker, `${broker.prefix}/bench-dev/heartbeat`);
    const cfgHb = agentConfig(
      broker,
      'bench-dev',
      join(dir, 'd'),
      { ...viaProxy, cellularIntervalMs: 2000, cellularCheckMs: 1000, cellularFullEveryMs: 3_600_000, cellularReport: 'changes' },
      { uplinks },
    );
    const hb = new AgentProc(cfgHb, ['--representative', '--active', '4g']);
    procs.push(hb);
    await hb.ready;
    const deadline = Date.now() + 20_000;
    while (hbFleet.got.length === 0 && Date.now() < deadline) await sleep(100);
    const h0 = proxy.bytes();
    const hbN0 = hbFleet.got.length;
    const t0Full = fleet.got.length;
    await sleep(20_000);
    const heartbeats = hbFleet.got.length - hbN0;
    const fullsMeanwhile = fleet.got.length - t0Full;
    const perHeartbeat = heartbeats ? (proxy.bytes() - h0) / heartbeats : 0;
    const hbPayload = heartbeats ? Math.round(hbFleet.got.slice(hbN0).reduce((a, g) => a + JSON.stringify(g.json).length, 0) / heartbeats) : null;
    await hb.kill('SIGTERM');
    hbFleet.client.end(true);

    // Per hour at the defaults. Before: a full report (and the pings between) every cellularIntervalMs.
    // After: fulls = refreshes + changes; a heartbeat every cellularIntervalMs with no full report in
    // it; pings between messages as before (MQTT.js pings only when idle for keepaliveS).
    const slots = 3_600_000 / interval;
    const pingBytes = slots * pingsPerSample * bytesPerPing;
    const before = slots * perSample + pingBytes;
    const fulls = 3_600_000 / defaults.cellularFullEveryMs + CHANGES_PER_HOUR;
    const afterFor = (f: number) => f * perSample + Math.max(0, slots - f) * perHeartbeat + pingBytes;
    const month = (h: number) => Math.round((h * 24 * 30) / 1e5) / 10;
    out({
      figure: '4g-bytes-per-hour-before-after',
      cellularIntervalMs: interval,
      cellularFullEveryMs: defaults.cellularFullEveryMs,
      changesPerHourAssumed: CHANGES_PER_HOUR,
      wireBytesPerFullReport: Math.round(perSample),
      wireBytesPerHeartbeat: Math.round(perHeartbeat),
      payloadBytesPerHeartbeat: hbPayload,
      heartbeatsMeasured: heartbeats,
      fullReportsWhileUnchanged: fullsMeanwhile,
      wireBytesPerPing: bytesPerPing,
      beforeBytesPerHour: Math.round(before),
      beforeMbPer30Days: month(before),
      afterBytesPerHour: Math.round(afterFor(fulls)),
      afterMbPer30Days: month(afterFor(fulls)),
      afterUnchangedBytesPerHour: Math.round(afterFor(3_600_000 / defaults.cellularFullEveryMs)),
      afterUnchangedMbPer30Days: month(afterFor(3_600_000 / defaults.cellularFullEveryMs)),
      note:
        'before = cellularReport interval (a full report every cellularIntervalMs); after = cellularReport changes (the default); ' +
        'events and TLS handshakes excluded from both',
    });
    fleet.client.end(true);
  } finally {
    for (const p of procs) await p.kill();
    proxy.server.close();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
