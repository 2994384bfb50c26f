import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { makeHostPath } from '../../../agent/src/core/fs.js';

/**
 * The config `surgery-edge enrol install` wrote (at `installedConfig`), as the agent on the box
 * reads it, for an AgentProc: only the file locations move under the fixture root (the telemetry
 * capability reads absolute paths), with state in `runDir` and fast reconnects. `overlay` merges on
 * top (e.g. the test TPM's tcti). Returns the agent's config file.
 */
export function agentConfigFromInstalled(installedConfig: string, root: string, runDir: string, overlay: Record<string, unknown> = {}): string {
  const cfg = parse(readFileSync(installedConfig, 'utf8')) as { telemetry: Record<string, unknown> } & Record<string, unknown>;
  const t = cfg.telemetry;
  const host = makeHostPath(root);
  const doc = {
    ...cfg,
    paths: { root, stateDir: join(runDir, 'state'), runDir: join(runDir, 'run') },
    log: { level: 'warn' },
    telemetry: {
      ...t,
      caPath: host(String(t.caPath)),
      certPath: host(String(t.certPath)),
      keyPath: host(String(t.keyPath)),
      backoffInitialMs: 200,
      backoffMaxMs: 2000,
    },
    ...overlay,
  };
  mkdirSync(runDir, { recursive: true });
  const file = join(runDir, 'agent.json');
  writeFileSync(file, JSON.stringify(doc));
  return file;
}
