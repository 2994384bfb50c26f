/** Backup events (no patient data: telemetry forwards every event off site). */
declare module '../core/events.js' {
  interface EventMap {
    /** This box was restored from another box's backup: the fleet revokes that box (fleet/src/broker/replacements.ts). */
    'backup.restored': { fromDevice: string; snapshotId: string; restoredAt: number; at: number };
    'backup.completed': { ok: boolean; trigger: string; snapshotId: string | null; durationMs: number; dataAdded: number; error: string | null; at: number };
  }
}
export {};
