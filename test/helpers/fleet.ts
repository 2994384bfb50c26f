import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, prettySink } from '../../agent/src/core/log.js';
import { validateFleetConfig, type FleetConfig } from '../../fleet/src/config.js';
import { Fleet } from '../../fleet/src/fleet.js';
import type { Store } from '../../fleet/src/store/store.js';
import type { TestBroker } from './mosquitto.js';

/** A fleet config pointing at a TestBroker with the `fleet` identity; SQLite in a temp dir. */
export function fleetConfig(broker: TestBroker, dir: string, extra: Record<string, unknown> = {}): FleetConfig {
  const id = broker.identity('fleet');
  const r = validateFleetConfig({
    dataDir: dir,
    ...extra,
    mqtt: { url: broker.url, prefix: broker.prefix, caPath: id.ca, certPath: id.cert, keyPath: id.key, backoffInitialMs: 100, backoffMaxMs: 1000, commandTimeoutMs: 5000, ...(extra.mqtt as object) },
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
