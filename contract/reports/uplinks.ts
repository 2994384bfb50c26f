import { Type, type Static } from '@sinclair/typebox';
import { DnsHealthSchema, UplinkKindSchema, UplinkStateSchema } from '../kinds.js';
import { Lines, Nullable } from './common.js';

export const UplinkViewSchema = Type.Object({
  name: Type.String(),
  label: Type.String({ description: 'Display name for sentences (config `label`, else the name); added within v1' }),
  kind: UplinkKindSchema,
  interface: Type.String(),
  priority: Type.Integer({ description: 'Lower is preferred' }),
  table: Type.Integer({ description: 'Kernel routing table of this uplink' }),
  gateway: Type.Optional(Type.String({ description: 'Configured or discovered next hop; absent on a point-to-point link' })),
  nextHop: Type.Union(
    (['config', 'kernel', 'lease', 'remembered', 'point-to-point', 'unknown'] as const).map((s) => Type.Literal(s)),
    {
      description: 'Where the gateway came from',
    },
  ),
  address: Nullable(Type.String()),
  carrier: Type.Boolean(),
  state: UplinkStateSchema,
  since: Type.Integer({ description: 'Epoch ms of the last state change' }),
  reason: Type.String({ description: 'Why the uplink is in this state, in words' }),
  latencyMs: Nullable(Type.Number()),
  lossPct: Nullable(Type.Number()),
  dns: DnsHealthSchema,
  dnsAnswering: Nullable(Type.Boolean(), 'The latest DNS probe answered (null: no DNS target); a DNS failover only goes where this is true'),
});
export type UplinkView = Static<typeof UplinkViewSchema>;

export const UplinksReportSchema = Type.Object(
  { uplinks: Type.Array(UplinkViewSchema), lines: Lines },
  { $id: 'report-uplinks.json', title: 'uplinks: every uplink as its tracker sees it' },
);
export type UplinksReport = Static<typeof UplinksReportSchema>;
