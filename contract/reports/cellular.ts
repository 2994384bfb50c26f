import { Type, type Static } from '@sinclair/typebox';
import { Lines, Nullable } from './common.js';

export const ModemStatusSchema = Type.Union((['absent', 'disabled', 'searching', 'registered', 'connected', 'failed'] as const).map((s) => Type.Literal(s)));

export const CellularReportSchema = Type.Object(
  {
    modem: ModemStatusSchema,
    operator: Nullable(Type.String()),
    accessTech: Nullable(Type.String()),
    signal: Type.Object({ rsrp: Nullable(Type.Number()), rsrq: Nullable(Type.Number()), sinr: Nullable(Type.Number()), quality: Nullable(Type.Number()) }),
    usage: Type.Object({
      usedBytes: Type.Number(),
      allowanceBytes: Type.Number(),
      usedPct: Type.Number(),
      cycleStart: Type.Integer({ description: 'Epoch ms the billing cycle began' }),
    }),
    reason: Type.String(),
    interface: Nullable(Type.String()),
    policy: Type.Object({
      nonCritical: Type.Union([Type.Literal('allow'), Type.Literal('rate-limit'), Type.Literal('block')]),
      applied: Type.Boolean(),
      lastError: Nullable(Type.String()),
      critical: Type.Integer({ description: 'Critical destinations with addresses in the 4G policy table' }),
    }),
    lines: Lines,
  },
  { $id: 'report-cellular.json', title: 'cellular: the 4G modem as a warm standby (absent while 4G is disabled)' },
);
export type CellularReport = Static<typeof CellularReportSchema>;
