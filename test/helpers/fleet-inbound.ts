import { ulid } from '../../agent/src/core/ids.js';
import type { Derived, Inbound, Placement } from '../../fleet/src/store/types.js';

/**
 * A telemetry message as ingest hands it to the store: a healthy box on its wired primary unless
 * `o` says otherwise. For fleet tests that seed the store directly (alerts, triage, dashboards).
 */
export function telemetryInbound(deviceId: string, at: number, place: Placement, o: Partial<Derived> = {}): Inbound {
  const derived: Derived = {
    activeUplink: 'wan',
    activeKind: 'wired',
    cellularSince: null,
    telephonyMode: 'cloud',
    telephonyRegistered: true,
    telephonyCalls: 0,
    recordsStale: false,
    recordsAsOf: at,
    dataPct: 10,
    dataUsed: 1e9,
    dataAllowance: 1e10,
    health: {},
    ...o,
  };
  return {
    kind: 'telemetry',
    deviceId,
    receivedAt: at,
    place,
    derived,
    msg: {
      id: ulid(at),
      at,
      bootId: 'b',
      activeUplink: derived.activeUplink,
      activeKind: derived.activeKind as 'wired',
      system: { cpuLoadPct: 0, loadAvg1: 0, memUsedPct: 0, memTotalBytes: 0, disks: [], cpuTempC: null, throttled: null, uptimeS: 0 },
      capabilities: {},
    },
  };
}
