import { Type, type Static } from '@sinclair/typebox';
import { Lines } from './common.js';

export const SetupReportSchema = Type.Object(
  {
    setUp: Type.Boolean({ description: 'The first-run wizard has been completed (or is not used)' }),
    required: Type.Boolean({ description: 'status.setup.required: this box must be set up before it is in service' }),
    codeIssued: Type.Boolean({ description: 'A one-time set-up code is waiting to be used' }),
    setupCode: Type.Optional(
      Type.String({
        description: 'The one-time set-up code: ONLY in the MQTT telemetry report to the fleet (fleetDetails), never on the LAN page, LAN API or status file',
      }),
    ),
    lines: Lines,
  },
  { $id: 'report-setup.json', title: "setup: the first-run set-up wizard on the box's LAN page" },
);
export type SetupReport = Static<typeof SetupReportSchema>;
