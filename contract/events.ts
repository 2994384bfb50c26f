import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { TelephonyModeSchema, UplinkStateSchema } from './kinds.js';
import { ModemStatusSchema } from './reports/cellular.js';

const At = Type.Integer({ description: 'Epoch milliseconds' });
const N = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Lit = <const S extends string>(...s: S[]) => Type.Union(s.map((x) => Type.Literal(x)));

/**
 * The payload of each event on the MQTT `events` topic, by event name (contract v1.3). These are the
 * agent's bus events as they are sent; `agent/src/telemetry/events.ts` fails to compile when the
 * bus's EventMap and these drift apart (a renamed field, a new event not declared here). Within v1 a
 * payload only gains fields, so a receiver reads each with `readEvent` and treats a name it does not
 * know, or a payload that does not match, as an untyped event rather than dropping it.
 */
export const EVENT_PAYLOADS = {
  'agent.started': Type.Object({ bootId: Type.String(), version: Type.String() }),
  'agent.stopping': Type.Object({ reason: Type.String() }),
  'capability.failed': Type.Object({ name: Type.String(), code: Type.String(), message: Type.String() }),
  'config.applied': Type.Object({ version: Type.Number({ description: 'The config revision now in force' }), source: Lit('file', 'remote') }),
  'uplink.changed': Type.Object({ name: Type.String(), from: UplinkStateSchema, to: UplinkStateSchema, reason: Type.String(), at: At }),
  'failover.switched': Type.Object({
    from: N(Type.String()),
    to: N(Type.String({ description: 'The uplink now carrying traffic; null when none works' })),
    kind: Lit('failover', 'failback', 'initial', 'forced', 'none-available'),
    reason: Type.String(),
    at: At,
  }),
  'cellular.changed': Type.Object({ modem: ModemStatusSchema, operator: N(Type.String()), at: At }),
  'cellular.usage-threshold': Type.Object({
    pct: Type.Union([Type.Literal(75), Type.Literal(95), Type.Literal(100)], { description: 'The allowance threshold crossed' }),
    usedBytes: Type.Number(),
    allowanceBytes: Type.Number(),
    at: At,
  }),
  'telephony.mode': Type.Object({
    from: TelephonyModeSchema,
    to: TelephonyModeSchema,
    reason: Type.String(),
    registered: Type.Number(),
    callsInProgress: Type.Number(),
    at: At,
  }),
  'records.synced': Type.Object({ patients: Type.Number(), appointments: Type.Number(), asOf: N(At), durationMs: Type.Number(), errors: Type.Number() }),
  'records.capture-state': Type.Object(
    { id: Type.String(), kind: Lit('arrival', 'note', 'call'), state: Lit('pending', 'sent', 'accepted', 'rejected'), at: At },
    { description: "No patient data: the capture's own id and kind only" },
  ),
  'drill.started': Type.Object({ id: Type.String(), trigger: Lit('schedule', 'manual', 'remote'), steps: Type.Array(Type.String()), at: At }),
  'drill.completed': Type.Object({
    id: Type.String(),
    passed: Type.Boolean(),
    steps: Type.Array(
      Type.Object({ name: Type.String(), passed: Type.Boolean(), detail: Type.String(), figures: Type.Optional(Type.Record(Type.String(), Type.Number())) }),
    ),
    at: At,
  }),
  'update.progress': Type.Object({
    id: Type.String(),
    version: Type.String(),
    phase: Type.String({ description: 'downloading, staged, writing, verifying, installed, rebooting, trial' }),
    bytes: Type.Optional(Type.Number()),
    total: Type.Optional(Type.Number()),
    at: At,
  }),
  'update.refused': Type.Object({
    id: Type.String(),
    version: Type.String(),
    code: Type.String({ description: 'An UPDATE_* code (docs/updates.md)' }),
    message: Type.String(),
    at: At,
  }),
  'update.failed': Type.Object({ id: Type.String(), version: Type.String(), code: Type.String(), message: Type.String(), at: At }),
  'update.committed': Type.Object({ id: Type.String(), version: Type.String(), slot: Lit('a', 'b'), fromVersion: N(Type.String()), at: At }),
  'update.rolled-back': Type.Object({ id: Type.String(), version: Type.String(), slot: Lit('a', 'b'), reason: Type.String(), at: At }),
  'backup.completed': Type.Object({
    ok: Type.Boolean(),
    trigger: Type.String(),
    snapshotId: N(Type.String()),
    durationMs: Type.Number(),
    dataAdded: Type.Number(),
    error: N(Type.String()),
    at: At,
  }),
  'backup.restored': Type.Object({
    fromDevice: Type.String({ description: 'The box whose backup this one restored: the fleet revokes it (same practice only)' }),
    snapshotId: Type.String(),
    restoredAt: At,
    at: At,
  }),
  'telemetry.outbox-full': Type.Object({ depth: Type.Number(), dropped: Type.Number(), at: At }),
} as const satisfies Record<string, TSchema>;

export type WireEventName = keyof typeof EVENT_PAYLOADS;
export type WireEventPayloads = { [K in WireEventName]: Static<(typeof EVENT_PAYLOADS)[K]> };

const Envelope = {
  id: Type.String({ pattern: '^[0-9A-HJKMNP-TV-Z]{26}$' }),
  at: At,
  bootId: Type.String(),
};

const branch = <K extends WireEventName>(name: K) => Type.Object({ ...Envelope, name: Type.Literal(name), payload: EVENT_PAYLOADS[name] }, { title: name });

/** One `events` message as a discriminated union keyed by `name` (the JSON Schema `event-by-name.json`). */
export const WireEventSchema = Type.Union(
  (Object.keys(EVENT_PAYLOADS) as WireEventName[]).map((n) => branch(n)),
  { $id: 'event-by-name.json', title: 'events: the payload of each event name (contract v1.3; event.json checks the envelope)' },
);
export type WireEvent = { [K in WireEventName]: { id: string; at: number; bootId: string; name: K; payload: WireEventPayloads[K] } }[WireEventName];

const isKnown = (name: string): name is WireEventName => Object.hasOwn(EVENT_PAYLOADS, name);

/**
 * An `events` message (already checked against event.json) as its typed branch, or null for a name
 * this contract does not know (a newer agent) or a payload that does not match its schema.
 */
export function readEvent(msg: { id: string; at: number; bootId: string; name: string; payload: unknown }): WireEvent | null {
  if (!isKnown(msg.name) || !Value.Check(EVENT_PAYLOADS[msg.name], msg.payload)) return null;
  return msg as WireEvent;
}
