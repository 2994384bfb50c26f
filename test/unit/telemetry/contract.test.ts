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
  StateSchema,
  TelemetrySchema,
  topicFor,
} from '../../../contract/mqtt.js';
import { ulid } from '../../../agent/src/core/ids.js';
import { reportsMarkdown } from '../../../contract/docs.js';
import { readReport, reportProblems } from '../../../contract/read.js';
import { report } from '../../helpers/reports.js';

const DIR = resolve(import.meta.dirname, '../../../docs/schemas/mqtt');

describe('MQTT contract', () => {
  it('the committed docs/schemas/mqtt files are exactly what the code validates with (run `surgery-edge mqtt-schemas docs/schemas/mqtt`)', () => {
    const gen = contractJsonSchemas();
    assert.deepEqual(readdirSync(DIR).filter((f) => f.endsWith('.json')).sort(), Object.keys(gen).sort());
    for (const [file, schema] of Object.entries(gen)) assert.deepEqual(JSON.parse(readFileSync(join(DIR, file), 'utf8')), schema, file);
    assert.equal(readFileSync(join(DIR, '..', '..', 'mqtt-reports.md'), 'utf8'), reportsMarkdown() + '\n', 'docs/mqtt-reports.md is generated from contract/reports/');
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
