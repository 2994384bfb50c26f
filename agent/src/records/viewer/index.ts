import type { Ctx } from '../../core/capability.js';
import type { TimerHandle } from '../../../../common/clock.js';
import { describeError } from '../../../../common/errors.js';
import { AuditLog } from '../audit.js';
import { CaptureQueue } from '../capture.js';
import { CaptureForwarder } from '../forwarder.js';
import type { RecordsStore } from '../store.js';
import { viewerPlugin, type RecordsServices } from './routes.js';
import { cachedClockTrust } from '../../platform/clock-sync.js';

/**
 * The records "front desk": the viewer's web routes, the audit trail and offline capture with its
 * forwarder, bound to whichever records store is open. The records capability (C1) owns the store
 * and its unlock; it creates one of these in start() and passes a getter, because the store may be
 * locked at boot and opened later (operator passphrase), or re-opened after a re-key.
 *
 *   this.frontDesk = new RecordsFrontDesk(() => this.store); this.frontDesk.start(ctx);
 */
export class RecordsFrontDesk {
  private bound: (RecordsServices & { forwarder: CaptureForwarder }) | null = null;
  private timer: TimerHandle | undefined;
  private offBus: (() => void) | undefined;
  private ctx!: Ctx;

  constructor(private readonly getStore: () => RecordsStore | null) {}

  start(ctx: Ctx): void {
    this.ctx = ctx;
    const cfg = ctx.config.records;
    ctx.web.register(
      'records',
      viewerPlugin({
        services: () => this.services(),
        clock: ctx.clock,
        staleAfterMs: cfg.staleAfterMs,
        timeZone: cfg.timeZone,
        clockTrust: cachedClockTrust({ hostPath: ctx.platform.hostPath, now: () => ctx.clock.now() }),
        captured: () => this.bound?.forwarder.kick(),
      }),
    );
    // Final answers from upstream change a capture too: audit them as the agent's own action.
    this.offBus = ctx.bus.on('records.capture-state', (e) => {
      if (e.state !== 'accepted' && e.state !== 'rejected') return;
      const s = this.bound;
      if (!s) return;
      try {
        s.audit.append({
          user: 'agent',
          role: 'system',
          patientId: s.captures.get(e.id)?.patientId ?? null,
          action: 'capture.state',
          device: `appliance ${ctx.config.site.deviceId}`,
          detail: `${e.id} ${e.state}`,
        });
      } catch (err) {
        ctx.log.error('audit append failed for a capture state change', describeError(err));
      }
    });
    this.services();
    // Picks up a store unlocked after start so captures are forwarded even if nobody opens a page.
    this.timer = ctx.clock.setInterval(() => this.services(), 5_000);
  }

  async stop(): Promise<void> {
    this.ctx?.clock.clearInterval(this.timer);
    this.offBus?.();
    await this.bound?.forwarder.stop();
    this.bound = null;
  }

  /** Offline captures not yet accepted or rejected (health: pendingCaptures). */
  pendingCaptures(): number {
    try {
      const c = this.services()?.captures.counts();
      return c ? c.pending + c.sent : 0;
    } catch {
      return 0;
    }
  }

  /** The services of the open store, (re)binding when the store changed; null while locked. */
  services(): RecordsServices | null {
    const store = this.getStore();
    if (!store || !store.db.open) {
      // Locked: let go of the closed store, so the pages the viewer kept for it (patient data in
      // memory, keyed by the store) go with it.
      if (this.bound) void this.bound.forwarder.stop();
      this.bound = null;
      return null;
    }
    if (this.bound?.store === store) return this.bound;
    void this.bound?.forwarder.stop();
    try {
      const now = () => this.ctx.clock.now();
      const audit = AuditLog.open(store.db, now);
      const captures = CaptureQueue.open(store.db, now);
      const c = this.ctx.config.records.capture;
      const forwarder = new CaptureForwarder(captures, {
        upstreamUrl: c.upstreamUrl,
        authToken: c.authToken,
        timeoutMs: c.timeoutMs,
        retryInitialMs: c.retryInitialMs,
        retryMaxMs: c.retryMaxMs,
        site: { deviceId: this.ctx.config.site.deviceId, odsCode: this.ctx.config.site.odsCode },
        clock: this.ctx.clock,
        log: this.ctx.log.child('capture'),
        bus: this.ctx.bus,
      });
      this.bound = { store, audit, captures, forwarder };
      forwarder.start();
      return this.bound;
    } catch (e) {
      this.ctx.log.error('records viewer could not bind to the store', describeError(e));
      this.bound = null;
      return null;
    }
  }
}
