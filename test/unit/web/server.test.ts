import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from '../../../agent/src/agent.js';
import type { Capability, Ctx, Health } from '../../../agent/src/core/capability.js';
import { createPlatform } from '../../../agent/src/platform/platform.js';
import { StatusCapability } from '../../../agent/src/status/status.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeRunner } from '../../helpers/fake-runner.js';
import { FakeSystemInfo } from '../../helpers/fake-system-info.js';
import { testConfig } from '../../helpers/ctx.js';

/** A capability that serves one page, and records whether the server existed when it started. */
class Pages implements Capability {
  readonly name = 'records';
  serverAtStart: boolean | undefined;
  constructor(private readonly agent: () => Agent) {}
  async start(ctx: Ctx): Promise<void> {
    this.serverAtStart = this.agent().webServer !== undefined;
    ctx.web.register('pages', async (app) => {
      app.get('/records/ping', async () => ({ pong: true }));
    });
  }
  async stop(): Promise<void> {}
  health(): Health {
    return { status: 'ok', summary: 'fine' };
  }
}

class Quiet implements Capability {
  constructor(readonly name: string) {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  health(): Health {
    return { status: 'ok', summary: `${this.name} fine` };
  }
}

function agentWith(dir: string, port: number, caps: (agent: () => Agent) => Capability[]): Agent {
  const config = testConfig({ status: { listen: '127.0.0.1', port, https: false, refreshMs: 60_000 } }, dir);
  const agent: Agent = new Agent({
    config,
    clock: new FakeClock(),
    platform: createPlatform({ root: config.paths.root, commands: new FakeRunner() }),
    logSink: () => {},
    capabilities: () => caps(() => agent),
    web: { https: false },
  });
  return agent;
}

describe('the LAN web server is built by the agent after the capabilities (agent/src/web/server.ts)', () => {
  it('serves every registered route, the sign-in and staff pages; status reports its address; the CLI files are written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'se-web-'));
    let pages: Pages | undefined;
    const agent = agentWith(dir, 0, (a) => [(pages = new Pages(a)), new StatusCapability({ systemInfo: new FakeSystemInfo() })]);
    try {
      await agent.start();
      assert.equal(pages!.serverAtStart, false, 'capabilities start before the server exists');
      const app = agent.webServer!.app!;
      assert.deepEqual((await app.inject({ url: '/records/ping' })).json(), { pong: true });
      assert.equal((await app.inject({ url: '/login' })).statusCode, 200);
      assert.equal((await app.inject({ url: '/admin/users', headers: { accept: 'text/html' } })).statusCode, 303, 'staff page behind sign-in');
      assert.equal((await app.inject({ url: '/' })).statusCode, 200, 'the status page');
      const status = agent.health().status!;
      assert.equal(status.status, 'ok');
      assert.equal(status.details?.url, `http://127.0.0.1:${agent.webServer!.port}`);
      const web = JSON.parse(readFileSync(join(dir, 'run/web.json'), 'utf8')) as { port: number; https: boolean };
      assert.deepEqual([web.port, web.https], [agent.webServer!.port, false]);
      assert.equal(statSync(join(dir, 'run/api-token')).mode & 0o777, 0o600);
    } finally {
      await agent.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is rebuilt with every route after a reconfigure (no route registered twice)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'se-web-'));
    const agent = agentWith(dir, 0, (a) => [new Pages(a), new StatusCapability({ systemInfo: new FakeSystemInfo() })]);
    try {
      await agent.start();
      const before = agent.webServer!.app!;
      await agent.context.control.reconfigure({ ...agent.context.config, revision: 2 }, 'remote');
      const after = agent.webServer!.app!;
      assert.notEqual(after, before);
      assert.deepEqual((await after.inject({ url: '/records/ping' })).json(), { pong: true });
      assert.equal(agent.health().status!.status, 'ok');
    } finally {
      await agent.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('opens no port when no capability serves a page', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'se-web-'));
    const agent = agentWith(dir, 0, () => [new Quiet('failover')]);
    try {
      await agent.start();
      assert.equal(agent.webServer?.app, undefined);
    } finally {
      await agent.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a server that cannot listen shows as the status capability failed; the others go on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'se-web-'));
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    const agent = agentWith(dir, port, (a) => [new Pages(a), new StatusCapability({ systemInfo: new FakeSystemInfo() })]);
    const failed: string[] = [];
    agent.bus.on('capability.failed', (p) => failed.push(p.name));
    try {
      await agent.start();
      const h = agent.health();
      assert.equal(h.status!.status, 'failed');
      assert.match(h.status!.summary, /web server failed to start: .*EADDRINUSE/);
      assert.equal(h.records!.status, 'ok');
      assert.deepEqual(failed, ['status']);
      assert.equal(agent.webServer, undefined);
    } finally {
      await agent.stop();
      taken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
