import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { Agent } from '../../agent/src/agent.js';
import type { Capability, Ctx, Health } from '../../agent/src/core/capability.js';
import { createPlatform } from '../../agent/src/platform/platform.js';
import { testConfig } from '../helpers/ctx.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeRunner } from '../helpers/fake-runner.js';

class Probe implements Capability {
  started = false;
  stopped = false;
  constructor(
    readonly name: string,
    private readonly order: string[],
    private readonly failStart = false,
  ) {}
  async start(ctx: Ctx): Promise<void> {
    this.order.push(`start:${this.name}`);
    if (this.failStart) throw new Error(`${this.name} cannot start`);
    this.started = true;
    void ctx;
  }
  async stop(): Promise<void> {
    this.order.push(`stop:${this.name}`);
    this.stopped = true;
  }
  health(): Health {
    return { status: 'ok', summary: `${this.name} fine` };
  }
}

describe('agent composition root', () => {
  it('starts in order, isolates a failing capability, stops in reverse', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'se-agent-'));
    const order: string[] = [];
    const config = testConfig({}, dir);
    const failed: string[] = [];
    const agent = new Agent({
      config,
      clock: new FakeClock(),
      platform: createPlatform({ root: config.paths.root, commands: new FakeRunner() }),
      logSink: () => {},
      capabilities: () => [new Probe('a', order), new Probe('b', order, true), new Probe('c', order)],
    });
    agent.bus.on('capability.failed', (p) => failed.push(p.name));
    await agent.start();
    assert.deepEqual(order, ['start:a', 'start:b', 'start:c']);
    assert.deepEqual(failed, ['b']);
    const h = agent.health();
    assert.equal(h.a?.status, 'ok');
    assert.equal(h.b?.status, 'failed');
    assert.match(h.b?.summary ?? '', /cannot start/);
    const snap = JSON.parse(readFileSync(join(config.paths.runDir, 'status.json'), 'utf8'));
    assert.equal(snap.capabilities.b.status, 'failed');
    await agent.stop();
    assert.deepEqual(order.slice(3), ['stop:c', 'stop:b', 'stop:a']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('reconfigure refuses an invalid config and keeps the last good one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'se-agent-'));
    const config = testConfig({}, dir);
    const order: string[] = [];
    const path = join(dir, 'config.yaml');
    writeFileSync(path, 'site:\n  odsCode: B81001\n');
    const agent = new Agent({ config, configPath: path, clock: new FakeClock(), logSink: () => {}, capabilities: () => [new Probe('a', order)] });
    await agent.start();
    await assert.rejects(agent.context.control.reconfigure({ failover: { holdDownMs: 'soon' } }, 'remote'), /\/failover\/holdDownMs/);
    assert.equal(readFileSync(path, 'utf8'), 'site:\n  odsCode: B81001\n');
    assert.deepEqual(order, ['start:a']);
    const next = await agent.context.control.reconfigure({ revision: 3, paths: config.paths, failover: { holdDownMs: 5000 } }, 'remote');
    assert.equal(next.failover.holdDownMs, 5000);
    assert.match(readFileSync(path, 'utf8'), /holdDownMs: 5000/);
    assert.deepEqual(order, ['start:a', 'stop:a', 'start:a']);
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('`run` refuses a bad config listing every problem, exit code 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'se-agent-'));
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, 'uplinks:\n  - name: WAN!\n    interface: wan0\n    kind: wired\n    priority: 0\n    table: 100\n');
    const child = spawn('agent/bin/surgery-edge', ['run', '--config', f], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 2);
    assert.match(err, /refusing to start/);
    assert.match(err, /\/uplinks\/0\/name/);
    assert.match(err, /\/uplinks\/0\/priority/);
    rmSync(dir, { recursive: true, force: true });
  });
});
