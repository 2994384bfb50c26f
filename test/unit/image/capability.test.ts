import assert from 'node:assert/strict';
import { reported } from '../../helpers/reports.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Capability, Health } from '../../../agent/src/core/capability.js';
import { runCommand } from '../../../agent/src/telemetry/commands.js';
import { UpdateStateStore } from '../../../agent/src/update/state.js';
import { UpdateCapability } from '../../../agent/src/update/update.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { abConfig, makeAbRoot, makeBundle, makeKeys, makePayload, simulateBoot, type AbRoot, type Keys } from '../../helpers/update-fixture.js';

let dir: string;
let icb: Keys;
let good: string;
let rogue: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'se-upd-'));
  icb = makeKeys(dir, 'icb');
  const p = makePayload(dir, 1024 * 1024 + 5);
  good = makeBundle({ key: icb.priv, version: '0.2.0', payload: p, out: join(dir, 'good.seb') });
  rogue = makeBundle({ key: makeKeys(dir, 'rogue').priv, version: '0.2.0', payload: p, out: join(dir, 'rogue.seb') });
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Device {
  ctx: TestCtx;
  cap: UpdateCapability;
  clock: FakeClock;
  events: { name: string; payload: Record<string, unknown> }[];
  reboots: string[];
  health: Record<string, Health>;
}

const healthy = (): Record<string, Health> => ({
  failover: { status: 'ok', summary: 'on wan', details: { active: 'wan', uplinks: [] } },
  telemetry: { status: 'ok', summary: 'connected', details: { connected: true } },
});

const started: Device[] = [];
let ab: AbRoot;

/** One agent run on the fixture device, as `version`, with the given capability health. */
async function boot(version: string, health: Record<string, Health> = healthy(), extra: Record<string, unknown> = {}): Promise<Device> {
  const clock = new FakeClock();
  const ctx = createTestCtx({
    clock,
    config: { ...abConfig(ab), paths: { ...(abConfig(ab).paths as object), stateDir: join(ab.dir, 'state') }, telemetry: { enabled: true }, ...extra },
  });
  const cap = new UpdateCapability({ uptimeMs: () => clock.monotonic() });
  const events: Device['events'] = [];
  const reboots: string[] = [];
  ctx.bus.onAny((name, payload) => events.push({ name, payload: payload as Record<string, unknown> }));
  ctx.version = version;
  ctx.control = { ...ctx.control, reboot: async (r) => void reboots.push(r) };
  ctx.capabilities = {
    list: () => [cap as Capability],
    get: <T extends Capability>(n: string) =>
      n === 'update' ? (cap as unknown as T) : health[n] ? ({ name: n, health: () => health[n] } as unknown as T) : undefined,
    health: () => ({ ...health, update: reported(cap) }),
  };
  await cap.start(ctx);
  const d = { ctx, cap, clock, events, reboots, health };
  started.push(d);
  return d;
}

async function until(f: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !f(); i++) await sleep(10);
  assert.ok(f(), `timed out waiting for ${what}`);
}

const phase = () => new UpdateStateStore(join(ab.dir, 'state')).read().phase;
const names = (d: Device) => d.events.map((e) => `${e.name}${e.payload.phase ? `:${e.payload.phase}` : ''}`);

afterEach(async () => {
  for (const d of started.splice(0)) {
    await d.cap.stop();
    d.ctx.cleanup();
  }
  ab.cleanup();
});

describe('update capability', () => {
  it('installs, reboots, passes the health gate on the trial boot and commits', async () => {
    ab = makeAbRoot(icb.pub, { dir: mkdtempSync(join(dir, 'ab-')) });
    const v1 = await boot('0.1.0');
    const res = v1.cap.request({ url: good, version: '0.2.0' });
    assert.equal(res.accepted, true);
    assert.equal(res.slot, 'b');
    await until(() => phase() === 'installed', 'installed');
    await v1.clock.advance(1000);
    assert.deepEqual(v1.reboots, ['update to 0.2.0']);
    assert.deepEqual(
      names(v1).filter((n) => !n.startsWith('update.progress:writing')),
      ['update.progress:downloading', 'update.progress:verifying', 'update.progress:installed', 'update.progress:rebooting'],
    );
    assert.ok(v1.events.some((e) => e.payload.phase === 'writing' && e.payload.bytes === e.payload.total));
    await v1.cap.stop();

    assert.equal(simulateBoot(ab), 'b');
    const v2 = await boot('0.2.0');
    assert.equal(reported(v2.cap).details?.trial, true);
    assert.match(reported(v2.cap).summary, /trying update 0.2.0/);
    await v2.clock.advance(30_000);
    assert.equal(phase(), 'trial', 'not committed before stableMs (60 s) of health');
    await v2.clock.advance(40_000);
    assert.equal(phase(), 'committed');
    assert.deepEqual(ab.boot.state(), { booted: 'b', active: 'b', armed: null, trial: false });
    const c = v2.events.find((e) => e.name === 'update.committed');
    assert.equal(c?.payload.version, '0.2.0');
    assert.equal(c?.payload.fromVersion, '0.1.0');
    assert.equal(v2.reboots.length, 0);
    assert.equal(simulateBoot(ab), 'b');
    // Anti-rollback: the committed version is now the floor.
    const v3 = await boot('0.2.0');
    assert.throws(() => v3.cap.request({ url: good, version: '0.2.0' }), /not newer/);
  });

  it('rolls back when the trial boot has no uplink within the gate timeout', async () => {
    ab = makeAbRoot(icb.pub, { dir: mkdtempSync(join(dir, 'ab-')) });
    const v1 = await boot('0.1.0');
    v1.cap.request({ url: good, version: '0.2.0' });
    await until(() => phase() === 'installed', 'installed');
    await v1.cap.stop();
    simulateBoot(ab);
    const sick = healthy();
    sick.failover = { status: 'degraded', summary: 'no uplink', details: { active: null, uplinks: [] } };
    const v2 = await boot('0.2.0', sick);
    await v2.clock.advance(9 * 60_000);
    assert.equal(phase(), 'trial');
    assert.match(reported(v2.cap).summary, /waiting for no uplink reachable/);
    await v2.clock.advance(61_000);
    assert.equal(phase(), 'rolled-back');
    assert.equal(v2.reboots.length, 1);
    const rb = v2.events.find((e) => e.name === 'update.rolled-back');
    assert.match(String(rb?.payload.reason), /timed out.*no uplink reachable/);
    assert.equal(simulateBoot(ab), 'a');
    const v3 = await boot('0.1.0');
    assert.equal(reported(v3.cap).status, 'degraded');
    assert.match(reported(v3.cap).summary, /rolled back; running 0.1.0/);
  });

  it('a trial boot that restarts before the gate comes back on the old slot and says so', async () => {
    ab = makeAbRoot(icb.pub, { dir: mkdtempSync(join(dir, 'ab-')) });
    const v1 = await boot('0.1.0');
    v1.cap.request({ url: good, version: '0.2.0' });
    await until(() => phase() === 'installed', 'installed');
    await v1.cap.stop();
    simulateBoot(ab);
    const v2 = await boot('0.2.0');
    await v2.clock.advance(10_000);
    await v2.cap.stop(); // power cut / kernel panic / watchdog reset during the trial
    assert.equal(simulateBoot(ab), 'a');
    const v3 = await boot('0.1.0');
    const rb = v3.events.find((e) => e.name === 'update.rolled-back');
    assert.match(String(rb?.payload.reason), /restarted before it passed/);
    assert.equal(phase(), 'rolled-back');
  });

  it('reports a refused bundle with its code and leaves the device as it was', async () => {
    ab = makeAbRoot(icb.pub, { dir: mkdtempSync(join(dir, 'ab-')) });
    const v1 = await boot('0.1.0');
    v1.cap.request({ url: rogue, version: '0.2.0' });
    await until(() => phase() === 'refused', 'refused');
    const r = v1.events.find((e) => e.name === 'update.refused');
    assert.equal(r?.payload.code, 'UPDATE_UNTRUSTED_KEY');
    assert.equal(reported(v1.cap).status, 'degraded');
    assert.deepEqual(ab.boot.state(), { booted: 'a', active: 'a', armed: null, trial: false });
  });

  it('an install cut short is recorded as failed at the next start and its boot-once cancelled', async () => {
    ab = makeAbRoot(icb.pub, { dir: mkdtempSync(join(dir, 'ab-')) });
    new UpdateStateStore(join(ab.dir, 'state')).write({
      phase: 'installing',
      id: 'x',
      version: '0.2.0',
      fromVersion: '0.1.0',
      slot: 'b',
      bundlePath: good,
      at: 1,
      floorVersion: null,
    });
    ab.boot.armTry('b');
    const v1 = await boot('0.1.0');
    assert.equal(phase(), 'failed');
    assert.equal(ab.boot.state().armed, null);
    assert.ok(v1.events.some((e) => e.name === 'update.failed'));
  });

  it('the MQTT update command: accepted, downgrade, bad args, busy', async () => {
    ab = makeAbRoot(icb.pub, { dir: mkdtempSync(join(dir, 'ab-')) });
    const v1 = await boot('0.1.0');
    const host = { ctx: v1.ctx, handleDesired: async () => undefined, after: () => {} };
    const send = (o: unknown) => runCommand(host, Buffer.from(JSON.stringify(o)), 65536, false);
    const down = await send({ command: 'update', args: { url: good, version: '0.0.9' } });
    assert.equal(down.error?.code, 'UPDATE_DOWNGRADE');
    const bad = await send({ command: 'update', args: { url: 'ftp://x', version: '0.2.0' } });
    assert.equal(bad.error?.code, 'BAD_REQUEST');
    const ok = await send({ command: 'update', args: { url: good, version: '0.2.0' } });
    assert.equal(ok.ok, true);
    assert.deepEqual(Object.keys(ok.result as object).sort(), ['accepted', 'id', 'slot', 'version']);
    const busy = await send({ command: 'update', args: { url: good, version: '0.2.0' } });
    assert.equal(busy.error?.code, 'CONFLICT');
    await until(() => phase() === 'installed', 'installed');
  });

  // Contract v1.4: bundles come over the wired line unless the command allows 4G (allowCellular).
  const uplinks = {
    uplinks: [
      { name: 'wan', interface: 'wan0', kind: 'wired', priority: 1, table: 101, gateway: '10.0.1.1' },
      { name: '4g', label: 'EE 4G', interface: 'wwan0', kind: 'cellular', priority: 2, table: 102, gateway: '10.0.2.1' },
    ],
  };
  const on = (status: 'ok' | 'degraded', active: string): Record<string, Health> => ({
    ...healthy(),
    failover: { status, summary: `on ${active}`, details: { active, uplinks: [] } },
  });
  /** Serves `file` over loopback HTTP, `piece` bytes every `everyMs` (a slow line), counting bytes sent. */
  async function serve(file: string, piece: number, everyMs: number) {
    const { createServer } = await import('node:http');
    const { readFileSync } = await import('node:fs');
    const body = readFileSync(file);
    const st = { sent: 0 };
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-length': body.length });
      let at = 0;
      const t = setInterval(() => {
        if (res.destroyed) return clearInterval(t);
        const n = Math.min(piece, body.length - at);
        res.write(body.subarray(at, at + n));
        at += n;
        st.sent = at;
        if (at >= body.length) (clearInterval(t), res.end());
      }, everyMs);
      res.on('close', () => clearInterval(t));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/good.seb`;
    return { url, st, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
  }

  it('on 4G an http(s) bundle is refused (UPDATE_ON_BACKUP_LINK) unless the command allows 4G; a bundle on the box is never held', async () => {
    ab = makeAbRoot(icb.pub, { dir: mkdtempSync(join(dir, 'ab-')) });
    const http = await serve(good, 1 << 20, 1);
    try {
      const v1 = await boot('0.1.0', on('degraded', '4g'), uplinks);
      assert.throws(
        () => v1.cap.request({ url: http.url, version: '0.2.0' }),
        (e: Error & { code?: string }) => e.code === 'UPDATE_ON_BACKUP_LINK' && /traffic is on 4G \(4g\)/.test(e.message),
      );
      assert.equal(http.st.sent, 0, 'nothing fetched');
      assert.equal(phase(), 'idle');
      const host = { ctx: v1.ctx, handleDesired: async () => undefined, after: () => {} };
      const send = (o: unknown) => runCommand(host, Buffer.from(JSON.stringify(o)), 65536, false);
      const held = await send({ command: 'update', args: { url: http.url, version: '0.2.0' } });
      assert.equal(held.error?.code, 'UPDATE_ON_BACKUP_LINK');
      assert.match(held.error?.message ?? '', /update not started: traffic is on 4G/);
      const allowed = await send({ command: 'update', args: { url: http.url, version: '0.2.0', allowCellular: true } });
      assert.equal(allowed.ok, true, JSON.stringify(allowed.error));
      await until(() => phase() === 'installed', 'installed over 4G when allowed');
    } finally {
      await http.close();
    }
    // A bundle already on the box (USB stick, scp) costs no data: never held.
    ab.cleanup();
    ab = makeAbRoot(icb.pub, { dir: mkdtempSync(join(dir, 'ab-')) });
    const v2 = await boot('0.1.0', on('degraded', '4g'), uplinks);
    assert.equal(v2.cap.request({ url: good, version: '0.2.0' }).accepted, true);
    await until(() => phase() === 'installed', 'installed from a path on 4G');
  });

  it('a download under way stops when failover moves to 4G (nothing armed), and can be sent again on the wired line', async () => {
    ab = makeAbRoot(icb.pub, { dir: mkdtempSync(join(dir, 'ab-')) });
    const http = await serve(good, 16 * 1024, 5); // ~3 MB/s: the 1 MB bundle takes ~0.3 s
    try {
      const v1 = await boot('0.1.0', on('ok', 'wan'), uplinks);
      assert.equal(v1.cap.request({ url: http.url, version: '0.2.0' }).accepted, true);
      await until(() => http.st.sent > 64 * 1024, 'some of the bundle sent');
      // Backup Wi-Fi or another wired uplink would matter the same way; a switch between wired lines does not.
      v1.ctx.bus.emit('failover.switched', { from: 'wan', to: '4g', kind: 'failover', reason: 'wan is down', at: v1.clock.now() });
      await until(() => phase() === 'refused', 'download stopped');
      const r = v1.events.find((e) => e.name === 'update.refused');
      assert.equal(r?.payload.code, 'UPDATE_ON_BACKUP_LINK');
      assert.match(String(r?.payload.message), /download stopped: traffic is on 4G \(4g\)/);
      assert.ok(http.st.sent < 1024 * 1024, `stopped before the end (${http.st.sent} bytes sent)`);
      assert.equal(ab.boot.state().armed, null, 'nothing armed');
      assert.equal(v1.reboots.length, 0);
      v1.ctx.bus.emit('failover.switched', { from: '4g', to: 'wan', kind: 'failback', reason: 'wan is back', at: v1.clock.now() });
      assert.equal(v1.cap.request({ url: http.url, version: '0.2.0' }).accepted, true);
      await until(() => phase() === 'installed', 'installed once back on the wired line');
    } finally {
      await http.close();
    }
  });
});
