import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Capability, Health } from '../../../agent/src/core/capability.js';
import { TelemetryCapability } from '../../../agent/src/telemetry/telemetry.js';
import { createTestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeSystemInfo } from '../../helpers/fake-system-info.js';

/** fleetDetails() reaches the MQTT telemetry report (the fleet's device page), merged into details. */
describe('fleet-only details in the telemetry report', () => {
  it('the set-up code rides in setup.details.setupCode of the report, not in health()', async () => {
    const clock = new FakeClock();
    const ctx = createTestCtx({ clock, config: { telemetry: { enabled: true, brokers: ['mqtt://127.0.0.1:1'], intervalMs: 10_000 } } });
    const cap = new TelemetryCapability({ systemInfo: new FakeSystemInfo() });
    const setup: Capability = {
      name: 'setup',
      start: async () => {},
      stop: async () => {},
      health: (): Health => ({ status: 'degraded', summary: 'not set up', details: { setUp: false, required: true, codeIssued: true, lines: [] } }),
      fleetDetails: () => ({ setupCode: 'ABCDE-12345' }),
    };
    (ctx.capabilities.list() as Capability[]).push(cap, setup);
    try {
      await cap.start(ctx);
      await clock.advance(10_000);
      const rows = ctx.db.prepare("SELECT payload FROM telemetry_outbox WHERE kind = 'telemetry'").all() as { payload: string }[];
      assert.equal(rows.length, 1);
      const msg = JSON.parse(rows[0]!.payload);
      assert.deepEqual(msg.capabilities.setup.details, { setUp: false, required: true, codeIssued: true, lines: [], setupCode: 'ABCDE-12345' });
      assert.equal(JSON.stringify(ctx.capabilities.health()).includes('ABCDE-12345'), false);
      assert.equal(JSON.stringify(ctx.logged).includes('ABCDE-12345'), false, 'never logged');
    } finally {
      await cap.stop();
      ctx.cleanup();
    }
  });
});
