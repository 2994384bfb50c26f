/**
 * The typed event map. Capabilities add their own events by module augmentation in their
 * own folder, so this file does not become a merge hotspot:
 *
 *   declare module '../core/events.js' {
 *     interface EventMap { 'records.synced': { patients: number; at: number } }
 *   }
 *
 * Events flow one way (probe -> health -> policy -> actuator -> bus -> telemetry/status/LED).
 */
import type { UplinkState } from '../../../contract/kinds.js';
import type { UplinkView } from '../../../contract/reports/uplinks.js';
export type { UplinkState };

/**
 * Every uplink as the tracker (uplinks/) sees it, published on each state change and every second
 * (figures). Failover decides on these alone and never calls into uplinks (mwan3track publishes
 * state, mwan3 reads it). Local to the process: too frequent for the MQTT outbox (see bus.ts).
 */
export interface UplinksSnapshot {
  at: number;
  uplinks: UplinkView[];
}

export interface EventMap {
  'agent.started': { bootId: string; version: string };
  'agent.stopping': { reason: string };
  'capability.failed': { name: string; code: string; message: string };
  'config.applied': { version: number; source: 'file' | 'remote' };
  'uplink.changed': {
    name: string;
    from: UplinkState;
    to: UplinkState;
    reason: string;
    at: number;
  };
  'uplinks.snapshot': UplinksSnapshot;
  'failover.switched': {
    from: string | null;
    to: string | null;
    kind: 'failover' | 'failback' | 'initial' | 'forced' | 'none-available';
    reason: string;
    at: number;
  };
  'drill.completed': {
    id: string;
    passed: boolean;
    steps: { name: string; passed: boolean; detail: string; figures?: Record<string, number> }[];
    at: number;
  };
}

export type EventName = keyof EventMap;

/**
 * Events that stay on the box: emitted with `{ local: true }` (several a second, state for other
 * capabilities, not news for the fleet), so they have no wire schema in contract/events.ts.
 */
export interface LocalEvents {
  'uplinks.snapshot': true;
}
