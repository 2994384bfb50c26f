import type { FleetCtx } from '../ctx.js';
import { publishDesired } from './engine.js';

export interface ReloadOutcome {
  sent: string[];
  skipped: string[];
  failed: string[];
}

/**
 * "Reload config": publish each device's stored desired document again (same revision, retained).
 * A device that already runs it reports `current` and does nothing; one that missed it (a broker
 * that lost its retained store, an appliance reset to its local file) applies it. Never a new
 * revision: changing config is what rollouts are for. Audited per device.
 */
export async function reloadDesired(ctx: FleetCtx, user: string, deviceIds: string[]): Promise<ReloadOutcome> {
  const out: ReloadOutcome = { sent: [], skipped: [], failed: [] };
  for (const id of deviceIds) {
    const d = await ctx.store.config.desired(id);
    const at = ctx.clock.now();
    if (!d) {
      out.skipped.push(id);
      continue;
    }
    let outcome = 'ok';
    let detail: string | null = `revision ${d.revision}`;
    try {
      await publishDesired(ctx, id, d.revision, d.doc);
      out.sent.push(id);
    } catch (e) {
      outcome = 'failed';
      detail = `not sent: ${(e as Error).message}`;
      out.failed.push(id);
    }
    await ctx.store.accounts.audit({
      at,
      username: user,
      device_id: id,
      action: 'reload-config',
      args: JSON.stringify({ revision: d.revision }),
      outcome,
      detail,
    });
  }
  return out;
}
