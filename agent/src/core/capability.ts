import type { EventBus } from './bus.js';
import type { Clock } from '../../../common/clock.js';
import type { Db } from './db.js';
import type { Logger, LogRing } from '../../../common/log.js';
import type { WebRegistry } from './web.js';

import type { Health } from '../../../contract/health.js';
import type { CapabilityName, HealthMap, Reports } from '../../../contract/reports/index.js';
import type { Operations } from '../../../contract/operations.js';

export type { Health } from '../../../contract/health.js';
export type { HealthStatus } from '../../../contract/kinds.js';
export type { HealthMap } from '../../../contract/reports/index.js';

export interface DrillStepResult {
  passed: boolean;
  detail: string;
  figures?: Record<string, number>;
}

/**
 * Something a capability wants in the off-box backup (agent/src/backup). `stage` writes a
 * consistent copy into `dir` (an online snapshot, never a file copy of a live database) and
 * returns the file names it wrote plus facts for the manifest. Facts must hold no patient data.
 */
export interface BackupSource {
  name: string;
  stage(dir: string): Promise<{ files: string[]; facts?: Record<string, unknown> }>;
}

export interface DrillStep {
  name: string;
  run(): Promise<DrillStepResult>;
}

/**
 * The one shape every capability has. The constructor only stores arguments; all work starts in
 * `start(ctx)` and is undone in `stop()`. A capability that fails to start is logged, reported
 * (`capability.failed`) and the others go on.
 */
export interface Capability<D = unknown> {
  readonly name: string;
  start(ctx: Ctx): Promise<void>;
  stop(): Promise<void>;
  /** `details` is the capability's report in contract/reports/ (typed by name in the registry). */
  health(): Health<D>;
  /** Optional: steps the weekly drill runs to prove this capability's backup path works. */
  drillSteps?(): DrillStep[];
  /** Optional: what this capability contributes to the off-box backup. */
  backupSources?(): BackupSource[];
  /**
   * Optional: details for the fleet only, merged into health().details in the MQTT telemetry
   * report and nowhere else (not the LAN page, the LAN API or status.json): e.g. the set-up code.
   */
  fleetDetails?(): Record<string, unknown>;
}

/** A capability as the registry hands it out: its typed health plus the operations it offers. */
export type TypedCapability<K extends CapabilityName> = Capability<Reports[K]> & (K extends keyof Operations ? Operations[K] : unknown);

/** Read-only view of the running capabilities, for the status page, telemetry and drills. */
export interface CapabilityRegistry {
  list(): readonly Capability[];
  /** A contract capability by name, with its typed health; what else it offers goes through the bus or ctx.control. */
  get<K extends CapabilityName>(name: K): TypedCapability<K> | undefined;
  health(): HealthMap;
}

/** What a capability may ask of the agent as a whole (remote commands, admin actions). */
export interface AgentControl {
  // reconfigure(next, source): Promise<Config> is added by config/schema.ts (module augmentation: core imports nothing).
  /** Ask the host to reboot (systemd); in the lab/demo this is recorded, not executed. */
  reboot(reason: string): Promise<void>;
  /** Path of the operator's config file, when there is one. */
  readonly configPath: string | undefined;
}

/**
 * What every capability is given. core/ imports nothing of the agent, so the layers above add their
 * own members by module augmentation: `config` (config/schema.ts) and `platform` (platform/platform.ts).
 */
export interface Ctx {
  log: Logger;
  logs: LogRing;
  bus: EventBus;
  db: Db;
  clock: Clock;
  capabilities: CapabilityRegistry;
  control: AgentControl;
  /** LAN web routes; see core/web.ts. */
  web: WebRegistry;
  /** Identity of this run: changes on every start, used in MQTT birth/death and events. */
  bootId: string;
  version: string;
}
