import { Type, type Static } from '@sinclair/typebox';
import { Lines, Nullable } from './common.js';

export const DrillStepOutcomeSchema = Type.Object({
  name: Type.String(),
  passed: Type.Boolean(),
  detail: Type.String(),
  figures: Type.Optional(Type.Record(Type.String(), Type.Number())),
});

export const DrillsReportSchema = Type.Object(
  {
    last: Nullable(Type.Object({ id: Type.String(), at: Type.Integer(), passed: Type.Boolean(), steps: Type.Array(DrillStepOutcomeSchema) })),
    next: Nullable(Type.Integer()),
    running: Type.Boolean(),
    lines: Lines,
  },
  { $id: 'report-drills.json', title: 'drills: the weekly proof that the backup paths work' },
);
export type DrillsReport = Static<typeof DrillsReportSchema>;
