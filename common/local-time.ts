/**
 * When a weekly or daily local-time schedule is next due (drills, nightly backups): the next local `time` on `weekday` (-1 = any day)
 * strictly after `now`. Local time because "Sunday 06:30" means the practice's Sunday morning,
 * across BST/GMT changes.
 */
export function nextLocalTimeAt(now: number, weekday: number, time: string): number {
  const [hh, mm] = time.split(':').map(Number) as [number, number];
  const d = new Date(now);
  d.setSeconds(0, 0);
  d.setHours(hh, mm);
  for (let i = 0; i < 8; i++) {
    if (d.getTime() > now && (weekday < 0 || d.getDay() === weekday)) return d.getTime();
    d.setDate(d.getDate() + 1);
    d.setHours(hh, mm, 0, 0);
  }
  throw new Error('unreachable: a weekday repeats within 8 days');
}
