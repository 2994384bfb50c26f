import type { TSchema } from '@sinclair/typebox';
import type { Health } from '../health.js';
import { BackupReportSchema, type BackupReport } from './backup.js';
import { CellularReportSchema, type CellularReport } from './cellular.js';
import { DrillsReportSchema, type DrillsReport } from './drills.js';
import { EnrolmentReportSchema, type EnrolmentReport } from './enrolment.js';
import { FailoverReportSchema, type FailoverReport } from './failover.js';
import { RecordsReportSchema, type RecordsReport } from './records.js';
import { SetupReportSchema, type SetupReport } from './setup.js';
import { StatusReportSchema, type StatusReport } from './status.js';
import { TelemetryReportSchema, type TelemetryReport } from './telemetry.js';
import { TelephonyReportSchema, type TelephonyReport } from './telephony.js';
import { UpdateReportSchema, type UpdateReport } from './update.js';
import { UplinksReportSchema, type UplinksReport } from './uplinks.js';
import { WifiReportSchema, type WifiReport } from './wifi.js';

export * from './backup.js';
export * from './cellular.js';
export * from './drills.js';
export * from './enrolment.js';
export * from './failover.js';
export * from './records.js';
export * from './setup.js';
export * from './status.js';
export * from './telemetry.js';
export * from './telephony.js';
export * from './update.js';
export * from './uplinks.js';
export * from './wifi.js';

/** Each capability's name -> the shape of its `health().details`. */
export interface Reports {
  uplinks: UplinksReport;
  failover: FailoverReport;
  cellular: CellularReport;
  wifi: WifiReport;
  telephony: TelephonyReport;
  records: RecordsReport;
  telemetry: TelemetryReport;
  update: UpdateReport;
  enrolment: EnrolmentReport;
  drills: DrillsReport;
  status: StatusReport;
  backup: BackupReport;
  setup: SetupReport;
}
export type CapabilityName = keyof Reports;

export const REPORT_SCHEMAS: { readonly [K in CapabilityName]: TSchema } = {
  uplinks: UplinksReportSchema,
  failover: FailoverReportSchema,
  cellular: CellularReportSchema,
  wifi: WifiReportSchema,
  telephony: TelephonyReportSchema,
  records: RecordsReportSchema,
  telemetry: TelemetryReportSchema,
  update: UpdateReportSchema,
  enrolment: EnrolmentReportSchema,
  drills: DrillsReportSchema,
  status: StatusReportSchema,
  backup: BackupReportSchema,
  setup: SetupReportSchema,
};

/** Every capability's health, typed by name; names outside the contract (a plug-in) stay untyped. */
export type HealthMap = Record<string, Health<unknown>> & { [K in CapabilityName]?: Health<Reports[K]> };
