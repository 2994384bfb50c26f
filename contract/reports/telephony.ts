import { Type, type Static } from '@sinclair/typebox';
import { TelephonyModeSchema } from '../kinds.js';
import { Lines, Nullable } from './common.js';

export const EmergencyRouteSchema = Type.Union([Type.Literal('pbx'), Type.Literal('trunk'), Type.Literal('pbx-then-trunk'), Type.Literal('none')], {
  description: "Where a 999 call from a desk phone goes now. 'none' = 999 is NOT available from desk phones (the status page says so).",
});
export type EmergencyRoute = Static<typeof EmergencyRouteSchema>;

export const TelephonyReportSchema = Type.Object(
  {
    mode: TelephonyModeSchema,
    registered: Type.Integer({ description: 'Handsets registered with the local proxy' }),
    callsInProgress: Type.Integer(),
    pbxReachable: Type.Boolean(),
    since: Type.Integer(),
    uplinkDown: Type.Boolean(),
    restarts: Type.Integer({ description: 'kamailio restarts by the supervisor' }),
    outsideCalls: Type.Union([Type.Literal('pbx'), Type.Literal('trunk'), Type.Literal('none')], { description: 'Where outside calls go now' }),
    emergencyRoute: EmergencyRouteSchema,
    problem: Nullable(Type.String()),
    lines: Lines,
  },
  { $id: 'report-telephony.json', title: 'telephony: cloud PBX health and the local survivable proxy' },
);
export type TelephonyReport = Static<typeof TelephonyReportSchema>;
