import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { AppError } from '../../../agent/src/core/errors.js';
import type { Logger } from '../../../agent/src/core/log.js';

const PKI = resolve(import.meta.dirname, '../../../provisioning/pki.sh');
const MOSQUITTO = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p));

async function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}
async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

/**
 * `make fleet` with no broker configured: a local mosquitto on loopback with its own CA
 * (provisioning/pki.sh), TLS + client certificates + the contract's ACL, exactly as the ICB's
 * broker runs (docs/mqtt-contract.md). The port is kept in <dir>/broker.json so enrolled devices'
 * configs stay valid across restarts.
 */
export class EmbeddedBroker {
  private proc: ChildProcess | undefined;
  port = 0;
  readonly pki: string;

  constructor(private readonly dir: string, private readonly prefix: string, private readonly log: Logger) {
    this.pki = join(dir, 'pki');
  }

  get url(): string {
    return `mqtts://localhost:${this.port}`;
  }

  identity(id: string): { caPath: string; certPath: string; keyPath: string } {
    return { caPath: join(this.pki, 'ca.crt'), certPath: join(this.pki, 'devices', `${id}.crt`), keyPath: join(this.pki, 'devices', `${id}.key`) };
  }

  enrol(id: string): void {
    if (!existsSync(join(this.pki, 'devices', `${id}.crt`))) execFileSync('bash', [PKI, 'device', this.pki, id], { stdio: 'ignore' });
  }

  async start(): Promise<void> {
    if (!MOSQUITTO) throw new AppError('UNAVAILABLE', 'mosquitto is not installed (apt-get install mosquitto), and no mqtt.url is configured');
    mkdirSync(this.dir, { recursive: true });
    if (!existsSync(join(this.pki, 'ca.crt'))) {
      execFileSync('bash', [PKI, 'init', this.pki], { stdio: 'ignore' });
      execFileSync('bash', [PKI, 'server', this.pki, 'localhost', '127.0.0.1'], { stdio: 'ignore' });
    }
    this.enrol('fleet');
    const saved = join(this.dir, 'broker.json');
    const prev = existsSync(saved) ? (JSON.parse(readFileSync(saved, 'utf8')) as { port?: number }).port : undefined;
    this.port = prev && (await portFree(prev)) ? prev : await freePort();
    writeFileSync(saved, JSON.stringify({ port: this.port }));
    writeFileSync(join(this.dir, 'acl'), [`user fleet`, `topic readwrite ${this.prefix}/#`, '', `pattern readwrite ${this.prefix}/%u/#`, ''].join('\n'));
    const root = process.getuid?.() === 0;
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
        'max_queued_messages 100000',
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        'log_type notice',
        'log_type information',
        '',
      ].join('\n'),
    );
    const proc = spawn(MOSQUITTO, ['-c', join(this.dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    let log = '';
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`mosquitto did not start: ${log.slice(-1000)}`)), 10_000);
      proc.stderr!.on('data', (b: Buffer) => {
        log = (log + b.toString()).slice(-5000);
        if (/Opening ipv4 listen socket on port/.test(log)) (clearTimeout(t), res());
      });
      proc.once('exit', (code) => (clearTimeout(t), rej(new Error(`mosquitto exited ${code}: ${log.slice(-1000)}`))));
    });
    proc.stderr!.on('data', (b: Buffer) => this.log.debug('mosquitto', { line: b.toString().trim().slice(0, 300) }));
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
}
