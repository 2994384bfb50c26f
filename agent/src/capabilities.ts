import type { Config } from './config/schema.js';
import type { Capability } from './core/capability.js';
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
import { SetupCapability } from './setup/setup.js';

/**
 * Every capability, in start order (stopped in reverse). One line per capability:
 * uplinks feed failover; telemetry and status read everyone's health().
 */
export function buildCapabilities(config: Config): Capability[] {
  void config;
  return [
    new UplinksCapability(),
    new CellularCapability(),
    new WifiCapability(),
    new FailoverCapability(),
    new RecordsCapability(),
    new EnrolmentCapability(),
    new SetupCapability(), // first-run wizard (/setup) and its one-time code
    new TelephonyCapability(), // after failover: listens for failover.switched
    new TelemetryCapability(),
    new UpdateCapability(), // after telemetry: its recovery events (committed, rolled back) reach the outbox
    new DrillsCapability(),
    new StatusCapability(), // last: builds the web server from every capability's routes
  ];
}
