/** Events this capability adds to the bus (module augmentation; see core/events.ts). */
declare module '../core/events.js' {
  interface EventMap {
    'telemetry.outbox-full': { depth: number; dropped: number; at: number };
  }
}
export {};
