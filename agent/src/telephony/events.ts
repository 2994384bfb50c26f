/** Telephony events (module augmentation, see core/events.ts); telemetry forwards them. */
import type { TelephonyMode } from '../../../contract/kinds.js';
export type { TelephonyMode };

declare module '../core/events.js' {
  interface EventMap {
    'telephony.mode': { from: TelephonyMode; to: TelephonyMode; reason: string; registered: number; callsInProgress: number; at: number };
  }
}
export {};
