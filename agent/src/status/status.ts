import type { FastifyInstance } from 'fastify';
import type { StatusReport } from '../../../contract/reports/index.js';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Capability, Ctx, Health } from '../core/capability.js';
import type { TimerHandle } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import { writeFileAtomic } from '../core/fs.js';
import { HostSystemInfo, type SystemInfo } from '../platform/system-info.js';
import type { SystemHealth } from '../../../contract/mqtt.js';
import { renderCards, renderNotes, renderState } from './cards.js';
import { createLedDriver, LedController } from './led.js';
import { statusRoutes, type StatusModel, type StatusSnapshot } from './routes.js';
import { deriveState, localTime } from './state.js';
import type { Outage } from '../../../contract/operations.js';
import { buildWebApp } from './web-app.js';
import { adminUsersPlugin } from '../auth/admin-page.js';

export interface StatusOptions {
  systemInfo?: SystemInfo;
  /** Tests: serve plain HTTP. */
  https?: false;
}

/**
 * Started last: registers the status routes, builds the one LAN web server from every
 * capability's plugin, listens, and keeps the page (SSE) and the LED in step with health().
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
  private app: FastifyInstance | undefined;
  private leds: LedController | undefined;
  private box: SystemHealth | null = null;
  private boxReading = false;
  private readonly subscribers = new Set<(json: string) => void>();
  private timers: TimerHandle[] = [];
  private pushTimer: TimerHandle | undefined;
  private offBus: (() => void) | undefined;
  private address: string | null = null;
  private started = 0;

  constructor(private readonly opts: StatusOptions = {}) {}

  async start(ctx: Ctx): Promise<void> {
    this.ctx = ctx;
    this.started = ctx.clock.now();
    const cfg = ctx.config.status;
    const sys = this.opts.systemInfo ?? new HostSystemInfo(ctx.platform.commands);
    this.leds = new LedController(createLedDriver(ctx), ctx);
    // Box figures are read in the background (systeminformation spawns df); requests never wait.
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
    ctx.web.register('admin-users', adminUsersPlugin(ctx));
    const localToken = randomBytes(32).toString('base64url');
    writeFileAtomic(join(ctx.config.paths.runDir, 'api-token'), localToken, 0o600);
    this.app = await buildWebApp(ctx, { ...(this.opts.https === false || !cfg.https ? { https: false as const } : {}), localToken });
    const addr = await this.app.listen({ host: cfg.listen, port: cfg.port });
    const port = (this.app.server.address() as { port: number }).port;
    this.address = addr;
    writeFileAtomic(join(ctx.config.paths.runDir, 'web.json'), JSON.stringify({ port, https: cfg.https && this.opts.https !== false, pid: process.pid }));
    ctx.log.info('status page listening', { url: addr });
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
    if (this.app) {
      // SSE streams are hijacked connections: close them or close() waits for ever.
      this.app.server.closeAllConnections?.();
      await this.app.close();
    }
    this.app = undefined;
  }

  health(): Health<StatusReport> {
    if (!this.ctx) return { status: 'starting', summary: 'starting' };
    if (!this.ctx.config.status.enabled) return { status: 'disabled', summary: 'status page disabled in config' };
    return this.app
      ? { status: 'ok', summary: `serving ${this.address}`, since: this.started, details: { url: this.address, liveViewers: this.subscribers.size, lines: [] } }
      : { status: 'starting', summary: 'web server not listening yet' };
  }

  /** The running server (tests use inject()). */
  get webApp(): FastifyInstance | undefined {
    return this.app;
  }

  /** The port actually bound (tests listen on port 0). */
  get port(): number | undefined {
    return this.app ? (this.app.server.address() as { port: number }).port : undefined;
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
