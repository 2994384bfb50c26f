import { readFileSync } from 'node:fs';
import type { TimerHandle } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import type { Component, ComponentHealth, FleetCtx } from '../ctx.js';
import type { AlertRow, MaintenanceRow } from '../store/ops-store.js';
import type { DeviceRow } from '../store/types.js';
import { firing, type Firing } from './rules.js';
import { sendMail } from './smtp.js';

/**
 * Runs the rules over every device's last-known state. The store keeps one open row per
 * (device, kind, level), so an alert that stays true is delivered once; it clears when the
 * condition does, and a later recurrence is a new alert. Several fleet instances sharing a database
 * take turns: each tick runs under a database-wide lock, so one evaluates and the others skip; the
 * unique open index would still make only one win the insert and deliver.
 *
 * Of the data-cap levels only the highest reached stays open (a box at 97 % has the 95 % alert, not
 * 75 % as well). A device in a maintenance window opens no new alert (one already open stays open
 * while its condition holds); a condition still true when the window ends alerts then.
 *
 * A snoozed alert that is still open (not cleared, not acknowledged) when its snooze ends is sent
 * once more, saying who snoozed it until when, so a snooze cannot quietly become "forgotten"; it is
 * audited and shown on the alerts page. Snoozed again, it can come back once more at the new end.
 */
export class Alerts implements Component {
  readonly name = 'alerts';
  private ctx!: FleetCtx;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  delivered = 0;
  failures = 0;
  lastRunMs = 0;

  /** `replaced`: devices replaced by another box (broker/replacements.ts): revoked, so not alerted on. */
  constructor(private readonly replaced: () => Promise<Set<string>> = async () => new Set()) {}

  async start(ctx: FleetCtx): Promise<void> {
    this.ctx = ctx;
    this.timer = ctx.clock.setInterval(() => void this.evaluate(), ctx.config.alerts.evaluateMs);
  }
  async stop(): Promise<void> {
    this.ctx.clock.clearInterval(this.timer);
    await this.running;
  }
  health(): ComponentHealth {
    return {
      status: this.failures ? 'degraded' : 'ok',
      summary: `${this.delivered} delivered, ${this.failures} delivery failures`,
      details: { delivered: this.delivered, failures: this.failures, lastRunMs: this.lastRunMs },
    };
  }

  evaluate(): Promise<void> {
    if (this.running) return this.running;
    // One instance evaluates per tick (a database-wide lock; the unique open index is the backstop).
    this.running = this.ctx.store.driver
      .exclusive('alerts', () => this.run())
      .then(() => undefined)
      .catch((e: unknown) => this.ctx.log.error('alert evaluation failed', describeError(e)))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<void> {
    const t0 = performance.now();
    const now = this.ctx.clock.now();
    const open = await this.ctx.store.ops.openAlerts();
    const openKey = new Map(open.map((a) => [`${a.device_id}\u0000${a.kind}\u0000${a.level}`, a]));
    const still = new Set<string>();
    const replaced = await this.replaced();
    const windows = (await this.ctx.store.ops.currentMaintenance(now)).filter((w) => w.starts_at <= now);
    const devices = new Map<string, DeviceRow>();
    for (const d of await this.ctx.store.devices.all()) {
      if (replaced.has(d.id)) continue;
      devices.set(d.id, d);
      const quiet = windows.some((w) => covers(w, d));
      for (const f of highestCapOnly(firing(d, now, this.ctx.config.alerts))) {
        const key = `${d.id}\u0000${f.kind}\u0000${f.level}`;
        still.add(key);
        if (openKey.has(key) || quiet) continue;
        const a = await this.ctx.store.ops.openAlert({ device_id: d.id, kind: f.kind, level: f.level, summary: f.summary, at: now });
        if (a) await this.deliver(a, d);
      }
    }
    for (const [key, a] of openKey) if (!still.has(key)) await this.ctx.store.ops.clearAlert(a.id, now);
    // After the clears: an alert whose condition ended with its snooze is history, not news.
    for (const a of await this.ctx.store.ops.snoozesEnded(now)) {
      const d = devices.get(a.device_id);
      // A device in a maintenance window waits for its end (not claimed: it is sent then).
      if (!d || windows.some((w) => covers(w, d))) continue;
      if (await this.ctx.store.ops.claimRenotify(a.id, a.snoozed_until!, now)) await this.renotify(a, d, now);
    }
    this.lastRunMs = Math.round(performance.now() - t0);
  }

  private async renotify(a: AlertRow, d: DeviceRow, now: number): Promise<void> {
    const snooze = { until: a.snoozed_until!, by: a.snoozed_by ?? 'someone' };
    const done = await this.send(a, d, snooze);
    await this.ctx.store.ops.markRenotified(a.id, done);
    await this.ctx.store.accounts.audit({
      at: now,
      username: 'fleet',
      device_id: a.device_id,
      action: 'alert-renotified',
      args: JSON.stringify({ alert: a.id, snoozedUntil: snooze.until, snoozedBy: snooze.by }),
      outcome: done.split(', ').every((x) => x.endsWith('failed')) && done !== 'none configured' ? 'failed' : 'ok',
      detail: `${a.summary}: still open after the snooze until ${hhmm(snooze.until)} by ${snooze.by}; sent: ${done}`.slice(0, 1000),
    });
    this.ctx.log.info('snoozed alert still open: notified again', { alert: a.id, device: a.device_id, sent: done });
  }

  private async deliver(a: AlertRow, d: DeviceRow): Promise<void> {
    await this.ctx.store.ops.markDelivered(a.id, await this.send(a, d));
  }

  /** Webhook and mail for an alert (`snooze`: the "still open after its snooze" notice); where it went, as text. */
  private async send(a: AlertRow, d: DeviceRow, snooze?: { until: number; by: string }): Promise<string> {
    const cfg = this.ctx.config.alerts;
    const done: string[] = [];
    const practice = practiceLabel(d);
    const still = snooze ? `still open: it was snoozed until ${hhmm(snooze.until)} by ${snooze.by}` : '';
    const body = {
      id: a.id,
      device: a.device_id,
      practice: d.practice,
      practiceName: d.practice_name,
      kind: a.kind,
      level: a.level || null,
      summary: a.summary,
      openedAt: new Date(a.opened_at).toISOString(),
      icb: this.ctx.config.icb,
      // Only on the notice sent when a snooze ends with the alert still open (additive).
      ...(snooze ? { stillOpenAfterSnooze: { snoozedUntil: new Date(snooze.until).toISOString(), snoozedBy: snooze.by } } : {}),
    };
    if (cfg.webhookUrl) {
      try {
        const r = await fetch(cfg.webhookUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        done.push('webhook');
      } catch (e) {
        this.failures++;
        done.push('webhook failed');
        this.ctx.log.warn('alert webhook failed', { alert: a.id, ...describeError(e) });
      }
    }
    if (cfg.smtp.host && cfg.smtp.to.length) {
      try {
        const s = cfg.smtp;
        const password = s.passwordFile ? readFileSync(s.passwordFile, 'utf8').trim() : undefined;
        await sendMail({
          host: s.host,
          port: s.port,
          from: s.from,
          to: s.to,
          security: s.security,
          caPath: s.caPath,
          auth: s.auth,
          ...(s.username ? { username: s.username, password } : {}),
          subject: `[surgery-edge] ${practice}: ${snooze ? 'STILL OPEN after snooze: ' : ''}${a.summary}`,
          text:
            `${practice}: ${a.summary}\n${still ? `\nThis alert is ${still}.\n` : ''}\nPractice: ${practice}\nDevice: ${a.device_id}\n` +
            `Alert: ${a.kind}${a.level ? ` ${a.level}%` : ''}\nOpened: ${body.openedAt}\n` +
            (snooze ? `Snoozed until: ${new Date(snooze.until).toISOString()} (${hhmm(snooze.until)} UK time) by ${snooze.by}\n` : ''),
        });
        done.push('email');
      } catch (e) {
        this.failures++;
        done.push('email failed');
        this.ctx.log.warn('alert email failed', { alert: a.id, ...describeError(e) });
      }
    }
    if (done.some((x) => !x.endsWith('failed'))) this.delivered++;
    return done.join(', ') || 'none configured';
  }
}

const HHMM = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
/** "14:30", UK wall-clock time (what the person who snoozed it saw on the page). */
export const hhmm = (t: number): string => HHMM.format(t);

/** "Canal Side (Y00002)", or the ODS code alone when the inventory has no name. */
export function practiceLabel(d: Pick<DeviceRow, 'practice' | 'practice_name'>): string {
  return d.practice_name ? `${d.practice_name} (${d.practice})` : d.practice;
}

/** Keeps only the highest data-cap level that fires (levels are percentages). */
export function highestCapOnly(fs: Firing[]): Firing[] {
  const caps = fs.filter((f) => f.kind === 'data-cap');
  if (caps.length < 2) return fs;
  const top = caps.reduce((a, b) => (Number(b.level) > Number(a.level) ? b : a));
  return fs.filter((f) => f.kind !== 'data-cap' || f === top);
}

export function covers(w: Pick<MaintenanceRow, 'scope' | 'scope_id'>, d: Pick<DeviceRow, 'id' | 'practice'>): boolean {
  return w.scope === 'icb' || (w.scope === 'practice' && w.scope_id === d.practice) || (w.scope === 'device' && w.scope_id === d.id);
}
