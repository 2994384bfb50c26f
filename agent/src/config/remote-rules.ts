import type { ConfigProblem } from './load.js';
import type { Config } from './schema.js';

/**
 * The rules a remote config must pass beyond the schema, on the device and (before anything is
 * published) in the fleet manager, which imports this: one rule set, two places.
 */
export function remoteConfigProblems(config: Config, deviceId: string): ConfigProblem[] {
  // A config that would cut the device off from the fleet is refused: nobody could undo it remotely.
  if (!config.telemetry.enabled || config.telemetry.brokers.length === 0)
    return [{ path: '/telemetry', message: 'a remote config must keep telemetry enabled with at least one broker' }];
  if (config.site.deviceId !== deviceId) return [{ path: '/site/deviceId', message: 'a remote config cannot change the device id' }];
  return [];
}
