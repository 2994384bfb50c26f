import type { Config } from '../config/schema.js';
import type { EventBus } from './bus.js';
import type { Clock } from './clock.js';
import type { Db } from './db.js';
import type { Logger, LogRing } from './log.js';
import type { Platform } from '../platform/platform.js';
import type { WebRegistry } from './web.js';

export type HealthStatus = 'ok' | 'degraded' | 'failed' | 'starting' | 'stopped' | 'disabled';

export interface Health {
  status: HealthStatus;
  /** One plain-English line a receptionist could read. */
  summary: string;
  /** Structured figures for the status page, telemetry and `status --json`. */
  details?: Record<string, unknown>;
  since?: number;
}

export interface DrillStepResult {
  passed: boolean;
  detail: string;
  figures?: Record<string, number>;
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
export interface Capability {
  readonly name: string;
  start(ctx: Ctx): Promise<void>;
  stop(): Promise<void>;
  health(): Health;
  /** Optional: steps the weekly drill runs to prove this capability's backup path works. */
  drillSteps?(): DrillStep[];
  /**
   * Optional: details for the fleet only, merged into health().details in the MQTT telemetry
   * report and nowhere else (not the LAN page, the LAN API or status.json): e.g. the set-up code.
   */
  fleetDetails?(): Record<string, unknown>;
}

/** Read-only view of the running capabilities, for the status page, telemetry and drills. */
export interface CapabilityRegistry {
  list(): readonly Capability[];
  get<T extends Capability = Capability>(name: string): T | undefined;
  health(): Record<string, Health>;
}

/** What a capability may ask of the agent as a whole (remote commands, admin actions). */
export interface AgentControl {
  /** Validate and apply a new config: persist it atomically, restart capabilities on it. Throws CONFIG_INVALID. */
  reconfigure(next: unknown, source: 'file' | 'remote'): Promise<Config>;
  /** Ask the host to reboot (systemd); in the lab/demo this is recorded, not executed. */
  reboot(reason: string): Promise<void>;
  /** Path of the operator's config file, when there is one. */
  readonly configPath: string | undefined;
}

export interface Ctx {
  config: Config;
  log: Logger;
  logs: LogRing;
  bus: EventBus;
  db: Db;
  clock: Clock;
  platform: Platform;
  capabilities: CapabilityRegistry;
  control: AgentControl;
  /** LAN web routes; see core/web.ts. */
  web: WebRegistry;
  /** Identity of this run: changes on every start, used in MQTT birth/death and events. */
  bootId: string;
  version: string;
}
