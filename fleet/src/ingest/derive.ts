import type { TelemetryMessage } from '../../../contract/mqtt.js';
import { readReport } from '../../../contract/read.js';
import type { Derived } from '../store/types.js';

/**
 * The dashboard's columns from one telemetry message. Each capability's report is checked against
 * its schema (contract/reports/) on its own: a report that does not match (a device without that
 * capability, a disabled one, a malformed one) reads as unknown (null) for its columns alone.
 */
export function deriveTelemetry(m: TelemetryMessage): Derived {
  const caps = m.capabilities;
  const fo = readReport('failover', caps.failover?.details);
  const cell = readReport('cellular', caps.cellular?.details)?.usage;
  const rec = caps.records?.status === 'disabled' ? null : readReport('records', caps.records?.details);
  const tel = readReport('telephony', caps.telephony?.details);
  const health: Derived['health'] = {};
  for (const [name, h] of Object.entries(caps).slice(0, 32)) {
    health[name.slice(0, 40)] = { status: String(h.status).slice(0, 20), summary: String(h.summary).slice(0, 200) };
  }
  // The box's one-time set-up code, for the device page: the ICB engineer reads it to the practice
  // manager, who types it into the box's set-up wizard.
  const code = readReport('setup', caps.setup?.details)?.setupCode;
  if (code && /^[A-Za-z0-9 -]{4,32}$/.test(code) && health.setup) health.setup.setupCode = code;
  // The backup-stale alert (alerts/rules.ts) needs the time of the last good backup, not only its summary.
  const backup = caps.backup?.status === 'disabled' ? null : readReport('backup', caps.backup?.details);
  if (backup && health.backup) health.backup.lastGoodBackupAt = backup.lastSuccessAt;
  return {
    activeUplink: m.activeUplink,
    activeKind: m.activeKind,
    cellularSince: m.activeKind === 'cellular' ? (fo?.since ?? null) : null,
    telephonyMode: tel?.mode ?? null,
    telephonyRegistered: tel ? tel.registered > 0 : null,
    telephonyCalls: tel?.callsInProgress ?? null,
    recordsStale: rec?.stale ?? null,
    recordsAsOf: rec?.asOf ?? null,
    dataPct: cell?.usedPct ?? null,
    dataUsed: cell?.usedBytes ?? null,
    dataAllowance: cell?.allowanceBytes ?? null,
    health,
  };
}
