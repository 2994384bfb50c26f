import { readFileSync } from 'node:fs';
import { reportLines } from '../../../contract/read.js';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';
import type { Health, HealthMap } from '../core/capability.js';
import { configPathFrom, parse } from './args.js';
import type { CliCommand } from './commands.js';

interface Snapshot {
  agent: { version: string; bootId: string; pid: number; deviceId: string; at: number };
  capabilities: HealthMap;
}

const mark: Record<string, string> = { ok: 'OK  ', degraded: 'WARN', failed: 'FAIL', starting: '... ', stopped: 'STOP', disabled: 'off ' };

function age(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

export function formatStatus(snap: Snapshot, now: number): string {
  const lines = [`surgery-edge ${snap.agent.version} on ${snap.agent.deviceId} (pid ${snap.agent.pid}, snapshot ${age(now - snap.agent.at)} old)`];
  for (const [name, h] of Object.entries(snap.capabilities)) {
    if (!h) continue;
    const since = h.since ? ` (since ${new Date(h.since).toISOString().slice(11, 19)}Z)` : '';
    lines.push(`[${mark[h.status] ?? h.status}] ${name.padEnd(10)} ${h.summary}${since}`);
    const lines2 = reportLines(h?.details);
    for (const l of lines2) lines.push(`       ${l}`);
  }
  return lines.join('\n') + '\n';
}

export const statusCommand: CliCommand = {
  summary: 'status [--json] [--config FILE]: uplinks, active uplink and why, broker, outbox, cache',
  async run(args) {
    const { values } = parse(args, { json: { type: 'boolean' }, config: { type: 'string', short: 'c' } });
    const path = configPathFrom(values.config);
    const config = loadConfig(path);
    const file = join(config.paths.runDir, 'status.json');
    let snap: Snapshot;
    try {
      snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
    } catch {
      process.stderr.write(`surgery-edge: no status at ${file}: is the agent running?\n`);
      return 1;
    }
    const stale = Date.now() - snap.agent.at > 10_000;
    if (values.json) process.stdout.write(JSON.stringify({ ...snap, stale }, null, 2) + '\n');
    else process.stdout.write(formatStatus(snap, Date.now()) + (stale ? 'WARNING: snapshot is stale; the agent may not be running\n' : ''));
    return stale ? 1 : 0;
  },
};
