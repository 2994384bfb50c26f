import { X509Certificate } from 'node:crypto';
import type { UplinkKind } from '../../../contract/kinds.js';
import type { TelemetryReport } from '../../../contract/reports/index.js';
import { readFileSync } from 'node:fs';
import type { IPublishPacket, MqttClient } from 'mqtt';
import type { Capability, Ctx, Health } from '../core/capability.js';
import type { TimerHandle } from '../../../common/clock.js';
import { AppError, describeError } from '../../../common/errors.js';
import { ulid } from '../core/ids.js';
import { keyPem, loadDeviceKey, parseSealedKeyFile } from '../platform/device-key.js';
import { HostSystemInfo, type SystemInfo } from '../platform/system-info.js';
import { runCommand } from './commands.js';
import { topicFor, type CommandResponse, type EventMessage, type HeartbeatMessage, type TelemetryMessage } from '../../../contract/mqtt.js';
import './events.js';
import { MqttLink } from './mqtt-link.js';
import { Outbox, type OutboxKind } from './outbox.js';
import { applyFailure, judgeDesired, reportedDoc } from './remote-config.js';
import { ReportPolicy } from './report-policy.js';

const RESPONSE_EXPIRY_S = 300;

/**
 * Health and events to the ICB's broker, remote commands and config back. Everything published
 * (except the birth and command responses, which only make sense on the live session) goes through
 * the durable outbox; see outbox.ts and docs/mqtt-contract.md.
 */
export class TelemetryCapability implements Capability<TelemetryReport> {
  readonly name = 'telemetry';
  private ctx!: Ctx;
  private outbox: Outbox | undefined;
  private link: MqttLink | undefined;
  private client: MqttClient | undefined;
  private offs: (() => void)[] = [];
  private tickTimer: TimerHandle | undefined;
  private inflight = new Set<number>();
  private lastSentSeq = 0;
  private bdSeq = -1;
  private lastPublishAt: number | null = null;
  private policy: ReportPolicy | undefined;
  /** The last full report enqueued, which heartbeats point at. */
  private lastReport: { id: string; at: number } | null = null;
  private heartbeats = 0;
  private activeUplink: string | null = null;
  private activeKind: UplinkKind | null = null;
  private lastFullAt = -Infinity;
  private emittingFull = false;
  private sampling = false;
  private stopped = false;
  private since = Date.now();

  constructor(private readonly deps: { systemInfo?: SystemInfo } = {}) {}

  async start(ctx: Ctx): Promise<void> {
    this.ctx = ctx;
    this.since = ctx.clock.now();
    const cfg = ctx.config.telemetry;
    if (!cfg.enabled) return;
    if (cfg.brokers.length === 0) throw new AppError('CONFIG_INVALID', 'telemetry is enabled but no brokers are configured');
    Outbox.migrate(ctx.db);
    this.outbox = new Outbox(ctx.db, cfg.outboxMaxRows);
    this.policy = new ReportPolicy({ heartbeatMs: cfg.cellularIntervalMs, fullEveryMs: cfg.cellularFullEveryMs, checkMs: cfg.cellularCheckMs });
    const sys = this.deps.systemInfo ?? new HostSystemInfo(ctx.platform.commands);
    this.offs.push(ctx.bus.onAny((name, payload) => this.enqueueEvent(name, payload)));
    this.offs.push(ctx.bus.on('failover.switched', (e) => this.setActive(e.to)));
    const fo = ctx.capabilities.get('failover')?.health().details;
    this.setActive(fo?.active ?? null);
    this.reportConfigIfChanged();
    const tls = await this.loadTls();
    this.link = new MqttLink({
      brokers: cfg.brokers,
      clientId: ctx.config.site.deviceId,
      tls,
      keepaliveS: cfg.keepaliveS,
      connectTimeoutMs: cfg.connectTimeoutMs,
      backoff: { initialMs: cfg.backoffInitialMs, maxMs: cfg.backoffMaxMs },
      clock: ctx.clock,
      log: ctx.log,
      will: () => {
        this.bdSeq = this.outbox!.nextBdSeq();
        return { topic: this.topic('state'), payload: JSON.stringify({ online: false, bootId: ctx.bootId, bdSeq: this.bdSeq }) };
      },
      onConnect: (client) => this.onConnect(client),
      onMessage: (topic, payload, packet) => this.onMessage(topic, payload, packet),
      onDisconnect: () => {
        this.since = ctx.clock.now();
        this.client = undefined;
        this.inflight.clear();
      },
    });
    this.link.start();
    this.scheduleTick(sys);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ctx?.clock.clearTimeout(this.tickTimer);
    for (const off of this.offs.splice(0)) off();
    const c = this.client;
    if (c?.connected) {
      // A graceful stop discards the Will, so say offline ourselves (same bdSeq) before leaving.
      const off = JSON.stringify({ online: false, bootId: this.ctx.bootId, bdSeq: this.bdSeq, at: this.ctx.clock.now() });
      await new Promise<void>((r) => {
        const t = setTimeout(r, 2000);
        c.publish(this.topic('state'), off, { qos: 1, retain: true }, () => (clearTimeout(t), r()));
      });
    }
    await this.link?.stop();
    this.client = undefined;
  }

  health(): Health<TelemetryReport> {
    const cfg = this.ctx?.config.telemetry;
    if (!cfg?.enabled)
      return { status: 'disabled', summary: 'telemetry is off', details: { connected: false, broker: null, outboxDepth: 0, lastPublishAt: null, lines: [] } };
    const connected = this.link?.connected ?? false;
    const broker = this.link?.connectedBroker ?? null;
    const depth = this.outbox?.depth() ?? 0;
    const interval = this.reportIntervalMs();
    const lines = [
      connected
        ? `broker ${broker} connected (bdSeq ${this.bdSeq})`
        : `broker: not connected (${this.link?.attempts ?? 0} attempts; trying ${cfg.brokers.join(', ')})`,
      `outbox ${depth} message(s) waiting; last publish ${this.lastPublishAt ? new Date(this.lastPublishAt).toISOString().slice(11, 19) + 'Z' : 'never'}`,
      this.onChange()
        ? `on 4G: a full report on a meaningful change (checked every ${Math.round(cfg.cellularCheckMs / 1000)} s) or every ` +
          `${Math.round(cfg.cellularFullEveryMs / 60_000)} min, a heartbeat every ${Math.round(interval / 1000)} s (${this.heartbeats} sent)`
        : `reporting every ${Math.round(interval / 1000)} s${this.activeKind === 'cellular' ? ' (4G: slowed to save the allowance)' : ''}`,
    ];
    return {
      status: connected ? 'ok' : 'degraded',
      summary: connected ? `reporting to the ICB (${depth} queued)` : `broker unreachable; ${depth} message(s) kept for later`,
      since: this.since,
      details: {
        connected,
        broker,
        outboxDepth: depth,
        lastPublishAt: this.lastPublishAt,
        bdSeq: this.bdSeq,
        intervalMs: interval,
        activeKind: this.activeKind,
        lines,
      },
    };
  }

  private topic(name: Parameters<typeof topicFor>[2]): string {
    return topicFor(this.ctx.config.telemetry.prefix, this.ctx.config.site.deviceId, name);
  }

  private async loadTls(): Promise<{ ca?: Buffer; cert?: Buffer; key?: Buffer }> {
    const { caPath, certPath, keyPath } = this.ctx.config.telemetry;
    const read = (p: string) => (p ? readFileSync(p) : undefined);
    const tls = { ca: read(caPath), cert: read(certPath), key: keyPath ? await this.loadKey(keyPath) : undefined };
    if (tls.cert) {
      // The broker maps the certificate CN to the username the ACL checks; a mismatch means
      // every publish would be refused, so say so at start rather than fail silently.
      const cn = /CN=([^\n,]+)/.exec(new X509Certificate(tls.cert).subject)?.[1];
      if (cn !== this.ctx.config.site.deviceId)
        this.ctx.log.warn('client certificate CN differs from site.deviceId', { cn, deviceId: this.ctx.config.site.deviceId });
    }
    return Object.fromEntries(Object.entries(tls).filter(([, v]) => v)) as typeof tls;
  }

  /** The client key: a PEM file, or unsealed through the TPM (platform/device-key.ts) into memory only. */
  private async loadKey(keyPath: string): Promise<Buffer | undefined> {
    const ctx = this.ctx;
    const raw = readFileSync(keyPath);
    try {
      if (!parseSealedKeyFile(raw.toString('utf8'))) return raw;
      const { key } = await loadDeviceKey(keyPath, { runner: ctx.platform.commands, workDir: ctx.config.paths.runDir, tcti: ctx.config.enrolment.tpmTcti });
      return Buffer.from(keyPem(key));
    } catch (e) {
      // Refused by the TPM: connect without a client key (the broker refuses, and the enrolment
      // card says why) rather than stop the agent.
      ctx.log.error('device key unavailable; the broker will refuse this box until it is re-enrolled', describeError(e));
      return undefined;
    }
  }

  private setActive(uplink: string | null): void {
    const before = this.tickMs();
    this.activeUplink = uplink;
    this.activeKind = this.ctx.config.uplinks.find((u) => u.name === uplink)?.kind ?? null;
    if (this.tickMs() !== before && this.tickTimer !== undefined) {
      this.ctx.clock.clearTimeout(this.tickTimer);
      this.tickTimer = undefined;
      this.scheduleTick();
    }
  }

  /** On 4G with `cellularReport: changes`, samples become full reports only when they changed (report-policy.ts). */
  private onChange(): boolean {
    return this.activeKind === 'cellular' && this.ctx.config.telemetry.cellularReport === 'changes';
  }

  /** How often the fleet hears from the box: a full report, or on 4G a report or a heartbeat. */
  private reportIntervalMs(): number {
    const cfg = this.ctx.config.telemetry;
    return this.activeKind === 'cellular' ? cfg.cellularIntervalMs : cfg.intervalMs;
  }

  /** How often a sample is taken. */
  private tickMs(): number {
    return this.onChange() ? this.ctx.config.telemetry.cellularCheckMs : this.reportIntervalMs();
  }

  private sys: SystemInfo | undefined;
  private scheduleTick(sys?: SystemInfo): void {
    if (sys) this.sys = sys;
    if (this.stopped) return;
    this.tickTimer = this.ctx.clock.setTimeout(() => {
      void this.sample().finally(() => this.scheduleTick());
    }, this.tickMs());
  }

  /** One telemetry sample: the box's own health plus every capability's health(). */
  async sample(): Promise<void> {
    if (this.sampling || !this.outbox) return;
    this.sampling = true;
    try {
      const system = await this.sys!.read();
      const id = ulid(this.ctx.clock.now());
      const msg: TelemetryMessage = {
        id,
        at: this.ctx.clock.now(),
        bootId: this.ctx.bootId,
        activeUplink: this.activeUplink,
        activeKind: this.activeKind,
        system,
        capabilities: this.capabilityHealth(),
      };
      const d = this.policy!.decide(msg, this.onChange());
      if (d.send === 'heartbeat') return this.heartbeat(msg.at);
      if (d.send === 'none') return;
      // On a primary link the report is as before; on 4G it says why it was sent.
      if (this.activeKind === 'cellular') {
        msg.trigger = d.trigger;
        if (d.changed.length) msg.changed = d.changed.slice(0, 20);
      }
      this.lastReport = { id, at: msg.at };
      this.enqueue('telemetry', id, this.topic('telemetry'), JSON.stringify(msg), false);
    } catch (e) {
      this.ctx.log.warn('telemetry sample failed', describeError(e));
    } finally {
      this.sampling = false;
    }
  }

  /**
   * Straight to the live session at QoS 0, never through the outbox: a heartbeat means "alive now and
   * `reportId` still holds", which is false later. Skipped while offline (the Will says so) and while
   * the outbox holds anything, so a heartbeat never overtakes the report it vouches for.
   */
  private heartbeat(at: number): void {
    const c = this.client;
    if (!c?.connected || (this.outbox?.depth() ?? 0) > 0) return;
    const hb: HeartbeatMessage = { at, bootId: this.ctx.bootId, reportId: this.lastReport?.id ?? null, reportAt: this.lastReport?.at ?? null };
    this.policy!.heartbeatSent(at);
    this.heartbeats++;
    c.publish(this.topic('heartbeat'), JSON.stringify(hb), { qos: 0, retain: false }, (err) => {
      if (err) this.ctx.log.debug('heartbeat not sent', { error: err.message });
    });
  }

  /** On 4G the human `lines` (the CLI's copy of the figures) are left out to save the allowance. */
  private capabilityHealth(): TelemetryMessage['capabilities'] {
    const all = this.ctx.capabilities.health() as TelemetryMessage['capabilities'];
    // Fleet-only details (the set-up code): into the report, nowhere else.
    for (const cap of this.ctx.capabilities.list()) {
      const extra = cap.fleetDetails?.();
      const h = all[cap.name];
      if (extra && h && Object.keys(extra).length) all[cap.name] = { ...h, details: { ...(h.details ?? {}), ...extra } };
    }
    if (this.activeKind !== 'cellular') return all;
    return Object.fromEntries(
      Object.entries(all).map(([name, h]) => {
        if (!h.details || !('lines' in h.details)) return [name, h];
        const { lines: _omit, ...details } = h.details;
        void _omit;
        return [name, { ...h, details }];
      }),
    );
  }

  private enqueueEvent(name: string, payload: unknown): void {
    if (this.stopped || !this.outbox) return;
    const id = ulid(this.ctx.clock.now());
    const msg: EventMessage = { id, name, at: this.ctx.clock.now(), bootId: this.ctx.bootId, payload: payload ?? null };
    this.enqueue('event', id, this.topic('events'), JSON.stringify(msg), false);
  }

  private enqueue(kind: OutboxKind, id: string, topic: string, payload: string, retain: boolean): void {
    const r = this.outbox!.enqueue({ id, kind, topic, payload, retain: retain ? 1 : 0, createdAt: this.ctx.clock.now() });
    if (r.dropped > 0) {
      this.ctx.log.warn('outbox full: thinned', { dropped: r.dropped, depth: r.depth, kind });
      const now = this.ctx.clock.now();
      if (!this.emittingFull && now - this.lastFullAt > 60_000) {
        this.lastFullAt = now;
        this.emittingFull = true;
        try {
          this.ctx.bus.emit('telemetry.outbox-full', { depth: r.depth, dropped: r.dropped, at: now });
        } finally {
          this.emittingFull = false;
        }
      }
    }
    this.pump();
  }

  private onConnect(client: MqttClient): void {
    this.client = client;
    this.since = this.ctx.clock.now();
    this.inflight.clear();
    this.lastSentSeq = 0;
    const birth = {
      online: true,
      bootId: this.ctx.bootId,
      bdSeq: this.bdSeq,
      version: this.ctx.version,
      configRevision: this.ctx.config.revision,
      at: this.ctx.clock.now(),
    };
    client.publish(this.topic('state'), JSON.stringify(birth), { qos: 1, retain: true });
    client.subscribe([this.topic('commands'), this.topic('configDesired')], { qos: 1 }, (err, granted) => {
      if (err || granted?.some((g) => g.qos >= 0x80)) this.ctx.log.error('subscribe refused', { error: err?.message, granted });
    });
    this.pump();
  }

  /** Keep up to `inflight` outbox rows awaiting PUBACK, in seq order; delete each on its PUBACK. */
  private pump(): void {
    const client = this.client;
    const outbox = this.outbox;
    if (!client?.connected || !outbox || this.stopped) return;
    const room = this.ctx.config.telemetry.inflight - this.inflight.size;
    if (room <= 0) return;
    for (const row of outbox.peek(room, this.lastSentSeq)) {
      this.inflight.add(row.seq);
      this.lastSentSeq = row.seq;
      client.publish(row.topic, row.payload, { qos: 1, retain: row.retain === 1 }, (err) => {
        if (client !== this.client) return; // a stale session's callback; the row is resent
        const rc = (err as { code?: unknown } | undefined)?.code;
        if (err && !(typeof rc === 'number' && rc >= 0x80)) return; // connection trouble: resend later
        if (err) this.ctx.log.error('broker refused a message; dropping it', { id: row.id, topic: row.topic, reasonCode: rc });
        outbox.ack(row.seq);
        this.inflight.delete(row.seq);
        this.lastPublishAt = this.ctx.clock.now();
        this.pump();
      });
    }
  }

  private onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    if (topic === this.topic('configDesired')) {
      let raw: unknown;
      try {
        raw = JSON.parse(payload.toString('utf8'));
      } catch {
        this.ctx.log.warn('config/desired is not JSON; dropped', { bytes: payload.length });
        this.report(null, 'rejected', [{ path: '/', message: 'payload is not JSON' }]);
        return;
      }
      this.handleDesired(raw, 'topic').catch((e: unknown) => this.ctx.log.error('desired config handling failed', describeError(e)));
      return;
    }
    if (topic !== this.topic('commands')) return;
    const props = packet.properties ?? {};
    const own = `${this.topic('responses')}`;
    // Only our own responses topic or a level below it, and never a wildcard: a PUBLISH to a topic
    // with '+' or '#' is a protocol error the broker answers by dropping the connection.
    const asked = props.responseTopic;
    const usable = typeof asked === 'string' && asked.length <= 256 && (asked === own || asked.startsWith(`${own}/`)) && !/[+#\u0000]/.test(asked);
    const responseTopic = usable ? asked : own;
    if (props.responseTopic && responseTopic !== props.responseTopic)
      this.ctx.log.warn('responseTopic outside own prefix; answering on default', { responseTopic: props.responseTopic });
    const afters: (() => Promise<void>)[] = [];
    const host = { ctx: this.ctx, handleDesired: (raw: unknown) => this.handleDesired(raw, 'command'), after: (fn: () => Promise<void>) => afters.push(fn) };
    // Expiry is enforced by the broker too; messageExpiryInterval 0 on arrival means it ran out.
    const expired = props.messageExpiryInterval === 0;
    void runCommand(host, payload, this.ctx.config.telemetry.commandMaxBytes, expired)
      .then((res) => {
        if (!res.ok) this.ctx.log.warn('command refused', { command: res.command, code: res.error?.code, message: res.error?.message });
        this.respond(responseTopic, props.correlationData, res, () => {
          for (const fn of afters) fn().catch((e: unknown) => this.ctx.log.error('post-response action failed', describeError(e)));
        });
      })
      // An unhandled rejection would end the process: log it and keep running.
      .catch((e: unknown) => this.ctx.log.error('command response failed', describeError(e)));
  }

  private respond(topic: string, correlationData: Buffer | undefined, res: CommandResponse, then: () => void): void {
    let body = JSON.stringify(res);
    if (body.length > 256 * 1024)
      body = JSON.stringify({ ok: false, command: res.command, error: { code: 'INTERNAL', message: 'response too large' }, at: res.at });
    const c = this.client;
    if (!c?.connected) return then();
    c.publish(topic, body, { qos: 1, properties: { correlationData, messageExpiryInterval: RESPONSE_EXPIRY_S, contentType: 'application/json' } }, () =>
      then(),
    );
  }

  /** Outcome of a desired config (topic or set-config command); the reported doc goes via the outbox. */
  private async handleDesired(raw: unknown, via: 'topic' | 'command'): Promise<unknown> {
    const outcome = judgeDesired(this.ctx, raw);
    const rev = typeof (raw as { revision?: unknown })?.revision === 'number' ? (raw as { revision: number }).revision : null;
    if (outcome.status === 'current') return { status: 'current', appliedRevision: this.ctx.config.revision };
    if (outcome.status !== 'applying') {
      this.ctx.log.warn(`desired config ${outcome.status}`, { via, revision: rev, reasons: outcome.reasons.slice(0, 5) });
      this.report(rev, outcome.status, outcome.reasons);
      if (via === 'command') throw new AppError('CONFIG_INVALID', `config ${outcome.status}`, { problems: outcome.reasons });
      return undefined;
    }
    // Reported first (durable): reconfigure restarts this capability, and the next instance drains it.
    this.report(outcome.revision, 'applied', [], outcome.revision, outcome.config);
    const run = async () => {
      try {
        await outcome.apply();
      } catch (e) {
        this.report(outcome.revision, 'rejected', applyFailure(e));
      }
    };
    // Answer the command before the restart tears this session down.
    if (via === 'command') this.ctx.clock.setTimeout(() => void run(), 0);
    else await run();
    return { status: 'applying', revision: outcome.revision };
  }

  private report(
    desired: number | null,
    status: 'applied' | 'rejected' | 'ignored' | 'current',
    reasons: { path: string; message: string }[],
    applied = this.ctx.config.revision,
    config = this.ctx.config,
  ): void {
    if (!this.outbox) return;
    const key = JSON.stringify([applied, desired, status]);
    if (this.outbox.getMeta('lastReport') === key) return;
    this.outbox.setMeta('lastReport', key);
    const doc = reportedDoc(applied, desired, status, reasons, this.ctx.clock.now(), config);
    this.enqueue('report', ulid(this.ctx.clock.now()), this.topic('configReported'), JSON.stringify(doc), true);
  }

  private reportConfigIfChanged(): void {
    const last = this.outbox!.getMeta('lastReport');
    const applied = last ? (JSON.parse(last) as [number])[0] : null;
    if (applied !== this.ctx.config.revision) this.report(null, 'current', []);
  }
}
