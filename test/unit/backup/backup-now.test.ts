import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BackupCapability } from '../../../agent/src/backup/backup.js';
import type { Capability, Health } from '../../../agent/src/core/capability.js';
import { runCommand, type CommandHost } from '../../../agent/src/telemetry/commands.js';
import { createTestCtx, type TestCtx } from '../../helpers/ctx.js';

const uplink = (name: string, priority: number, kind: 'wired' | 'cellular') => ({ name, interface: `${name}0`, kind, priority, table: 100 + priority });
const run = (ctx: TestCtx, body: unknown) =>
  runCommand({ ctx, handleDesired: async () => ({}), after: () => {} } as CommandHost, Buffer.from(JSON.stringify(body)), 65536, false);
const stand = (name: string, details: () => Record<string, unknown>): Capability => ({
  name,
  start: async () => {},
  stop: async () => {},
  health: (): Health => ({ status: 'ok', summary: '', details: details() }),
});

/** The MQTT command backup-now (contract v1.3) against the real BackupCapability; the CLI path is in test/integration/backup/backup-fleet.test.ts. */
describe('backup-now command: clear errors', () => {
  async function box(backup: Record<string, unknown>, key: string | null, state = { active: 'wan', pending: 0 }) {
    const ctx = createTestCtx({
      config: {
        uplinks: [uplink('wan', 1, 'wired'), uplink('4g', 2, 'cellular')],
        backup: { repository: '/srv/backup', resticPath: '/nonexistent/restic', ...backup },
      },
    });
    if (key !== null) writeFileSync(join(ctx.config.paths.stateDir, 'backup.key'), key, { mode: 0o600 });
    const cap = new BackupCapability();
    (ctx.capabilities.list() as Capability[]).push(
      stand('failover', () => ({ active: state.active })),
      stand('records', () => ({ pendingCaptures: state.pending })),
      cap,
    );
    await cap.start(ctx);
    return { ctx, cap, state };
  }

  it('UNAVAILABLE without the capability, with backup off, and with no key; BAD_REQUEST for a non-boolean force', async () => {
    const bare = createTestCtx();
    try {
      assert.equal((await run(bare, { command: 'backup-now' })).error?.code, 'UNAVAILABLE');
    } finally {
      bare.cleanup();
    }
    const off = await box({ enabled: false }, 'k'.repeat(43));
    try {
      const r = await run(off.ctx, { command: 'backup-now' });
      assert.equal(r.error?.code, 'UNAVAILABLE');
      assert.match(r.error?.message ?? '', /not configured on this box/);
      assert.equal((await run(off.ctx, { command: 'backup-now', args: { force: 1 } })).error?.code, 'BAD_REQUEST');
    } finally {
      await off.cap.stop();
      off.ctx.cleanup();
    }
    const nokey = await box({ enabled: true }, null);
    try {
      const r = await run(nokey.ctx, { command: 'backup-now', args: { force: true } });
      assert.equal(r.error?.code, 'UNAVAILABLE');
      assert.match(r.error?.message ?? '', /backup cannot run: no backup key at .*backup\.key/);
    } finally {
      await nokey.cap.stop();
      nokey.ctx.cleanup();
    }
  });

  it('on 4G: refused (CONFLICT) unless a capture is pending or force; on the primary link accepted as is', async () => {
    const b = await box({ enabled: true }, 'k'.repeat(43), { active: '4g', pending: 0 });
    try {
      const refused = await run(b.ctx, { command: 'backup-now', args: {} });
      assert.equal(refused.error?.code, 'CONFLICT');
      assert.match(refused.error?.message ?? '', /not on the primary link \(4g active\) and no capture pending/);
      b.state.pending = 1;
      const pending = await run(b.ctx, { command: 'backup-now' });
      assert.equal(pending.ok, true);
      assert.deepEqual(pending.result, { accepted: true, alreadyRunning: false, forced: false, link: 'capture pending: using the backup link' });
      await b.cap.stop();
      b.state.pending = 0;
      await b.cap.start(b.ctx);
      // Two requests in the same tick: the second finds the first running.
      const [forced, again] = await Promise.all([
        run(b.ctx, { command: 'backup-now', args: { force: true } }),
        run(b.ctx, { command: 'backup-now', args: { force: true } }),
      ]);
      assert.equal(forced.ok, true);
      assert.equal((forced.result as { alreadyRunning: boolean }).alreadyRunning, false);
      assert.equal((forced.result as { forced: boolean }).forced, true);
      assert.match((forced.result as { link: string }).link, /^forced: not on the primary link/);
      assert.equal((again.result as { alreadyRunning: boolean }).alreadyRunning, true, 'a second request while one runs queues one more');
      await b.cap.stop();
      b.state.active = 'wan';
      await b.cap.start(b.ctx);
      const primary = await run(b.ctx, { command: 'backup-now' });
      assert.deepEqual(primary.result, { accepted: true, alreadyRunning: false, forced: false, link: 'primary link' });
    } finally {
      await b.cap.stop();
      b.ctx.cleanup();
    }
  });
});
