import type { StatusReport } from '../../../contract/reports/index.js';
import type { Capability, Ctx, Health } from '../core/capability.js';
import type { TimerHandle } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import { HostSystemInfo, type SystemInfo } from '../platform/system-info.js';
import type { SystemHealth } from '../../../contract/mqtt.js';
import { renderCards, renderNotes, renderState } from './cards.js';
import { createLedDriver, LedController } from './led.js';
import { statusRoutes, type StatusModel, type StatusSnapshot } from './routes.js';
import { deriveState, localTime } from './state.js';
import type { Outage } from '../../../contract/operations.js';

export interface StatusOptions {
  systemInfo?: SystemInfo;
}

/**
 * The status page and its cards, /api/status, /metrics and the live stream (SSE), registered on
 * the LAN web server (ctx.web; the agent builds the server after every capability has started,
 * agent/src/web/server.ts); keeps the page and the LED in step with health().
 */
export class StatusCapability implements Capability, StatusModel {
  readonly name = 'status';
  get maxStreams(): number {
    return this.ctx.config.status.maxLiveViewers;
  }
  get maxStreamsPerIp(): number {
    return this.ctx.config.status.maxLiveViewersPerIp;
  }
  private ctx!: Ctx;
  private leds: LedController | undefined;
  private box: SystemHealth | null = null;
  private boxReading = false;
  private readonly subscribers = new Set<(json: string) => void>();
  private timers: TimerHandle[] = [];
  private pushTimer: TimerHandle | undefined;
  private offBus: (() => void) | undefined;
  private started = 0;

  constructor(private readonly opts: StatusOptions = {}) {}

  async start(ctx: Ctx): Promise<void> {
    this.ctx = ctx;
    this.started = ctx.clock.now();
    const cfg = ctx.config.status;
    const sys = this.opts.systemInfo ?? new HostSystemInfo(ctx.platform.commands);
    this.leds = new LedController(createLedDriver(ctx), ctx);
    // Box figures are read in the background (file reads and statfs under /proc and /sys); requests never wait.
    const readBox = () => {
      if (this.boxReading) return;
      this.boxReading = true;
      sys.read().then(
        (b) => {
          this.box = b;
          this.boxReading = false;
        },
        (e: unknown) => {
          this.boxReading = false;
          ctx.log.debug('box health read failed', describeError(e));
        },
      );
    };
    readBox();
    this.timers.push(ctx.clock.setInterval(readBox, 15_000));
    this.timers.push(ctx.clock.setInterval(() => this.push(), cfg.refreshMs));
    // Any bus event may change the state line: push soon, coalescing bursts.
    this.offBus = ctx.bus.onAny(() => {
      if (this.pushTimer) return;
      this.pushTimer = ctx.clock.setTimeout(() => {
        this.pushTimer = undefined;
        this.push();
      }, 50);
    });
    if (!cfg.enabled) return;
    ctx.web.register('status', statusRoutes(ctx, this));
    this.push();
  }

  async stop(): Promise<void> {
    for (const t of this.timers) this.ctx.clock.clearInterval(t);
    this.timers = [];
    this.ctx.clock.clearTimeout(this.pushTimer);
    this.pushTimer = undefined;
    this.offBus?.();
    this.subscribers.clear();
    await this.leds?.show('unknown', false).catch(() => {});
    await this.leds?.close();
  }

  health(): Health<StatusReport> {
    if (!this.ctx) return { status: 'starting', summary: 'starting' };
    if (!this.ctx.config.status.enabled) return { status: 'disabled', summary: 'status page disabled in config' };
    const url = this.ctx.web.url;
    return url
      ? { status: 'ok', summary: `serving ${url}`, since: this.started, details: { url, liveViewers: this.subscribers.size, lines: [] } }
      : { status: 'starting', summary: 'web server not listening yet' };
  }

  snapshot(): StatusSnapshot {
    const health = this.ctx.capabilities.health();
    delete health.status;
    const at = this.ctx.clock.now();
    return { at, state: deriveState(health), health, box: this.box, ...this.todaysOutages(at) };
  }

  /** From the failover capability's switch history; since local midnight (the box's time zone). */
  private todaysOutages(at: number): { outages?: Outage[] } {
    const fo = this.ctx.capabilities.get('failover');
    if (typeof fo?.outages !== 'function') return {};
    const midnight = new Date(at);
    midnight.setHours(0, 0, 0, 0);
    try {
      return { outages: fo.outages(midnight.getTime()) };
    } catch (e) {
      this.ctx.log.debug('outage history unreadable', describeError(e));
      return {};
    }
  }

  payload(s: StatusSnapshot = this.snapshot()): string {
    return JSON.stringify({
      level: s.state.level,
      text: s.state.text,
      stateHtml: renderState(s.state),
      notesHtml: renderNotes(s.state),
      cardsHtml: renderCards(s.health, s.box, localTime, s.outages ? { list: s.outages, now: s.at } : undefined),
      updated: localTime(s.at),
      at: s.at,
    });
  }

  subscribe(fn: (json: string) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  private push(): void {
    try {
      const s = this.snapshot();
      const drills = s.health.drills?.details as { running?: boolean } | undefined;
      void this.leds?.show(s.state.level, !!drills?.running);
      if (this.subscribers.size === 0) return;
      const json = this.payload(s);
      for (const fn of this.subscribers) fn(json);
    } catch (e) {
      this.ctx.log.warn('status push failed', describeError(e));
    }
  }
}
