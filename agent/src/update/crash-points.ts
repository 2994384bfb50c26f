/**
 * Named points between the installer's state-changing steps. The power-cut test
 * (test/integration/update/kill-installer.test.ts) sets SURGERY_EDGE_CRASH_AT=<name> and the
 * installer SIGKILLs itself there, which is as abrupt as a power cut for everything above the page
 * cache (the test then checks what would boot). Unset on the appliance, so this does nothing.
 */
export const CRASH_POINTS = [
  'checked',
  'disarmed',
  'installing-recorded',
  'write-started',
  'write-half',
  // Delta bundles only: casync has fetched its first chunk and is writing the slot.
  'delta-chunk-fetched',
  'write-synced',
  'readback-done',
  'armed',
  'installed-recorded',
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];
/** Points only a delta (format 2) install passes; a full bundle's install never reaches them. */
export const DELTA_ONLY_CRASH_POINTS: readonly CrashPoint[] = ['delta-chunk-fetched'];

export function crashPoint(name: CrashPoint): void {
  if (process.env.SURGERY_EDGE_CRASH_AT === name) process.kill(process.pid, 'SIGKILL');
}
