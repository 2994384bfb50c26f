import { connect as netConnect, isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import mqtt, { MqttClient, type IClientOptions, type IPublishPacket } from 'mqtt';
import type { Clock, TimerHandle } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import type { Logger } from '../../../common/log.js';
import { Backoff } from '../../../common/retry.js';

/**
 * The broker URL as MQTT.js connection options, parsed with WHATWG URL. Given a string, MQTT.js
 * parses it with the legacy `url.parse()`, which makes Node print a DEP0169 warning at every start
 * once MQTT.js is bundled into dist/surgery-edge.mjs (Node keeps quiet only for code under node_modules).
 */
export function brokerTarget(url: string): Pick<IClientOptions, 'protocol' | 'host' | 'hostname' | 'port' | 'path' | 'username' | 'password'> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1'); // IPv6 without brackets, as net.connect wants it
  const protocol = u.protocol.replace(/:$/, '') as IClientOptions['protocol'];
  return {
    protocol,
    host,
    hostname: host,
    ...(u.port ? { port: Number(u.port) } : {}),
    ...(protocol === 'ws' || protocol === 'wss' ? { path: u.pathname + u.search } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
}

type BrokerTarget = ReturnType<typeof brokerTarget>;

/**
 * The TCP or TLS stream to an mqtt:// or mqtts:// broker, built here rather than by mqtt.connect(),
 * whose protocol table loads MQTT.js's WebSocket and SOCKS builders (the ws, socks and ip-address
 * packages) at the first connect: an appliance that speaks MQTT over TLS never uses them
 * (docs/architecture.md, memory). The rules are MQTT.js's own (lib/connect/tls.js and connect()): a
 * client certificate turns mqtt:// into mqtts://, SNI for a host name (not an IP address), default
 * ports 1883/8883, and a certificate the CA does not vouch for is an error on the client and ends
 * the connection. ws:// and wss:// brokers still go through mqtt.connect(). MQTT.js's
 * MQTTJS_SOCKS_PROXY is not honoured for mqtt(s):// (the box reaches the broker directly).
 */
export function brokerStream(client: MqttClient, t: BrokerTarget, tls: LinkOptions['tls']): Duplex {
  const host = t.host ?? 'localhost';
  if (t.protocol !== 'mqtts' && !(tls.cert && tls.key)) return netConnect({ host, port: t.port ?? 1883 });
  const connection = tlsConnect({ host, port: t.port ?? 8883, ...tls, rejectUnauthorized: true, ...(isIP(host) === 0 ? { servername: host } : {}) });
  const handleTlsErrors = (err: Error) => {
    client.emit('error', err);
    connection.end();
  };
  connection.on('secureConnect', () => {
    if (!connection.authorized) connection.emit('error', new Error(`TLS not authorized: ${String(connection.authorizationError)}`));
    else connection.removeListener('error', handleTlsErrors);
  });
  connection.on('error', handleTlsErrors);
  return connection;
}

export interface LinkOptions {
  brokers: string[];
  clientId: string;
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  keepaliveS: number;
  connectTimeoutMs: number;
  backoff: { initialMs: number; maxMs: number };
  clock: Clock;
  log: Logger;
  /** Called before every connect attempt: the Will for this session (new bdSeq each time). */
  will(): { topic: string; payload: string };
  /** Called on every CONNACK with the live client: birth, subscriptions, outbox drain. */
  onConnect(client: MqttClient, broker: string): void;
  onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void;
  onDisconnect(): void;
}

/**
 * One MQTT 5 session at a time over TLS with the device's client certificate. MQTT.js's own
 * reconnect is off (reconnectPeriod 0: it retries every second forever, which brokers' flapping
 * detection bans); we reconnect through core/retry.ts Backoff with full jitter, walking the broker
 * list after each failed attempt. A new MqttClient per attempt keeps no in-memory queue: the
 * durable outbox owns retransmission.
 */
export class MqttLink {
  private client: MqttClient | undefined;
  private generation = 0;
  private brokerIndex = 0;
  private timer: TimerHandle | undefined;
  private stopped = true;
  private connectedAt: number | null = null;
  private readonly backoff: Backoff;
  connectedBroker: string | null = null;
  attempts = 0;

  constructor(private readonly opts: LinkOptions) {
    this.backoff = new Backoff({ initialMs: opts.backoff.initialMs, maxMs: opts.backoff.maxMs, jitter: 1 });
  }

  get connected(): boolean {
    return this.connectedBroker !== null && !!this.client?.connected;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.opts.clock.clearTimeout(this.timer);
    const c = this.client;
    this.client = undefined;
    this.generation++;
    this.connectedBroker = null;
    // A clean DISCONNECT makes the broker discard the Will; the capability publishes an explicit
    // offline state before calling stop() so a graceful stop still reads offline.
    if (c) await new Promise<void>((r) => c.end(false, {}, () => r()));
  }

  private connect(): void {
    if (this.stopped) return;
    const url = this.opts.brokers[this.brokerIndex % this.opts.brokers.length]!;
    const gen = ++this.generation;
    this.attempts++;
    const will = this.opts.will();
    const options: IClientOptions = {
      protocolVersion: 5,
      clientId: this.opts.clientId,
      clean: true,
      keepalive: this.opts.keepaliveS,
      reconnectPeriod: 0,
      connectTimeout: this.opts.connectTimeoutMs,
      rejectUnauthorized: true,
      ...this.opts.tls,
      will: { topic: will.topic, payload: Buffer.from(will.payload), qos: 1, retain: true },
      properties: { sessionExpiryInterval: 0 },
      // MQTT.js otherwise pre-builds a Buffer for every 16-bit number (65,536 of them, ~7 MB of heap
      // for the life of the agent) to save an allocation per packet; we send a few packets a minute.
      writeCache: false,
    };
    this.opts.log.debug('connecting', { broker: url, attempt: this.attempts });
    const target = brokerTarget(url);
    let client: MqttClient;
    if (target.protocol === 'mqtt' || target.protocol === 'mqtts') {
      client = new MqttClient((c) => brokerStream(c, target, this.opts.tls), { ...target, ...options });
      client.on('error', () => {}); // as mqtt.connect() does; the listener below reports errors
    } else client = mqtt.connect({ ...target, ...options });
    this.client = client;
    let done = false;
    const lost = (why: string) => {
      if (done || gen !== this.generation) return;
      done = true;
      const wasConnected = this.connectedBroker !== null;
      this.connectedBroker = null;
      client.removeAllListeners('message');
      client.end(true);
      // A session that lasted a while earns a fresh backoff; a flapping one keeps growing.
      if (this.connectedAt !== null && this.opts.clock.monotonic() - this.connectedAt > this.opts.keepaliveS * 1000) this.backoff.reset();
      this.connectedAt = null;
      if (!wasConnected) this.brokerIndex++;
      if (wasConnected) this.opts.onDisconnect();
      if (this.stopped) return;
      const delay = this.backoff.next();
      this.opts.log.warn(wasConnected ? 'broker connection lost' : 'broker connect failed', { broker: url, reason: why, retryInMs: delay });
      this.timer = this.opts.clock.setTimeout(() => this.connect(), delay);
    };
    client.on('connect', () => {
      if (gen !== this.generation) return;
      this.connectedBroker = url;
      this.connectedAt = this.opts.clock.monotonic();
      this.opts.log.info('connected', { broker: url });
      try {
        this.opts.onConnect(client, url);
      } catch (e) {
        this.opts.log.error('onConnect failed', describeError(e));
      }
    });
    client.on('message', (topic, payload, packet) => {
      if (gen !== this.generation) return;
      try {
        this.opts.onMessage(topic, payload, packet);
      } catch (e) {
        // Never let one bad message take the agent down.
        this.opts.log.error('message handler threw', describeError(e));
      }
    });
    client.on('error', (e) => lost(describeError(e).message));
    client.on('close', () => lost('closed'));
    client.on('disconnect', (p) => lost(`server disconnect ${p.reasonCode ?? ''}`));
  }
}
