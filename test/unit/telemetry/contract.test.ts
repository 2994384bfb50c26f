import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import {
  CommandRequestSchema,
  ConfigDesiredSchema,
  contractJsonSchemas,
  EventSchema,
  HeartbeatSchema,
  StateSchema,
  TelemetrySchema,
  topicFor,
  WireEventSchema,
} from '../../../contract/mqtt.js';
import { ulid } from '../../../agent/src/core/ids.js';
import { eventsMarkdown, reportsMarkdown } from '../../../contract/docs.js';
import { readEvent, type WireEvent } from '../../../contract/events.js';
import { readReport, reportProblems } from '../../../contract/read.js';
import { report } from '../../helpers/reports.js';

const DIR = resolve(import.meta.dirname, '../../../docs/schemas/mqtt');

describe('MQTT contract', () => {
  it('the committed docs/schemas/mqtt files are exactly what the code validates with (run `surgery-edge mqtt-schemas docs/schemas/mqtt`)', () => {
    const gen = contractJsonSchemas();
    assert.deepEqual(
      readdirSync(DIR)
        .filter((f) => f.endsWith('.json'))
        .sort(),
      Object.keys(gen).sort(),
    );
    for (const [file, schema] of Object.entries(gen)) assert.deepEqual(JSON.parse(readFileSync(join(DIR, file), 'utf8')), schema, file);
    assert.equal(
      readFileSync(join(DIR, '..', '..', 'mqtt-reports.md'), 'utf8'),
      reportsMarkdown() + '\n',
      'docs/mqtt-reports.md is generated from contract/reports/',
    );
    const events = readFileSync(join(DIR, '..', '..', 'mqtt-events.md'), 'utf8');
    assert.equal(events, eventsMarkdown() + '\n', 'docs/mqtt-events.md is generated from contract/events.ts');
  });

  it('a fleet reads each capability report on its own: a report missing a field reads as unknown, the others still read', () => {
    const fo = report('failover', { active: 'wan' });
    assert.deepEqual(readReport('failover', fo), fo);
    const { emergencyRoute: _gone, ...broken } = report('telephony', { mode: 'survivable' });
    assert.equal(readReport('telephony', broken), null, 'a telephony report without emergencyRoute is not trusted');
    assert.match(reportProblems('telephony', broken).join(';'), /emergencyRoute/);
    const { lines: _l, ...on4g } = report('records', { asOf: 1, stale: false });
    assert.deepEqual(readReport('records', on4g), on4g, 'lines are left out on 4G and the report still reads');
  });

  it('events: a payload typed per name (readEvent), while the envelope still takes any name and payload', () => {
    const env = (name: string, payload: unknown) => ({ id: ulid(), name, at: 1, bootId: 'b', payload });
    const sw = env('failover.switched', { from: 'wan', to: '4g', kind: 'failover', reason: 'wan down', at: 1 });
    const e: WireEvent | null = readEvent(sw);
    assert.ok(e);
    // The union narrows on name: `e.payload.to` only type-checks inside this branch.
    if (e.name === 'failover.switched') assert.equal(e.payload.to, '4g');
    const broken = env('telephony.mode', { from: 'cloud', to: 'survivable', reason: 'x', handsets: 3, callsInProgress: 0, at: 1 });
    assert.equal(readEvent(broken), null, 'a payload missing a field reads as untyped');
    assert.equal(readEvent(env('widget.frobbed', { x: 1 })), null, 'a name this contract does not know (a newer agent) reads as untyped');
    for (const m of [sw, broken, env('widget.frobbed', { x: 1 })]) assert.ok(Value.Check(EventSchema, m), 'and the fleet still ingests it (event.json)');
    assert.ok(Value.Check(WireEventSchema, sw));
    assert.ok(!Value.Check(WireEventSchema, broken));
  });

  it('heartbeat (v1.3) and the optional telemetry trigger/changed', () => {
    assert.ok(Value.Check(HeartbeatSchema, { at: 1, bootId: 'b', reportId: ulid(), reportAt: 1 }));
    assert.ok(Value.Check(HeartbeatSchema, { at: 1, bootId: 'b', reportId: null, reportAt: null }));
    assert.ok(!Value.Check(HeartbeatSchema, { at: 1, bootId: 'b', reportId: 'nope', reportAt: 1 }));
    assert.equal(topicFor('surgery-edge/v1', 'P81001-01', 'heartbeat'), 'surgery-edge/v1/P81001-01/heartbeat');
    const system = { cpuLoadPct: 1, loadAvg1: 0.1, memUsedPct: 2, memTotalBytes: 3, disks: [], cpuTempC: null, throttled: null, uptimeS: 5 };
    const base = { id: ulid(), at: 1, bootId: 'b', activeUplink: '4g', activeKind: 'cellular', system, capabilities: {} };
    assert.ok(Value.Check(TelemetrySchema, { ...base, trigger: 'change', changed: ['failover.active'] }));
    assert.ok(Value.Check(TelemetrySchema, base), 'older agents leave both out');
    assert.ok(!Value.Check(TelemetrySchema, { ...base, trigger: 'whim' }));
  });

  it('roots every topic at <prefix>/<deviceId>/', () => {
    assert.equal(topicFor('surgery-edge/v1', 'P81001-01', 'configDesired'), 'surgery-edge/v1/P81001-01/config/desired');
  });

  it('accepts the documented examples and refuses wrong shapes', () => {
    assert.ok(Value.Check(StateSchema, { online: true, bootId: 'b', bdSeq: 3, version: '0.1.0', configRevision: 2, at: 1 }));
    assert.ok(Value.Check(StateSchema, { online: false, bootId: 'b', bdSeq: 3 }));
    assert.ok(!Value.Check(StateSchema, { online: 'yes', bootId: 'b', bdSeq: 3 }));
    assert.ok(Value.Check(EventSchema, { id: ulid(), name: 'failover.switched', at: 1, bootId: 'b', payload: { to: 'lte' } }));
    assert.ok(!Value.Check(EventSchema, { id: 'not-a-ulid', name: 'x', at: 1, bootId: 'b', payload: null }));
    assert.ok(Value.Check(ConfigDesiredSchema, { revision: 1, config: {} }));
    assert.ok(!Value.Check(ConfigDesiredSchema, { revision: 0, config: {} }));
    assert.ok(Value.Check(CommandRequestSchema, { command: 'ping' }));
    assert.ok(!Value.Check(CommandRequestSchema, { command: 7 }));
    const system = { cpuLoadPct: 1, loadAvg1: 0.1, memUsedPct: 2, memTotalBytes: 3, disks: [], cpuTempC: null, throttled: null, uptimeS: 5 };
    assert.ok(Value.Check(TelemetrySchema, { id: ulid(), at: 1, bootId: 'b', activeUplink: null, activeKind: null, system, capabilities: {} }));
    assert.ok(!Value.Check(TelemetrySchema, { id: ulid(), at: 1, bootId: 'b', activeUplink: null, activeKind: 'satellite', system, capabilities: {} }));
  });
});
