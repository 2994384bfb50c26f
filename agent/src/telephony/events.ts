/** Telephony events (module augmentation, see core/events.ts); telemetry forwards them. */
export type TelephonyMode = 'cloud' | 'survivable' | 'down' | 'disabled';

declare module '../core/events.js' {
  interface EventMap {
    'telephony.mode': { from: TelephonyMode; to: TelephonyMode; reason: string; registered: number; callsInProgress: number; at: number };
  }
}
export {};
