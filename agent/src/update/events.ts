/**
 * Update events (module augmentation, see core/events.ts). Telemetry forwards every bus event to
 * the `events` topic through the durable outbox, so the fleet sees each step of an update in order
 * and at least once, even across the reboot into the new slot.
 */
declare module '../core/events.js' {
  interface EventMap {
    /** A step of an update in flight: downloading (with bytes), staged, writing, verifying, installed, rebooting, trial. */
    'update.progress': { id: string; version: string; phase: string; bytes?: number; total?: number; at: number };
    /** The bundle was refused; `code` is one of the UPDATE_* error codes (docs/updates.md). */
    'update.refused': { id: string; version: string; code: string; message: string; at: number };
    /** Something other than the bundle failed (disk, download); nothing was armed. */
    'update.failed': { id: string; version: string; code: string; message: string; at: number };
    /** The trial boot passed the health gate: the new slot is now the default. */
    'update.committed': { id: string; version: string; slot: 'a' | 'b'; fromVersion: string | null; at: number };
    /** Back on the previous slot: the health gate failed, or the trial boot never came up. */
    'update.rolled-back': { id: string; version: string; slot: 'a' | 'b'; reason: string; at: number };
  }
}
export {};
