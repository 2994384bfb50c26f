import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { AppError } from '../../../common/errors.js';
import type { Logger } from '../../../common/log.js';
import { DeviceRegistrar, enrolledDevices } from './dynsec.js';
import { freePort, MOSQUITTO, reloadMosquitto, spawnMosquitto, stopMosquitto, writeBrokerConfig } from './mosquitto.js';

const PKI = resolve(import.meta.dirname, '../../../provisioning/pki.sh');

async function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

/**
 * `make fleet` with no broker configured: a local mosquitto on loopback with its own CA
 * (provisioning/pki.sh), TLS + client certificates + the dynamic-security plugin, exactly as the
 * ICB's broker runs (docs/mqtt-contract.md). The port is kept in <dir>/broker.json so enrolled
 * devices' configs stay valid across restarts. Devices enrolled into <dir>/pki while it runs are
 * registered with the broker within a few seconds (DeviceRegistrar).
 */
export class EmbeddedBroker {
  private proc: ChildProcess | undefined;
  private registrar: DeviceRegistrar | undefined;
  port = 0;
  readonly pki: string;

  constructor(
    private readonly dir: string,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {
    this.pki = join(dir, 'pki');
  }

  get url(): string {
    return `mqtts://localhost:${this.port}`;
  }

  /** The fleet's own identity (pki.sh fleet): the only certificate with the fleet's broker rights. */
  fleetIdentity(): { caPath: string; certPath: string; keyPath: string } {
    return { caPath: join(this.pki, 'ca.crt'), certPath: join(this.pki, 'fleet.crt'), keyPath: join(this.pki, 'fleet.key') };
  }

  async start(): Promise<void> {
    if (!MOSQUITTO) throw new AppError('UNAVAILABLE', 'mosquitto is not installed (apt-get install mosquitto), and no mqtt.url is configured');
    mkdirSync(this.dir, { recursive: true });
    if (!existsSync(join(this.pki, 'ca.crt'))) {
      execFileSync('bash', [PKI, 'init', this.pki], { stdio: 'ignore' });
      execFileSync('bash', [PKI, 'server', this.pki, 'localhost', '127.0.0.1'], { stdio: 'ignore' });
    }
    if (!existsSync(join(this.pki, 'fleet.crt'))) execFileSync('bash', [PKI, 'fleet', this.pki], { stdio: 'ignore' });
    const saved = join(this.dir, 'broker.json');
    const prev = existsSync(saved) ? (JSON.parse(readFileSync(saved, 'utf8')) as { port?: number }).port : undefined;
    this.port = prev && (await portFree(prev)) ? prev : await freePort();
    writeFileSync(saved, JSON.stringify({ port: this.port }));
    const devices = enrolledDevices(this.pki);
    const conf = writeBrokerConfig(this.dir, { pki: this.pki, port: this.port, prefix: this.prefix, devices });
    this.proc = await spawnMosquitto(conf, (line) => this.log.debug('mosquitto', { line: line.trim().slice(0, 300) }));
    const id = this.fleetIdentity();
    this.registrar = new DeviceRegistrar({
      url: this.url,
      pki: this.pki,
      prefix: this.prefix,
      ca: id.caPath,
      cert: id.certPath,
      key: id.keyPath,
      everyMs: 2000,
      onError: (m) => this.log.warn('device registrar', { error: m }),
    });
    await this.registrar.start(devices);
  }

  /** The CRL changed (a box was replaced): mosquitto re-reads it. */
  reload(): void {
    reloadMosquitto(this.proc);
  }

  async stop(): Promise<void> {
    await this.registrar?.stop();
    this.registrar = undefined;
    const p = this.proc;
    this.proc = undefined;
    await stopMosquitto(p);
  }
}
