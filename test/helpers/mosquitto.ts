import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

const PKI = resolve(import.meta.dirname, '../../provisioning/pki.sh');
const MOSQUITTO = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p));

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

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

export interface Identity {
  ca: string;
  cert: string;
  key: string;
}

/**
 * A real Debian mosquitto on a free loopback port with its own test CA (provisioning/pki.sh):
 * TLS, require_certificate, use_identity_as_username and per-device ACL patterns, as the ICB's
 * broker would run. `fleet` is the one identity allowed across all devices.
 */
export class TestBroker {
  readonly dir = mkdtempSync(join(tmpdir(), 'lc-mosq-'));
  readonly pki = join(this.dir, 'pki');
  port = 0;
  private proc: ChildProcess | undefined;
  log = '';

  constructor(readonly prefix = 'surgery-edge/v1') {}

  get url(): string {
    return `mqtts://localhost:${this.port}`;
  }

  async init(devices: string[]): Promise<this> {
    execFileSync('bash', [PKI, 'init', this.pki], { stdio: 'ignore' });
    execFileSync('bash', [PKI, 'server', this.pki, 'localhost', '127.0.0.1'], { stdio: 'ignore' });
    for (const d of ['fleet', ...devices]) this.enrol(d);
    this.port = await freePort();
    const root = process.getuid?.() === 0;
    writeFileSync(
      join(this.dir, 'acl'),
      [`user fleet`, `topic readwrite ${this.prefix}/#`, ``, `pattern readwrite ${this.prefix}/%u/#`, ''].join('\n'),
    );
    writeFileSync(
      join(this.dir, 'mosquitto.conf'),
      [
        ...(root ? ['user root'] : []),
        'per_listener_settings false',
        'allow_anonymous false',
        `listener ${this.port} 127.0.0.1`,
        `cafile ${this.pki}/ca.crt`,
        `certfile ${this.pki}/server.crt`,
        `keyfile ${this.pki}/server.key`,
        'require_certificate true',
        'use_identity_as_username true',
        `acl_file ${join(this.dir, 'acl')}`,
        'persistence true',
        `persistence_location ${this.dir}/`,
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        'log_type notice',
        'log_type information',
        'max_queued_messages 100000',
        '',
      ].join('\n'),
    );
    return this;
  }

  enrol(id: string): Identity {
    execFileSync('bash', [PKI, 'device', this.pki, id], { stdio: 'ignore' });
    return this.identity(id);
  }

  identity(id: string): Identity {
    return { ca: join(this.pki, 'ca.crt'), cert: join(this.pki, 'devices', `${id}.crt`), key: join(this.pki, 'devices', `${id}.key`) };
  }

  /** Start (or restart on the same port); resolves when the listener is open. */
  async start(): Promise<void> {
    const proc = spawn(MOSQUITTO!, ['-c', join(this.dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`mosquitto did not start:\n${this.log.slice(-2000)}`)), 10_000);
      proc.stderr!.on('data', (b: Buffer) => {
        this.log += b.toString();
        if (this.log.length > 1e6) this.log = this.log.slice(-5e5);
        if (/Opening ipv4 listen socket on port/.test(b.toString())) {
          clearTimeout(timer);
          res();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        rej(new Error(`mosquitto exited ${code}:\n${this.log.slice(-2000)}`));
      });
    });
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill('SIGTERM');
    });
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
