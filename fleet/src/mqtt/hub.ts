import { readFileSync } from 'node:fs';
import mqtt, { type IClientPublishOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Clock, TimerHandle } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import type { Logger } from '../../../common/log.js';
import { Backoff } from '../../../common/retry.js';
import type { FleetConfig } from '../config.js';

export type Handler = (topic: string, payload: Buffer, packet: IPublishPacket) => void;

interface Sub {
  filter: string;
  handler: Handler;
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

  constructor(
    private readonly cfg: FleetConfig['mqtt'],
    private readonly clientId: string,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {
    this.backoff = new Backoff({ initialMs: cfg.backoffInitialMs, maxMs: cfg.backoffMaxMs, jitter: 1 });
  }

  subscribe(filter: string, handler: Handler): void {
    this.subs.push({ filter, handler, match: matcher(filter) });
    if (this.client?.connected) this.client.subscribe(filter, { qos: 1 });
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

  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    this.gen++;
    const c = this.client;
    this.client = undefined;
    this.connected = false;
    if (c) await new Promise<void>((r) => c.end(false, {}, () => r()));
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
      properties: { sessionExpiryInterval: this.cfg.sessionExpiryS, receiveMaximum: 500 },
      ...tls,
    });
    this.client = client;
    client.handleMessage = (packet, cb) => {
      const wait = this.gate?.();
      if (wait)
        wait.then(
          () => cb(),
          () => cb(),
        );
      else cb();
    };
    let lost = false;
    const onLost = (why: string) => {
      if (lost || gen !== this.gen) return;
      lost = true;
      this.connected = false;
      client.end(true);
      if (this.stopped) return;
      const delay = this.backoff.next();
      this.log.warn('broker connection lost', { reason: why, retryInMs: delay });
      this.timer = this.clock.setTimeout(() => this.connect(), delay);
    };
    client.on('connect', (ack) => {
      if (gen !== this.gen) return;
      this.connected = true;
      this.connects++;
      this.backoff.reset();
      this.log.info('connected to broker', { url: this.cfg.url, sessionPresent: ack.sessionPresent });
      // Re-subscribing on a present session is harmless and covers a broker that lost its store.
      if (this.subs.length)
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
      for (const s of this.subs) {
        if (!s.match(topic)) continue;
        try {
          s.handler(topic, payload, packet);
        } catch (e) {
          this.log.error('message handler threw', describeError(e)); // one bad message never ends the service
        }
        return;
      }
    });
    client.on('error', (e) => onLost(describeError(e).message));
    client.on('close', () => onLost('closed'));
    client.on('disconnect', (p) => onLost(`server disconnect ${p.reasonCode ?? ''}`));
  }
}
