import { validateConfig, type ConfigProblem } from '../config/load.js';
import type { Ctx } from '../core/capability.js';
import { describeError } from '../core/errors.js';
import { ConfigDesiredSchema, schemaProblems, type ConfigReported } from './contract.js';

export type DesiredOutcome =
  | { status: 'current' }
  | { status: 'ignored' | 'rejected'; reasons: ConfigProblem[] }
  | { status: 'applying'; revision: number; apply: () => Promise<void> };

/**
 * Desired/reported config, after AWS IoT Device Shadow: the fleet sends a versioned desired
 * document; a revision at or below the applied one is ignored (a stale retained message or a replay);
 * an invalid one is rejected with every reason and the last good config stays in force.
 */
export function judgeDesired(ctx: Ctx, raw: unknown): DesiredOutcome {
  const problems = schemaProblems(ConfigDesiredSchema, raw);
  if (problems.length) return { status: 'rejected', reasons: problems };
  const desired = raw as { revision: number; config: Record<string, unknown> };
  const applied = ctx.config.revision;
  if (desired.revision === applied) return { status: 'current' };
  if (desired.revision < applied)
    return { status: 'ignored', reasons: [{ path: '/revision', message: `revision ${desired.revision} is not newer than applied ${applied}` }] };
  const doc = { ...desired.config, revision: desired.revision };
  const r = validateConfig(doc);
  if (!r.ok) return { status: 'rejected', reasons: r.problems };
  // A config that would cut the device off from the fleet is refused: nobody could undo it remotely.
  if (!r.config.telemetry.enabled || r.config.telemetry.brokers.length === 0)
    return { status: 'rejected', reasons: [{ path: '/telemetry', message: 'a remote config must keep telemetry enabled with at least one broker' }] };
  if (r.config.site.deviceId !== ctx.config.site.deviceId)
    return { status: 'rejected', reasons: [{ path: '/site/deviceId', message: 'a remote config cannot change the device id' }] };
  return {
    status: 'applying',
    revision: desired.revision,
    apply: async () => {
      await ctx.control.reconfigure(doc, 'remote');
    },
  };
}

export function reportedDoc(
  appliedRevision: number,
  lastDesiredRevision: number | null,
  status: ConfigReported['status'],
  reasons: ConfigProblem[],
  at: number,
): ConfigReported {
  return { appliedRevision, lastDesiredRevision, status, reasons, at };
}

export function applyFailure(e: unknown): ConfigProblem[] {
  const d = describeError(e);
  const problems = (e as { details?: { problems?: ConfigProblem[] } }).details?.problems;
  return problems?.length ? problems : [{ path: '/', message: `${d.code}: ${d.message}` }];
}
