import type { Store } from '../store/store.js';
import { parseFields } from '../../../common/fields.js';

export interface OutageRow {
  practice: string;
  practiceName: string;
  pcn: string;
  devices: number;
  minutesOn4g: number;
  outagesSurvived: number;
  minutesOffline: number;
  clinicalSystem: string;
  clinicalOutages: number;
  drillsFailed: number;
}

/**
 * One month, per practice, plus the ICB total. Built from history the ingest keeps: samples (on 4G),
 * events (failover.switched kind failover, records.synced with errors, drill.completed failed) and
 * the birth/death log (offline minutes, clipped to the month).
 */
export async function monthlyOutages(store: Store, year: number, month: number, practice: string | undefined, icb: string): Promise<OutageRow[]> {
  const from = Date.UTC(year, month - 1, 1);
  const to = Date.UTC(year, month, 1);
  const devices = await store.devices.list({ practice, limit: 1_000_000 });
  const d = store.driver;
  const cell = new Map(
    (
      await d.all<{ device_id: string; n: number }>(
        "SELECT device_id, COUNT(*) AS n FROM samples WHERE active_kind = 'cellular' AND at >= ? AND at < ? GROUP BY device_id",
        [from, to],
      )
    ).map((r) => [r.device_id, Number(r.n)]),
  );
  const evs = await d.all<{ device_id: string; name: string; payload: string | null }>(
    `SELECT device_id, name, payload FROM events WHERE at >= ? AND at < ?
      AND name IN ('failover.switched', 'records.synced', 'drill.completed') ORDER BY device_id, at`,
    [from, to],
  );
  // A clinical-system outage is one run of failing syncs ended by a clean one: the agent retries
  // every few minutes, so counting failed syncs would turn one two-hour outage into dozens.
  const count = new Map<string, { fo: number; clin: number; drill: number; inOutage: boolean }>();
  for (const ev of evs) {
    const c = count.get(ev.device_id) ?? { fo: 0, clin: 0, drill: 0, inOutage: false };
    let p: Record<string, unknown> | null = null;
    try {
      p = ev.payload ? parseFields(ev.payload) : null;
    } catch {
      /* a stored payload that is not JSON: count nothing from it */
    }
    if (ev.name === 'failover.switched' && p?.kind === 'failover') c.fo++;
    if (ev.name === 'records.synced' && typeof p?.errors === 'number') {
      if (p.errors > 0 && !c.inOutage) c.clin++;
      c.inOutage = p.errors > 0;
    }
    if (ev.name === 'drill.completed' && p?.passed === false) c.drill++;
    count.set(ev.device_id, c);
  }
  const log = await store.devices.stateLog(null, from - 31 * 86_400_000, to);
  const offline = new Map<string, number>();
  const cur: { id: string | null; downAt: number | null } = { id: null, downAt: null };
  const close = (until: number) => {
    if (cur.id !== null && cur.downAt !== null) offline.set(cur.id, (offline.get(cur.id) ?? 0) + Math.max(0, Math.min(until, to) - Math.max(cur.downAt, from)));
  };
  for (const l of log) {
    if (cur.id !== l.device_id) {
      close(Math.min(to, Date.now()));
      cur.id = l.device_id;
      cur.downAt = null;
    }
    if (!l.online && cur.downAt === null) cur.downAt = l.at;
    if (l.online && cur.downAt !== null) (close(l.at), (cur.downAt = null));
  }
  close(Math.min(to, Date.now()));
  const byPractice = new Map<string, OutageRow>();
  for (const dev of devices) {
    const r = byPractice.get(dev.practice) ?? {
      practice: dev.practice,
      practiceName: dev.practice_name ?? '',
      pcn: dev.pcn ?? '',
      devices: 0,
      minutesOn4g: 0,
      outagesSurvived: 0,
      minutesOffline: 0,
      clinicalSystem: dev.clinical_system ?? '',
      clinicalOutages: 0,
      drillsFailed: 0,
    };
    const c = count.get(dev.id);
    r.devices++;
    r.minutesOn4g += cell.get(dev.id) ?? 0;
    r.outagesSurvived += c?.fo ?? 0;
    r.clinicalOutages += c?.clin ?? 0;
    r.drillsFailed += c?.drill ?? 0;
    r.minutesOffline += Math.round((offline.get(dev.id) ?? 0) / 60_000);
    byPractice.set(dev.practice, r);
  }
  const rows = [...byPractice.values()].sort((a, b) => a.practice.localeCompare(b.practice));
  const total: OutageRow = {
    practice: '(ICB total)',
    practiceName: icb,
    pcn: '',
    devices: 0,
    minutesOn4g: 0,
    outagesSurvived: 0,
    minutesOffline: 0,
    clinicalSystem: '',
    clinicalOutages: 0,
    drillsFailed: 0,
  };
  for (const r of rows)
    for (const k of ['devices', 'minutesOn4g', 'outagesSurvived', 'minutesOffline', 'clinicalOutages', 'drillsFailed'] as const) total[k] += r[k];
  return [...rows, total];
}

const cell = (v: string | number) =>
  /[",\n\r]/.test(String(v)) || /^[=+\-@]/.test(String(v))
    ? `"${String(v)
        .replace(/^([=+\-@])/, "'$1")
        .replace(/"/g, '""')}"`
    : String(v);

/** RFC 4180 CSV; cells that a spreadsheet would run as formulas are neutralised. */
export function toCsv(rows: OutageRow[]): string {
  const head = [
    'practice',
    'practice_name',
    'pcn',
    'devices',
    'minutes_on_4g',
    'outages_survived',
    'minutes_offline',
    'clinical_system',
    'clinical_system_outages',
    'drills_failed',
  ];
  return (
    [
      head.join(','),
      ...rows.map((r) =>
        [r.practice, r.practiceName, r.pcn, r.devices, r.minutesOn4g, r.outagesSurvived, r.minutesOffline, r.clinicalSystem, r.clinicalOutages, r.drillsFailed]
          .map(cell)
          .join(','),
      ),
    ].join('\r\n') + '\r\n'
  );
}
