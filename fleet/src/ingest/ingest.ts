import type { IPublishPacket, MqttClient } from 'mqtt';
import type { MqttHub } from '../mqtt/hub.js';
import type { TimerHandle } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import type { Component, ComponentHealth, FleetCtx } from '../ctx.js';
import type { Inbound } from '../store/types.js';
import { CANARY_ID, GroupGuard } from './group-guard.js';
import { Window } from './lag.js';
import { parseInbound, type DropReason } from './parse.js';

/** `heartbeat` (contract v1.3): 4G boxes between full reports; it keeps last_seen fresh and the last report's values. */
export const SUFFIXES = ['state', 'telemetry', 'events', 'config/reported', 'heartbeat'] as const;
/** Retained births and reports are not delivered to shared subscriptions (MQTT 5, 4.8.2): read them once per session. */
const RETAINED = ['state', 'config/reported'] as const;
const MAX_QUEUE = 5000;

/**
 * Births/deaths/telemetry/events/reports from every device, through MQTT 5 shared subscriptions
 * ($share/<group>/...) so instances in one group split the load. Messages are validated against the
 * agent's contract schemas (parse.ts), queued and written in one transaction per batch. Each
 * message's PUBACK goes only after the commit that stored it (at-least-once: an instance killed
 * mid-batch leaves those messages with the broker, which delivers them again, and every write in
 * the store is idempotent); a dropped message is acknowledged at once (in order). A full queue also
 * holds back reading (backpressure) instead of growing without bound.
 */
export class Ingest implements Component {
  readonly name = 'ingest';
  private ctx!: FleetCtx;
  private queue: { msg: Inbound; ack: () => void }[] = [];
  private timer: TimerHandle | undefined;
  private flushing: Promise<void> | undefined;
  private drained: (() => void)[] = [];
  private readonly drops: Record<string, number> = {};
  private pendingCounters: Record<string, number> = {};
  readonly lag = new Window();
  totals = { received: 0, applied: 0, duplicates: 0, dropped: 0, staleDeaths: 0, batches: 0, lastBatchMs: 0 };
  private lastError: string | null = null;
  private stopping = false;
  /** Test/bench hook: called after each committed batch. */
  onBatch: ((b: Inbound[]) => void) | undefined;
  readonly guard = new GroupGuard(SUFFIXES);

  async start(ctx: FleetCtx): Promise<void> {
    this.ctx = ctx;
    this.attach(ctx.mqtt);
    ctx.mqtt.gate = () => (this.queue.length >= MAX_QUEUE ? new Promise<void>((r) => this.drained.push(r)) : undefined);
    ctx.mqtt.onConnect((c) => this.readRetained(c));
  }

  /** The shared filters on `hub`: this instance's own session, or a dead peer's being drained (peers.ts). */
  attach(hub: MqttHub): void {
    const { prefix, shareGroup } = this.ctx.config.mqtt;
    for (const s of SUFFIXES) hub.subscribe(`$share/${shareGroup}/${prefix}/+/${s}`, (t, p, pkt, ack) => this.receive(t, p, pkt, ack), { manualAck: true });
  }

  async stop(): Promise<void> {
    this.ctx.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.stopping = true;
    await this.flush();
  }

  health(): ComponentHealth {
    const p99 = this.lag.percentile(99);
    return {
      status: this.lastError ? 'degraded' : 'ok',
      summary: this.lastError ? `last batch failed: ${this.lastError}` : `${this.totals.applied} applied, ${this.totals.dropped} dropped`,
      details: { ...this.totals, queue: this.queue.length, drops: { ...this.drops }, lagP50Ms: this.lag.percentile(50), lagP99Ms: p99 },
    };
  }

  private readRetained(c: MqttClient): void {
    const filters = RETAINED.map((s) => `${this.ctx.config.mqtt.prefix}/+/${s}`);
    c.subscribe(filters, { qos: 1, rh: 0 }, () => {
      // Retained copies arrive right after SUBACK; live ones meanwhile are harmless duplicates.
      this.ctx.clock.setTimeout(() => c.connected && c.unsubscribe(filters), 3000);
    });
  }

  /** `ack` sends the message's PUBACK; called once it is committed (or at once for one that is dropped). */
  receive(topic: string, payload: Buffer, packet?: IPublishPacket, ack: () => void = () => {}): void {
    if (packet && topic.startsWith(`${this.ctx.config.mqtt.prefix}/${CANARY_ID}/`)) {
      this.guard.onCanary(payload, packet);
      return ack();
    }
    this.totals.received++;
    const now = this.ctx.clock.now();
    const r = parseInbound(this.ctx.config.mqtt.prefix, topic, payload, this.ctx.config.mqtt.maxPayloadBytes, this.ctx.inventory.place, now);
    if (!r.ok) {
      this.drop(r.reason, r.deviceId, r.detail);
      return ack();
    }
    this.queue.push({ msg: r.msg, ack });
    if (this.queue.length >= this.ctx.config.ingest.batchMax) void this.flush();
    else if (!this.timer) this.timer = this.ctx.clock.setTimeout(() => void this.flush(), this.ctx.config.ingest.batchMs);
  }

  private drop(reason: DropReason, deviceId: string | null, detail: string): void {
    this.totals.dropped++;
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
    this.pendingCounters[`dropped_${reason}`] = (this.pendingCounters[`dropped_${reason}`] ?? 0) + 1;
    // Rate-limited by reason: a flood of junk must not become a flood of log lines.
    if ((this.drops[reason] ?? 0) <= 20 || (this.drops[reason] ?? 0) % 1000 === 0)
      this.ctx.log.warn('inbound message dropped', { reason, deviceId, detail, count: this.drops[reason] });
  }

  /** Write what is queued; one flush at a time, and another at once if more arrived meanwhile. */
  flush(): Promise<void> {
    this.ctx.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.flushing) return this.flushing.then(() => this.flush());
    if (!this.queue.length && !Object.keys(this.pendingCounters).length) return Promise.resolve();
    const items = this.queue.splice(0, this.ctx.config.ingest.batchMax);
    const batch = items.map((i) => i.msg);
    const counters = this.pendingCounters;
    this.pendingCounters = {};
    const t0 = performance.now();
    this.flushing = (async () => {
      try {
        const out = await this.ctx.store.devices.ingest(batch);
        for (const i of items) i.ack(); // committed: now the broker may forget them
        const done = this.ctx.clock.now();
        for (const m of batch) if (m.kind === 'telemetry') this.lag.push(done - m.msg.at);
        this.totals.applied += out.applied;
        this.totals.duplicates += out.duplicates;
        this.totals.staleDeaths += out.staleDeaths;
        if (out.duplicates) counters.duplicates = (counters.duplicates ?? 0) + out.duplicates;
        if (out.staleDeaths) counters.stale_deaths = (counters.stale_deaths ?? 0) + out.staleDeaths;
        counters.applied = (counters.applied ?? 0) + out.applied;
        await this.ctx.store.devices.addCounters(counters);
        this.totals.batches++;
        this.lastError = null;
        this.onBatch?.(batch);
      } catch (e) {
        // The database is down (PostgreSQL restarting): keep the batch and try again shortly.
        this.lastError = describeError(e).message;
        this.ctx.log.error('ingest batch failed; retrying', { size: batch.length, ...describeError(e) });
        for (const [k, v] of Object.entries(counters)) this.pendingCounters[k] = (this.pendingCounters[k] ?? 0) + v;
        // Stopping with the database down: give up; none of these was acknowledged, so the broker keeps them.
        if (this.stopping) this.queue.length = 0;
        else {
          this.queue.unshift(...items);
          await this.ctx.clock.sleep(1000);
        }
      } finally {
        this.totals.lastBatchMs = Math.round(performance.now() - t0);
        this.flushing = undefined;
        if (this.queue.length < MAX_QUEUE) for (const r of this.drained.splice(0)) r();
      }
    })();
    return this.flushing.then(() => (this.queue.length ? this.flush() : undefined));
  }
}
