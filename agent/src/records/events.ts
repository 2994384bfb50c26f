/** Records events (no patient data, ever: telemetry forwards every event off site). */
declare module '../core/events.js' {
  interface EventMap {
    'records.synced': { patients: number; appointments: number; asOf: number | null; durationMs: number; errors: number };
  }
}
export {};
