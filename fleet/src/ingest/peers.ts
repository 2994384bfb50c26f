import { hostname } from 'node:os';
import type { TimerHandle } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import type { Component, ComponentHealth, FleetCtx } from '../ctx.js';
import { MqttHub } from '../mqtt/hub.js';
import type { InstanceRow } from '../store/instance-store.js';
import type { Ingest } from './ingest.js';

/**
 * Fleet instances sharing one database and one shared-subscription group look after each other.
 * Each writes a heartbeat every `ingest.peerHeartbeatMs`. An instance that dies (or is stopped for
 * an upgrade) leaves its persistent broker session behind, and mosquitto keeps queueing that
 * session's share of the group's messages, plus any it had received but not acknowledged (ingest
 * acknowledges only after the commit). A survivor that finds a peer's heartbeat older than
 * `peerDeadMs` claims it in the database (compare-and-set: one survivor per peer), connects with
 * the peer's client id (taking the session over), unsubscribes it from the group so no new share
 * is queued there, stores everything the broker hands over, and once nothing has come for
 * `peerDrainIdleMs` and all of it is committed, disconnects with session expiry 0 so the broker
 * drops the session. The peer, when it comes back, starts a fresh session and clears the claim.
 * A drain not done within `peerTakeoverTimeoutMs`, or cut short by the peer coming back, is left
 * unfinished (nothing is acknowledged that is not stored) and may be claimed again.
 */
export class Peers implements Component {
  readonly name = 'peers';
  private ctx!: FleetCtx;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private lastError: string | null = null;
  instances: InstanceRow[] = [];
  totals = { drains: 0, drainedMessages: 0, unfinished: 0, lastDrain: null as { peer: string; at: number; messages: number } | null };

  constructor(
    private readonly ingest: Ingest,
    private readonly dashboard: () => string | null,
  ) {}

  async start(ctx: FleetCtx): Promise<void> {
    this.ctx = ctx;
    this.stopped = false;
    await ctx.store.instances.register(ctx.instanceId, hostname(), this.dashboard(), ctx.clock.now());
    this.timer = ctx.clock.setInterval(() => void this.tick(), ctx.config.ingest.peerHeartbeatMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ctx.clock.clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  health(): ComponentHealth {
    const now = this.ctx.clock.now();
    const dead = this.ctx.config.ingest.peerDeadMs;
    const peers = this.instances.map((i) => ({
      id: i.id,
      host: i.host,
      dashboard: i.dashboard,
      heartbeatAgeMs: now - i.heartbeat_at,
      alive: now - i.heartbeat_at < dead,
      drainedBy: i.drained_at !== null ? i.takeover_by : null,
      drainedMessages: i.drained_messages,
    }));
    const alive = peers.filter((p) => p.alive).length;
    const waiting = peers.filter((p) => !p.alive && p.drainedBy === null).length;
    return {
      status: this.lastError || waiting ? 'degraded' : 'ok',
      summary: this.lastError
        ? `heartbeat failed: ${this.lastError}`
        : `${alive} of ${peers.length} instances alive` + (waiting ? `; ${waiting} dead with its messages not yet drained` : ''),
      details: { instances: peers, ...this.totals },
    };
  }

  /** Heartbeat, then drain any dead peer this instance can claim (one tick at a time). */
  tick(): Promise<void> {
    if (this.running) return this.running;
    this.running = (async () => {
      const { ingest: cfg } = this.ctx.config;
      try {
        const now = this.ctx.clock.now();
        await this.ctx.store.instances.heartbeat(this.ctx.instanceId, now);
        this.instances = await this.ctx.store.instances.list();
        this.lastError = null;
        for (const p of this.instances) {
          if (this.stopped || p.id === this.ctx.instanceId || p.drained_at !== null || now - p.heartbeat_at < cfg.peerDeadMs) continue;
          if (await this.ctx.store.instances.claim(p.id, this.ctx.instanceId, now, now - cfg.peerDeadMs, now - cfg.peerTakeoverTimeoutMs))
            await this.drain(p.id);
        }
      } catch (e) {
        this.lastError = describeError(e).message;
        this.ctx.log.error('peer heartbeat or drain failed', describeError(e));
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async drain(peer: string): Promise<void> {
    const { clock, config, log } = this.ctx;
    const me = this.ctx.instanceId;
    let takenOver = false;
    let connectedAt = 0;
    let received = 0;
    const hub = new MqttHub(config.mqtt, peer, log.child('drain'), clock, { reconnect: false, drain: true, onTakenOver: () => (takenOver = true) });
    this.ingest.attach(hub);
    hub.onConnect(() => (connectedAt = clock.now()));
    const before = this.ingest.totals.received;
    const t0 = clock.now();
    log.warn('peer instance is silent: draining the messages the broker kept for it', { peer });
    hub.start();
    let done = false;
    for (;;) {
      await clock.sleep(Math.min(200, config.ingest.peerDrainIdleMs / 4));
      const now = clock.now();
      if (this.stopped || takenOver || now - t0 > config.ingest.peerTakeoverTimeoutMs) break;
      if (!connectedAt) continue;
      if (!hub.connected) break; // refused or lost: leave the session for the next try
      // Nothing queued (no session), or quiet for the idle time with everything stored.
      const quietSince = Math.max(connectedAt, hub.lastMessageAt);
      if (!hub.sessionPresent || (now - quietSince >= config.ingest.peerDrainIdleMs && hub.unacked === 0)) {
        done = true;
        break;
      }
    }
    received = this.ingest.totals.received - before;
    // Only a drain that stored everything ends the session; otherwise the broker keeps what is left.
    await hub.stop({ endSession: done });
    const now = clock.now();
    if (done) {
      await this.ctx.store.instances.drained(peer, me, now, received);
      this.totals.drains++;
      this.totals.drainedMessages += received;
      this.totals.lastDrain = { peer, at: now, messages: received };
      log.warn('drained a dead peer instance: its broker session is closed', { peer, messages: received, ms: now - t0 });
    } else {
      await this.ctx.store.instances.release(peer, me);
      this.totals.unfinished++;
      log.warn('drain of a peer instance left unfinished', { peer, takenOver, messages: received, ms: now - t0 });
    }
  }
}
