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
/** `slow`: answering, no loss worth the name, but round trips above the "too slow" threshold. */
export type UplinkState = 'unknown' | 'up' | 'slow' | 'degraded' | 'down';

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
