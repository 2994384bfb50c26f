import type { IPublishPacket } from 'mqtt';
import type { TimerHandle } from '../../../common/clock.js';
import type { Component, ComponentHealth, FleetCtx } from '../ctx.js';

/** Not a device id (pki.sh ids start with a letter or digit), so no device can publish here. */
export const CANARY_ID = '_fleet';
/** Lost connections in FLAP_WINDOW_MS that make the group guard's health degraded. */
const FLAP_DROPS = 3;
const FLAP_WINDOW_MS = 600_000;

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
  totals = { sent: 0, answered: 0, lost: 0, lastLostAt: null as number | null, takenOver: 0, lastTakenOverAt: null as number | null };

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

  /**
   * The broker ended this instance's session because another connection used its client id (MQTT 5
   * reason 0x8E). While that connection holds the session, the group's share meant for this
   * instance goes to it; the hub takes the session back on its next connect. Logged as an error and
   * degraded health for an hour: mosquitto does not tie a client id to a certificate, so a device
   * certificate can do this (docs/threat-model.md), as can a peer that wrongly thought us dead.
   */
  onSessionTakenOver(): void {
    if (!this.ctx) return;
    this.totals.takenOver++;
    this.totals.lastTakenOverAt = this.ctx.clock.now();
    this.ctx.log.error(
      "another connection took over this fleet instance's broker session (its client id): a second instance with the same instanceId, a peer " +
        "that thought this one dead, or a device certificate using the fleet's client id; the broker's log names the user. Reconnecting",
      { clientId: this.ctx.instanceId, times: this.totals.takenOver },
    );
  }

  health(): ComponentHealth {
    const now = this.ctx?.clock.now() ?? 0;
    const takenOver = this.totals.lastTakenOverAt !== null && now - this.totals.lastTakenOverAt < 3600_000;
    if (takenOver)
      return {
        status: 'degraded',
        summary: `this instance's broker session was taken over ${this.totals.takenOver} time(s) by another connection using its client id`,
        details: { ...this.totals, pending: this.pending.size },
      };
    // mosquitto 2.0 closes a taken-over connection without saying why (no DISCONNECT 0x8E), so a
    // connection that keeps being closed is the sign: another client using our client id, or an
    // unstable broker or network. Either way device messages meant for us are at risk.
    const drops = this.ctx?.mqtt.drops.filter((t) => now - t < FLAP_WINDOW_MS).length ?? 0;
    if (drops >= FLAP_DROPS)
      return {
        status: 'degraded',
        summary:
          `the broker connection was lost ${drops} times in 10 minutes: another connection may be using this instance's client id ` +
          '(a device certificate can; the broker log names the user), or the broker or network is unstable',
        details: { ...this.totals, drops, pending: this.pending.size },
      };
    if (!this.ctx?.config.mqtt.canaryMs) return { status: 'disabled', summary: 'canaries off (mqtt.canaryMs 0)' };
    const recent = this.totals.lastLostAt !== null && now - this.totals.lastLostAt < 3600_000;
    return {
      status: recent ? 'degraded' : 'ok',
      summary: recent
        ? `${this.totals.lost} canaries lost in the shared group: a foreign member may be taking device messages`
        : `${this.totals.answered} of ${this.totals.sent} canaries answered`,
      details: { ...this.totals, pending: this.pending.size },
    };
  }
}
