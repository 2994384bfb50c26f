/**
 * `make demo`: the failover story for a newcomer. As root: the namespace lab with the real agent
 * (embedded defaults + the lab's uplinks), a LAN PC opening connections, the primary line cut
 * silently, traffic on 4G, the line back, failback after the hold-down, then DNS alone breaking on
 * the primary (the LAN PC keeps resolving via 4G, the page says so in words). Not root: the same story
 * on a simulated platform (fake kernel + fake probes, fake clock), said plainly (DEMO_SIMULATED=1 forces it).
 */
import { formatStatus } from '../../agent/src/cli/status.js';
import { CapabilitySet } from '../../agent/src/core/capability-set.js';
import type { Capability, Health } from '../../agent/src/core/capability.js';
import { FailoverCapability } from '../../agent/src/failover/failover.js';
import type { Prober, ProbeSource } from '../../agent/src/uplinks/probes.js';
import { UplinksCapability } from '../../agent/src/uplinks/uplinks.js';
import { createTestCtx } from '../helpers/ctx.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeNet } from '../helpers/fake-net.js';
import { createLab, LAB } from './lab.js';
import { missingTools } from './tools.js';
import { FakeLinkMonitor } from '../helpers/fake-link-monitor.js';

const HOLD_DOWN_MS = 5000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (m: string) => process.stdout.write(`\n\x1b[1m>>> ${m}\x1b[0m\n`);
const show = (e: Record<string, unknown>) => {
  const ns = String(e.ns ?? '');
  if (!/^agent\.(uplinks|failover)$/.test(ns) || e.level === 'debug') return;
  const extra = e.reason ? ` (${e.reason})` : e.changes ? ` ${JSON.stringify(e.changes)}` : '';
  process.stdout.write(`    ${String(e.time ?? '').slice(11, 19)} [${ns.slice(6)}] ${e.msg}${extra}\n`);
};
/**
 * What the practice's status page says right now, fetched from the LAN PC like reception's browser
 * would (the page's live updates carry the same state line).
 */
async function pageSays(lab: ReturnType<typeof createLab>, port: number): Promise<string> {
  const script =
    `fetch('https://${LAB.lanGateway}:${port}/api/status').then(r=>r.json()).then(j=>console.log(j.state.text+(j.state.notes.length?' ` +
    `('+j.state.notes.join('; ')+')':'')),e=>console.log('(page unreachable: '+e.message+')'))`;
  const r = await lab.exec(lab.ns.lan, process.execPath, ['-e', script], {
    env: { NODE_TLS_REJECT_UNAUTHORIZED: '0', NODE_NO_WARNINGS: '1' },
    allowFailure: true,
    timeoutMs: 10_000,
  });
  return r.stdout.trim() || r.stderr.trim();
}
const page = async (lab: ReturnType<typeof createLab>, port: number) =>
  process.stdout.write(`    status page (https://${LAB.lanGateway}:${port}/ from the LAN): "${await pageSays(lab, port)}"\n`);
const PAGE_PORT = 8443;

/** A practice PC looking a name up (its resolver is on the internet: the lookup crosses the NAT). */
async function dnsFromLan(lab: ReturnType<typeof createLab>): Promise<void> {
  const r = await lab.lanResolve('nhs.uk');
  process.stdout.write(`    the LAN PC looks up nhs.uk via ${LAB.targets[2]}: ${r.ok ? `${r.addresses?.join(', ')} in ${r.ms} ms` : `FAILED (${r.error})`}\n`);
}

const who = (via: string | null) => (via === LAB.wan ? 'the wired primary (wan0)' : via === LAB.wwan ? '4G (wwan0)' : 'nowhere');

async function real(): Promise<void> {
  const missing = missingTools();
  if (missing) throw new Error(`the lab cannot start: ${missing}`);
  const lab = createLab({ prefix: 'lrd' });
  say('Building the lab: a LAN PC, the appliance, a primary ISP, a 4G carrier and "the internet" (network namespaces).');
  await lab.up();
  try {
    say(`Starting the agent in the appliance (embedded defaults + the lab's two uplinks, hold-down ${HOLD_DOWN_MS / 1000} s).`);
    const agent = await lab.startAgent({ config: { failover: { holdDownMs: HOLD_DOWN_MS }, status: { port: PAGE_PORT } }, onLog: show });
    const client = await lab.startClient({ intervalMs: 100 });
    let r = await client.waitFor((x) => x.ok, 30_000);
    say(`The LAN PC reaches the internet through ${who(r.via)}. Both uplinks are probed all the time, the standby too.`);
    await dnsFromLan(lab);
    await sleep(3000);
    await page(lab, PAGE_PORT);
    say('Now the primary line dies SILENTLY: its cable stays connected, packets just vanish (the common real failure).');
    const t0 = Date.now();
    await lab.blackhole('primary');
    r = await client.waitFor((x) => x.ok && x.via === LAB.wwan && x.start >= t0, 30_000);
    say(`The LAN PC's new connections work again through ${who(r.via)}, ${((r.end - t0) / 1000).toFixed(1)} s after the fault.`);
    await page(lab, PAGE_PORT);
    await dnsFromLan(lab);
    await sleep(1500);
    const st = agent.status();
    if (st)
      process.stdout.write(
        '\n' +
          formatStatus(st as never, Date.now())
            .split('\n')
            .filter((l) => /failover|uplinks|active|\(wired|\(cellular/.test(l))
            .join('\n') +
          '\n',
      );
    say(`The primary line comes back. The agent waits until it has been clean for the hold-down before moving traffic back (no ping-pong).`);
    const t1 = Date.now();
    await lab.restore('primary');
    r = await client.waitFor((x) => x.ok && x.via === LAB.wan && x.start >= t1, 60_000);
    say(
      `Traffic is back on ${who(r.via)} ${((r.end - t1) / 1000).toFixed(1)} s after the line returned. Each further flap within an hour doubles the hold-down.`,
    );
    await page(lab, PAGE_PORT);
    say('Now only DNS breaks upstream of the primary (UDP/TCP 53 dropped at the ISP); everything else on the line is fine.');
    await dnsFromLan(lab);
    const t2 = Date.now();
    await lab.blockDns('primary');
    await agent.waitForLog((e) => String(e.msg).startsWith('switched wan -> 4g') && (e.receivedAt as number) >= t2, 30_000);
    say(
      `The agent saw DNS stop answering through the primary and moved traffic to 4G, whose DNS answers, ${((Date.now() - t2) / 1000).toFixed(1)} s ` +
        `after the fault.`,
    );
    await dnsFromLan(lab);
    await page(lab, PAGE_PORT);
    await lab.restore('primary');
    await client.stop();
    await agent.stop();
  } finally {
    say('Tearing the lab down.');
    await lab.down();
  }
}

class SimProber implements Prober {
  dead = new Set<string>();
  async probe(_t: unknown, src: ProbeSource) {
    return { ok: !this.dead.has(src.address), rttMs: src.address === '10.201.2.2' ? 48 : 9 };
  }
}

async function simulated(): Promise<void> {
  say('Not root, so no network namespaces here: running the same story on a SIMULATED platform (fake kernel, fake probes, fast clock).');
  const clock = new FakeClock();
  const net = new FakeNet([
    { name: 'wan0', carrier: true, ipv4: [LAB.wan] },
    { name: 'wwan0', carrier: true, ipv4: [LAB.wwan] },
  ]);
  const lab = createLab({ prefix: 'lrd' });
  const ctx = createTestCtx({
    clock,
    commands: net.runner,
    config: { ...lab.agentConfig({ failover: { holdDownMs: HOLD_DOWN_MS } }), paths: undefined } as never,
  });
  const prober = new SimProber();
  const caps: Capability[] = [new UplinksCapability({ prober, monitor: new FakeLinkMonitor() }), new FailoverCapability()];
  ctx.capabilities = new CapabilitySet(caps);
  let shown = 0;
  const flush = () => {
    for (; shown < ctx.logged.length; shown++) show(ctx.logged[shown]!);
  };
  const route = () => `main table default route -> ${net.defaultVia('main') ?? '(none)'}`;
  for (const c of caps) await c.start({ ...ctx, log: ctx.log.child(c.name) });
  await clock.advance(2000);
  flush();
  say(`Both uplinks proven up; ${route()}.`);
  say('The primary goes silent (probes from 10.201.1.2 stop answering).');
  prober.dead.add(LAB.wan);
  await clock.advance(1500);
  flush();
  say(`${route()}; the failed uplink's conntrack entries were flushed: ${JSON.stringify(net.conntrackFlushes.slice(0, 1))}.`);
  say('The primary comes back; the agent holds 4G until the primary has been clean for the hold-down.');
  prober.dead.clear();
  await clock.advance(4000);
  flush();
  say(`${route()} (still waiting)`);
  await clock.advance(8000);
  flush();
  say(`${route()}. Done.`);
  const h = (caps[1] as FailoverCapability).health();
  process.stdout.write((h.details!.lines as string[]).map((l) => `    ${l}`).join('\n') + '\n');
  for (const c of [...caps].reverse()) await c.stop();
  ctx.cleanup();
}

(process.getuid?.() === 0 && !process.env.DEMO_SIMULATED ? real() : simulated()).then(
  () => process.exit(0),
  (e: unknown) => {
    const err = e as Error;
    // A missing tool is the newcomer's case: one line that says what to do, no stack.
    process.stderr.write(`demo failed: ${err.message?.startsWith('the lab cannot start') ? err.message : (err.stack ?? String(e))}\n`);
    process.exit(1);
  },
);
