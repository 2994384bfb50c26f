import { missingTools } from '../lab/tools.js';
import { CapabilitySet } from '../../agent/src/core/capability-set.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../agent/src/config/load.js';
import type { Config } from '../../agent/src/config/schema.js';
import { EventBus } from '../../agent/src/core/bus.js';
import type { Capability, Ctx, Health } from '../../agent/src/core/capability.js';
import type { Clock } from '../../common/clock.js';
import { openStateDb } from '../../agent/src/core/db.js';
import { createLogger, LogRing, prettySink, type LogEntry } from '../../common/log.js';
import type { CommandRunner } from '../../agent/src/platform/command.js';
import { createPlatform } from '../../agent/src/platform/platform.js';
import { FakeClock } from './fake-clock.js';
import { WebRegistry } from '../../agent/src/core/web.js';
import { FakeRunner } from './fake-runner.js';

export interface TestCtx extends Ctx {
  dir: string;
  logged: LogEntry[];
  cleanup(): void;
}

/** Build a config from a partial document, through the real validation (so defaults apply). */
export function testConfig(doc: Record<string, unknown> = {}, dir?: string): Config {
  const base: Record<string, unknown> = { ...doc };
  if (dir) base.paths = { stateDir: join(dir, 'state'), runDir: join(dir, 'run'), root: join(dir, 'root'), ...(doc.paths as object) };
  const r = validateConfig(base);
  if (!r.ok) throw new Error('test config invalid: ' + JSON.stringify(r.problems));
  return r.config;
}

/**
 * A ctx with real SQLite in a temp dir, a fake clock and a fake command runner by default.
 * Logs are captured in `logged` and silent unless SE_TEST_LOG=1 (the one hook that silences logs).
 */
export function createTestCtx(opts: { config?: Record<string, unknown>; clock?: Clock; commands?: CommandRunner } = {}): TestCtx {
  const dir = mkdtempSync(join(tmpdir(), 'se-test-'));
  const config = testConfig(opts.config, dir);
  const logged: LogEntry[] = [];
  const logs = new LogRing();
  const log = createLogger({
    level: process.env.SE_TEST_LOG ? 'debug' : 'silent',
    sink: prettySink,
    tap: (e) => {
      logged.push(e);
      logs.push(e);
    },
  });
  const db = openStateDb(join(dir, 'state', 'agent.db'));
  const caps: Capability[] = [];
  return {
    dir,
    logged,
    config,
    log,
    logs,
    bus: new EventBus(log),
    db,
    clock: opts.clock ?? new FakeClock(),
    platform: createPlatform({ root: config.paths.root, commands: opts.commands ?? new FakeRunner() }),
    capabilities: new CapabilitySet(caps),
    control: {
      configPath: undefined,
      reconfigure: async () => config,
      reboot: async () => {},
    },
    web: new WebRegistry(),
    bootId: 'test-boot',
    version: '0.0.0-test',
    cleanup() {
      try {
        db.close();
      } catch {
        /* already closed */
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Integration tests that need root (namespaces, nftables) call this and skip with a reason. */
export function requireRoot(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces / nftables); CI runs as root';
  return missingTools();
}
