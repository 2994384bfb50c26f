import { Type, type Static } from '@sinclair/typebox';
import { UplinkKindSchema } from '../kinds.js';
import { Lines, Nullable } from './common.js';

export const TelemetryReportSchema = Type.Object(
  {
    connected: Type.Boolean(),
    broker: Nullable(Type.String()),
    outboxDepth: Type.Integer(),
    lastPublishAt: Nullable(Type.Integer()),
    bdSeq: Type.Optional(Type.Integer()),
    intervalMs: Type.Optional(Type.Integer()),
    activeKind: Type.Optional(Nullable(UplinkKindSchema)),
    lines: Lines,
  },
  { $id: 'report-telemetry.json', title: 'telemetry: the MQTT link to the ICB and its durable outbox' },
);
export type TelemetryReport = Static<typeof TelemetryReportSchema>;
