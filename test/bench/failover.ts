/**
 * `make bench-failover`: failover timing in the namespace lab, measured where it matters - from
 * the fault to the LAN client's first NEW connection that succeeds via 4G (the internet target
 * reports the source address it saw). Prints JSON lines:
 *   {"case":"blackhole"|"carrier","trials":N,"p50Ms","p95Ms","maxMs","targetP95Ms","pass"}
 *   {"case":"false-failovers","scenarios":{"one-target-dead":{trials,failovers},"loss-20pct":{...}},"total","pass"}
 * Env: BENCH_TRIALS (default 20). Needs root; without it, prints a skip line and exits 0.
 */
import { createLab, LAB, type LabAgent, type LanClient } from '../lab/lab.js';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 20);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const out = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');
const note = (m: string) => process.stderr.write(`bench: ${m}\n`);

async function onPrimary(client: LanClient, after: number): Promise<void> {
  await client.waitFor((r) => r.ok && r.via === LAB.wan && r.start >= after, 60_000);
}

async function timedCase(name: 'blackhole' | 'carrier', lab: ReturnType<typeof createLab>, client: LanClient): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < TRIALS; i++) {
    await onPrimary(client, Date.now());
    await sleep(1500 + Math.random() * 500); // let the primary's windows settle; random phase vs probe timers
    const t0 = Date.now();
    if (name === 'blackhole') await lab.blackhole('primary');
    else await lab.cutCarrier('primary');
    const r = await client.waitFor((x) => x.ok && x.via === LAB.wwan && x.start >= t0, 30_000);
    times.push(r.end - t0);
    note(`${name} #${i + 1}: ${r.end - t0} ms`);
    const restored = Date.now();
    await lab.restore('primary');
    await onPrimary(client, restored);
  }
  return times;
}

function failovers(agent: LabAgent, from: number, to: number): number {
  return agent.logs.filter((e) => String(e.msg).startsWith('switched') && (e.receivedAt as number) >= from && (e.receivedAt as number) <= to).length;
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    out({ case: 'skipped', reason: 'needs root (network namespaces / nftables); CI runs as root' });
    return 0;
  }
  const lab = createLab({ prefix: 'lrb' });
  await lab.up();
  let agent: LabAgent | undefined;
  let client: LanClient | undefined;
  try {
    // Short hold-down without doubling, so trials are independent; detection settings are the lab's
    // (250 ms probes, 600 ms timeout, 4 targets, down on 3 failures in a row on all / 6 on a majority).
    agent = await lab.startAgent({
      config: {
        failover: { holdDownMs: 1000, maxHoldDownMs: 1000, maxFailbacksPerHour: 100_000, reconcileMs: 5000 },
        status: { enabled: false },
        uplinks: lab.agentConfig().uplinks,
      },
    });
    client = await lab.startClient({ intervalMs: 50, timeoutMs: 1000 });
    await onPrimary(client, 0);
    for (const [name, target] of [
      ['blackhole', 3000],
      ['carrier', 1000],
    ] as const) {
      const t = await timedCase(name, lab, client);
      const p95 = pct(t, 95);
      out({ case: name, trials: t.length, p50Ms: pct(t, 50), p95Ms: p95, maxMs: Math.max(...t), targetP95Ms: target, pass: p95 <= target });
    }
    await onPrimary(client, Date.now());
    await sleep(3000);
    const scenarios: Record<string, { trials: number; seconds: number; failovers: number }> = {};
    let from = Date.now();
    for (let i = 0; i < TRIALS; i++) {
      const t = LAB.targets[i % LAB.targets.length]!;
      await lab.killTarget(t);
      await sleep(4000);
      await lab.reviveTarget(t);
      await sleep(1000);
    }
    scenarios['one-target-dead'] = { trials: TRIALS, seconds: Math.round((Date.now() - from) / 1000), failovers: failovers(agent, from, Date.now()) };
    note(`one-target-dead: ${JSON.stringify(scenarios['one-target-dead'])}`);
    from = Date.now();
    for (let i = 0; i < TRIALS; i++) {
      await lab.loss('primary', 20);
      await sleep(6000);
      await lab.restore('primary');
      await sleep(500);
    }
    scenarios['loss-20pct'] = { trials: TRIALS, seconds: Math.round((Date.now() - from) / 1000), failovers: failovers(agent, from, Date.now()) };
    note(`loss-20pct: ${JSON.stringify(scenarios['loss-20pct'])}`);
    const total = Object.values(scenarios).reduce((a, s) => a + s.failovers, 0);
    out({ case: 'false-failovers', scenarios, total, pass: total === 0 });
    return 0;
  } finally {
    await client?.stop();
    await agent?.stop();
    await lab.down();
  }
}

main().then(
  (c) => process.exit(c),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
