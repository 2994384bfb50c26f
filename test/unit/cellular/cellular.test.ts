import assert from 'node:assert/strict';
import { reported } from '../../helpers/reports.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { CellularCapability } from '../../../agent/src/cellular/cellular.js';
import type { EventMap } from '../../../agent/src/core/events.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { runFakeMmcli } from '../../helpers/fake-mmcli/render.mjs';
import { FakeRunner } from '../../helpers/fake-runner.js';

const POLL = 30_000;

/** A FakeRunner whose `mmcli` is the lab's fake mmcli on an in-memory state (same real JSON shapes). */
function harness(state: Record<string, unknown> = {}, opts: { mmcli?: boolean; config?: Record<string, unknown>; uplinks?: unknown[] } = {}) {
  const clock = new FakeClock();
  const runner = new FakeRunner();
  const h = {
    state: { ...state } as Record<string, unknown>,
    runner,
    clock,
    ctx: undefined as unknown as TestCtx,
    cap: new CellularCapability({ resolve: async () => ['192.0.2.50'] }),
  };
  if (opts.mmcli !== false) {
    runner.on('mmcli', (args) => {
      const r = runFakeMmcli(
        args.filter((a) => a !== '-J'),
        h.state,
        clock.now(),
      );
      h.state = r.state;
      return r;
    });
  }
  runner.on('nft', () => ({}));
  h.ctx = createTestCtx({
    clock,
    commands: runner,
    config: {
      cellular: { pollIntervalMs: POLL, reconnect: { initialMs: 5_000, maxMs: 60_000 }, ...(opts.config ?? {}) },
      ...(opts.uplinks ? { uplinks: opts.uplinks } : {}),
    },
  });
  return h;
}

function events(h: ReturnType<typeof harness>) {
  const seen: EventMap['cellular.changed'][] = [];
  h.ctx.bus.on('cellular.changed', (e) => seen.push(e));
  return seen;
}
const connects = (h: ReturnType<typeof harness>) => h.runner.callsTo('mmcli').filter((c) => c.args.some((a) => a.startsWith('--simple-connect')));

describe('cellular capability', () => {
  let h: ReturnType<typeof harness>;
  afterEach(async () => {
    await h.cap.stop();
    h.ctx.cleanup();
  });

  it('reports a connected modem with the contract health shape', async () => {
    h = harness();
    const seen = events(h);
    await h.cap.start(h.ctx);
    await h.clock.advance(1);
    const d = reported(h.cap).details as Record<string, unknown>;
    assert.equal(reported(h.cap).status, 'ok');
    assert.equal(d.modem, 'connected');
    assert.equal(d.operator, 'vodafone UK');
    assert.equal(d.accessTech, 'lte');
    assert.deepEqual(d.signal, { rsrp: -97, rsrq: -11, sinr: 9.4, quality: 67 });
    assert.deepEqual(Object.keys(d.usage as object).sort(), ['allowanceBytes', 'cycleStart', 'usedBytes', 'usedPct']);
    assert.ok((d.lines as string[]).some((l) => l.startsWith('modem: connected on vodafone UK (lte), bearer wwan0 10.64.23.17')));
    assert.ok((d.lines as string[]).some((l) => l.startsWith('signal: RSRP -97 dBm')));
    assert.deepEqual(
      seen.map((e) => e.modem),
      ['connected'],
    );
    assert.ok(h.runner.callsTo('mmcli').some((c) => c.args.includes('--signal-setup=30')));
    assert.equal(connects(h).length, 0, 'a connected modem is left alone');
    assert.equal(h.runner.callsTo('nft').length, 0, 'no cellular uplink configured: no rules installed');
  });

  it('treats "connected" without a working bearer as not connected and reconnects', async () => {
    h = harness();
    const seen = events(h);
    await h.cap.start(h.ctx);
    await h.clock.advance(1);
    h.state.bearer = { connected: false }; // the bearer drops; the modem stays registered
    h.state.state = 'connected';
    await h.clock.advance(POLL);
    assert.ok(connects(h).length >= 1, 'reconnect attempted');
    await h.clock.advance(2_000);
    assert.equal(h.cap.state.modem, 'connected');
    assert.deepEqual(
      seen.map((e) => e.modem),
      ['connected', 'registered', 'connected'],
    );
  });

  it('retries a failing connect with growing backoff, then recovers', async () => {
    h = harness({ state: 'registered', bearer: null, connectFails: 3 });
    await h.cap.start(h.ctx);
    const times: number[] = [];
    const orig = h.runner.run.bind(h.runner);
    h.runner.run = async (cmd, args, o) => {
      if (cmd === 'mmcli' && args.some((a) => a.startsWith('--simple-connect'))) times.push(h.clock.monotonic());
      return orig(cmd, args, o);
    };
    for (let i = 0; i < 30 && h.cap.state.modem !== 'connected'; i++) await h.clock.advance(5_000);
    assert.equal(h.cap.state.modem, 'connected');
    assert.equal(times.length, 4, 'three failures and one success');
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // Full backoff (jitter 0.5): each cap doubles 5 s -> 10 s -> 20 s; gaps never shrink below half the cap.
    assert.ok(gaps[0]! >= 2_500 && gaps[2]! >= 10_000, `gaps grow: ${gaps.join(',')}`);
  });

  it('survives the modem vanishing mid-run and picks it up again', async () => {
    h = harness();
    const seen = events(h);
    await h.cap.start(h.ctx);
    await h.clock.advance(1);
    h.state.present = false;
    await h.clock.advance(POLL);
    assert.equal(h.cap.state.modem, 'absent');
    assert.equal(reported(h.cap).status, 'degraded');
    assert.match(reported(h.cap).summary, /4G not ready/);
    h.state.present = true;
    h.state.index = 1; // re-plugged: ModemManager gives it a new object path
    h.state.state = 'registered';
    h.state.bearer = null;
    h.state.signalRate = 0;
    await h.clock.advance(POLL);
    await h.clock.advance(2_000);
    assert.equal(h.cap.state.modem, 'connected');
    assert.ok(
      h.runner.callsTo('mmcli').some((c) => c.args.join(' ') === '-m 1 --signal-setup=30'),
      'signal set up again on the new modem',
    );
    assert.equal(h.cap.state.signal?.rsrp, -97);
    assert.deepEqual(
      seen.map((e) => e.modem),
      ['connected', 'absent', 'registered', 'connected'],
    );
  });

  it('mmcli missing: logs a clear error once, reports failed, keeps polling', async () => {
    h = harness({}, { mmcli: false });
    await h.cap.start(h.ctx);
    await h.clock.advance(1);
    await h.clock.advance(POLL * 3);
    assert.equal(h.cap.state.modem, 'failed');
    assert.equal(reported(h.cap).status, 'failed');
    const errs = h.ctx.logged.filter((e) => e.level === 'error' && /mmcli is not installed/.test(e.msg));
    assert.equal(errs.length, 1, 'logged once, not every poll');
    assert.ok(h.runner.calls.filter((c) => c.cmd === 'mmcli').length >= 4, 'still polling');
  });

  it('garbage output and a stopped ModemManager are reported, not thrown', async () => {
    h = harness({ garbage: true });
    await h.cap.start(h.ctx);
    await h.clock.advance(1);
    assert.equal(h.cap.state.reason, 'mmcli output unreadable');
    h.state.garbage = false;
    h.state.daemon = false;
    await h.clock.advance(POLL);
    assert.equal(h.cap.state.reason, 'ModemManager is not running');
    h.state.daemon = true;
    await h.clock.advance(POLL);
    assert.equal(h.cap.state.modem, 'connected');
  });

  it('attaches late: searching until the network takes it, then connects', async () => {
    h = harness({ state: 'registered', bearer: null, attachAt: Date.parse('2026-11-27T09:01:00Z') });
    await h.cap.start(h.ctx);
    await h.clock.advance(1);
    assert.equal(h.cap.state.modem, 'searching');
    assert.equal(connects(h).length, 0, 'no connect while searching');
    await h.clock.advance(60_000);
    await h.clock.advance(2_000);
    assert.equal(h.cap.state.modem, 'connected');
  });

  it('enables a disabled modem', async () => {
    h = harness({ state: 'disabled', bearer: null });
    await h.cap.start(h.ctx);
    await h.clock.advance(1);
    assert.ok(h.runner.callsTo('mmcli').some((c) => c.args.includes('-e')));
    await h.clock.advance(1_000);
    assert.equal(h.cap.state.modem, 'registered');
    await h.clock.advance(6_000); // the next action waits out one backoff step (at most initialMs)
    assert.equal(h.cap.state.modem, 'connected');
  });

  it('meters the configured uplink interface and shows usage in status lines', async () => {
    h = harness({}, { config: { allowanceMb: 1000 }, uplinks: [{ name: '4g', interface: 'lbwwan0', kind: 'cellular', priority: 2, table: 102 }] });
    const dir = h.ctx.platform.hostPath('/sys/class/net/lbwwan0/statistics');
    mkdirSync(dir, { recursive: true });
    const set = (rx: number, tx: number) => {
      writeFileSync(join(dir, 'rx_bytes'), String(rx));
      writeFileSync(join(dir, 'tx_bytes'), String(tx));
    };
    set(1000, 1000);
    await h.cap.start(h.ctx);
    await h.clock.advance(1);
    set(200_000_000, 50_000_000);
    await h.clock.advance(POLL);
    const d = reported(h.cap).details as { usage: { usedBytes: number; usedPct: number }; lines: string[] };
    assert.equal(d.usage.usedBytes, 249_998_000);
    assert.equal(d.usage.usedPct, 25);
    assert.ok(
      d.lines.some((l) => l === 'usage: 250.0 MB of 1.00 GB (25%) since 2026-11-01'),
      d.lines.join('|'),
    );
    // The policy is rendered for that interface and applied through nft -f -.
    const nft = h.runner.callsTo('nft').find((c) => c.args[0] === '-f');
    assert.match(nft?.input ?? '', /oifname "lbwwan0"/);
  });

  it('is disabled by config without touching mmcli', async () => {
    h = harness({}, { config: { enabled: false } });
    await h.cap.start(h.ctx);
    await h.clock.advance(POLL);
    assert.equal(reported(h.cap).status, 'disabled');
    assert.equal(h.runner.calls.length, 0);
  });
});

describe('cellular drill step', () => {
  it('passes only when the standby is connected (and the policy is in when configured)', async () => {
    const h = harness({ state: 'registered', bearer: null, connectFails: 100 });
    try {
      await h.cap.start(h.ctx);
      await h.clock.advance(1);
      const [step] = h.cap.drillSteps();
      assert.ok(step);
      const failing = await step.run();
      assert.equal(failing.passed, false);
      assert.match(failing.detail, /modem registered/);
      h.state.connectFails = 0;
      for (let i = 0; i < 20 && h.cap.state.modem !== 'connected'; i++) await h.clock.advance(5_000);
      const ok = await step.run();
      assert.equal(ok.passed, true, ok.detail);
      assert.equal(ok.figures?.rsrpDbm, -97);
      if (h.ctx.platform.privileged) {
        // With a cellular uplink configured the policy is required: a failing nft fails the drill.
        const p = harness({}, { uplinks: [{ name: '4g', interface: 'lbwwan0', kind: 'cellular', priority: 2, table: 102 }] });
        p.runner.on('nft', () => ({ code: 1, stderr: 'Error: Could not process rule: Operation not supported' }));
        try {
          await p.cap.start(p.ctx);
          await p.clock.advance(1);
          const r = await p.cap.drillSteps()[0]!.run();
          assert.equal(r.passed, false);
          assert.match(r.detail, /4G policy not applied: nft -f -: exit 1/);
        } finally {
          await p.cap.stop();
          p.ctx.cleanup();
        }
      }
    } finally {
      await h.cap.stop();
      h.ctx.cleanup();
    }
  });
});
