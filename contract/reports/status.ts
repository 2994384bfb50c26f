import { Type, type Static } from '@sinclair/typebox';
import { Lines, Nullable } from './common.js';

export const StatusReportSchema = Type.Object(
  { url: Nullable(Type.String()), liveViewers: Type.Integer(), lines: Lines },
  { $id: 'report-status.json', title: 'status: the LAN status page server' },
);
export type StatusReport = Static<typeof StatusReportSchema>;
