import type { ConfigReported, EventMessage, HeartbeatMessage, TelemetryMessage } from '../../../contract/mqtt.js';

/** What the ingest derives from one telemetry message (see ingest/derive.ts). */
export interface Derived {
  activeUplink: string | null;
  activeKind: string | null;
  /** On 4G since (failover's own since when known). */
  cellularSince: number | null;
  telephonyMode: string | null;
  telephonyRegistered: boolean | null;
  telephonyCalls: number | null;
  recordsStale: boolean | null;
  recordsAsOf: number | null;
  dataPct: number | null;
  dataUsed: number | null;
  dataAllowance: number | null;
  /** Per capability {status, summary}: small enough to keep per device, enough for the device page. */
  health: Record<string, { status: string; summary: string; setupCode?: string; lastGoodBackupAt?: number | null }>;
}

export interface Placement {
  practice: string;
  practiceName: string | null;
  pcn: string | null;
  clinicalSystem: string | null;
}

export interface StateMsg {
  online: boolean;
  bootId: string;
  bdSeq: number;
  version?: string;
  configRevision?: number;
  at?: number;
}

export type Inbound = { deviceId: string; receivedAt: number; place: Placement } & (
  | { kind: 'state'; msg: StateMsg }
  | { kind: 'telemetry'; msg: TelemetryMessage; derived: Derived }
  | { kind: 'event'; msg: EventMessage }
  | { kind: 'reported'; msg: ConfigReported }
  | { kind: 'heartbeat'; msg: HeartbeatMessage }
);

export interface DeviceRow {
  id: string;
  first_seen: number;
  practice: string;
  practice_name: string | null;
  pcn: string | null;
  clinical_system: string | null;
  online: number;
  state_since: number | null;
  state_at: number | null;
  boot_id: string | null;
  bd_seq: number | null;
  birth_bd_seq: number | null;
  version: string | null;
  config_revision: number | null;
  last_seen: number | null;
  telemetry_at: number | null;
  active_uplink: string | null;
  active_kind: string | null;
  cellular_since: number | null;
  telephony_mode: string | null;
  telephony_registered: number | null;
  telephony_calls: number | null;
  records_stale: number | null;
  records_as_of: number | null;
  data_pct: number | null;
  data_used: number | null;
  data_allowance: number | null;
  drill_at: number | null;
  drill_passed: number | null;
  drill_json: string | null;
  reported_revision: number | null;
  reported_status: string | null;
  reported_json: string | null;
  reported_at: number | null;
  health_json: string | null;
}

export interface SampleRow {
  id: string;
  device_id: string;
  at: number;
  active_kind: string | null;
  data_pct: number | null;
  data_used: number | null;
  records_stale: number | null;
  telephony_mode: string | null;
}

export interface EventRow {
  id: string;
  device_id: string;
  name: string;
  at: number;
  payload: string | null;
}

export const DEVICE_SORTS = ['state', 'device', 'practice', 'pcn', 'uplink', 'telephony', 'records', 'data', 'drill', 'seen'] as const;
export type DeviceSort = (typeof DEVICE_SORTS)[number];

export interface DeviceFilter {
  practice?: string;
  pcn?: string;
  q?: string;
  state?: 'online' | 'offline' | 'cellular' | 'survivable' | 'stale' | 'alerting';
  /** Column to sort by; default `state` ascending, which is worst first (device-store.ts WORST). */
  sort?: DeviceSort;
  dir?: 'asc' | 'desc';
  limit?: number;
  offset?: number;
}

/** What one batch did, for the counters and the lag figures. */
export interface IngestOutcome {
  applied: number;
  duplicates: number;
  staleDeaths: number;
}
