import { Type, type Static } from '@sinclair/typebox';
import { UplinkKindSchema, UplinkStateSchema } from '../kinds.js';
import { Lines, Nullable } from './common.js';

export const FailoverUplinkSchema = Type.Object({
  name: Type.String(),
  kind: UplinkKindSchema,
  interface: Type.String(),
  state: UplinkStateSchema,
  latencyMs: Nullable(Type.Number()),
  lossPct: Nullable(Type.Number()),
  since: Type.Integer(),
  reason: Type.String(),
});

export const FailoverReportSchema = Type.Object(
  {
    active: Nullable(Type.String(), 'The uplink carrying traffic; null when none works'),
    since: Nullable(Type.Integer(), 'Epoch ms the active uplink took over'),
    reason: Type.String({ description: 'Why traffic is on the active uplink' }),
    forced: Type.Optional(Type.Object({ uplink: Nullable(Type.String()), until: Type.Integer() }, { description: 'Maintenance override' })),
    holdDownMs: Type.Integer({ description: 'Clean time the preferred uplink still needs before failback' }),
    uplinks: Type.Array(FailoverUplinkSchema),
    lines: Lines,
  },
  { $id: 'report-failover.json', title: 'failover: which uplink carries traffic and why' },
);
export type FailoverReport = Static<typeof FailoverReportSchema>;
