import type { Capability, TypedCapability } from './core/capability.js';
import type { CapabilityName } from '../../contract/reports/index.js';
import { UplinksCapability } from './uplinks/uplinks.js';
import { FailoverCapability } from './failover/failover.js';
import { CellularCapability } from './cellular/cellular.js';
import { WifiCapability } from './wifi/wifi.js';
import { TelemetryCapability } from './telemetry/telemetry.js';
import { DrillsCapability } from './drills/drills.js';
import { StatusCapability } from './status/status.js';
import { RecordsCapability } from './records/records.js';
import { TelephonyCapability } from './telephony/telephony.js';
import { UpdateCapability } from './update/update.js';
import { EnrolmentCapability } from './enrolment/enrolment.js';
import { BackupCapability } from './backup/backup.js';
import { SetupCapability } from './setup/setup.js';

/**
 * One constructor per contract name, each typed with that name's report and operations
 * (contract/reports/, contract/operations.ts): a capability whose health().details drifts from its
 * schema, or whose name is mapped to the wrong class, fails to compile here.
 */
const BUILD: { readonly [K in CapabilityName]: () => TypedCapability<K> } = {
  uplinks: () => new UplinksCapability(),
  cellular: () => new CellularCapability(),
  wifi: () => new WifiCapability(),
  failover: () => new FailoverCapability(),
  records: () => new RecordsCapability(),
  enrolment: () => new EnrolmentCapability(),
  setup: () => new SetupCapability(),
  telephony: () => new TelephonyCapability(),
  telemetry: () => new TelemetryCapability(),
  update: () => new UpdateCapability(),
  backup: () => new BackupCapability(),
  drills: () => new DrillsCapability(),
  status: () => new StatusCapability(),
};

/**
 * Every capability, in start order (stopped in reverse):
 * uplinks feed failover; setup (first-run wizard and its one-time code) after records and enrolment; telephony listens for failover.switched;
 * update after telemetry (its recovery events reach the outbox); backup after records (its source) and telemetry; status last (its page reads
 * every other capability). The agent builds the LAN web server (agent/src/web/server.ts) after all of them, from the routes they registered.
 */
const START_ORDER: readonly CapabilityName[] = [
  'uplinks',
  'cellular',
  'wifi',
  'failover',
  'records',
  'enrolment',
  'setup',
  'telephony',
  'telemetry',
  'update',
  'backup',
  'drills',
  'status',
];

export function buildCapabilities(): Capability[] {
  return START_ORDER.map((name) => {
    const cap = BUILD[name]();
    if (cap.name !== name) throw new Error(`capability built for ${name} calls itself ${cap.name}`);
    return cap;
  });
}
