import { Type } from '@sinclair/typebox';
import { Ms, Obj } from '../config/types.js';

export const TelemetrySection = Obj({
  enabled: Type.Boolean({ default: false }),
  brokers: Type.Array(Type.String({ pattern: '^(mqtts?|wss?)://' }), { default: [] }),
  prefix: Type.String({ default: 'surgery-edge/v1' }),
  intervalMs: Ms(10_000, 'Telemetry interval on a wired uplink', 1000),
  cellularIntervalMs: Ms(60_000, 'Telemetry interval while on 4G', 1000),
});
