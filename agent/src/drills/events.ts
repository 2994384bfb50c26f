/** Drill events beyond the base 'drill.completed' (module augmentation, see core/events.ts). */
declare module '../core/events.js' {
  interface EventMap {
    'drill.started': { id: string; trigger: 'schedule' | 'manual' | 'remote'; steps: string[]; at: number };
  }
}
export {};
