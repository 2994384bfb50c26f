import { readFileSync } from 'node:fs';
import { reportLines } from '../../../contract/read.js';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';
import type { Health, HealthMap } from '../core/capability.js';
import { configPathFrom, parse } from '../core/cli-args.js';
import type { CliCommand } from '../core/cli-command.js';

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

/**
 * Exit codes of `surgery-edge status`, for scripts and monitoring (documented in the operator
 * guide and `--help`): 0 everything ok, 3 something needs attention (a capability degraded,
 * starting or stopped), 4 something has failed, 1 cannot tell (no status file, or a stale one: the
 * agent may not be running), 2 usage error or invalid config (as for every command).
 */
export const STATUS_EXIT = { ok: 0, unknown: 1, usage: 2, attention: 3, failed: 4 } as const;

export function statusExitCode(snap: Pick<Snapshot, 'capabilities'>, stale: boolean): number {
  if (stale) return STATUS_EXIT.unknown;
  const all = Object.values(snap.capabilities).map((h) => h.status);
  if (all.includes('failed')) return STATUS_EXIT.failed;
  if (all.some((s) => s === 'degraded' || s === 'starting' || s === 'stopped')) return STATUS_EXIT.attention;
  return STATUS_EXIT.ok;
}

export const statusCommand: CliCommand = {
  summary:
    'status [--json] [--config FILE]: uplinks, active uplink and why, broker, outbox, cache.\n' +
    '                   exit 0 all ok, 3 attention (something degraded), 4 something failed, 1 agent not running/stale, 2 usage',
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
    return statusExitCode(snap, stale);
  },
};
