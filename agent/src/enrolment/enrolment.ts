import type { Capability, Ctx, Health } from '../core/capability.js';
import type { TimerHandle } from '../core/clock.js';
import { checkIdentity, type IdentityCheck } from './identity.js';

const RECHECK_MS = 60_000;

/**
 * Whether this box holds a valid ICB device identity (docs/image.md, "Enrolment"). health().details:
 * { enrolled, required, reason, deviceId, subject, issuer, notAfter }. The status page shows
 * "Not enrolled" (and the LED steady blue) while `required` and not `enrolled`.
 */
export class EnrolmentCapability implements Capability {
  readonly name = 'enrolment';
  private ctx!: Ctx;
  private last: IdentityCheck | null = null;
  private timer: TimerHandle | undefined;

  async start(ctx: Ctx): Promise<void> {
    this.ctx = ctx;
    this.check();
    // Certificates expire and get replaced: look again every minute (a few file reads).
    this.timer = ctx.clock.setInterval(() => this.check(), RECHECK_MS);
  }

  async stop(): Promise<void> {
    this.ctx?.clock.clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    const t = this.ctx.config.telemetry;
    const prev = this.last?.enrolled;
    this.last = checkIdentity({ deviceId: this.ctx.config.site.deviceId, certPath: t.certPath, keyPath: t.keyPath, caPath: t.caPath }, this.ctx.platform.hostPath, this.ctx.clock.now());
    if (prev !== this.last.enrolled) this.ctx.log[this.last.enrolled ? 'info' : 'warn'](this.last.enrolled ? 'device identity valid' : 'not enrolled', { reason: this.last.reason });
  }

  health(): Health {
    if (!this.ctx || !this.last) return { status: 'starting', summary: 'starting' };
    const required = this.ctx.config.enrolment.required;
    const l = this.last;
    const days = l.notAfter ? Math.floor((l.notAfter - this.ctx.clock.now()) / 86_400_000) : null;
    const lines = l.enrolled ? [`enrolled as ${l.deviceId}`, `certificate valid for ${days} more days`] : [`not enrolled: ${l.reason}`];
    return {
      status: l.enrolled ? (days !== null && days < 30 ? 'degraded' : 'ok') : required ? 'degraded' : 'ok',
      summary: l.enrolled ? `enrolled as ${l.deviceId}${days !== null && days < 30 ? ` (certificate expires in ${days} days)` : ''}` : `not enrolled: ${l.reason}`,
      details: { ...l, required, lines },
    };
  }
}
