import type { HealthStatus } from './kinds.js';

/**
 * What every capability reports. `D` is the capability's report (contract/reports/): the status
 * page, LED, CLI, telemetry, update gate and fleet all read the same typed shape.
 */
export interface Health<D = unknown> {
  status: HealthStatus;
  /** One plain-English line a receptionist could read. */
  summary: string;
  /** Structured figures; absent while starting or disabled unless the report says otherwise. */
  details?: D;
  since?: number;
}
