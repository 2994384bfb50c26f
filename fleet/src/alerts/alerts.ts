import { readFileSync } from 'node:fs';
import type { TimerHandle } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import type { Component, ComponentHealth, FleetCtx } from '../ctx.js';
import type { AlertRow } from '../store/ops-store.js';
import { firing } from './rules.js';
import { sendMail } from './smtp.js';

/**
 * Runs the rules over every device's last-known state. The store keeps one open row per
 * (device, kind, level), so an alert that stays true is delivered once; it clears when the
 * condition does, and a later recurrence is a new alert. Several fleet instances may evaluate:
 * the unique open index makes only one of them win the insert and deliver.
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
    return { status: this.failures ? 'degraded' : 'ok', summary: `${this.delivered} delivered, ${this.failures} delivery failures`, details: { delivered: this.delivered, failures: this.failures, lastRunMs: this.lastRunMs } };
  }

  evaluate(): Promise<void> {
    if (this.running) return this.running;
    this.running = this.run()
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
    for (const d of await this.ctx.store.devices.all()) {
      if (replaced.has(d.id)) continue;
      for (const f of firing(d, now, this.ctx.config.alerts)) {
        const key = `${d.id}\u0000${f.kind}\u0000${f.level}`;
        still.add(key);
        if (openKey.has(key)) continue;
        const a = await this.ctx.store.ops.openAlert({ device_id: d.id, kind: f.kind, level: f.level, summary: f.summary, at: now });
        if (a) await this.deliver(a);
      }
    }
    for (const [key, a] of openKey) if (!still.has(key)) await this.ctx.store.ops.clearAlert(a.id, now);
    this.lastRunMs = Math.round(performance.now() - t0);
  }

  private async deliver(a: AlertRow): Promise<void> {
    const cfg = this.ctx.config.alerts;
    const done: string[] = [];
    const body = { id: a.id, device: a.device_id, kind: a.kind, level: a.level || null, summary: a.summary, openedAt: new Date(a.opened_at).toISOString(), icb: this.ctx.config.icb };
    if (cfg.webhookUrl) {
      try {
        const r = await fetch(cfg.webhookUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
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
        await sendMail({ host: s.host, port: s.port, from: s.from, to: s.to, security: s.security, caPath: s.caPath, auth: s.auth, ...(s.username ? { username: s.username, password } : {}), subject: `[surgery-edge] ${a.summary}`, text: `${a.summary}\n\nDevice: ${a.device_id}\nAlert: ${a.kind}${a.level ? ` ${a.level}%` : ''}\nOpened: ${body.openedAt}\n` });
        done.push('email');
      } catch (e) {
        this.failures++;
        done.push('email failed');
        this.ctx.log.warn('alert email failed', { alert: a.id, ...describeError(e) });
      }
    }
    if (done.some((x) => !x.endsWith('failed'))) this.delivered++;
    await this.ctx.store.ops.markDelivered(a.id, done.join(', ') || 'none configured');
  }
}
