import type { HealthStatus } from '../core/capability.js';
import type { UpdateReport } from '../../../contract/reports/index.js';
import type { BootState } from '../platform/boot-control.js';
import type { UpdateState } from './state.js';

export interface UpdateDescription {
  status: HealthStatus;
  summary: string;
  lines: string[];
  details: Omit<UpdateReport, 'lines'>;
}

/**
 * health() of the update capability. `details` shape (status page, telemetry, `status --json`):
 * { phase, version (running), target (bundle version or null), booted, active, armed, trial,
 *   progress: {bytes,total}|null, unmet: string[], error: {code,message}|null, floorVersion }.
 */
export function describeUpdate(
  s: UpdateState,
  boot: BootState | null,
  running: string,
  unavailable: string | null,
  progress: { bytes: number; total: number } | null,
  unmet: string[],
): UpdateDescription {
  const details = {
    phase: s.phase,
    version: running,
    target: s.version,
    booted: boot?.booted ?? null,
    active: boot?.active ?? null,
    armed: boot?.armed ?? null,
    trial: boot?.trial ?? false,
    progress,
    unmet,
    error: s.error ?? null,
    floorVersion: s.floorVersion,
  };
  if (unavailable) return { status: 'disabled', summary: unavailable, lines: [], details };
  const slot = boot ? ` (slot ${boot.booted}${boot.trial ? ', on trial' : ''})` : '';
  const lines = [`running ${running}${slot}`];
  let summary = `running ${running}${slot}`;
  let status: HealthStatus = 'ok';
  switch (s.phase) {
    case 'downloading':
    case 'installing': {
      const pct = progress && progress.total ? ` ${Math.floor((progress.bytes * 100) / progress.total)}%` : '';
      summary = `installing update ${s.version ?? ''}${pct}`.trim();
      break;
    }
    case 'installed':
      summary = `update ${s.version ?? ''} installed; restarting into it`;
      break;
    case 'trial':
      summary = `trying update ${running}: ${unmet.length ? `waiting for ${unmet[0]}` : 'checking health'}`;
      break;
    case 'committed':
      lines.push(`last update: ${s.fromVersion ?? '?'} -> ${running}, committed`);
      break;
    case 'rolled-back':
      status = 'degraded';
      summary = `update ${s.version ?? ''} was rolled back; running ${running}`;
      if (s.error) lines.push(`why: ${s.error.message}`);
      break;
    case 'refused':
    case 'failed':
      status = 'degraded';
      summary = `update ${s.version ?? ''} ${s.phase}: ${s.error?.code ?? ''}`;
      if (s.error) lines.push(s.error.message);
      break;
    default:
      break;
  }
  if (s.phase !== 'idle' && s.phase !== 'committed' && summary !== lines[0]) lines.push(summary);
  return { status, summary, lines, details };
}
