import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { validateConfig, formatProblems } from './config/load.js';
import type { Config } from './config/schema.js';
import { stringify as toYaml } from 'yaml';
import { EventBus } from './core/bus.js';
import type { Capability, CapabilityRegistry, Ctx, HealthMap, TypedCapability } from './core/capability.js';
import { CapabilitySet } from './core/capability-set.js';
import type { CapabilityName } from '../../contract/reports/index.js';
import { systemClock, type Clock, type TimerHandle } from '../../common/clock.js';
import { openStateDb, type Db } from './core/db.js';
import { AppError, describeError } from '../../common/errors.js';
import { writeFileAtomic } from './core/fs.js';
import { createLogger, LogRing, prettySink, stderrSink, type Logger, type LogSink } from '../../common/log.js';
import { createPlatform, type Platform } from './platform/platform.js';
import { buildCapabilities } from './capabilities.js';
import { VERSION } from './version.js';
import { WebRegistry } from './core/web.js';
import { WebServer, type WebServerOptions } from './web/server.js';

export interface AgentOptions {
  config: Config;
  configPath?: string | undefined;
  clock?: Clock;
  platform?: Platform;
  logSink?: LogSink;
  /** Override the capability list (tests); defaults to every capability in capabilities.ts. */
  capabilities?: (config: Config) => Capability[];
  /** Called instead of a real reboot (lab, demo, tests). */
  onReboot?: (reason: string) => Promise<void>;
  /** The LAN web server's options (tests: plain HTTP). */
  web?: WebServerOptions;
}

/** The composition root: builds ctx, starts capabilities in order, stops them in reverse. */
export class Agent implements CapabilityRegistry {
  private caps: Capability[] = [];
  private set = new CapabilitySet([]);
  private snapshotTimer: TimerHandle | undefined;
  private ctx!: Ctx;
  private db!: Db;
  readonly bus: EventBus;
  readonly logs = new LogRing(1000);
  readonly log: Logger;
  readonly bootId = randomUUID();
  readonly web = new WebRegistry();
  private server: WebServer | undefined;

  constructor(private readonly opts: AgentOptions) {
    const sink = opts.logSink ?? (opts.config.log.format === 'pretty' ? prettySink : stderrSink);
    this.log = createLogger({ level: opts.config.log.level, sink, tap: this.logs.push });
    this.bus = new EventBus(this.log.child('bus'));
  }

  get context(): Ctx {
    return this.ctx;
  }

  async start(): Promise<void> {
    const { config } = this.opts;
    this.db = openStateDb(join(config.paths.stateDir, 'agent.db'));
    this.ctx = {
      config,
      log: this.log,
      logs: this.logs,
      bus: this.bus,
      db: this.db,
      clock: this.opts.clock ?? systemClock,
      platform: this.opts.platform ?? createPlatform({ root: config.paths.root }),
      capabilities: this,
      control: {
        configPath: this.opts.configPath,
        reconfigure: (next, source) => this.reconfigure(next, source),
        reboot: (reason) => this.reboot(reason),
      },
      web: this.web,
      bootId: this.bootId,
      version: VERSION,
    };
    await this.startCapabilities(config);
    await this.startWeb();
    this.bus.emit('agent.started', { bootId: this.bootId, version: VERSION });
    this.writeSnapshot();
    this.snapshotTimer = this.ctx.clock.setInterval(() => this.writeSnapshot(), 1000);
  }

  private async startCapabilities(config: Config): Promise<void> {
    this.caps = this.opts.capabilities ? this.opts.capabilities(config) : buildCapabilities();
    this.web.clear();
    this.set = new CapabilitySet(this.caps);
    for (const cap of this.caps) {
      const log = this.log.child(cap.name);
      try {
        await cap.start({ ...this.ctx, config, log });
        log.info('started');
      } catch (e) {
        const err = describeError(e);
        log.error('failed to start; continuing without it', err);
        this.set.markFailed(cap.name, { status: 'failed', summary: `failed to start: ${err.message}` });
        this.bus.emit('capability.failed', { name: cap.name, ...err });
      }
    }
  }

  /**
   * The LAN web server, built once every capability has registered its routes (ctx.web). A server
   * that cannot start (port taken, unreadable certificate) is logged and reported like a failed
   * capability; the agent goes on without its pages.
   */
  private async startWeb(): Promise<void> {
    const log = this.log.child('web');
    this.server = new WebServer(this.opts.web);
    try {
      await this.server.start(this.ctx);
    } catch (e) {
      const err = describeError(e);
      log.error('web server failed to start; continuing without it', err);
      this.set.markFailed('status', { status: 'failed', summary: `web server failed to start: ${err.message}` });
      this.bus.emit('capability.failed', { name: 'status', ...err });
      await this.stopWeb();
    }
  }

  private async stopWeb(): Promise<void> {
    try {
      await this.server?.stop();
    } catch (e) {
      this.log.child('web').error('failed to stop cleanly', describeError(e));
    }
    this.server = undefined;
  }

  /** The running LAN web server (tests use inject() and port), if any. */
  get webServer(): WebServer | undefined {
    return this.server;
  }

  private async stopCapabilities(): Promise<void> {
    for (const cap of [...this.caps].reverse()) {
      try {
        await cap.stop();
      } catch (e) {
        this.log.child(cap.name).error('failed to stop cleanly', describeError(e));
      }
    }
  }

  async stop(reason = 'shutdown'): Promise<void> {
    this.bus.emit('agent.stopping', { reason });
    this.ctx.clock.clearInterval(this.snapshotTimer);
    await this.stopWeb();
    await this.stopCapabilities();
    this.writeSnapshot();
    this.db.close();
  }

  /** Apply a new config in place; the old one stays in force if the new one is invalid. */
  private async reconfigure(next: unknown, source: 'file' | 'remote'): Promise<Config> {
    const r = validateConfig(next);
    if (!r.ok) throw new AppError('CONFIG_INVALID', `config rejected:\n${formatProblems(r.problems)}`, { problems: r.problems });
    if (this.opts.configPath) writeFileAtomic(this.opts.configPath, toYaml(r.config), 0o600);
    await this.stopWeb();
    await this.stopCapabilities();
    this.ctx = { ...this.ctx, config: r.config };
    this.opts.config = r.config;
    await this.startCapabilities(r.config);
    await this.startWeb();
    this.bus.emit('config.applied', { version: r.config.revision, source });
    return r.config;
  }

  private async reboot(reason: string): Promise<void> {
    this.log.warn('reboot requested', { reason });
    if (this.opts.onReboot) return this.opts.onReboot(reason);
    await this.ctx.platform.commands.run('systemctl', ['reboot'], { timeoutMs: 10_000 });
  }

  list(): readonly Capability[] {
    return this.caps;
  }

  get<K extends CapabilityName>(name: K): TypedCapability<K> | undefined {
    return this.set.get(name);
  }

  health(): HealthMap {
    return this.set.health();
  }

  /** `surgery-edge status` reads this file, so it works even when the HTTP server does not. */
  private writeSnapshot(): void {
    try {
      const snap = {
        agent: { version: VERSION, bootId: this.bootId, pid: process.pid, deviceId: this.opts.config.site.deviceId, at: this.ctx.clock.now() },
        capabilities: this.health(),
      };
      writeFileAtomic(join(this.opts.config.paths.runDir, 'status.json'), JSON.stringify(snap, null, 1));
    } catch (e) {
      this.log.warn('could not write status snapshot', describeError(e));
    }
  }
}
