/**
 * Issue 20, end to end on the fake platform with a fake clock: uplinks -> failover -> status page.
 * DNS through each uplink is its own signal said in words; a slow line is slow, not lossy, and
 * never fails over.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { Capability, Health } from '../../../agent/src/core/capability.js';
import { FailoverCapability } from '../../../agent/src/failover/failover.js';
import { deriveState } from '../../../agent/src/status/state.js';
import type { LateAnswer, Prober, ProbeResult, ProbeSource, Target } from '../../../agent/src/uplinks/probes.js';
import { UplinksCapability } from '../../../agent/src/uplinks/uplinks.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeNet } from '../../helpers/fake-net.js';
import { FakeLinkMonitor } from '../../helpers/fake-link-monitor.js';

const WAN = '10.0.1.2';
const LTE = '10.0.2.2';

/**
 * Probes on the fake clock: per source address, DNS can be dropped and a round trip added; HTTP
 * costs two round trips (connect + response), like the real one. Honours the late-answer contract.
 */
class WorldProber implements Prober {
  dnsDead = new Set<string>();
  rtt = new Map<string, number>();
  constructor(private readonly clock: FakeClock) {}
  probe(t: Target, src: ProbeSource, timeoutMs: number, late?: LateAnswer): Promise<ProbeResult> {
    const rt = this.rtt.get(src.address) ?? 10;
    const took = t.kind === 'http' ? 2 * rt : rt;
    const answers = !(t.kind === 'dns' && this.dnsDead.has(src.address));
    return new Promise((resolve) => {
      if (answers && took < timeoutMs) {
        this.clock.setTimeout(() => resolve({ ok: true, rttMs: took }), took);
        return;
      }
      this.clock.setTimeout(() => resolve({ ok: false, rttMs: timeoutMs, error: 'timeout', ...(late ? { pending: true } : {}) }), timeoutMs);
      if (!late) return;
      if (answers && took < timeoutMs + late.graceMs) this.clock.setTimeout(() => late.onLate({ ok: true, rttMs: took }), took);
      else this.clock.setTimeout(() => late.onLate({ ok: false, rttMs: timeoutMs + late.graceMs, error: 'timeout' }), timeoutMs + late.graceMs);
    });
  }
}

const targets = [
  { kind: 'tcp', host: '198.51.100.1', port: 80 },
  { kind: 'http', host: '198.51.100.2', port: 80, path: '/generate_204', expectStatus: 204 },
  { kind: 'dns', host: '198.51.100.3', query: 'nhs.uk' },
  { kind: 'tcp', host: '198.51.100.4', port: 80 },
];

function setup(probes: Record<string, unknown> = {}, foCfg: Record<string, unknown> = {}) {
  const p = { intervalMs: 250, timeoutMs: 600, targets, ...probes };
  const config = {
    uplinks: [
      { name: 'wan', label: 'BT broadband', interface: 'wan0', kind: 'wired', priority: 1, table: 101, gateway: '10.0.1.1', probes: p },
      { name: '4g', label: 'EE 4G', interface: 'wwan0', kind: 'cellular', priority: 2, table: 102, gateway: '10.0.2.1', probes: p },
    ],
    failover: { holdDownMs: 5000, maxHoldDownMs: 20_000, reconcileMs: 2000, ...foCfg },
  };
  const clock = new FakeClock();
  const net = new FakeNet([
    { name: 'wan0', carrier: true, ipv4: [WAN] },
    { name: 'wwan0', carrier: true, ipv4: [LTE] },
  ]);
  const ctx = createTestCtx({ config, clock, commands: net.runner });
  const prober = new WorldProber(clock);
  const uplinks = new UplinksCapability({ prober, monitor: new FakeLinkMonitor() });
  const failover = new FailoverCapability();
  const caps: Capability[] = [uplinks, failover];
  const health = () => Object.fromEntries(caps.map((c) => [c.name, c.health()])) as Record<string, Health>;
  ctx.capabilities = { list: () => caps, get: <T extends Capability>(n: string) => caps.find((c) => c.name === n) as T | undefined, health };
  const switched: string[] = [];
  ctx.bus.on('failover.switched', (e) => switched.push(`${e.kind}:${e.from}->${e.to}`));
  return { clock, ctx, prober, uplinks, failover, switched, health };
}

type FoDetails = { uplinks: { name: string; state: string; dns: string; lossPct: number | null; latencyMs: number | null; reason: string }[]; lines: string[] };
const fo = (h: Record<string, Health>) => h.failover!.details as unknown as FoDetails;
const wan = (h: Record<string, Health>) => fo(h).uplinks.find((u) => u.name === 'wan')!;
const page = (h: Record<string, Health>) => deriveState(h, (t) => new Date(t).toISOString().slice(11, 16));

let current: TestCtx | undefined;
afterEach(() => current?.cleanup());

async function started(probes?: Record<string, unknown>, foCfg?: Record<string, unknown>) {
  const s = setup(probes, foCfg);
  current = s.ctx;
  await s.uplinks.start(s.ctx);
  await s.failover.start(s.ctx);
  await s.clock.advance(3000);
  assert.deepEqual(s.switched, ['initial:null->wan']);
  assert.equal(wan(s.health()).dns, 'ok');
  return s;
}

describe('uplink truth (fake clock)', () => {
  it('DNS dropped on the primary, all else fine: said in words, and traffic moves to the uplink that resolves', async () => {
    const s = await started();
    s.prober.dnsDead.add(WAN);
    await s.clock.advance(12 * 250 + 600 + 500);
    const h = s.health();
    assert.equal(wan(h).dns, 'failing');
    assert.equal(wan(h).state, 'degraded', 'the line still carries packets: not a fake down');
    assert.match(wan(h).reason, /^DNS not answering on BT broadband \(every DNS target failed 12\+ probes in a row\); 3\/4 targets answering/);
    assert.deepEqual(s.switched.slice(1), ['failover:wan->4g'], 'only the standby resolves: fail over (default policy)');
    assert.match(
      (s.failover.health().details!.lines as string[])[0]!,
      /^active: 4g since \d+ s ago - on 4g; DNS not answering on wan: no failback until it answers/,
    );
    assert.match(String(s.ctx.logged.find((e) => String(e.msg).startsWith('switched wan -> 4g'))?.msg), /DNS not answering on wan \(4g is up and resolves\)/);
    assert.ok(
      fo(h).lines.some((l) => /wan "BT broadband" \(wired, wan0\): degraded .*DNS not answering on BT broadband/.test(l)),
      fo(h).lines.join('\n'),
    );
    const st = page(h);
    assert.equal(st.level, 'backup');
    assert.ok(st.notes.includes('DNS not answering on BT broadband'), st.notes.join(' | '));
    // DNS back: proven, then failback after the hold-down, and the note goes.
    s.prober.dnsDead.clear();
    await s.clock.advance(600 + 3 * 250 + 300); // probes in flight time out first, then 3 answers

    assert.equal(wan(s.health()).dns, 'ok');
    // The window must forget the lost DNS samples (degraded until then), then the 5 s hold-down.
    await s.clock.advance(12_000);
    assert.deepEqual(s.switched.slice(2), ['failback:4g->wan']);
    assert.ok(!page(s.health()).notes.some((n) => n.includes('DNS')));
  });

  it("failover.onDnsFailure 'report': degraded with the same words, no failover, status not ok", async () => {
    const s = await started({}, { onDnsFailure: 'report' });
    s.prober.dnsDead.add(WAN);
    await s.clock.advance(6000);
    const h = s.health();
    assert.equal(wan(h).state, 'degraded');
    assert.match(wan(h).reason, /^DNS not answering on BT broadband \(every DNS target failed 12\+ probes in a row\); 3\/4 targets answering/);
    assert.deepEqual(s.switched, ['initial:null->wan']);
    assert.equal(h.failover!.status, 'degraded', 'never ok while the PCs cannot resolve (status exit code 3)');
    assert.match(h.failover!.summary, /traffic on wan \(wired\); DNS not answering on BT broadband/);
    const st = page(h);
    assert.equal(st.level, 'attention');
    assert.equal(st.text, 'Internet working - DNS not answering on BT broadband');
  });

  it('DNS dead on both uplinks: both said, and traffic stays put (nowhere better)', async () => {
    const s = await started();
    s.prober.dnsDead.add(WAN);
    s.prober.dnsDead.add(LTE);
    await s.clock.advance(6000);
    const h = s.health();
    assert.deepEqual(s.switched, ['initial:null->wan']);
    assert.match(s.failover.health().details!.reason as string, /^DNS not answering on wan and nothing better is up: staying put/);
    const notes = page(h).notes;
    assert.ok(notes.includes('DNS not answering on BT broadband') && notes.includes('DNS not answering on EE 4G'), notes.join(' | '));
  });

  it('+500 ms round trip, no loss: slow with latency reported, 0% loss, no failover', async () => {
    const s = await started();
    s.prober.rtt.set(WAN, 500); // HTTP takes ~1000 ms: past the 600 ms timeout, within lateMs
    await s.clock.advance(30_000);
    const h = s.health();
    const w = wan(h);
    assert.equal(w.state, 'slow', w.reason);
    assert.equal(w.lossPct, 0, 'a late answer is latency, not loss');
    assert.ok(w.latencyMs! >= 500, `latency ${w.latencyMs}`);
    assert.match(w.reason, /slow: round trip 500 ms \(too slow at 400 ms or more\)/);
    assert.deepEqual(s.switched, ['initial:null->wan'], 'no false failover on a slow line');
    assert.ok(
      fo(h).lines.some((l) => /\* wan "BT broadband" .*: slow for \d+ s \[500 ms, 0% loss\]/.test(l)),
      fo(h).lines.join('\n'),
    );
    const st = page(h);
    assert.equal(st.text, 'Internet working - Internet connection is slow (BT broadband: 500 ms round trip)');
  });

  it('without late answers (lateMs 0) the same line would show loss: the test can tell the difference', async () => {
    const s = await started({ lateMs: 0 });
    s.prober.rtt.set(WAN, 500);
    await s.clock.advance(30_000);
    const w = wan(s.health());
    assert.ok(w.lossPct! >= 20, `loss ${w.lossPct}`);
    assert.equal(w.state, 'degraded');
  });

  it('a silent blackhole is still detected as fast with late answers on', async () => {
    const s = await started();
    s.prober.rtt.set(WAN, 1e9); // nothing ever answers
    const t0 = s.clock.now();
    while (!s.switched.includes('failover:wan->4g')) {
      await s.clock.advance(50);
      assert.ok(s.clock.now() - t0 < 5000, 'no failover within 5 s');
    }
    assert.ok(s.clock.now() - t0 <= 3 * 250 + 600 + 300, `failover after ${s.clock.now() - t0} ms`);
  });
});
