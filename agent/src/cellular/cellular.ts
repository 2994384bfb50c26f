import type { Capability, Ctx, DrillStep, Health } from '../core/capability.js';
import type { CellularReport } from '../../../contract/reports/index.js';
import type { TimerHandle } from '../../../common/clock.js';
import { describeError, isAppError } from '../../../common/errors.js';
import { Backoff } from '../../../common/retry.js';
import { ModemManager, type BearerInfo, type ModemInfo, type SignalInfo } from '../platform/modem-manager.js';
import type { ModemStatus } from './events.js';
import { PolicyKeeper } from './policy-keeper.js';
import type { Resolver } from './policy.js';
import { UsageMeter, type UsageSnapshot } from './usage.js';
import { formatBytes, summaryLines } from './lines.js';
import './events.js';
import { PollLoop } from '../core/poll-loop.js';

/** ModemManager's states folded into the six the status page and telemetry speak (contracts.md). */
export function foldState(m: ModemInfo): ModemStatus {
  switch (m.state) {
    case 'failed':
    case 'locked':
      return 'failed';
    case 'connected':
      return 'connected';
    case 'registered':
    case 'connecting':
    case 'disconnecting':
      return 'registered';
    case 'enabled':
    case 'searching':
      return 'searching';
    default:
      return 'disabled';
  }
}

export type { CellularView } from './view.js';
import type { CellularView } from './view.js';

/**
 * The 4G modem as a warm standby: kept registered with its bearer connected whether or not traffic
 * uses it, so failover only has to move routes. "Connected" means a bearer that ModemManager says is
 * up *with* an interface and an address; a modem that reports `connected` without that (a known
 * failure of some firmware after a network detach) is treated as registered and reconnected.
 */
export class CellularCapability implements Capability<CellularReport> {
  readonly name = 'cellular';
  private ctx!: Ctx;
  private mm!: ModemManager;
  private usage: UsageMeter | null = null;
  private policy!: PolicyKeeper;
  private backoff!: Backoff;
  private loop!: PollLoop;
  private policyTimer: TimerHandle | undefined;
  private nextAttemptAt = 0;
  private signalSetupFor: string | null = null;
  private lastReason = '';
  private since = 0;
  private view: CellularView = { modem: 'absent', reason: 'not polled yet', operator: null, accessTech: null, bearer: null, signal: null, quality: null };

  constructor(private readonly opts: { resolve?: Resolver } = {}) {}

  async start(ctx: Ctx): Promise<void> {
    this.ctx = ctx;
    const cfg = ctx.config.cellular;
    this.since = ctx.clock.now();
    this.loop = new PollLoop(
      ctx.clock,
      () => this.poll(),
      (e) => ctx.log.error('cellular poll failed', describeError(e)),
      () => ctx.config.cellular.pollIntervalMs,
    );
    if (!cfg.enabled) return;
    this.mm = new ModemManager(ctx.platform.commands);
    this.policy = new PolicyKeeper(ctx, () => this.iface, this.opts.resolve);
    this.backoff = new Backoff({ initialMs: cfg.reconnect.initialMs, maxMs: cfg.reconnect.maxMs });
    this.usage = new UsageMeter(ctx.db, ctx.platform.hostPath, ctx.clock, ctx.bus, { allowanceBytes: cfg.allowanceMb * 1_000_000, billingDay: cfg.billingDay });
    this.usage.init();
    // The first poll runs in the background: a modem that takes 60 s to connect must not hold up
    // the agent's start (failover and the status page come after us).
    this.loop.start(0);
    if (cfg.policy.enabled) {
      // Applied from the poll loop so two applies never race; this only asks for fresh DNS.
      this.policyTimer = ctx.clock.setInterval(() => (this.resolveDue = true), cfg.policy.resolveIntervalMs);
    }
  }

  async stop(): Promise<void> {
    this.ctx?.clock.clearInterval(this.policyTimer);
    await this.loop?.stop();
    // The policy table stays installed on purpose: with the agent down, critical traffic must still
    // pass and non-critical traffic must still be held back on a metered SIM.
  }

  /** The interface whose traffic is policed and metered: the configured uplink's, else the bearer's. */
  get iface(): string {
    const cfg = this.ctx.config.cellular;
    return this.ctx.config.uplinks.find((u) => u.name === cfg.uplink)?.interface ?? cfg.interface ?? this.view.bearer?.interface ?? 'wwan0';
  }

  get state(): Readonly<CellularView> {
    return this.view;
  }

  /** Poll now (tests, and a manual "check the modem" from the status page). */
  pollNow(): Promise<void> {
    return this.loop.now();
  }

  /** One observation + at most one corrective action; returns the delay to the next poll. */
  private async poll(): Promise<number> {
    const cfg = this.ctx.config.cellular;
    const now = () => this.ctx.clock.monotonic();
    let next = cfg.pollIntervalMs;
    // Policy first: a connect attempt can take a minute and the table must not wait for it.
    if (cfg.policy.enabled) {
      await this.policy.keep(this.resolveDue);
      this.resolveDue = false;
    }
    const observed = await this.observe();
    if (observed.modem !== undefined && this.loop.running) {
      const id = observed.modem.index;
      if (this.view.modem === 'disabled' && now() >= this.nextAttemptAt) {
        next = await this.attempt('enable', () => this.mm.enable(id));
      } else if (this.view.modem === 'registered' && now() >= this.nextAttemptAt) {
        next = await this.attempt('connect', () => this.mm.simpleConnect(id, cfg.apn));
      } else if (this.view.modem === 'connected') {
        this.backoff.reset();
        this.nextAttemptAt = 0;
      }
      if (this.view.modem === 'registered' || this.view.modem === 'disabled') {
        next = Math.min(next, Math.max(1, this.nextAttemptAt - now()));
      }
    }
    try {
      this.usage?.sample(this.iface);
    } catch (e) {
      this.ctx.log.error('cellular usage sample failed', describeError(e));
    }
    return next;
  }

  private async attempt(what: 'enable' | 'connect', fn: () => Promise<void>): Promise<number> {
    try {
      this.ctx.log.info(`cellular: ${what} modem`, { attempt: this.backoff.attempts + 1 });
      await fn();
      // Re-read soon: ModemManager reports the bearer a moment after the call returns.
      this.nextAttemptAt = this.ctx.clock.monotonic() + this.backoff.next();
      return 1_000;
    } catch (e) {
      const delay = this.backoff.next();
      this.nextAttemptAt = this.ctx.clock.monotonic() + delay;
      this.ctx.log.warn(`cellular: ${what} failed; retrying`, { ...describeError(e), retryInMs: delay });
      return delay;
    }
  }

  private async observe(): Promise<{ modem?: ModemInfo }> {
    const cfg = this.ctx.config.cellular;
    let modem: ModemInfo;
    try {
      let id = cfg.modem;
      if (id === 'any') {
        const list = await this.mm.list();
        if (!list[0]) return this.update({ modem: 'absent', reason: 'ModemManager lists no modem' });
        id = list[0].split('/').pop() ?? '0';
      }
      modem = await this.mm.modem(id);
    } catch (e) {
      if (isAppError(e, 'NOT_FOUND')) return this.update({ modem: 'absent', reason: 'modem vanished' });
      const d = describeError(e);
      const reason = isAppError(e, 'UNAVAILABLE')
        ? 'ModemManager is not running'
        : isAppError(e, 'UPSTREAM_ERROR')
          ? 'mmcli output unreadable'
          : /not installed/.test(d.message)
            ? 'mmcli is not installed'
            : `mmcli failed: ${d.message}`;
      return this.update({ modem: 'failed', reason });
    }
    let modemState = foldState(modem);
    let reason = modem.failedReason ? `modem failed: ${modem.failedReason}` : `modem ${modem.state}`;
    let bearer: BearerInfo | null = null;
    for (const path of modem.bearers) {
      try {
        const b = await this.mm.bearer(path);
        if (!bearer || (b.connected && !bearer.connected)) bearer = b;
      } catch (e) {
        this.ctx.log.debug('cellular: bearer unreadable', { path, ...describeError(e) });
      }
    }
    const bearerUp = Boolean(bearer?.connected && bearer.interface && bearer.address);
    if (modemState === 'connected' && !bearerUp) {
      modemState = 'registered';
      reason = 'modem reports connected but no bearer carries data';
    }
    let signal: SignalInfo | null = null;
    if (modemState === 'registered' || modemState === 'connected') {
      signal = await this.readSignal(modem);
    }
    this.update({ modem: modemState, reason, operator: modem.operator, accessTech: modem.accessTech, bearer, signal, quality: modem.quality });
    return { modem };
  }

  private async readSignal(modem: ModemInfo): Promise<SignalInfo | null> {
    try {
      // Extended figures (RSRP/RSRQ/SINR) are only refreshed after --signal-setup, per modem object.
      if (this.signalSetupFor !== modem.path) {
        await this.mm.signalSetup(modem.index, Math.max(5, this.ctx.config.cellular.pollIntervalMs / 1000));
        this.signalSetupFor = modem.path;
      }
      return await this.mm.signal(modem.index);
    } catch (e) {
      this.ctx.log.debug('cellular: signal unavailable', describeError(e));
      return null;
    }
  }

  private update(next: Partial<CellularView> & { modem: ModemStatus; reason: string }): { modem?: ModemInfo } {
    const prev = this.view;
    this.view = { operator: null, accessTech: null, bearer: null, signal: null, quality: null, ...next };
    if (next.modem === 'absent' || next.modem === 'failed') this.signalSetupFor = null;
    if (next.reason !== this.lastReason) {
      const level = next.modem === 'failed' ? 'error' : next.modem === 'connected' ? 'info' : 'warn';
      this.ctx.log[level](`cellular: ${next.reason}`, { modem: next.modem, operator: this.view.operator });
      this.lastReason = next.reason;
    }
    if (prev.modem !== this.view.modem || prev.operator !== this.view.operator) {
      this.since = this.ctx.clock.now();
      this.ctx.bus.emit('cellular.changed', { modem: this.view.modem, operator: this.view.operator, at: this.since });
    }
    return {};
  }

  private resolveDue = true;

  /**
   * Weekly drill: the standby must be genuinely ready (fresh poll, bearer with an address) and the
   * 4G policy installed. Whether it carries traffic end to end is failover's drill step.
   */
  drillSteps(): DrillStep[] {
    if (!this.ctx?.config.cellular.enabled) return [];
    return [
      {
        name: '4G modem on warm standby',
        run: async () => {
          await this.pollNow();
          const v = this.view;
          const figures: Record<string, number> = {};
          if (v.signal?.rsrp != null) figures.rsrpDbm = v.signal.rsrp;
          if (v.signal?.sinr != null) figures.sinrDb = v.signal.sinr;
          if (v.quality != null) figures.qualityPct = v.quality;
          figures.usedPct = this.usageSnapshot().usedPct;
          // Only a policy that could be installed is required (a cellular interface and privileges);
          // otherwise health() lines already say "NOT applied" and why.
          const policyOk = !this.policy.applicable || this.policy.state.applied;
          const passed = v.modem === 'connected' && policyOk;
          const detail =
            v.modem !== 'connected'
              ? `modem ${v.modem}: ${v.reason}`
              : !policyOk
                ? `4G policy not applied: ${this.policy.state.lastError ?? 'unknown'}`
                : `connected on ${v.operator ?? '?'} (${v.accessTech ?? '?'})`;
          return { passed, detail, figures };
        },
      },
    ];
  }

  usageSnapshot(): UsageSnapshot {
    return this.usage?.snapshot() ?? { usedBytes: 0, allowanceBytes: this.ctx.config.cellular.allowanceMb * 1_000_000, usedPct: 0, cycleStart: 0 };
  }

  health(): Health<CellularReport> {
    if (!this.ctx || !this.ctx.config.cellular.enabled) return { status: 'disabled', summary: '4G disabled in config' };
    const v = this.view;
    const usage = this.usageSnapshot();
    const details = {
      modem: v.modem,
      operator: v.operator,
      accessTech: v.accessTech,
      signal: { rsrp: v.signal?.rsrp ?? null, rsrq: v.signal?.rsrq ?? null, sinr: v.signal?.sinr ?? null, quality: v.quality },
      usage,
      reason: v.reason,
      interface: v.bearer?.interface ?? null,
      policy: { nonCritical: this.ctx.config.cellular.policy.nonCritical, ...this.policy.state },
      lines: summaryLines(v, usage, this.ctx.config.cellular.policy.nonCritical, this.policy.state),
    };
    const status = v.modem === 'connected' ? 'ok' : v.modem === 'failed' ? 'failed' : 'degraded';
    const summary =
      v.modem === 'connected' ? `4G standby ready on ${v.operator ?? 'unknown operator'} (${formatBytes(usage.usedBytes)} used)` : `4G not ready: ${v.reason}`;
    return { status, summary, details, since: this.since };
  }
}
