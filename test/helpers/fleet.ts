import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, prettySink } from '../../common/log.js';
import { validateFleetConfig, type FleetConfig } from '../../fleet/src/config.js';
import { Fleet } from '../../fleet/src/fleet.js';
import type { Store } from '../../fleet/src/store/store.js';
import type { Page } from 'playwright-core';
import { hashPassword } from '../../common/password.js';
import { AgentProc, agentConfig } from '../integration/telemetry/fixture.js';
import { launchBrowser, type TestBrowser } from './browser.js';
import { startBroker, type TestBroker } from './mosquitto.js';

/** A fleet config pointing at a TestBroker with the `fleet` identity; SQLite in a temp dir. */
export function fleetConfig(broker: TestBroker, dir: string, extra: Record<string, unknown> = {}): FleetConfig {
  const id = broker.identity('fleet');
  const r = validateFleetConfig({
    dataDir: dir,
    ...extra,
    mqtt: {
      url: broker.url,
      prefix: broker.prefix,
      caPath: id.ca,
      certPath: id.cert,
      keyPath: id.key,
      backoffInitialMs: 100,
      backoffMaxMs: 1000,
      commandTimeoutMs: 5000,
      ...(extra.mqtt as object),
    },
    http: { port: 0, ...(extra.http as object) },
    ingest: { batchMs: 20, ...(extra.ingest as object) },
    alerts: { evaluateMs: 3_600_000, ...(extra.alerts as object) },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.config;
}

export function fleetLog() {
  return createLogger({ level: process.env.SE_TEST_LOG ? 'debug' : 'silent', sink: prettySink }, 'fleet');
}

export async function startFleet(config: FleetConfig, store?: Store): Promise<Fleet> {
  const f = new Fleet({ config, log: fleetLog(), ...(store ? { store } : {}) });
  await f.start();
  return f;
}

export function tempDir(prefix = 'fl-test-'): { dir: string; rm: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, rm: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function waitFor<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A fresh page signed in to the dashboard at `base` as `user` (lands on the device list). */
export async function signIn(b: TestBrowser, base: string, user: string, password: string): Promise<Page> {
  const p = await b.newPage({ width: 1280, height: 900 });
  await p.goto(`${base}/`);
  if (!/\/login/.test(p.url())) throw new Error(`not sent to sign in: ${p.url()}`);
  await p.fill('input[name=username]', user);
  await p.fill('input[name=password]', password);
  await Promise.all([p.waitForURL(`${base}/`), p.click('button:has-text("Sign in")')]);
  return p;
}

/**
 * An ICB base template that keeps the tests' real agents working (their paths under `dir`, their
 * certificates from the broker's PKI) through {{deviceId}} placeholders; `extra` is overlaid.
 */
export function agentTemplate(broker: TestBroker, dir: string, intervalMs: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    paths: { stateDir: join(dir, '{{deviceId}}', 'state'), runDir: join(dir, '{{deviceId}}', 'run'), root: join(dir, '{{deviceId}}', 'root') },
    log: { level: 'warn' },
    ...extra,
    telemetry: {
      enabled: true,
      brokers: [broker.url],
      prefix: broker.prefix,
      caPath: broker.identity('fleet').ca,
      certPath: join(broker.pki, 'devices', '{{deviceId}}.crt'),
      keyPath: join(broker.pki, 'devices', '{{deviceId}}.key'),
      keepaliveS: 5,
      backoffInitialMs: 200,
      backoffMaxMs: 2000,
      intervalMs,
    },
  };
}

export interface FleetBrowserLab {
  broker: TestBroker;
  tmp: ReturnType<typeof tempDir>;
  fleet: Fleet;
  agent: AgentProc;
  b: TestBrowser;
  /** the dashboard's URL */
  base: string;
  /** A fresh page signed in as admin (icb-admin), viewer (icb-viewer) or pm (practice-manager). */
  signIn(user: 'admin' | 'viewer' | 'pm'): Promise<Page>;
  close(): Promise<void>;
}

/**
 * The fleet browser tests' set-up: mosquitto with the live device's identity; a fleet on a temp dir
 * (`fleet` overlaid on fleetConfig) with the users admin, viewer and pm (manager of `pmPractice`),
 * all with `password`; `seed` run once they exist; a real agent for `live` (its dir `agentDir`
 * under the temp dir) waited for until the fleet's device row has `until`; then chromium. A step
 * that fails stops whatever the steps before it started.
 */
export async function startFleetBrowserLab(o: {
  live: string;
  password: string;
  pmPractice: string;
  fleet: Record<string, unknown>;
  agentDir: string;
  until: 'reported_json' | 'telemetry_at';
  seed?: (fleet: Fleet) => Promise<void>;
}): Promise<FleetBrowserLab> {
  const lab: Partial<FleetBrowserLab> = {};
  const close = async () => {
    await lab.b?.close();
    await lab.agent?.kill('SIGTERM');
    await lab.fleet?.stop();
    await lab.broker?.close();
    lab.tmp?.rm();
  };
  try {
    const broker = (lab.broker = await startBroker([o.live]));
    const tmp = (lab.tmp = tempDir());
    const fleet = (lab.fleet = await startFleet(fleetConfig(broker, tmp.dir, o.fleet)));
    for (const [u, role, practice] of [
      ['admin', 'icb-admin', null],
      ['viewer', 'icb-viewer', null],
      ['pm', 'practice-manager', o.pmPractice],
    ] as const)
      await fleet.ctx.store.accounts.putUser({ username: u, hash: hashPassword(o.password), role, practice }, Date.now());
    await o.seed?.(fleet);
    lab.agent = new AgentProc(agentConfig(broker, o.live, join(tmp.dir, o.agentDir), { intervalMs: 1000 }), ['--representative']);
    await lab.agent.ready;
    await waitFor(async () => (await fleet.ctx.store.devices.get(o.live))?.[o.until], 20_000, `live agent ${o.until}`);
    const base = fleet.web.url;
    const b = (lab.b = await launchBrowser());
    return { broker, tmp, fleet, agent: lab.agent, b, base, signIn: (user) => signIn(b, base, user, o.password), close };
  } catch (e) {
    await close();
    throw e;
  }
}
