import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { MqttClient } from 'mqtt';
import type { TestBroker } from '../../helpers/mosquitto.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const HARNESS = join(import.meta.dirname, 'agent-harness.ts');

export function agentConfig(
  broker: TestBroker,
  deviceId: string,
  dir: string,
  telemetry: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): string {
  const id = broker.identity(deviceId);
  const doc = {
    ...extra,
    site: { deviceId },
    paths: { stateDir: join(dir, 'state'), runDir: join(dir, 'run'), root: join(dir, 'root') },
    log: { level: process.env.SE_TEST_LOG ? 'debug' : 'warn' },
    telemetry: {
      enabled: true,
      brokers: [broker.url],
      prefix: broker.prefix,
      caPath: id.ca,
      certPath: id.cert,
      keyPath: id.key,
      keepaliveS: 5,
      backoffInitialMs: 200,
      backoffMaxMs: 2000,
      intervalMs: 60_000,
      ...telemetry,
    },
  };
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

/** The harness as a child process; `emitted` collects keys the child reported as emitted. */
export class AgentProc {
  readonly proc: ChildProcess;
  readonly emitted: string[] = [];
  stdout = '';
  stderr = '';
  readonly ready: Promise<void>;
  readonly exited: Promise<number | null>;

  constructor(configFile: string, args: string[] = []) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', HARNESS, configFile, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.ready = new Promise((res, rej) => {
      this.proc.stdout!.on('data', (b: Buffer) => {
        this.stdout += b.toString();
        buf += b.toString();
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line === 'ready') res();
          else if (line.startsWith('emitted ')) this.emitted.push(line.slice(8));
        }
      });
      this.proc.once('exit', () => rej(new Error(`harness exited before ready:\n${this.stderr.slice(-3000)}`)));
    });
    this.ready.catch(() => {});
    this.proc.stderr!.on('data', (b: Buffer) => {
      this.stderr += b.toString();
      if (process.env.SE_TEST_LOG) process.stderr.write(b);
    });
    this.exited = new Promise((r) => this.proc.once('exit', (code) => r(code)));
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.alive) return;
    this.proc.kill(signal);
    await this.exited;
  }
}

export interface Received {
  topic: string;
  json: Record<string, unknown>;
  retain: boolean;
}

/** The fleet side: subscribes with the `fleet` identity and records every message in order. */
export async function fleetCollector(broker: TestBroker, filter: string, persistent = false): Promise<{ client: MqttClient; got: Received[] }> {
  const client = await broker.connect(
    'fleet',
    persistent ? { clientId: `fleet-collector-${broker.port}`, clean: false, properties: { sessionExpiryInterval: 3600 } } : {},
  );
  const got: Received[] = [];
  client.on('message', (topic, payload, packet) => {
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(payload.toString()) as Record<string, unknown>;
    } catch {
      json = { raw: payload.toString() };
    }
    got.push({ topic, json, retain: packet.retain });
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, got };
}

/** Poll a condition (cheap, in-memory) until true; for waiting on messages arriving from another process. */
export async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
