import { Type, type Static } from '@sinclair/typebox';
import { Lines, Nullable } from './common.js';

export const UpdatePhaseSchema = Type.Union(
  (['idle', 'downloading', 'staged', 'installing', 'installed', 'trial', 'committed', 'rolled-back', 'failed', 'refused'] as const).map((s) => Type.Literal(s)),
);
const Slot = Type.Union([Type.Literal('a'), Type.Literal('b')]);

export const UpdateReportSchema = Type.Object(
  {
    phase: UpdatePhaseSchema,
    version: Type.String({ description: 'Running software version' }),
    target: Nullable(Type.String(), 'Version of the bundle being installed'),
    booted: Nullable(Slot),
    active: Nullable(Slot),
    armed: Nullable(Slot),
    trial: Type.Boolean(),
    progress: Nullable(Type.Object({ bytes: Type.Number(), total: Type.Number() })),
    unmet: Type.Array(Type.String(), { description: 'Health-gate conditions not met yet' }),
    error: Nullable(Type.Object({ code: Type.String(), message: Type.String() })),
    floorVersion: Nullable(Type.String()),
    lines: Lines,
  },
  { $id: 'report-update.json', title: 'update: A/B slots and the update in progress' },
);
export type UpdateReport = Static<typeof UpdateReportSchema>;
