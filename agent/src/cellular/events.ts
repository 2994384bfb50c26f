/** Cellular events (contract: /work/briefs/contracts.md). Imported for its side effect by cellular.ts. */
export type ModemStatus = 'absent' | 'disabled' | 'searching' | 'registered' | 'connected' | 'failed';

declare module '../core/events.js' {
  interface EventMap {
    'cellular.changed': { modem: ModemStatus; operator: string | null; at: number };
    'cellular.usage-threshold': { pct: 75 | 95 | 100; usedBytes: number; allowanceBytes: number; at: number };
  }
}
