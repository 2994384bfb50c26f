import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { MqttClient } from 'mqtt';
import { ulid } from '../../agent/src/core/ids.js';
import { ConfigReportedSchema, EventSchema, StateSchema, TelemetrySchema, topicFor, type EventMessage, type TelemetryMessage } from '../../contract/mqtt.js';
import { representativeCapabilities } from '../integration/telemetry/representative-caps.js';

/**
 * Simulated appliances for the fleet benchmark. What they publish is built from the agent's own
 * contract (types, topicFor, ulid) and the same contract-shaped capability health the telemetry
 * benchmark's stand-ins report, and every first message of a kind is checked against the agent's
 * schemas, so the simulator cannot drift from what a real agent sends without failing loudly.
 */
const checks = {
  reported: TypeCompiler.Compile(ConfigReportedSchema),
  state: TypeCompiler.Compile(StateSchema),
  telemetry: TypeCompiler.Compile(TelemetrySchema),
  events: TypeCompiler.Compile(EventSchema),
};
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
  configRevision = 1;
  version = '0.1.0';
  constructor(
    readonly id: string,
    private readonly prefix: string,
  ) {}

  birth(now: number): [string, string] {
    const m = { online: true, bootId: this.bootId, bdSeq: this.bdSeq, version: this.version, configRevision: this.configRevision, at: now };
    assertContract('state', m);
    return [topicFor(this.prefix, this.id, 'state'), JSON.stringify(m)];
  }

  telemetry(now: number): [string, string] {
    const capabilities: TelemetryMessage['capabilities'] = {};
    for (const c of CAPS) capabilities[c.name] = c.health() as TelemetryMessage['capabilities'][string];
    capabilities.telephony = {
      status: 'ok',
      summary: 'cloud PBX registered',
      details: { mode: this.cellular ? 'survivable' : 'cloud', registered: true, callsInProgress: 1 },
    };
    const m: TelemetryMessage = {
      id: ulid(now),
      at: now,
      bootId: this.bootId,
      activeUplink: this.cellular ? '4g' : 'wan',
      activeKind: this.cellular ? 'cellular' : 'wired',
      system: {
        cpuLoadPct: 3.1,
        loadAvg1: 0.12,
        memUsedPct: 38.4,
        memTotalBytes: 4063232000,
        disks: [{ mount: '/', sizeBytes: 31268536320, usedPct: 21.3 }],
        cpuTempC: 51.6,
        throttled: null,
        uptimeS: 86400,
      },
      capabilities,
    };
    assertContract('telemetry', m);
    return [topicFor(this.prefix, this.id, 'telemetry'), JSON.stringify(m)];
  }

  /** config/reported after a desired document: applied (then a new session's birth) or rejected. */
  reported(now: number, revision: number, status: 'applied' | 'rejected', reasons: { path: string; message: string }[] = []): [string, string] {
    const m = { appliedRevision: status === 'applied' ? revision : this.configRevision, lastDesiredRevision: revision, status, reasons, at: now };
    assertContract('reported', m);
    return [topicFor(this.prefix, this.id, 'configReported'), JSON.stringify(m)];
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

/**
 * Answers config/desired for simulated devices as an agent does: a newer revision is reported
 * `applied`, then the device "restarts" (bdSeq + 1) with a birth carrying the new revision;
 * `reject` lists ids that report `rejected` instead. Publishes as the fleet identity, which the
 * ACL lets publish for any device (as the benchmark's simulator).
 */
export async function simResponder(
  c: MqttClient,
  prefix: string,
  devices: SimDevice[],
  reject = new Set<string>(),
): Promise<{ answered: Map<string, number[]> }> {
  const byId = new Map(devices.map((d) => [d.id, d]));
  const answered = new Map<string, number[]>();
  c.on('message', (topic, payload) => {
    const id = topic.slice(prefix.length + 1).split('/')[0]!;
    const d = byId.get(id);
    if (!d || !topic.endsWith('/config/desired') || !payload.length) return;
    const rev = (JSON.parse(payload.toString()) as { revision: number }).revision;
    if (rev <= d.configRevision) return;
    answered.set(id, [...(answered.get(id) ?? []), rev]);
    const now = Date.now();
    if (reject.has(id)) return void pub(c, d.reported(now, rev, 'rejected', [{ path: '/telemetry', message: 'simulated refusal' }]), true);
    void pub(c, d.reported(now, rev, 'applied'), true).then(() => {
      d.configRevision = rev;
      d.bdSeq++;
      return pub(c, d.birth(Date.now()), true);
    });
  });
  await c.subscribeAsync(`${prefix}/+/config/desired`, { qos: 1 });
  return { answered };
}

/** How a simulated box's update ends: kept (committed), rolled back after its trial, or refused with a code. */
export type SimUpdateOutcome = 'commit' | 'rollback' | { refuse: string };

/**
 * Answers the contract's `update` command for simulated boxes as the agent's update capability does
 * (docs/updates.md): the MQTT 5 response (accepted, an id) on the response topic with the same
 * correlation data, then update.progress events (downloading, installed, trial), then
 * update.committed and a birth with the new version, or update.rolled-back, or update.refused;
 * `outcome(box, version)` picks which, `stepMs` spaces the steps. Every command is recorded.
 */
export async function simUpdater(
  c: MqttClient,
  prefix: string,
  devices: SimDevice[],
  outcome: (d: SimDevice, version: string) => SimUpdateOutcome,
  stepMs = 300,
): Promise<{ commands: { id: string; version: string; at: number }[] }> {
  const byId = new Map(devices.map((d) => [d.id, d]));
  const commands: { id: string; version: string; at: number }[] = [];
  const later = (ms: number) => new Promise((r) => setTimeout(r, ms));
  c.on('message', (topic, payload, packet) => {
    const id = topic.slice(prefix.length + 1).split('/')[0]!;
    const d = byId.get(id);
    if (!d || !topic.endsWith('/commands')) return;
    const req = JSON.parse(payload.toString()) as { command: string; args?: { url?: string; version?: string } };
    const props = packet.properties ?? {};
    if (req.command !== 'update' || !props.responseTopic) return;
    const version = req.args?.version ?? '';
    commands.push({ id, version, at: Date.now() });
    const out = outcome(d, version);
    const uid = ulid(Date.now());
    const answer =
      typeof out === 'object' && out.refuse === 'CONFLICT'
        ? { ok: false, command: 'update', error: { code: 'CONFLICT', message: 'already updating' }, at: Date.now() }
        : { ok: true, command: 'update', result: { accepted: true, id: uid, version, slot: 'b' }, at: Date.now() };
    c.publish(props.responseTopic, JSON.stringify(answer), { qos: 1, properties: { correlationData: props.correlationData! } });
    if (!answer.ok) return;
    void (async () => {
      const ev = (name: string, p: Record<string, unknown>) => pub(c, d.event(Date.now(), name, { id: uid, version, at: Date.now(), ...p }));
      await later(stepMs);
      if (typeof out === 'object') return ev('update.refused', { code: out.refuse, message: 'simulated refusal' });
      await ev('update.progress', { phase: 'downloading', bytes: 120_000_000, total: 240_000_000 });
      await later(stepMs);
      await ev('update.progress', { phase: 'installed' });
      await later(stepMs);
      await ev('update.progress', { phase: 'trial' });
      await later(stepMs);
      if (out === 'rollback') return ev('update.rolled-back', { slot: 'a', reason: 'health gate: no uplink carried traffic (simulated)' });
      const from = d.version;
      d.version = version;
      d.bdSeq++;
      await pub(c, d.birth(Date.now()), true);
      await ev('update.committed', { slot: 'b', fromVersion: from });
    })();
  });
  await c.subscribeAsync(`${prefix}/+/commands`, { qos: 1 });
  return { commands };
}
