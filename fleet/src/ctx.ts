import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/log.js';
import type { FleetConfig } from './config.js';
import type { Inventory } from './inventory.js';
import type { MqttHub } from './mqtt/hub.js';
import type { Store } from './store/store.js';

/** What every fleet component is given; nothing reads globals (as the agent's ctx). */
export interface FleetCtx {
  config: FleetConfig;
  log: Logger;
  clock: Clock;
  store: Store;
  mqtt: MqttHub;
  inventory: Inventory;
  instanceId: string;
  /** Step the rollouts now (after a start or resume), rather than at the next tick. */
  rollouts?: { tick(): Promise<void> };
  /** Step the update campaigns now (after a start). */
  campaigns?: { tick(): Promise<void> };
}

export interface ComponentHealth {
  status: 'ok' | 'degraded' | 'failed' | 'disabled';
  summary: string;
  details?: Record<string, unknown>;
}

/** The agent's capability shape, for the fleet's parts: constructor stores, start/stop/health. */
export interface Component {
  readonly name: string;
  start(ctx: FleetCtx): Promise<void>;
  stop(): Promise<void>;
  health(): ComponentHealth;
}
