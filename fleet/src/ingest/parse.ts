import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ConfigReportedSchema, EventSchema, HeartbeatSchema, StateSchema, TelemetrySchema } from '../../../contract/mqtt.js';
import type { Inbound, Placement } from '../store/types.js';
import { deriveTelemetry } from './derive.js';

/** Compiled once: the agent's own contract schemas validate everything that comes in. */
const check = {
  state: TypeCompiler.Compile(StateSchema),
  telemetry: TypeCompiler.Compile(TelemetrySchema),
  events: TypeCompiler.Compile(EventSchema),
  'config/reported': TypeCompiler.Compile(ConfigReportedSchema),
  heartbeat: TypeCompiler.Compile(HeartbeatSchema),
};
type Suffix = keyof typeof check;

export type DropReason = 'oversized' | 'malformed' | 'identity' | 'topic';
export type Parsed = { ok: true; msg: Inbound } | { ok: false; reason: DropReason; deviceId: string | null; detail: string };

/** Device ids as provisioning/pki.sh issues them (the certificate CN): no wildcards, no slashes. */
const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Any of these in a payload is a claim of identity; it must name the topic's device. */
function claimedIds(v: unknown): string[] {
  const out: string[] = [];
  const look = (o: unknown) => {
    if (!o || typeof o !== 'object') return;
    for (const k of ['deviceId', 'device_id', 'device']) {
      const x = (o as Record<string, unknown>)[k];
      if (typeof x === 'string') out.push(x);
    }
  };
  look(v);
  look((v as { payload?: unknown } | null)?.payload);
  look((v as { site?: unknown } | null)?.site);
  return out;
}

/**
 * Topic -> device id -> size -> JSON -> schema -> identity. The device id comes from the topic
 * only: the broker's ACL (`pattern readwrite <prefix>/%u/#`, %u = certificate CN) lets a device
 * publish under its own id alone, so the topic is the authenticated identity, and a payload that
 * claims to be another device is dropped rather than trusted.
 */
export function parseInbound(prefix: string, topic: string, payload: Buffer, maxBytes: number, place: (id: string) => Placement, receivedAt: number): Parsed {
  if (!topic.startsWith(prefix + '/')) return { ok: false, reason: 'topic', deviceId: null, detail: 'outside the prefix' };
  const rest = topic.slice(prefix.length + 1);
  const slash = rest.indexOf('/');
  const deviceId = slash > 0 ? rest.slice(0, slash) : '';
  const suffix = rest.slice(slash + 1) as Suffix;
  if (!DEVICE_ID.test(deviceId)) return { ok: false, reason: 'topic', deviceId: null, detail: 'bad device id in topic' };
  if (!Object.hasOwn(check, suffix)) return { ok: false, reason: 'topic', deviceId, detail: `unknown topic ${suffix.slice(0, 40)}` };
  if (payload.length > maxBytes) return { ok: false, reason: 'oversized', deviceId, detail: `${payload.length} bytes > ${maxBytes}` };
  let raw: unknown;
  try {
    raw = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed', deviceId, detail: 'not JSON' };
  }
  const c = check[suffix];
  if (!c.Check(raw)) {
    const first = c.Errors(raw).First();
    return { ok: false, reason: 'malformed', deviceId, detail: first ? `${first.path || '/'}: ${first.message}` : 'schema' };
  }
  const other = claimedIds(raw).find((x) => x !== deviceId);
  if (other !== undefined) return { ok: false, reason: 'identity', deviceId, detail: `payload claims device ${other.slice(0, 64)}` };
  const base = { deviceId, receivedAt, place: place(deviceId) };
  switch (suffix) {
    case 'state':
      return { ok: true, msg: { ...base, kind: 'state', msg: raw as Extract<Inbound, { kind: 'state' }>['msg'] } };
    case 'telemetry': {
      const msg = raw as Extract<Inbound, { kind: 'telemetry' }>['msg'];
      return { ok: true, msg: { ...base, kind: 'telemetry', msg, derived: deriveTelemetry(msg) } };
    }
    case 'events':
      return { ok: true, msg: { ...base, kind: 'event', msg: raw as Extract<Inbound, { kind: 'event' }>['msg'] } };
    case 'heartbeat':
      return { ok: true, msg: { ...base, kind: 'heartbeat', msg: raw as Extract<Inbound, { kind: 'heartbeat' }>['msg'] } };
    default:
      return { ok: true, msg: { ...base, kind: 'reported', msg: raw as Extract<Inbound, { kind: 'reported' }>['msg'] } };
  }
}
