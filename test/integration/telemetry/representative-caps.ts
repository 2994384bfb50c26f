import type { Capability, Health } from '../../../agent/src/core/capability.js';
import type { CapabilityName, Reports } from '../../../contract/reports/index.js';
import { report } from '../../helpers/reports.js';

/**
 * Stand-ins whose health details are complete, schema-valid reports (contract/reports/, built with
 * test/helpers/reports.ts): failover with two uplinks, cellular, records, drills, so the benchmark's
 * telemetry payload is the size a real appliance sends and the fleet derives its columns from it.
 */
export function representativeCapabilities(live: { recordsStale: boolean } = { recordsStale: false }): Capability[] {
  const now = Date.now();
  const cap = <K extends CapabilityName>(name: K, summary: string, details: Reports[K] | (() => Reports[K])): Capability => ({
    name,
    start: async () => {},
    stop: async () => {},
    health: (): Health => ({ status: 'ok', summary, since: now, details: typeof details === 'function' ? details() : details }),
  });
  const uplink = (name: string, kind: 'wired' | 'cellular', iface: string, state: 'up' | 'down', latencyMs: number, lossPct: number) => ({
    name,
    label: name,
    kind,
    interface: iface,
    state,
    latencyMs,
    lossPct,
    dns: 'ok' as const,
    since: now,
    reason: `${state}: 3/3 targets answering`,
  });
  return [
    cap(
      'failover',
      'on 4g since 09:12 (wan down: 3/3 targets lost)',
      report('failover', {
        active: '4g',
        since: now,
        reason: 'wan down',
        holdDownMs: 60000,
        uplinks: [uplink('wan', 'wired', 'wan0', 'down', 0, 100), uplink('4g', 'cellular', 'wwan0', 'up', 48.2, 0.5)],
        lines: ['wan (wired, wan0): down, loss 100%', '4g (cellular, wwan0): up, 48 ms, loss 0.5%'],
      }),
    ),
    cap(
      'cellular',
      'connected to EE (LTE), signal good',
      report('cellular', {
        modem: 'connected',
        operator: 'EE',
        accessTech: 'lte',
        signal: { rsrp: -95, rsrq: -11, sinr: 12.5, quality: 68 },
        usage: { usedBytes: 734003200, allowanceBytes: 10737418240, usedPct: 6.8, cycleStart: now - 864e6 },
        lines: ['EE LTE, RSRP -95 dBm, SINR 12.5 dB', 'data 700 MiB of 10 GiB (6.8%)'],
      }),
    ),
    // `live.recordsStale` flips the cache to stale while running (the harness's SIGUSR2).
    cap('records', 'cache fresh (synced 4 min ago)', () =>
      report('records', {
        asOf: now - 240000,
        stale: live.recordsStale,
        patients: 9800,
        appointments: 1450,
        locked: false,
        provisioned: true,
        sync: { running: false, done: 0, total: 0, lastError: null },
        pendingCaptures: 0,
        lines: ['9800 patients, 1450 appointments'],
      }),
    ),
    cap(
      'drills',
      'last drill passed',
      report('drills', { last: { id: '01JDRILL00000000000000000', at: now - 3600e3, passed: true, steps: [] }, next: now + 6e8, running: false, lines: [] }),
    ),
  ];
}
