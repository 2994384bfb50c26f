import type { WireEventName, WireEventPayloads } from '../../../contract/events.js';
import type { EventMap, LocalEvents } from '../core/events.js';

/** Events this capability adds to the bus (module augmentation; see core/events.ts). */
declare module '../core/events.js' {
  interface EventMap {
    'telemetry.outbox-full': { depth: number; dropped: number; at: number };
  }
}

/**
 * Every bus event goes to the fleet as is (telemetry.ts, `bus.onAny`), so the bus's EventMap and the
 * wire contract (contract/events.ts) must agree field for field. This fails to compile, naming the
 * event, when a bus event is added or changed without its wire schema, or the other way round.
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type WireBound = Exclude<keyof EventMap, keyof LocalEvents>;
type Drift = { [K in WireBound]: K extends WireEventName ? (Same<EventMap[K], WireEventPayloads[K]> extends true ? never : K) : K }[WireBound];
type Stale = Exclude<WireEventName, WireBound>;
export const wireEventsMatchBus: [Drift | Stale] extends [never] ? true : { notInContractOrDifferent: Drift; inContractOnly: Stale } = true;
