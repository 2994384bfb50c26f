import type { IPublishPacket } from 'mqtt';
import type { TimerHandle } from '../../../common/clock.js';
import type { Component, ComponentHealth, FleetCtx } from '../ctx.js';

/** Not a device id (pki.sh ids start with a letter or digit), so no device can publish here. */
export const CANARY_ID = '_fleet';

/**
 * Detects a foreign member of the fleet's shared-subscription group. Every `canaryMs` each instance
 * publishes a sequence-numbered canary on each filter ingest shares (`<prefix>/_fleet/<suffix>`),
 * with an MQTT 5 response topic of its own; whichever fleet instance the broker hands it to answers
 * there. A canary never answered within `canaryTimeoutMs` went to a member that is not a working
 * fleet instance: a device that got into the group (a broker without the dynamic-security
 * plugin), or an instance that is down with its session still held. Logged as an error and shown
 * as degraded health until an hour passes without a loss.
 */
export class GroupGuard implements Component {
  readonly name = 'group-guard';
  private ctx!: FleetCtx;
  private timer: TimerHandle | undefined;
  private seq = 0;
  private readonly pending = new Map<string, number>();
  totals = { sent: 0, answered: 0, lost: 0, lastLostAt: null as number | null };

  constructor(private readonly suffixes: readonly string[]) {}

  private get ackTopic(): string {
    return `${this.ctx.config.mqtt.prefix}/${CANARY_ID}/canary-ack/${this.ctx.instanceId}`;
  }

  async start(ctx: FleetCtx): Promise<void> {
    this.ctx = ctx;
    if (!ctx.config.mqtt.canaryMs) return;
    ctx.mqtt.subscribe(this.ackTopic, (_t, p) => this.onAck(p));
    this.schedule();
  }

  private schedule(): void {
    this.timer = this.ctx.clock.setTimeout(() => {
      void this.round().finally(() => this.timer !== undefined && this.schedule());
    }, this.ctx.config.mqtt.canaryMs);
  }

  private async round(): Promise<void> {
    const now = this.ctx.clock.now();
    for (const [key, sentAt] of this.pending) {
      if (now - sentAt < this.ctx.config.mqtt.canaryTimeoutMs) continue;
      this.pending.delete(key);
      this.totals.lost++;
      this.totals.lastLostAt = now;
      this.ctx.log.error(
        'a canary sent through the shared subscription group was never handled by a fleet instance: a foreign or dead member may be in the group, and ' +
          'device messages are being lost',
        { canary: key, lost: this.totals.lost },
      );
    }
    if (!this.ctx.mqtt.connected) return;
    const seq = ++this.seq;
    for (const s of this.suffixes) {
      const key = `${s}#${seq}`;
      this.pending.set(key, now);
      this.totals.sent++;
      const body = JSON.stringify({ canary: key, from: this.ctx.instanceId });
      await this.ctx.mqtt
        .publish(`${this.ctx.config.mqtt.prefix}/${CANARY_ID}/${s}`, body, { qos: 1, properties: { responseTopic: this.ackTopic } })
        .catch(() => this.pending.delete(key));
    }
  }

  /** Ingest hands every `<prefix>/_fleet/...` message here; answer it on its response topic. */
  onCanary(payload: Buffer, packet: IPublishPacket): void {
    const rt = packet.properties?.responseTopic;
    if (!rt || !rt.startsWith(`${this.ctx.config.mqtt.prefix}/${CANARY_ID}/canary-ack/`)) return;
    void this.ctx.mqtt.publish(rt, payload.subarray(0, 512).toString(), { qos: 1 }).catch(() => undefined);
  }

  private onAck(payload: Buffer): void {
    try {
      const key = (JSON.parse(payload.toString()) as { canary?: unknown }).canary;
      if (typeof key === 'string' && this.pending.delete(key)) this.totals.answered++;
    } catch {
      /* not ours */
    }
  }

  async stop(): Promise<void> {
    const t = this.timer;
    this.timer = undefined;
    this.ctx?.clock.clearTimeout(t);
  }

  health(): ComponentHealth {
    if (!this.ctx?.config.mqtt.canaryMs) return { status: 'disabled', summary: 'canaries off (mqtt.canaryMs 0)' };
    const recent = this.totals.lastLostAt !== null && this.ctx.clock.now() - this.totals.lastLostAt < 3600_000;
    return {
      status: recent ? 'degraded' : 'ok',
      summary: recent
        ? `${this.totals.lost} canaries lost in the shared group: a foreign member may be taking device messages`
        : `${this.totals.answered} of ${this.totals.sent} canaries answered`,
      details: { ...this.totals, pending: this.pending.size },
    };
  }
}
