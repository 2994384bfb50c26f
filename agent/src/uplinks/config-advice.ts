import type { ConfigProblem } from '../config/load.js';
import type { Config } from '../config/schema.js';

/**
 * Advice on uplink probe sets: valid configs that will mislead the agent. Warnings, not errors
 * (the agent runs with them): `check-config` prints them and the uplinks capability logs them.
 *
 * Why: an uplink is judged on a quorum of its targets, so the quorum must not share one way to
 * fail. Where an ISP filters ICMP, an ICMP-only set fails every probe at once and the line is
 * "down" within ~1.2 s though it carries traffic (issue 20); one target address is one server's
 * outage taken for the line's; without a dns target, names not resolving go unreported.
 */
export function uplinkConfigWarnings(c: Pick<Config, 'uplinks'>): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  c.uplinks.forEach((u, i) => {
    const path = `/uplinks/${i}/probes`;
    const targets = u.probes.targets;
    if (!targets.length) {
      out.push({ path: `${path}/targets`, message: `uplink ${u.name}: no probe targets, so it is never proven up and never carries traffic` });
      return;
    }
    const kinds = [...new Set(targets.map((t) => t.kind))];
    const hosts = [...new Set(targets.map((t) => t.host))];
    if (targets.length > 1 && kinds.length === 1)
      out.push({
        path: `${path}/targets`,
        message:
          `uplink ${u.name}: every probe is ${kinds[0]}; where that protocol is filtered or answered by a middlebox the line looks down (or ` +
          `up) as one. Mix kinds, e.g. tcp + http + dns (+ icmp)`,
      });
    if (hosts.length === 1)
      out.push({
        path: `${path}/targets`,
        message: `uplink ${u.name}: every probe goes to ${hosts[0]}; that one server's outage would look like the line's. Use 3 or more different addresses`,
      });
    else if (hosts.length === 2)
      out.push({ path: `${path}/targets`, message: `uplink ${u.name}: only 2 target addresses; a quorum needs 3 or more different addresses to outvote one` });
    if (!kinds.includes('dns'))
      out.push({
        path: `${path}/targets`,
        message:
          `uplink ${u.name}: no dns target, so DNS not answering through this line goes unreported. Add the resolver the practice uses, e.g. { ` +
          `kind: dns, host: <resolver address>, query: nhs.uk }`,
      });
    if (u.probes.degradedLatencyMs !== undefined)
      out.push({ path: `${path}/degradedLatencyMs`, message: 'degradedLatencyMs is the old name of slowLatencyMs (still honoured); rename it' });
  });
  return out;
}
