import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
// One implementation of "mosquitto as the contract's broker", shared with the fleet's embedded broker.
import { DeviceRegistrar, enrolledDevices } from '../../fleet/src/broker/dynsec.js';
import { freePort, MOSQUITTO, reloadMosquitto, spawnMosquitto, stopMosquitto, writeBrokerConfig } from '../../fleet/src/broker/mosquitto.js';

const PKI = resolve(import.meta.dirname, '../../provisioning/pki.sh');

/** Skip reason when the Debian broker or openssl is missing. */
export function mosquittoMissing(): string | false {
  if (!MOSQUITTO) return 'mosquitto is not installed (apt-get install mosquitto)';
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    return 'openssl is not installed';
  }
  return false;
}

export { freePort };

export interface Identity {
  ca: string;
  cert: string;
  key: string;
}

/**
 * A real Debian mosquitto on a free loopback port with its own test CA (provisioning/pki.sh):
 * TLS, require_certificate, the certificate subject as user name and the dynamic-security plugin
 * confining each device to its own topics, as the ICB's broker would run. `fleet` (pki.sh fleet)
 * is the one identity allowed across all devices; devices enrolled into `pki` after the start are
 * registered within a fraction of a second (or at once with `sync()`).
 */
export class TestBroker {
  readonly dir = mkdtempSync(join(tmpdir(), 'lc-mosq-'));
  readonly pki = join(this.dir, 'pki');
  port = 0;
  private proc: ChildProcess | undefined;
  private registrar: DeviceRegistrar | undefined;
  log = '';

  /** `autoRegister: false`: devices enrolled after the start stay unknown to the broker until registered. */
  constructor(
    readonly prefix = 'surgery-edge/v1',
    private readonly opts: { autoRegister?: boolean } = {},
  ) {}

  get url(): string {
    return `mqtts://localhost:${this.port}`;
  }

  async init(devices: string[]): Promise<this> {
    execFileSync('bash', [PKI, 'init', this.pki], { stdio: 'ignore' });
    execFileSync('bash', [PKI, 'server', this.pki, 'localhost', '127.0.0.1'], { stdio: 'ignore' });
    execFileSync('bash', [PKI, 'fleet', this.pki], { stdio: 'ignore' });
    for (const d of devices) this.enrol(d);
    this.port = await freePort();
    writeBrokerConfig(this.dir, { pki: this.pki, port: this.port, prefix: this.prefix, devices: enrolledDevices(this.pki) });
    return this;
  }

  enrol(id: string): Identity {
    execFileSync('bash', [PKI, 'device', this.pki, id], { stdio: 'pipe' });
    return this.identity(id);
  }

  /** Register devices enrolled since the start with the running broker now. */
  async sync(): Promise<void> {
    await this.registrar?.sync();
  }

  /** 'fleet' is the fleet's own identity (pki.sh fleet); anything else a device. */
  identity(id: string): Identity {
    if (id === 'fleet') return { ca: join(this.pki, 'ca.crt'), cert: join(this.pki, 'fleet.crt'), key: join(this.pki, 'fleet.key') };
    return { ca: join(this.pki, 'ca.crt'), cert: join(this.pki, 'devices', `${id}.crt`), key: join(this.pki, 'devices', `${id}.key`) };
  }

  /** Start (or restart on the same port); resolves when the listener is open. */
  async start(): Promise<void> {
    this.proc = await spawnMosquitto(join(this.dir, 'mosquitto.conf'), (chunk) => {
      this.log += chunk;
      if (this.log.length > 1e6) this.log = this.log.slice(-5e5);
    });
    if (this.opts.autoRegister === false) return;
    const f = this.identity('fleet');
    this.registrar = new DeviceRegistrar({ url: this.url, pki: this.pki, prefix: this.prefix, ca: f.ca, cert: f.cert, key: f.key, everyMs: 200 });
    await this.registrar.start(enrolledDevices(this.pki));
  }

  async stop(): Promise<void> {
    await this.registrar?.stop();
    this.registrar = undefined;
    const p = this.proc;
    this.proc = undefined;
    await stopMosquitto(p);
  }

  /** SIGHUP: mosquitto re-reads its config and CRL, as an ICB broker's reload does. */
  reload(): void {
    reloadMosquitto(this.proc);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** An MQTT 5 client with `id`'s certificate (e.g. 'fleet' or a device id). */
  connect(id: string, extra: IClientOptions = {}): Promise<MqttClient> {
    const ident = this.identity(id);
    const c = mqtt.connect(this.url, {
      protocolVersion: 5,
      clientId: `${id}-${Math.random().toString(16).slice(2, 8)}`,
      ca: readFileSync(ident.ca),
      cert: readFileSync(ident.cert),
      key: readFileSync(ident.key),
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...extra,
    });
    return new Promise((res, rej) => {
      c.once('connect', () => res(c));
      c.once('error', (e) => {
        c.end(true);
        rej(e);
      });
    });
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function startBroker(devices: string[], prefix?: string): Promise<TestBroker> {
  const b = await new TestBroker(prefix).init(devices);
  await b.start();
  return b;
}
