import { Type, type Static } from '@sinclair/typebox';
import { DnsHealthSchema, UplinkKindSchema, UplinkStateSchema } from '../kinds.js';
import { Lines, Nullable } from './common.js';

export const FailoverUplinkSchema = Type.Object({
  name: Type.String(),
  label: Type.String({ description: 'Display name for sentences (added within v1)' }),
  kind: UplinkKindSchema,
  interface: Type.String(),
  state: UplinkStateSchema,
  latencyMs: Nullable(Type.Number()),
  lossPct: Nullable(Type.Number()),
  dns: DnsHealthSchema,
  since: Type.Integer(),
  reason: Type.String(),
});

export const FailoverReportSchema = Type.Object(
  {
    active: Nullable(Type.String(), 'The uplink carrying traffic; null when none works'),
    since: Nullable(Type.Integer(), 'Epoch ms the active uplink took over'),
    reason: Type.String({ description: 'Why traffic is on the active uplink' }),
    forced: Type.Optional(Type.Object({ uplink: Nullable(Type.String()), until: Type.Integer() }, { description: 'Maintenance override' })),
    failbackAt: Nullable(
      Type.Integer(),
      'When traffic is expected back on the preferred uplink if it stays clean (hold-down and hourly cap included); null: none pending',
    ),
    dnsForwarder: Type.Optional(
      Type.Object(
        {
          listening: Nullable(Type.String()),
          via: Nullable(Type.String()),
          answered: Type.Integer(),
          failed: Type.Integer(),
          error: Type.Optional(Type.String()),
        },
        { description: 'The optional LAN DNS forwarder (failover.dnsForwarder)' },
      ),
    ),
    holdDownMs: Type.Integer({ description: 'Clean time the preferred uplink still needs before failback' }),
    uplinks: Type.Array(FailoverUplinkSchema),
    lines: Lines,
  },
  { $id: 'report-failover.json', title: 'failover: which uplink carries traffic and why' },
);
export type FailoverReport = Static<typeof FailoverReportSchema>;
