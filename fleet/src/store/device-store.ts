import type { Param, SqlDriver } from './driver.js';
import type { DeviceFilter, DeviceRow, DeviceSort, EventRow, Inbound, IngestOutcome, Placement, SampleRow } from './types.js';

const b = (v: boolean | null | undefined): number | null => (v === null || v === undefined ? null : v ? 1 : 0);

/**
 * How bad a device's state is, worst (0) first: offline, on 4G, records stale, telephony not on the
 * cloud PBX, drill failed, data at 95 % or more, any other open alert, then fine (9). The list's
 * default order; the same ranks are documented in docs/fleet.md (Triage).
 */
export const WORST = `(CASE WHEN online = 0 THEN 0 WHEN active_kind = 'cellular' THEN 1 WHEN records_stale = 1 THEN 2
  WHEN telephony_mode IN ('survivable', 'down') THEN 3 WHEN drill_passed = 0 THEN 4 WHEN data_pct >= 95 THEN 5
  WHEN EXISTS (SELECT 1 FROM alerts a WHERE a.device_id = devices.id AND a.cleared_at IS NULL) THEN 6 ELSE 9 END)`;

/** ORDER BY per sortable column (whitelisted: never text from the request); NULLs sort as the least. */
const ORDER: Record<DeviceSort, string[]> = {
  // Within a rank, the longest in that state first.
  state: [WORST, 'COALESCE(state_since, 0) * (1 - online)', 'COALESCE(cellular_since, 0)', 'practice', 'id'],
  device: ['id'],
  practice: ['practice', 'id'],
  pcn: ["COALESCE(pcn, '')", 'practice', 'id'],
  uplink: ["COALESCE(active_kind, '')", "COALESCE(active_uplink, '')", 'id'],
  telephony: ["COALESCE(telephony_mode, '')", 'id'],
  records: ['COALESCE(records_stale, -1) * -1', 'id'],
  data: ['COALESCE(data_pct, -1) * -1', 'id'],
  drill: ['COALESCE(drill_passed, 2)', 'id'],
  seen: ['COALESCE(last_seen, 0)', 'id'],
};

/**
 * Last-known state per device plus history (samples, events, state changes). Every write is an
 * idempotent, order-aware upsert, because with a shared subscription a device's birth may reach one
 * fleet instance and its next telemetry another: nothing here reads-then-writes in application code.
 */
export class DeviceStore {
  constructor(private readonly d: SqlDriver) {}

  /** One transaction per batch. */
  async ingest(batch: Inbound[]): Promise<IngestOutcome> {
    const out: IngestOutcome = { applied: 0, duplicates: 0, staleDeaths: 0 };
    if (!batch.length) return out;
    await this.d.tx(async (t) => {
      for (const m of batch) {
        await this.ensure(t, m.deviceId, m.place, m.receivedAt);
        if (m.kind === 'state') await this.applyState(t, m, out);
        else if (m.kind === 'telemetry') await this.applyTelemetry(t, m, out);
        else if (m.kind === 'event') await this.applyEvent(t, m, out);
        else if (m.kind === 'heartbeat') await this.applyHeartbeat(t, m, out);
        else await this.applyReported(t, m, out);
      }
    });
    return out;
  }

  private async ensure(t: SqlDriver, id: string, p: Placement, at: number): Promise<void> {
    await t.run(
      `INSERT INTO devices (id, first_seen, practice, practice_name, pcn, clinical_system, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET last_seen = CASE WHEN devices.last_seen IS NULL OR excluded.last_seen > devices.last_seen
       THEN excluded.last_seen ELSE devices.last_seen END`,
      [id, at, p.practice, p.practiceName, p.pcn, p.clinicalSystem, at],
    );
  }

  private async applyState(t: SqlDriver, m: Extract<Inbound, { kind: 'state' }>, out: IngestOutcome): Promise<void> {
    const s = m.msg;
    const at = s.at ?? m.receivedAt;
    if (s.online) {
      // A birth replayed from an older session (same boot, lower bdSeq) is ignored.
      const r = await t.run(
        `UPDATE devices SET state_since = CASE WHEN online = 1 AND boot_id = ? THEN state_since ELSE ? END,
           online = 1, state_at = ?, boot_id = ?, bd_seq = ?, birth_bd_seq = ?, version = COALESCE(?, version), config_revision = COALESCE(?, config_revision)
         WHERE id = ? AND NOT (boot_id = ? AND birth_bd_seq IS NOT NULL AND ? < birth_bd_seq)`,
        [s.bootId, at, at, s.bootId, s.bdSeq, s.bdSeq, s.version ?? null, s.configRevision ?? null, m.deviceId, s.bootId, s.bdSeq],
      );
      if (r.changes) {
        out.applied++;
        await t.run('INSERT INTO state_log (device_id, at, online, bd_seq) VALUES (?, ?, 1, ?)', [m.deviceId, at, s.bdSeq]);
      } else out.duplicates++;
      return;
    }
    // Death: Sparkplug's rule; a Will whose bdSeq is below the last birth's belongs to an older session.
    const r = await t.run(
      `UPDATE devices SET state_since = CASE WHEN online = 1 THEN ? ELSE state_since END, online = 0, state_at = ?, bd_seq = ?
       WHERE id = ? AND (birth_bd_seq IS NULL OR ? >= birth_bd_seq) AND NOT (online = 0 AND bd_seq = ?)`,
      [at, at, s.bdSeq, m.deviceId, s.bdSeq, s.bdSeq],
    );
    if (r.changes) {
      out.applied++;
      await t.run('INSERT INTO state_log (device_id, at, online, bd_seq) VALUES (?, ?, 0, ?)', [m.deviceId, at, s.bdSeq]);
    } else {
      const row = await t.get<{ birth_bd_seq: number | null }>('SELECT birth_bd_seq FROM devices WHERE id = ?', [m.deviceId]);
      if (row?.birth_bd_seq !== null && row?.birth_bd_seq !== undefined && s.bdSeq < row.birth_bd_seq) out.staleDeaths++;
      else out.duplicates++;
    }
  }

  private async applyTelemetry(t: SqlDriver, m: Extract<Inbound, { kind: 'telemetry' }>, out: IngestOutcome): Promise<void> {
    const x = m.derived;
    const at = m.msg.at;
    const ins = await t.run(
      `INSERT INTO samples (id, device_id, at, active_kind, data_pct, data_used, records_stale, telephony_mode)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
      [m.msg.id, m.deviceId, at, x.activeKind, x.dataPct, x.dataUsed, b(x.recordsStale), x.telephonyMode],
    );
    if (!ins.changes) {
      out.duplicates++; // the outbox resends with the same id after a lost PUBACK
      return;
    }
    out.applied++;
    const p: Param[] = [
      at,
      x.activeUplink,
      x.activeKind,
      x.activeKind,
      x.cellularSince,
      at,
      x.telephonyMode,
      b(x.telephonyRegistered),
      x.telephonyCalls,
      b(x.recordsStale),
      x.recordsAsOf,
      x.dataPct,
      x.dataUsed,
      x.dataAllowance,
      JSON.stringify(x.health),
      at,
      at,
      m.msg.bootId,
      m.deviceId,
      at,
    ];
    // Telemetry from a device we have no state for yet (its retained birth not seen) says it is up.
    await t.run(
      `UPDATE devices SET telemetry_at = ?, active_uplink = ?, active_kind = ?,
         cellular_since = CASE WHEN ? = 'cellular' THEN COALESCE(?, CASE WHEN active_kind = 'cellular' AND cellular_since IS NOT NULL
         THEN cellular_since ELSE ? END) ELSE NULL END,
         telephony_mode = ?, telephony_registered = ?, telephony_calls = ?, records_stale = ?, records_as_of = ?,
         data_pct = ?, data_used = ?, data_allowance = ?, health_json = ?,
         online = CASE WHEN state_at IS NULL THEN 1 ELSE online END, state_since = COALESCE(state_since, ?), state_at = COALESCE(state_at, ?),
         boot_id = COALESCE(boot_id, ?)
       WHERE id = ? AND (telemetry_at IS NULL OR telemetry_at <= ?)`,
      p,
    );
  }

  /**
   * A 4G heartbeat (contract v1.3): `ensure` has already moved last_seen; the last full report's
   * columns stay as they are, since the heartbeat says they still hold. It also adds a history sample
   * with those values, so the history (minutes on 4G in the outage report, the data-use chart) keeps
   * one row a minute on 4G as when every report was full. Like telemetry, it says a device we have no
   * state for yet is up.
   */
  private async applyHeartbeat(t: SqlDriver, m: Extract<Inbound, { kind: 'heartbeat' }>, out: IngestOutcome): Promise<void> {
    await t.run(
      `INSERT INTO samples (id, device_id, at, active_kind, data_pct, data_used, records_stale, telephony_mode)
       SELECT ?, id, ?, active_kind, data_pct, data_used, records_stale, telephony_mode FROM devices WHERE id = ? AND telemetry_at IS NOT NULL
       ON CONFLICT (id) DO NOTHING`,
      [`hb:${m.msg.bootId.slice(0, 64)}:${m.msg.at}`, m.msg.at, m.deviceId],
    );
    await t.run(
      `UPDATE devices SET online = CASE WHEN state_at IS NULL THEN 1 ELSE online END, state_since = COALESCE(state_since, ?), state_at = COALESCE(state_at, ?),
         boot_id = COALESCE(boot_id, ?) WHERE id = ?`,
      [m.msg.at, m.msg.at, m.msg.bootId, m.deviceId],
    );
    out.applied++;
  }

  private async applyEvent(t: SqlDriver, m: Extract<Inbound, { kind: 'event' }>, out: IngestOutcome): Promise<void> {
    const e = m.msg;
    const payload = JSON.stringify(e.payload ?? null);
    const ins = await t.run('INSERT INTO events (id, device_id, name, at, payload) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING', [
      e.id,
      m.deviceId,
      e.name,
      e.at,
      payload,
    ]);
    if (!ins.changes) {
      out.duplicates++;
      return;
    }
    out.applied++;
    if (e.name === 'drill.completed') {
      const passed = (e.payload as { passed?: unknown } | null)?.passed === true;
      await t.run('UPDATE devices SET drill_at = ?, drill_passed = ?, drill_json = ? WHERE id = ? AND (drill_at IS NULL OR drill_at <= ?)', [
        e.at,
        passed ? 1 : 0,
        payload,
        m.deviceId,
        e.at,
      ]);
    }
  }

  private async applyReported(t: SqlDriver, m: Extract<Inbound, { kind: 'reported' }>, out: IngestOutcome): Promise<void> {
    const r = m.msg;
    const res = await t.run(
      `UPDATE devices SET reported_revision = ?, reported_status = ?, reported_json = ?, reported_at = ? WHERE id = ?
        AND (reported_at IS NULL OR reported_at <= ?)`,
      [r.appliedRevision, r.status, JSON.stringify(r), r.at, m.deviceId, r.at],
    );
    if (res.changes) out.applied++;
    else out.duplicates++;
  }

  /** Inventory changes (a device moved practice) apply at start. */
  async place(id: string, p: Placement): Promise<void> {
    await this.d.run('UPDATE devices SET practice = ?, practice_name = ?, pcn = ?, clinical_system = ? WHERE id = ?', [
      p.practice,
      p.practiceName,
      p.pcn,
      p.clinicalSystem,
      id,
    ]);
  }

  async get(id: string): Promise<DeviceRow | undefined> {
    return this.d.get<DeviceRow>('SELECT * FROM devices WHERE id = ?', [id]);
  }

  async getMany(ids: string[]): Promise<Map<string, DeviceRow>> {
    const out = new Map<string, DeviceRow>();
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      for (const r of await this.d.all<DeviceRow>(`SELECT * FROM devices WHERE id IN (${chunk.map(() => '?').join(', ')})`, chunk)) out.set(r.id, r);
    }
    return out;
  }

  private where(f: DeviceFilter): { sql: string; params: Param[] } {
    const w: string[] = [];
    const params: Param[] = [];
    if (f.practice) (w.push('practice = ?'), params.push(f.practice));
    if (f.pcn) (w.push('pcn = ?'), params.push(f.pcn));
    if (f.q) {
      w.push("(LOWER(id) LIKE ? OR LOWER(practice) LIKE ? OR LOWER(COALESCE(practice_name, '')) LIKE ?)");
      const q = `%${f.q.toLowerCase().replace(/[%_]/g, '')}%`;
      params.push(q, q, q);
    }
    if (f.state === 'online') w.push('online = 1');
    if (f.state === 'offline') w.push('online = 0');
    if (f.state === 'cellular') w.push("online = 1 AND active_kind = 'cellular'");
    if (f.state === 'survivable') w.push("online = 1 AND telephony_mode = 'survivable'");
    if (f.state === 'stale') w.push('records_stale = 1');
    if (f.state === 'alerting') w.push('id IN (SELECT device_id FROM alerts WHERE cleared_at IS NULL)');
    return { sql: w.length ? `WHERE ${w.join(' AND ')}` : '', params };
  }

  async list(f: DeviceFilter): Promise<DeviceRow[]> {
    const { sql, params } = this.where(f);
    const dir = f.dir === 'desc' ? ' DESC' : '';
    const order = ORDER[f.sort ?? 'state'].map((c) => c + dir).join(', ');
    return this.d.all<DeviceRow>(`SELECT * FROM devices ${sql} ORDER BY ${order} LIMIT ? OFFSET ?`, [...params, f.limit ?? 100, f.offset ?? 0]);
  }

  async count(f: DeviceFilter): Promise<number> {
    const { sql, params } = this.where(f);
    return (await this.d.get<{ n: number }>(`SELECT COUNT(*) AS n FROM devices ${sql}`, params))?.n ?? 0;
  }

  /** Counts by state for the list page's headline, in one query. */
  async summary(f: Pick<DeviceFilter, 'practice'> = {}): Promise<Record<string, number>> {
    const { sql, params } = this.where(f);
    const r = await this.d.get<Record<string, number | null>>(
      `SELECT COUNT(*) AS total, SUM(online) AS online, SUM(CASE WHEN online = 1 AND active_kind = 'cellular' THEN 1 ELSE 0 END) AS cellular,
         SUM(CASE WHEN online = 1 AND telephony_mode = 'survivable' THEN 1 ELSE 0 END) AS survivable,
         SUM(CASE WHEN records_stale = 1 THEN 1 ELSE 0 END) AS stale
       FROM devices ${sql}`,
      params,
    );
    const total = Number(r?.total ?? 0);
    const online = Number(r?.online ?? 0);
    return { total, online, offline: total - online, cellular: Number(r?.cellular ?? 0), survivable: Number(r?.survivable ?? 0), stale: Number(r?.stale ?? 0) };
  }

  async all(): Promise<DeviceRow[]> {
    return this.d.all<DeviceRow>('SELECT * FROM devices ORDER BY id');
  }

  async samples(id: string, from: number, to: number): Promise<SampleRow[]> {
    return this.d.all<SampleRow>('SELECT * FROM samples WHERE device_id = ? AND at >= ? AND at < ? ORDER BY at', [id, from, to]);
  }

  async events(id: string | null, from: number, to: number, names: string[] = [], limit = 1000): Promise<EventRow[]> {
    const p: Param[] = [from, to];
    let w = 'at >= ? AND at < ?';
    if (id) ((w += ' AND device_id = ?'), p.push(id));
    if (names.length) ((w += ` AND name IN (${names.map(() => '?').join(',')})`), p.push(...names));
    return this.d.all<EventRow>(`SELECT * FROM events WHERE ${w} ORDER BY at DESC LIMIT ?`, [...p, limit]);
  }

  async stateLog(id: string | null, from: number, to: number): Promise<{ device_id: string; at: number; online: number }[]> {
    const p: Param[] = [from, to];
    let w = 'at >= ? AND at < ?';
    if (id) ((w += ' AND device_id = ?'), p.push(id));
    return this.d.all(`SELECT device_id, at, online FROM state_log WHERE ${w} ORDER BY device_id, at`, p);
  }

  async prune(before: number): Promise<void> {
    await this.d.run('DELETE FROM samples WHERE at < ?', [before]);
    await this.d.run('DELETE FROM events WHERE at < ?', [before]);
    await this.d.run('DELETE FROM state_log WHERE at < ?', [before]);
  }

  async addCounters(c: Record<string, number>): Promise<void> {
    const entries = Object.entries(c).filter(([, v]) => v);
    if (!entries.length) return;
    await this.d.tx(async (t) => {
      for (const [name, v] of entries)
        await t.run('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value', [name, v]);
    });
  }

  async counters(): Promise<Record<string, number>> {
    const rows = await this.d.all<{ name: string; value: number }>('SELECT name, value FROM counters ORDER BY name');
    return Object.fromEntries(rows.map((r) => [r.name, Number(r.value)]));
  }
}
