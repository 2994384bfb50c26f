import { readFileSync } from 'node:fs';
import type { WifiReport } from '../../../contract/reports/index.js';
import type { Capability, Ctx, Health } from '../core/capability.js';
import { describeError } from '../../../common/errors.js';
import { Backoff } from '../../../common/retry.js';
import { PollLoop } from '../core/poll-loop.js';
import { NodeWifiAdapter, type WifiAdapter, type WifiLink } from '../platform/wifi.js';

/**
 * Backup Wi-Fi uplink (a neighbour's guest network, a MiFi): stay joined to the configured SSID,
 * report RSSI, rejoin with backoff when it drops. Disabled by default. The passphrase is read from
 * a file at each join (so rotating it needs no restart) and is never logged or put in health().
 */
export class WifiCapability implements Capability<WifiReport> {
  readonly name = 'wifi';
  private ctx!: Ctx;
  private radio!: WifiAdapter;
  private backoff!: Backoff;
  private loop!: PollLoop;
  private link: WifiLink | null = null;
  private reason = 'not checked yet';
  private lastLogged = '';
  private since = 0;
  private nextJoinAt = 0;

  constructor(private readonly opts: { adapter?: WifiAdapter } = {}) {}

  async start(ctx: Ctx): Promise<void> {
    this.ctx = ctx;
    this.since = ctx.clock.now();
    const cfg = ctx.config.wifi;
    this.loop = new PollLoop(
      ctx.clock,
      () => this.check(),
      (e) => ctx.log.error('wifi check failed', describeError(e)),
      () => ctx.config.wifi.pollIntervalMs,
    );
    if (!cfg.enabled) return;
    const iface = ctx.config.uplinks.find((u) => u.name === cfg.uplink)?.interface ?? cfg.interface ?? null;
    this.radio = this.opts.adapter ?? new NodeWifiAdapter(iface);
    this.backoff = new Backoff({ initialMs: cfg.reconnect.initialMs, maxMs: cfg.reconnect.maxMs });
    this.loop.start(0);
  }

  async stop(): Promise<void> {
    await this.loop?.stop();
  }

  /** Check now (tests; a status-page button). */
  checkNow(): Promise<void> {
    return this.loop.now();
  }

  private async check(): Promise<number> {
    const cfg = this.ctx.config.wifi;
    const poll = cfg.pollIntervalMs;
    if (!cfg.ssid) return this.note(null, 'no SSID configured', poll);
    let link: WifiLink | null;
    try {
      link = await this.radio.current();
    } catch (e) {
      return this.note(null, describeError(e).message, poll);
    }
    if (link && link.ssid === cfg.ssid) {
      this.backoff.reset();
      this.nextJoinAt = 0;
      return this.note(link, `joined ${cfg.ssid}`, poll);
    }
    const now = this.ctx.clock.monotonic();
    if (now < this.nextJoinAt) return this.note(null, this.reason, Math.min(poll, this.nextJoinAt - now));
    let passphrase: string;
    try {
      passphrase = cfg.passphraseFile ? readFileSync(this.ctx.platform.hostPath(cfg.passphraseFile), 'utf8').replace(/\r?\n$/, '') : '';
    } catch (e) {
      return this.note(null, `passphrase file unreadable (${(e as NodeJS.ErrnoException).code ?? 'error'})`, poll);
    }
    try {
      await this.radio.connect(cfg.ssid, passphrase);
      const joined = await this.radio.current();
      if (joined?.ssid === cfg.ssid) {
        this.backoff.reset();
        return this.note(joined, `joined ${cfg.ssid}`, poll);
      }
      throw new Error('join reported success but the radio is not associated');
    } catch (e) {
      const delay = this.backoff.next();
      this.nextJoinAt = now + delay;
      return this.note(null, `cannot join ${cfg.ssid}: ${describeError(e).message}`, Math.min(poll, delay));
    }
  }

  private note(link: WifiLink | null, reason: string, next: number): number {
    if (Boolean(link) !== Boolean(this.link)) this.since = this.ctx.clock.now();
    this.link = link;
    this.reason = reason;
    if (reason !== this.lastLogged) {
      if (link) this.ctx.log.info(`wifi: ${reason}`, { rssi: link.rssi });
      else this.ctx.log.warn(`wifi: ${reason}`);
      this.lastLogged = reason;
    }
    return next;
  }

  health(): Health<WifiReport> {
    if (!this.ctx || !this.ctx.config.wifi.enabled) {
      return { status: 'disabled', summary: 'Wi-Fi backup disabled in config', details: { ssid: null, connected: false, rssi: null, lines: [] } };
    }
    const ssid = this.ctx.config.wifi.ssid || null;
    const connected = Boolean(this.link);
    const rssi = this.link?.rssi ?? null;
    const line = connected ? `wifi: joined ${ssid} (RSSI ${rssi ?? '?'} dBm)` : `wifi: not joined - ${this.reason}`;
    return {
      status: connected ? 'ok' : 'degraded',
      summary: connected ? `Wi-Fi backup joined ${ssid}` : `Wi-Fi backup not joined: ${this.reason}`,
      details: { ssid, connected, rssi, lines: [line] },
      since: this.since,
    };
  }
}
