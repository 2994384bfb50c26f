import { validateConfig, type ConfigProblem } from '../config/load.js';
import { redactSecrets } from '../config/redact.js';
import type { Config } from '../config/schema.js';
import type { Ctx } from '../core/capability.js';
import { describeError } from '../../../common/errors.js';
import { ConfigDesiredSchema, schemaProblems, type ConfigReported } from '../../../contract/mqtt.js';

export type DesiredOutcome =
  | { status: 'current' }
  | { status: 'ignored' | 'rejected'; reasons: ConfigProblem[] }
  | { status: 'applying'; revision: number; config: Config; apply: () => Promise<void> };

export { remoteConfigProblems } from '../config/remote-rules.js';
import { remoteConfigProblems } from '../config/remote-rules.js';

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
  const refused = remoteConfigProblems(r.config, ctx.config.site.deviceId);
  if (refused.length) return { status: 'rejected', reasons: refused };
  return {
    status: 'applying',
    revision: desired.revision,
    config: r.config,
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
  config?: Config,
): ConfigReported {
  // The config in force (secrets redacted) lets the fleet show a field-by-field diff; optional in v1.
  return {
    appliedRevision,
    lastDesiredRevision,
    status,
    reasons,
    at,
    ...(config ? { config: redactSecrets(config) as unknown as Record<string, unknown> } : {}),
  };
}

export function applyFailure(e: unknown): ConfigProblem[] {
  const d = describeError(e);
  const problems = (e as { details?: { problems?: ConfigProblem[] } }).details?.problems;
  return problems?.length ? problems : [{ path: '/', message: `${d.code}: ${d.message}` }];
}
