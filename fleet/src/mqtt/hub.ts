import { readFileSync } from 'node:fs';
import mqtt, { type IClientPublishOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Clock, TimerHandle } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import type { Logger } from '../../../common/log.js';
import { Backoff } from '../../../common/retry.js';
import type { FleetConfig } from '../config.js';

/** `ack`: for a subscription made with `{ manualAck: true }`, send the PUBACK (once the message is safe); otherwise a no-op. */
export type Handler = (topic: string, payload: Buffer, packet: IPublishPacket, ack: () => void) => void;

interface Sub {
  filter: string;
  handler: Handler;
  manualAck: boolean;
  /** Matches delivered topics (a $share/<group>/ filter delivers the plain topic). */
  match: (topic: string) => boolean;
}

function matcher(filter: string): (topic: string) => boolean {
  const plain = filter.startsWith('$share/') ? filter.split('/').slice(2).join('/') : filter;
  const f = plain.split('/');
  return (topic) => {
    const t = topic.split('/');
    for (let i = 0; i < f.length; i++) {
      if (f[i] === '#') return true;
      if (i >= t.length) return false;
      if (f[i] !== '+' && f[i] !== t[i]) return false;
    }
    return f.length === t.length;
  };
}

/** MQTT.js calls handleMessage's callback with this when the PUBACK is deferred (AckQueue sends it). */
const DEFERRED = new Error('PUBACK deferred until the message is stored');

/** MQTT.js's packet writer (private in its types; the one place this module reaches past them, see AckQueue). */
type PacketSender = { _sendPacket(packet: { cmd: 'puback'; messageId: number; reasonCode: number }): void };

/**
 * PUBACKs for one connection, sent in the order the PUBLISHes arrived (MQTT 5, 4.6) as each message
 * is settled: a message still being written holds back the PUBACKs of those after it. MQTT.js's own
 * hook (handleMessage's callback) sends the PUBACK but also holds back reading the next packet until
 * it is called (mqttjs/MQTT.js#691), which would make ingest one message per transaction; so the
 * callback continues the read loop at once and the PUBACK is written here when the store commits.
 * The broker's in-flight window (our receiveMaximum) bounds how many wait.
 */
class AckQueue {
  private readonly q: { id: number; done: boolean }[] = [];
  constructor(private readonly send: (id: number) => void) {}
  get pending(): number {
    return this.q.length;
  }
  add(messageId: number): () => void {
    const e = { id: messageId, done: false };
    this.q.push(e);
    return () => {
      if (e.done) return;
      e.done = true;
      while (this.q[0]?.done) this.send(this.q.shift()!.id);
    };
  }
}

export interface HubOptions {
  /** false: one connection, no reconnect (a peer takeover's drain, peers.ts). */
  reconnect?: boolean;
  /**
   * Draining another instance's session (peers.ts): on connect UNSUBSCRIBE the registered filters
   * instead of subscribing, so the broker hands over what it queued for that session but gives it
   * no share of new messages; the handlers still see what arrives.
   */
  drain?: boolean;
  /** Called when the broker ends the connection because another client took the client id over. */
  onTakenOver?: () => void;
}

/**
 * The fleet instance's one MQTT 5 session. Persistent (clean false + session expiry), so the broker
 * keeps our shared subscriptions and queues QoS 1 messages for us while we restart; reconnects use
 * the agent's jittered backoff (core/retry.ts), never MQTT.js's fixed one-second loop.
 * Components register subscriptions; they are (re)made on every CONNACK without a session.
 */
export class MqttHub {
  private client: MqttClient | undefined;
  private readonly subs: Sub[] = [];
  private readonly backoff: Backoff;
  private timer: TimerHandle | undefined;
  private stopped = true;
  private gen = 0;
  connected = false;
  connects = 0;
  /** Backpressure hook: called per message before PUBACK; the returned promise delays the next. */
  gate: (() => Promise<void> | undefined) | undefined;
  private readonly connectListeners: ((c: MqttClient) => void)[] = [];
  private acks: AckQueue | undefined;
  /** When the last PUBLISH arrived (peers.ts: a drained session goes quiet). */
  lastMessageAt = 0;
  /** The last CONNACK's session-present flag. */
  sessionPresent = false;
  /** When an established connection was lost (the broker closed it, or the network): group-guard.ts reads the recent ones. */
  readonly drops: number[] = [];

  constructor(
    private readonly cfg: FleetConfig['mqtt'],
    readonly clientId: string,
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly opts: HubOptions = {},
  ) {
    this.backoff = new Backoff({ initialMs: cfg.backoffInitialMs, maxMs: cfg.backoffMaxMs, jitter: 1 });
  }

  /**
   * `manualAck`: the handler calls its `ack` once the message is safe (ingest: after the store's commit),
   * so a fleet instance killed before then leaves the message with the broker, which delivers it again.
   */
  subscribe(filter: string, handler: Handler, opts: { manualAck?: boolean } = {}): void {
    this.subs.push({ filter, handler, manualAck: opts.manualAck ?? false, match: matcher(filter) });
    if (this.client?.connected) this.client.subscribe(filter, { qos: 1 });
  }

  /** Messages received on this connection whose PUBACK is still waiting. */
  get unacked(): number {
    return this.acks?.pending ?? 0;
  }

  onConnect(fn: (c: MqttClient) => void): void {
    this.connectListeners.push(fn);
  }

  publish(topic: string, payload: string, opts: IClientPublishOptions): Promise<void> {
    const c = this.client;
    if (!c?.connected) return Promise.reject(new Error('not connected to the broker'));
    return new Promise((res, rej) => c.publish(topic, payload, opts, (e) => (e ? rej(e) : res())));
  }

  get raw(): MqttClient | undefined {
    return this.client;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** `endSession`: DISCONNECT with session expiry 0, so the broker drops the session and its shared-group share (peers.ts). */
  async stop(opts: { endSession?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    this.gen++;
    const c = this.client;
    this.client = undefined;
    this.connected = false;
    this.acks = undefined;
    if (!c) return;
    const end = opts.endSession && c.connected ? { properties: { sessionExpiryInterval: 0 } } : {};
    await new Promise<void>((r) => c.end(false, end, () => r()));
  }

  private connect(): void {
    if (this.stopped) return;
    const gen = ++this.gen;
    const read = (p: string) => (p ? readFileSync(p) : undefined);
    const tls = Object.fromEntries(
      Object.entries({ ca: read(this.cfg.caPath), cert: read(this.cfg.certPath), key: read(this.cfg.keyPath) }).filter(([, v]) => v),
    );
    const client = mqtt.connect(this.cfg.url, {
      protocolVersion: 5,
      clientId: this.clientId,
      clean: false,
      keepalive: this.cfg.keepaliveS,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      // Unacknowledged messages the broker may have in flight to us: two of ingest's batches (one
      // committing, one filling), since ingest acknowledges only after the commit.
      properties: { sessionExpiryInterval: this.cfg.sessionExpiryS, receiveMaximum: 1000 },
      ...tls,
    });
    this.client = client;
    const acks = (this.acks = new AckQueue((messageId) => {
      // A PUBACK belongs to the connection its PUBLISH came on: after a reconnect the broker sends the message again.
      if (gen === this.gen && client.connected) (client as unknown as PacketSender)._sendPacket({ cmd: 'puback', messageId, reasonCode: 0 });
    }));
    client.handleMessage = (packet, cb) => {
      const go = () => (packet.qos ? cb(DEFERRED) : cb());
      const wait = this.gate?.();
      if (wait) wait.then(go, go);
      else go();
    };
    let lost = false;
    const onLost = (why: string) => {
      if (lost || gen !== this.gen) return;
      lost = true;
      if (this.connected) {
        this.drops.push(this.clock.now());
        if (this.drops.length > 50) this.drops.shift();
      }
      this.connected = false;
      client.end(true);
      if (this.stopped) return;
      if (this.opts.reconnect === false) {
        this.stopped = true;
        return;
      }
      const delay = this.backoff.next();
      this.log.warn('broker connection lost', { reason: why, retryInMs: delay });
      this.timer = this.clock.setTimeout(() => this.connect(), delay);
    };
    client.on('connect', (ack) => {
      if (gen !== this.gen) return;
      this.connected = true;
      this.sessionPresent = ack.sessionPresent;
      this.connects++;
      this.backoff.reset();
      this.log.info('connected to broker', { url: this.cfg.url, sessionPresent: ack.sessionPresent });
      if (this.opts.drain) {
        if (this.subs.length) client.unsubscribe(this.subs.map((s) => s.filter));
      }
      // Re-subscribing on a present session is harmless and covers a broker that lost its store.
      else if (this.subs.length)
        client.subscribe(
          this.subs.map((s) => s.filter),
          { qos: 1 },
          (err, granted) => {
            if (err || granted?.some((g) => g.qos >= 0x80)) this.log.error('subscribe refused', { error: err?.message, granted });
          },
        );
      for (const fn of this.connectListeners) fn(client);
    });
    client.on('message', (topic, payload, packet) => {
      if (gen !== this.gen) return;
      this.lastMessageAt = this.clock.now();
      const ack = packet.qos && packet.messageId !== undefined ? acks.add(packet.messageId) : () => {};
      const s = this.subs.find((x) => x.match(topic));
      try {
        s?.handler(topic, payload, packet, s.manualAck ? ack : () => {});
      } catch (e) {
        this.log.error('message handler threw', describeError(e)); // one bad message never ends the service
        return ack();
      }
      if (!s?.manualAck) ack();
    });
    client.on('error', (e) => onLost(describeError(e).message));
    client.on('close', () => onLost('closed'));
    client.on('disconnect', (p) => {
      // 0x8E: another connection took our client id (a peer draining our session, or the peer back from the dead).
      if (p.reasonCode === 0x8e && gen === this.gen) this.opts.onTakenOver?.();
      onLost(`server disconnect ${p.reasonCode ?? ''}`);
    });
  }
}
