import { Type } from '@sinclair/typebox';
import { Ms, Obj } from '../config/types.js';

export const TelemetrySection = Obj({
  enabled: Type.Boolean({ default: false }),
  brokers: Type.Array(Type.String({ pattern: '^(mqtts?|wss?)://' }), {
    default: [],
    description: 'Brokers tried in turn (mqtts://host:port); the next one is tried after a failed connect',
  }),
  prefix: Type.String({ default: 'surgery-edge/v1', pattern: '^[A-Za-z0-9_./-]+[A-Za-z0-9_-]$', description: 'Topic root; the device id follows it' }),
  intervalMs: Ms(10_000, 'Telemetry interval on a wired uplink', 1000),
  cellularIntervalMs: Ms(60_000, 'While on 4G: the heartbeat interval (cellularReport changes), or the full report interval (interval)', 1000),
  cellularReport: Type.Union([Type.Literal('changes'), Type.Literal('interval')], {
    default: 'changes',
    description:
      'On 4G, changes: a full report only on a meaningful change or every cellularFullEveryMs, a small heartbeat between; ' +
      'interval: a full report every cellularIntervalMs (before v1.3)',
  }),
  cellularCheckMs: Ms(10_000, 'On 4G (changes): how often a sample is taken and compared with the last report; a change is sent within this', 1000),
  cellularFullEveryMs: Ms(15 * 60_000, 'On 4G (changes): a full report at least this often, changed or not', 10_000),
  caPath: Type.String({ default: '', description: 'PEM CA bundle that signed the broker certificate (empty: system CAs)' }),
  certPath: Type.String({ default: '', description: 'PEM device client certificate; its CN is the device id' }),
  keyPath: Type.String({ default: '', description: 'PEM private key of the device client certificate' }),
  keepaliveS: Type.Integer({ default: 30, minimum: 5, maximum: 600, description: 'MQTT keepalive; the broker publishes the Will after 1.5x this' }),
  connectTimeoutMs: Ms(10_000, 'Give up on one connect attempt after this', 1000),
  backoffInitialMs: Ms(1_000, 'First reconnect delay (full jitter, doubling)', 10),
  backoffMaxMs: Ms(120_000, 'Largest reconnect delay', 100),
  outboxMaxRows: Type.Integer({ default: 20_000, minimum: 10, description: 'Outbox bound; telemetry is thinned first, events are kept' }),
  inflight: Type.Integer({ default: 20, minimum: 1, maximum: 200, description: 'Outbox messages awaiting PUBACK at once' }),
  commandMaxBytes: Type.Integer({ default: 65_536, minimum: 1024, description: 'Larger command payloads are refused' }),
});
