import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { MqttClient } from 'mqtt';
import { ulid } from '../../agent/src/core/ids.js';
import { EventSchema, StateSchema, TelemetrySchema, topicFor, type EventMessage, type TelemetryMessage } from '../../agent/src/telemetry/contract.js';
import { representativeCapabilities } from '../integration/telemetry/representative-caps.js';

/**
 * Simulated appliances for the fleet benchmark. What they publish is built from the agent's own
 * contract (types, topicFor, ulid) and the same contract-shaped capability health the telemetry
 * benchmark's stand-ins report, and every first message of a kind is checked against the agent's
 * schemas, so the simulator cannot drift from what a real agent sends without failing loudly.
 */
const checks = { state: TypeCompiler.Compile(StateSchema), telemetry: TypeCompiler.Compile(TelemetrySchema), events: TypeCompiler.Compile(EventSchema) };
const checked = new Set<string>();
function assertContract(kind: keyof typeof checks, msg: unknown): void {
  if (checked.has(kind)) return;
  const c = checks[kind];
  if (!c.Check(msg)) throw new Error(`simulator drifted from the contract (${kind}): ${JSON.stringify(c.Errors(msg).First())}`);
  checked.add(kind);
}

const CAPS = representativeCapabilities();

export class SimDevice {
  readonly bootId = `sim-${Math.random().toString(16).slice(2, 10)}`;
  bdSeq = 0;
  cellular = false;
  constructor(readonly id: string, private readonly prefix: string) {}

  birth(now: number): [string, string] {
    const m = { online: true, bootId: this.bootId, bdSeq: this.bdSeq, version: '0.1.0', configRevision: 1, at: now };
    assertContract('state', m);
    return [topicFor(this.prefix, this.id, 'state'), JSON.stringify(m)];
  }

  telemetry(now: number): [string, string] {
    const capabilities: TelemetryMessage['capabilities'] = {};
    for (const c of CAPS) capabilities[c.name] = c.health() as TelemetryMessage['capabilities'][string];
    capabilities.telephony = { status: 'ok', summary: 'cloud PBX registered', details: { mode: this.cellular ? 'survivable' : 'cloud', registered: true, callsInProgress: 1 } };
    const m: TelemetryMessage = {
      id: ulid(now), at: now, bootId: this.bootId, activeUplink: this.cellular ? '4g' : 'wan', activeKind: this.cellular ? 'cellular' : 'wired',
      system: { cpuLoadPct: 3.1, loadAvg1: 0.12, memUsedPct: 38.4, memTotalBytes: 4063232000, disks: [{ mount: '/', sizeBytes: 31268536320, usedPct: 21.3 }], cpuTempC: 51.6, throttled: null, uptimeS: 86400 },
      capabilities,
    };
    assertContract('telemetry', m);
    return [topicFor(this.prefix, this.id, 'telemetry'), JSON.stringify(m)];
  }

  event(now: number, name: string, payload: unknown): [string, string] {
    const m: EventMessage = { id: ulid(now), name, at: now, bootId: this.bootId, payload };
    assertContract('events', m);
    return [topicFor(this.prefix, this.id, 'events'), JSON.stringify(m)];
  }
}

/** Publish QoS 1 and resolve on PUBACK. */
export function pub(c: MqttClient, [topic, payload]: [string, string], retain = false): Promise<void> {
  return new Promise((res, rej) => c.publish(topic, payload, { qos: 1, retain }, (e) => (e ? rej(e) : res())));
}
