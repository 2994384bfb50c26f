import { hostname } from 'node:os';
import { join } from 'node:path';
import { systemClock, type Clock } from '../../common/clock.js';
import { describeError } from '../../common/errors.js';
import { createLogger, type Logger } from '../../common/log.js';
import { Alerts } from './alerts/alerts.js';
import { CampaignEngine } from './campaigns/engine.js';
import { Replacements } from './broker/replacements.js';
import { EmbeddedBroker } from './broker/embedded.js';
import { EnrolmentEndpoint } from './claim/endpoint.js';
import { Commander } from './commands/commander.js';
import type { FleetConfig } from './config.js';
import type { Component, ComponentHealth, FleetCtx } from './ctx.js';
import { Ingest } from './ingest/ingest.js';
import { Peers } from './ingest/peers.js';
import { Inventory } from './inventory.js';
import { MqttHub } from './mqtt/hub.js';
import { RolloutEngine } from './rollouts/engine.js';
import { Store } from './store/store.js';
import { WebServer } from './web/server.js';

export interface FleetOptions {
  config: FleetConfig;
  log?: Logger;
  clock?: Clock;
  store?: Store;
}

/**
 * The composition root: store, broker session, then the components in order (ingest first so the
 * dashboard never shows a state older than the broker's), stopped in reverse.
 */
export class Fleet {
  readonly log: Logger;
  readonly clock: Clock;
  broker: EmbeddedBroker | undefined;
  ctx!: FleetCtx;
  readonly ingest = new Ingest();
  readonly commander = new Commander();
  readonly replacements = new Replacements();
  readonly alerts = new Alerts(() => this.replacements.replacedIds());
  readonly rollouts = new RolloutEngine();
  readonly campaigns = new CampaignEngine(this.commander);
  readonly enrolment = new EnrolmentEndpoint();
  readonly web = new WebServer(() => this.health());
  /** Last: it registers this instance with its dashboard address, then heartbeats and drains dead peers. */
  readonly peers = new Peers(this.ingest, () => this.web.url || null);
  private started: Component[] = [];

  constructor(private readonly opts: FleetOptions) {
    this.web.commander = this.commander;
    this.replacements.onRevoked = () => this.broker?.reload();
    this.log = opts.log ?? createLogger({ level: opts.config.log.level }, 'fleet');
    this.clock = opts.clock ?? systemClock;
  }

  get components(): Component[] {
    return [
      this.ingest,
      this.ingest.guard,
      this.commander,
      this.replacements,
      this.alerts,
      this.rollouts,
      this.campaigns,
      this.enrolment,
      this.web,
      this.peers,
    ];
  }

  async start(): Promise<void> {
    const config = structuredClone(this.opts.config);
    if (!config.mqtt.url) {
      this.broker = new EmbeddedBroker(join(config.dataDir, 'broker'), config.mqtt.prefix, this.log.child('broker'));
      await this.broker.start();
      const id = this.broker.fleetIdentity();
      config.mqtt = { ...config.mqtt, url: this.broker.url, ...id };
      // Claiming signs with the embedded broker's CA and serves with its server certificate.
      const p = this.broker.pki;
      const c = config.claim;
      config.claim = {
        ...c,
        caCertPath: c.caCertPath || join(p, 'ca.crt'),
        caKeyPath: c.caKeyPath || join(p, 'ca.key'),
        tlsCertPath: c.tlsCertPath || join(p, 'server.crt'),
        tlsKeyPath: c.tlsKeyPath || join(p, 'server.key'),
        issuedDir: c.issuedDir || join(p, 'devices'),
      };
    }
    const instanceId = config.instanceId || `fleet-${hostname()}`.replace(/[^A-Za-z0-9._-]/g, '-');
    const store = this.opts.store ?? (await Store.fromConfig(config));
    const inventory = new Inventory(config.inventory);
    for (const [id, p] of inventory.listed()) await store.devices.place(id, p);
    // The broker ending our session because another connection took our client id is told to the
    // group guard: a peer that thought us dead, a second instance with our instanceId, or a device
    // certificate using it (mosquitto lets any authenticated user take any client id).
    const mqtt = new MqttHub(config.mqtt, instanceId, this.log.child('mqtt'), this.clock, { onTakenOver: () => this.ingest.guard.onSessionTakenOver() });
    this.ctx = { config, log: this.log, clock: this.clock, store, mqtt, inventory, instanceId, rollouts: this.rollouts, campaigns: this.campaigns };
    for (const c of this.components) {
      try {
        await c.start({ ...this.ctx, log: this.log.child(c.name) });
        this.started.push(c);
      } catch (e) {
        this.log.error('component failed to start', { component: c.name, ...describeError(e) });
        if (c === this.ingest || c === this.web) throw e;
      }
    }
    mqtt.start();
  }

  async stop(): Promise<void> {
    for (const c of this.started.splice(0).reverse()) {
      try {
        await c.stop();
      } catch (e) {
        this.log.error('component failed to stop', { component: c.name, ...describeError(e) });
      }
    }
    await this.ctx?.mqtt.stop();
    if (!this.opts.store) await this.ctx?.store.close();
    await this.broker?.stop();
  }

  health(): Record<string, ComponentHealth> {
    const out: Record<string, ComponentHealth> = {
      mqtt: this.ctx?.mqtt.connected
        ? { status: 'ok', summary: `connected to ${this.ctx.config.mqtt.url}`, details: { connects: this.ctx.mqtt.connects } }
        : { status: 'degraded', summary: 'not connected to the broker' },
    };
    for (const c of this.components) out[c.name] = this.started.includes(c) ? c.health() : { status: 'failed', summary: 'not running' };
    return out;
  }
}
