import type { CapabilityName } from '../../../contract/reports/index.js';
import type { Capability, CapabilityRegistry, Health, HealthMap, TypedCapability } from './capability.js';
import { describeError } from '../../../common/errors.js';

/**
 * The running capabilities by name: the agent's registry, and the one tests and the demo use.
 * health() never throws: a capability whose health() throws, or one that failed to start, reads
 * as failed with the reason.
 */
export class CapabilitySet implements CapabilityRegistry {
  private readonly failed = new Map<string, Health>();

  constructor(private readonly caps: readonly Capability[]) {}

  list(): readonly Capability[] {
    return this.caps;
  }

  get<K extends CapabilityName>(name: K): TypedCapability<K> | undefined {
    // Sound for the agent's own set: capabilities.ts builds each name from a constructor typed
    // TypedCapability<name> and checks the built capability's name.
    return this.caps.find((c) => c.name === name) as TypedCapability<K> | undefined;
  }

  markFailed(name: string, h: Health): void {
    this.failed.set(name, h);
  }

  clearFailed(name: string): void {
    this.failed.delete(name);
  }

  health(): HealthMap {
    const out: HealthMap = {};
    for (const c of this.caps) {
      try {
        out[c.name] = this.failed.get(c.name) ?? c.health();
      } catch (e) {
        out[c.name] = { status: 'failed', summary: `health check threw: ${describeError(e).message}` };
      }
    }
    return out;
  }
}
