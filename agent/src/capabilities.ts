import type { Config } from './config/schema.js';
import type { Capability } from './core/capability.js';
import { CellularCapability } from './cellular/cellular.js';
import { WifiCapability } from './wifi/wifi.js';
import { TelemetryCapability } from './telemetry/telemetry.js';

/**
 * Every capability, in start order (stopped in reverse). One line per capability:
 * uplinks feed failover; telemetry and status read everyone's health().
 */
export function buildCapabilities(config: Config): Capability[] {
  void config;
  return [
    new CellularCapability(),
    new WifiCapability(),
    new TelemetryCapability(),
  ];
}
