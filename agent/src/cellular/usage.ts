import { readFileSync } from 'node:fs';
import type { EventBus } from '../core/bus.js';
import type { Clock } from '../../../common/clock.js';
import { migrate, type Db } from '../core/db.js';
import './events.js';

export const THRESHOLDS = [75, 95, 100] as const;
export type ThresholdPct = (typeof THRESHOLDS)[number];

export interface UsageSnapshot {
  usedBytes: number;
  allowanceBytes: number;
  usedPct: number;
  cycleStart: number;
}

/**
 * Start of the billing cycle containing `now`: 00:00 UTC on `billingDay` (1-28, so every month has
 * it). UTC rather than local time: the hour of BST drift is noise next to a carrier's own
 * accounting lag, and it keeps the cycle independent of the appliance's timezone setting.
 */
export function cycleStartFor(now: number, billingDay: number): number {
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  return d.getUTCDate() >= billingDay ? Date.UTC(y, m, billingDay) : Date.UTC(y, m - 1, billingDay);
}

interface CycleRow {
  cycle_start: number;
  used_bytes: number;
  fired: number;
}
interface CounterRow {
  iface: string;
  rx: number;
  tx: number;
}

/**
 * Bytes through the cellular interface per billing cycle, from the kernel's interface counters.
 * The counters restart at 0 when the host reboots or the modem re-creates wwan0; a reading below
 * the last one is treated as "counted from zero since then", so a reset loses at most the bytes
 * between the last sample and the reset, and never double-counts. The last reading is persisted,
 * so an agent restart (without a reboot) loses nothing.
 */
export class UsageMeter {
  constructor(
    private readonly db: Db,
    private readonly hostPath: (p: string) => string,
    private readonly clock: Clock,
    private readonly bus: EventBus,
    private readonly opts: { allowanceBytes: number; billingDay: number },
  ) {}

  init(): void {
    migrate(this.db, 'cellular', [
      {
        version: 1,
        up: `CREATE TABLE cellular_usage (cycle_start INTEGER PRIMARY KEY, used_bytes INTEGER NOT NULL DEFAULT 0,
               fired INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL);
             CREATE TABLE cellular_counter (id INTEGER PRIMARY KEY CHECK (id = 1), iface TEXT NOT NULL,
               rx INTEGER NOT NULL, tx INTEGER NOT NULL, read_at INTEGER NOT NULL);`,
      },
    ]);
  }

  /** Reads the counters; returns false when the interface is not there (modem down / absent). */
  sample(iface: string): boolean {
    const reading = this.read(iface);
    if (!reading) return false;
    const now = this.clock.now();
    const last = this.db.prepare('SELECT iface, rx, tx FROM cellular_counter WHERE id = 1').get() as CounterRow | undefined;
    let delta = 0;
    if (last && last.iface === iface) {
      // A counter below its last value was reset: everything it shows now is new traffic.
      delta += reading.rx >= last.rx ? reading.rx - last.rx : reading.rx;
      delta += reading.tx >= last.tx ? reading.tx - last.tx : reading.tx;
    }
    // First reading ever, or a different interface: take it as the baseline (never bill the past).
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO cellular_counter (id, iface, rx, tx, read_at) VALUES (1, ?, ?, ?, ?)
                  ON CONFLICT(id) DO UPDATE SET iface = excluded.iface, rx = excluded.rx, tx = excluded.tx, read_at = excluded.read_at`,
        )
        .run(iface, reading.rx, reading.tx, now);
      const row = this.cycle();
      this.db.prepare('UPDATE cellular_usage SET used_bytes = used_bytes + ?, updated_at = ? WHERE cycle_start = ?').run(delta, now, row.cycle_start);
    })();
    this.checkThresholds();
    return true;
  }

  snapshot(): UsageSnapshot {
    const row = this.cycle();
    const allowanceBytes = this.opts.allowanceBytes;
    return {
      usedBytes: row.used_bytes,
      allowanceBytes,
      usedPct: allowanceBytes > 0 ? Math.round((row.used_bytes / allowanceBytes) * 1000) / 10 : 0,
      cycleStart: row.cycle_start,
    };
  }

  /** The current cycle's row, created (at zero) when a new cycle begins. */
  private cycle(): CycleRow {
    const start = cycleStartFor(this.clock.now(), this.opts.billingDay);
    this.db.prepare('INSERT OR IGNORE INTO cellular_usage (cycle_start, used_bytes, fired, updated_at) VALUES (?, 0, 0, ?)').run(start, this.clock.now());
    return this.db.prepare('SELECT cycle_start, used_bytes, fired FROM cellular_usage WHERE cycle_start = ?').get(start) as CycleRow;
  }

  /** Each threshold fires once per cycle; the fired set is persisted so restarts do not repeat it. */
  private checkThresholds(): void {
    const { allowanceBytes } = this.opts;
    if (allowanceBytes <= 0) return;
    const row = this.cycle();
    let fired = row.fired;
    THRESHOLDS.forEach((pct, bit) => {
      if (fired & (1 << bit)) return;
      if (row.used_bytes * 100 < pct * allowanceBytes) return;
      fired |= 1 << bit;
      this.db.prepare('UPDATE cellular_usage SET fired = ? WHERE cycle_start = ?').run(fired, row.cycle_start);
      this.bus.emit('cellular.usage-threshold', { pct, usedBytes: row.used_bytes, allowanceBytes, at: this.clock.now() });
    });
  }

  private read(iface: string): { rx: number; tx: number } | null {
    const dir = this.hostPath(`/sys/class/net/${iface}/statistics`);
    try {
      const rx = Number(readFileSync(`${dir}/rx_bytes`, 'utf8').trim());
      const tx = Number(readFileSync(`${dir}/tx_bytes`, 'utf8').trim());
      return Number.isSafeInteger(rx) && Number.isSafeInteger(tx) && rx >= 0 && tx >= 0 ? { rx, tx } : null;
    } catch {
      return null;
    }
  }
}
