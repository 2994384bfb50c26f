import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Capability, Health } from '../../../agent/src/core/capability.js';
import { AppError } from '../../../common/errors.js';
import { runCommand, type CommandHost } from '../../../agent/src/telemetry/commands.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';

const host = (ctx: TestCtx): CommandHost => ({ ctx, handleDesired: async () => ({}), after: () => {} });
const run = (ctx: TestCtx, body: unknown) => runCommand(host(ctx), Buffer.from(JSON.stringify(body)), 65536, false);

describe('telemetry command force-uplink (added within contract v1)', () => {
  it('calls failover.force like the status page, validates args, and says UNAVAILABLE / NOT_FOUND', async () => {
    const ctx = createTestCtx();
    try {
      assert.equal((await run(ctx, { command: 'force-uplink', args: { uplink: '4g' } })).error?.code, 'UNAVAILABLE');
      const calls: [string | null, number][] = [];
      (ctx.capabilities.list() as Capability[]).push(
        Object.assign(
          { name: 'failover', start: async () => {}, stop: async () => {}, health: (): Health => ({ status: 'ok', summary: '' }) },
          {
            force: (u: string | null, ms: number) => {
              if (u !== null && u !== '4g' && u !== 'wan') throw new AppError('NOT_FOUND', `no uplink named ${u}`);
              calls.push([u, ms]);
            },
          },
        ),
      );
      const ok = await run(ctx, { command: 'force-uplink', args: { uplink: '4g', minutes: 30 } });
      assert.equal(ok.ok, true);
      assert.deepEqual((ok.result as { uplink: string }).uplink, '4g');
      const clear = await run(ctx, { command: 'force-uplink', args: { uplink: null } });
      assert.deepEqual((clear.result as { until: unknown }).until, null);
      assert.deepEqual(calls, [
        ['4g', 30 * 60_000],
        [null, 60 * 60_000],
      ]);
      assert.equal((await run(ctx, { command: 'force-uplink', args: { uplink: 'moon' } })).error?.code, 'NOT_FOUND');
      assert.equal((await run(ctx, { command: 'force-uplink', args: { uplink: '4g', minutes: 0 } })).error?.code, 'BAD_REQUEST');
      assert.equal((await run(ctx, { command: 'force-uplink', args: {} })).error?.code, 'BAD_REQUEST', 'uplink is required (null to clear)');
      assert.equal(calls.length, 2);
    } finally {
      ctx.cleanup();
    }
  });
});
