import type { DrillsReport, UplinkView } from './reports/index.js';

/** One outage from failover's switch history (today's outages on the status page). */
export interface Outage {
  start: number;
  end: number | null;
  /** Uplinks that carried traffic during it, in order (no uplink at all: "offline" is true). */
  via: string[];
  offline: boolean;
  /** Only forced (maintenance) switches: not a fault. */
  maintenance: boolean;
}

export type DrillTrigger = 'schedule' | 'manual' | 'remote';
export type DrillRun = NonNullable<DrillsReport['last']>;
export type StoredDrill = DrillRun & { trigger: string; durationMs: number };

/** The answer to "back up now" (MQTT command `backup-now`, CLI `backup now`); the outcome follows as `backup.completed`. */
export interface BackupAccepted {
  accepted: true;
  /** A run was already going: one more follows it, so the backup includes this moment. */
  alreadyRunning: boolean;
  /** Sent over a link the policy would not use (not primary, no capture pending), because asked to. */
  forced: boolean;
  link: string;
}

/**
 * What a capability offers beyond health(), by capability name: the status page's buttons, the MQTT
 * commands and failover call these. One declaration, so "force uplink" has one signature for both
 * the page and the remote command (it had two duck types before).
 */
export interface Operations {
  uplinks: { views(): UplinkView[] };
  failover: { force(uplink: string | null, durationMs: number): void; outages(dayStart: number): Outage[] };
  drills: { runNow(trigger: DrillTrigger): Promise<DrillRun>; history(limit?: number): StoredDrill[] };
  backup: { request(o: { force: boolean; by: string }): BackupAccepted };
  update: { request(req: { url: string; version: string; allowCellular?: boolean }): { accepted: true; id: string; version: string; slot: 'a' | 'b' } };
}
