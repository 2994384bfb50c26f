import type { Capability, Ctx, Health } from '../core/capability.js';
import type { EnrolmentReport } from '../../../contract/reports/index.js';
import type { TimerHandle } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import { Claimer } from './claimer.js';
import { checkIdentityAsync, type IdentityCheck } from './identity.js';

const RECHECK_MS = 60_000;

/**
 * Whether this box holds a valid ICB device identity (docs/image.md, "Enrolment"). health().details:
 * { enrolled, required, reason, deviceId, subject, issuer, notAfter }. The status page shows
 * "Not enrolled" (and the LED steady blue) while `required` and not `enrolled`.
 *
 * With `enrolment.claimUrl` set, an unenrolled box also claims itself (claimer.ts): details gain
 * claimCode, claimUrl, claimState, claimExpiresAt, claimKeyFingerprint and claimError, and the
 * status page shows the code for the ICB engineer.
 */
export class EnrolmentCapability implements Capability<EnrolmentReport> {
  readonly name = 'enrolment';
  private ctx!: Ctx;
  private last: IdentityCheck | null = null;
  private timer: TimerHandle | undefined;
  private checking = false;
  private claimer: Claimer | undefined;
  private claimTimer: TimerHandle | undefined;
  private stopped = false;

  async start(ctx: Ctx): Promise<void> {
    this.ctx = ctx;
    await this.check();
    // Certificates expire and get replaced: look again every minute (a few file reads).
    this.timer = ctx.clock.setInterval(() => void this.check(), RECHECK_MS);
    if (ctx.config.enrolment.claimUrl && this.last && !this.last.enrolled) {
      this.claimer = new Claimer({
        config: ctx.config,
        hostPath: ctx.platform.hostPath,
        runner: ctx.platform.commands,
        clock: ctx.clock,
        log: ctx.log,
        apply: async (next) => {
          await ctx.control.reconfigure(next, 'remote');
        },
      });
      // Not inside start(): a claim that completes restarts every capability, this one included.
      this.claimTimer = ctx.clock.setTimeout(() => void this.claimLoop(), 0);
    }
  }

  private async claimLoop(): Promise<void> {
    if (this.stopped || !this.claimer) return;
    await this.claimer.step();
    if (this.stopped || this.claimer.phase === 'claimed') return;
    this.claimTimer = this.ctx.clock.setTimeout(() => void this.claimLoop(), this.ctx.config.enrolment.claimPollMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ctx?.clock.clearTimeout(this.claimTimer);
    this.ctx?.clock.clearInterval(this.timer);
    this.timer = undefined;
  }

  private async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const t = this.ctx.config.telemetry;
      const prev = this.last?.enrolled;
      const key = { runner: this.ctx.platform.commands, workDir: this.ctx.config.paths.runDir, tcti: this.ctx.config.enrolment.tpmTcti };
      this.last = await checkIdentityAsync(
        { deviceId: this.ctx.config.site.deviceId, certPath: t.certPath, keyPath: t.keyPath, caPath: t.caPath },
        this.ctx.platform.hostPath,
        this.ctx.clock.now(),
        key,
      );
      if (prev !== this.last.enrolled)
        this.ctx.log[this.last.enrolled ? 'info' : 'warn'](this.last.enrolled ? 'device identity valid' : 'not enrolled', {
          reason: this.last.reason,
          tpmSealed: this.last.tpmSealed ?? false,
        });
    } catch (e) {
      this.ctx.log.warn('enrolment check failed', describeError(e));
    } finally {
      this.checking = false;
    }
  }

  health(): Health<EnrolmentReport> {
    if (!this.ctx || !this.last) return { status: 'starting', summary: 'starting' };
    const required = this.ctx.config.enrolment.required;
    const l = this.last;
    const days = l.notAfter ? Math.floor((l.notAfter - this.ctx.clock.now()) / 86_400_000) : null;
    const lines = l.enrolled ? [`enrolled as ${l.deviceId}`, `certificate valid for ${days} more days`] : [`not enrolled: ${l.reason}`];
    return {
      status: l.enrolled ? (days !== null && days < 30 ? 'degraded' : 'ok') : required ? 'degraded' : 'ok',
      summary: l.enrolled
        ? `enrolled as ${l.deviceId}${days !== null && days < 30 ? ` (certificate expires in ${days} days)` : ''}`
        : `not enrolled: ${l.reason}`,
      details: {
        ...l,
        required,
        lines: l.tpmSealed && l.enrolled ? [...lines, "device key sealed to this box's TPM"] : lines,
        ...(this.claimer && !l.enrolled ? this.claimer.details() : {}),
      },
    };
  }
}
