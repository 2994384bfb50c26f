import type { CellularView } from './view.js';
import type { UsageSnapshot } from './usage.js';

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}

const fig = (v: number | null, unit: string) => (v === null ? '?' : `${v}${unit}`);

/** The short lines `surgery-edge status` prints under the cellular summary. */
export function summaryLines(
  v: CellularView,
  usage: UsageSnapshot,
  nonCritical: string,
  policy: { applied: boolean; lastError: string | null; critical: number },
): string[] {
  const lines: string[] = [];
  const bearer = v.bearer?.connected ? `, bearer ${v.bearer.interface ?? '?'} ${v.bearer.address ?? ''}`.trimEnd() : '';
  const network = `${v.operator ? ` on ${v.operator}` : ''}${v.accessTech ? ` (${v.accessTech})` : ''}`;
  lines.push(`modem: ${v.modem}${network}${bearer}${v.modem === 'connected' ? '' : ` - ${v.reason}`}`);
  if (v.signal || v.quality !== null) {
    lines.push(
      `signal: RSRP ${fig(v.signal?.rsrp ?? null, ' dBm')}, RSRQ ${fig(v.signal?.rsrq ?? null, ' dB')}, SINR ${fig(v.signal?.sinr ?? null, ' dB')}, ` +
        `quality ${fig(v.quality, '%')}`,
    );
  }
  const cycle = usage.cycleStart ? ` since ${new Date(usage.cycleStart).toISOString().slice(0, 10)}` : '';
  lines.push(
    usage.allowanceBytes > 0
      ? `usage: ${formatBytes(usage.usedBytes)} of ${formatBytes(usage.allowanceBytes)} (${usage.usedPct}%)${cycle}`
      : `usage: ${formatBytes(usage.usedBytes)} (unmetered)${cycle}`,
  );
  lines.push(
    policy.applied
      ? `4G policy: ${policy.critical} critical destinations pass, other traffic ${nonCritical}`
      : `4G policy: NOT applied (${policy.lastError ?? 'pending'})`,
  );
  return lines;
}
