import { Type, type Static } from '@sinclair/typebox';
import { Lines, Nullable } from './common.js';

export const RecordsReportSchema = Type.Object(
  {
    asOf: Nullable(Type.Integer(), 'Epoch ms of the last complete sync; null = never synced'),
    stale: Type.Boolean({ description: 'Older than records.staleAfterMs, or never synced' }),
    patients: Type.Integer(),
    appointments: Type.Integer(),
    provisioned: Type.Optional(Type.Boolean({ description: 'false: no records key was ever created (added within v1; absent in older agents: provisioned)' })),
    locked: Type.Boolean({ description: 'The cache key is not in memory: nothing can be shown until an admin unlocks it' }),
    sync: Type.Object({ running: Type.Boolean(), done: Type.Integer(), total: Type.Integer(), lastError: Nullable(Type.String()) }),
    clock: Type.Optional(
      Type.Union([Type.Literal('synced'), Type.Literal('unconfirmed'), Type.Literal('wrong')], {
        description:
          'The appliance clock: synced = NTP has confirmed it since boot; unconfirmed = not yet, so "as of" may be wrong; ' +
          'wrong = earlier than this software could exist (added in v1.3; absent in older agents: unknown)',
      }),
    ),
    pendingCaptures: Type.Integer({ description: 'Offline notes not yet accepted upstream' }),
    lines: Lines,
  },
  { $id: 'report-records.json', title: "records: the encrypted cache of today's lists and summaries (counts only, never patient data)" },
);
export type RecordsReport = Static<typeof RecordsReportSchema>;
