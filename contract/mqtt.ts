import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { REPORT_SCHEMAS } from './reports/index.js';
import { WireEventSchema } from './events.js';

export { EVENT_PAYLOADS, readEvent, WireEventSchema, type WireEvent, type WireEventName, type WireEventPayloads } from './events.js';

/**
 * The MQTT topic contract: every topic under `<prefix>/<deviceId>/`, its payload schema, QoS and
 * retain flag. The same schemas validate what comes in (config/desired, commands) and are exported
 * as JSON Schema to docs/schemas/mqtt (`surgery-edge mqtt-schemas DIR`), so docs and code agree.
 *
 * Versioning: the major version is in the prefix (`surgery-edge/v1`). Within v1 fields are only
 * added (receivers ignore unknown fields); removing or retyping a field means a new prefix (v2),
 * which an agent would publish alongside v1 for one release.
 */
export const CONTRACT_VERSION = 1;

const Id = Type.String({ description: 'ULID: unique and lexicographically sortable by creation time', pattern: '^[0-9A-HJKMNP-TV-Z]{26}$' });
const At = Type.Integer({ description: 'Epoch milliseconds' });

export const StateSchema = Type.Object(
  {
    online: Type.Boolean({ description: 'true in the birth message, false in the Will (death)' }),
    bootId: Type.String({ description: 'Changes on every agent start' }),
    bdSeq: Type.Integer({
      minimum: 0,
      description: 'Birth/death sequence, persisted, +1 per MQTT session; a death with a lower bdSeq than the last birth is stale',
    }),
    version: Type.Optional(Type.String({ description: 'Agent software version (birth only)' })),
    configRevision: Type.Optional(Type.Integer({ minimum: 0, description: 'Applied config revision (birth only)' })),
    at: Type.Optional(At),
  },
  { $id: 'state.json', title: 'state (retained birth / Will)' },
);

export const SystemHealthSchema = Type.Object(
  {
    cpuLoadPct: Type.Union([Type.Number(), Type.Null()]),
    loadAvg1: Type.Union([Type.Number(), Type.Null()]),
    memUsedPct: Type.Union([Type.Number(), Type.Null()]),
    memTotalBytes: Type.Union([Type.Number(), Type.Null()]),
    disks: Type.Array(Type.Object({ mount: Type.String(), sizeBytes: Type.Number(), usedPct: Type.Number() })),
    cpuTempC: Type.Union([Type.Number(), Type.Null()], { description: 'null when the board reports none' }),
    throttled: Type.Union(
      [
        Type.Object({
          raw: Type.String({ description: 'vcgencmd get_throttled bit field, e.g. 0x50005' }),
          underVoltageNow: Type.Boolean(),
          throttledNow: Type.Boolean(),
          underVoltageSinceBoot: Type.Boolean(),
          throttledSinceBoot: Type.Boolean(),
        }),
        Type.Null(),
      ],
      { description: 'Raspberry Pi only; null elsewhere' },
    ),
    uptimeS: Type.Number(),
  },
  { additionalProperties: true },
);
export type SystemHealth = Static<typeof SystemHealthSchema>;

export const TelemetrySchema = Type.Object(
  {
    id: Id,
    at: At,
    bootId: Type.String(),
    activeUplink: Type.Union([Type.String(), Type.Null()]),
    activeKind: Type.Union([Type.Literal('wired'), Type.Literal('cellular'), Type.Literal('wifi'), Type.Null()]),
    system: SystemHealthSchema,
    capabilities: Type.Record(
      Type.String(),
      Type.Object(
        {
          status: Type.String(),
          summary: Type.String(),
          details: Type.Optional(
            Type.Record(Type.String(), Type.Unknown(), {
              description:
                'Capability-specific: report-<name>.json (contract/reports/). Receivers check each report on its own (readReport), so one capability ' +
                'of an older agent never rejects the message',
            }),
          ),
        },
        { additionalProperties: true },
      ),
    ),
    trigger: Type.Optional(
      Type.Union([Type.Literal('interval'), Type.Literal('change'), Type.Literal('refresh')], {
        description:
          'Added in v1.3 (optional): why this report was sent. interval: the periodic report (primary link, or 4G with cellularReport interval); ' +
          'change: on 4G, a meaningful field changed; refresh: on 4G, the periodic full report (cellularFullEveryMs). Older agents leave it out',
      }),
    ),
    changed: Type.Optional(
      Type.Array(Type.String(), {
        maxItems: 20,
        description: 'Added in v1.3 (optional, with trigger change): the meaningful fields that changed, e.g. failover.active (at most 20)',
      }),
    ),
  },
  { $id: 'telemetry.json', title: 'telemetry (periodic health)' },
);
export type TelemetryMessage = Static<typeof TelemetrySchema>;

export const EventSchema = Type.Object(
  {
    id: Id,
    name: Type.String({ description: 'Bus event name, e.g. failover.switched, cellular.changed' }),
    at: At,
    bootId: Type.String(),
    payload: Type.Unknown({
      description: 'The bus event payload (never patient data); its schema per name is in event-by-name.json (contract/events.ts, read with readEvent)',
    }),
  },
  { $id: 'event.json', title: 'events' },
);
export type EventMessage = Static<typeof EventSchema>;

/** Added in v1.3: on 4G, between full reports, the box says it is alive and its last report still holds. */
export const HeartbeatSchema = Type.Object(
  {
    at: At,
    bootId: Type.String(),
    reportId: Type.Union([Id, Type.Null()], { description: 'id of the last full telemetry report, which still describes the box; null before the first' }),
    reportAt: Type.Union([At, Type.Null()], { description: 'at of that report' }),
  },
  { $id: 'heartbeat.json', title: 'heartbeat (4G, between full reports)' },
);
export type HeartbeatMessage = Static<typeof HeartbeatSchema>;

export const ConfigDesiredSchema = Type.Object(
  {
    revision: Type.Integer({ minimum: 1, description: 'Monotonic; at or below the applied revision is ignored' }),
    config: Type.Record(Type.String(), Type.Unknown(), { description: 'A whole agent config document (see the config JSON Schema)' }),
  },
  { $id: 'config-desired.json', title: 'config/desired (fleet -> device, retained)' },
);
export type ConfigDesired = Static<typeof ConfigDesiredSchema>;

const Problem = Type.Object({ path: Type.String(), message: Type.String() });

export const ConfigReportedSchema = Type.Object(
  {
    appliedRevision: Type.Integer({ minimum: 0 }),
    lastDesiredRevision: Type.Union([Type.Integer(), Type.Null()]),
    status: Type.Union([Type.Literal('applied'), Type.Literal('rejected'), Type.Literal('ignored'), Type.Literal('current')]),
    reasons: Type.Array(Problem, { description: 'Why the last desired document was rejected or ignored' }),
    at: At,
    config: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description:
          'Added within v1 (optional): the whole config in force after this report (defaults filled, secrets replaced by "[redacted]"), for the ' +
          "fleet's desired-vs-reported diff. Agents before it leave it out.",
      }),
    ),
  },
  { $id: 'config-reported.json', title: 'config/reported (device -> fleet, retained)' },
);
export type ConfigReported = Static<typeof ConfigReportedSchema>;

export const CommandArgs = {
  ping: Type.Object({}, { additionalProperties: false }),
  reboot: Type.Object({ reason: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false }),
  drill: Type.Object({}, { additionalProperties: false }),
  logs: Type.Object(
    {
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
      level: Type.Optional(Type.Union([Type.Literal('debug'), Type.Literal('info'), Type.Literal('warn'), Type.Literal('error')])),
    },
    { additionalProperties: false },
  ),
  'set-config': ConfigDesiredSchema,
  /**
   * Added within v1 (additive: a new command; older agents answer NOT_FOUND, which the fleet shows).
   * The same action as the status page's "Force uplink": failover.force(uplink, minutes).
   */
  'force-uplink': Type.Object(
    {
      uplink: Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Null()], { description: 'Uplink name; null returns to automatic' }),
      minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 1440, description: 'How long the force holds (default 60)' })),
    },
    { additionalProperties: false },
  ),
  // Added in v1 (additive, docs/updates.md): install a signed bundle into the inactive A/B slot.
  update: Type.Object(
    {
      url: Type.String({
        minLength: 2,
        maxLength: 2048,
        pattern: '^(https?://|file:///|/)',
        description: 'Bundle location: http(s) URL, file:// URL or absolute path on the device',
      }),
      version: Type.String({
        pattern: '^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$',
        description: 'The version the bundle must carry (refused otherwise)',
      }),
      allowCellular: Type.Optional(
        Type.Boolean({
          description:
            'v1.4: true lets a network download run while traffic is on 4G or backup Wi-Fi. Absent or false: refused with ' +
            'UPDATE_ON_BACKUP_LINK there, and a download under way is stopped (update.refused, same code) when failover moves to one',
        }),
      ),
    },
    { additionalProperties: false },
  ),
  /**
   * Added within v1.3 (additive; older agents answer NOT_FOUND): ICB IT forces an off-box backup now.
   * The link policy still holds (primary link only, unless a capture is pending) unless `force`;
   * otherwise the answer is CONFLICT with the reason. Answers at once; the outcome is `backup.completed`.
   */
  'backup-now': Type.Object(
    { force: Type.Optional(Type.Boolean({ description: 'Back up over a non-primary link (4G) even with no capture pending' })) },
    { additionalProperties: false },
  ),
} as const;
export type CommandName = keyof typeof CommandArgs;

export const CommandRequestSchema = Type.Object(
  {
    command: Type.String({ minLength: 1, maxLength: 64, description: `One of: ${Object.keys(CommandArgs).join(', ')}` }),
    args: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    expiresAt: Type.Optional(Type.Integer({ description: 'Epoch ms; refused as expired after this (in addition to MQTT 5 message expiry)' })),
  },
  { $id: 'command-request.json', title: 'commands (fleet -> device)' },
);
export type CommandRequest = Static<typeof CommandRequestSchema>;

export const CommandResponseSchema = Type.Object(
  {
    ok: Type.Boolean(),
    command: Type.Union([Type.String(), Type.Null()]),
    result: Type.Optional(Type.Unknown()),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) })),
    at: At,
  },
  { $id: 'command-response.json', title: 'command responses (device -> response topic)' },
);
export type CommandResponse = Static<typeof CommandResponseSchema>;

export interface TopicSpec {
  suffix: string;
  direction: 'device->fleet' | 'fleet->device';
  qos: 0 | 1;
  retain: boolean;
  schema: TSchema;
  about: string;
}

/** Every topic of the contract, relative to `<prefix>/<deviceId>/`. */
export const TOPICS = {
  state: {
    suffix: 'state',
    direction: 'device->fleet',
    qos: 1,
    retain: true,
    schema: StateSchema,
    about: 'Birth on every connect; Will (death) registered with the same bdSeq',
  },
  telemetry: {
    suffix: 'telemetry',
    direction: 'device->fleet',
    qos: 1,
    retain: false,
    schema: TelemetrySchema,
    about: 'Periodic health via the durable outbox',
  },
  heartbeat: {
    suffix: 'heartbeat',
    direction: 'device->fleet',
    qos: 0,
    retain: false,
    schema: HeartbeatSchema,
    about: 'Added in v1.3: on 4G, between full reports; sent directly, only while connected with nothing queued (fleets before v1.3 do not subscribe)',
  },
  events: {
    suffix: 'events',
    direction: 'device->fleet',
    qos: 1,
    retain: false,
    schema: EventSchema,
    about: 'Every bus event via the durable outbox, in order',
  },
  configDesired: {
    suffix: 'config/desired',
    direction: 'fleet->device',
    qos: 1,
    retain: true,
    schema: ConfigDesiredSchema,
    about: 'Versioned desired config from the fleet',
  },
  configReported: {
    suffix: 'config/reported',
    direction: 'device->fleet',
    qos: 1,
    retain: true,
    schema: ConfigReportedSchema,
    about: 'Applied revision and the fate of the last desired document',
  },
  commands: {
    suffix: 'commands',
    direction: 'fleet->device',
    qos: 1,
    retain: false,
    schema: CommandRequestSchema,
    about: 'MQTT 5 request: responseTopic + correlationData',
  },
  responses: {
    suffix: 'responses',
    direction: 'device->fleet',
    qos: 1,
    retain: false,
    schema: CommandResponseSchema,
    about: 'Responses; responseTopic must lie under responses/',
  },
} as const satisfies Record<string, TopicSpec>;
export type TopicName = keyof typeof TOPICS;

export function topicFor(prefix: string, deviceId: string, name: TopicName): string {
  return `${prefix}/${deviceId}/${TOPICS[name].suffix}`;
}

/** Every error with its path, for rejection reasons and error responses. */
export function schemaProblems(schema: TSchema, value: unknown): { path: string; message: string }[] {
  return [...Value.Errors(schema, value)].slice(0, 20).map((e) => ({ path: e.path || '/', message: e.message }));
}

/** JSON Schema files, keyed by file name, for docs/schemas/mqtt. */
export function contractJsonSchemas(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(TOPICS)) {
    const schema = JSON.parse(JSON.stringify(spec.schema)) as Record<string, unknown>;
    const file = (schema.$id as string | undefined) ?? `${name}.json`;
    out[file] = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      ...schema,
      $id: `https://surgery-edge.nhs.invalid/schema/mqtt/v${CONTRACT_VERSION}/${file}`,
      'x-topic': `<prefix>/<deviceId>/${spec.suffix}`,
      'x-qos': spec.qos,
      'x-retain': spec.retain,
      'x-direction': spec.direction,
    };
  }
  out['command-args.json'] = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: `https://surgery-edge.nhs.invalid/schema/mqtt/v${CONTRACT_VERSION}/command-args.json`,
    title: 'args per command',
    definitions: JSON.parse(JSON.stringify(CommandArgs)),
  };
  // The `events` messages as a union keyed by name: each event's payload (contract/events.ts, v1.3).
  out['event-by-name.json'] = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    ...(JSON.parse(JSON.stringify(WireEventSchema)) as Record<string, unknown>),
    $id: `https://surgery-edge.nhs.invalid/schema/mqtt/v${CONTRACT_VERSION}/event-by-name.json`,
    'x-topic': `<prefix>/<deviceId>/${TOPICS.events.suffix}`,
    'x-discriminator': 'name',
  };
  // The `details` of each capability inside telemetry.json's `capabilities.<name>` (contract/reports/).
  for (const [name, schema] of Object.entries(REPORT_SCHEMAS)) {
    const s = JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
    const file = (s.$id as string | undefined) ?? `report-${name}.json`;
    out[file] = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      ...s,
      $id: `https://surgery-edge.nhs.invalid/schema/mqtt/v${CONTRACT_VERSION}/${file}`,
      'x-in': `telemetry.json capabilities.${name}.details`,
    };
  }
  return out;
}
