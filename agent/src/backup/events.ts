/** Backup events (no patient data: telemetry forwards every event off site). */
declare module '../core/events.js' {
  interface EventMap {
    'backup.completed': { ok: boolean; trigger: string; snapshotId: string | null; durationMs: number; dataAdded: number; error: string | null; at: number };
  }
}
export {};
