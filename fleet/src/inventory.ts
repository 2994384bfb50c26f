import type { FleetConfig } from './config.js';
import type { Placement } from './store/types.js';

/**
 * Which practice (ODS code) and PCN each device serves. The config's inventory wins; otherwise the
 * id's convention (provisioning names devices <ODS>-<nn>, e.g. P81001-01) gives the practice.
 */
export class Inventory {
  private readonly byId = new Map<string, Placement>();
  private readonly configured = new Set<string>();
  constructor(entries: FleetConfig['inventory']) {
    for (const e of entries)
      this.byId.set(e.deviceId, { practice: e.practice, practiceName: e.practiceName ?? null, pcn: e.pcn ?? null, clinicalSystem: e.clinicalSystem ?? null });
    for (const e of entries) this.configured.add(e.deviceId);
  }
  /** A box claimed in the dashboard (claim/claims.ts): its practice and the name typed there, unless the config lists it. */
  claimed(id: string, practice: string, practiceName: string | null): void {
    if (!this.configured.has(id)) this.byId.set(id, { practice, practiceName: practiceName || null, pcn: null, clinicalSystem: null });
  }
  place = (id: string): Placement => this.byId.get(id) ?? { practice: id.replace(/-[^-]*$/, '') || id, practiceName: null, pcn: null, clinicalSystem: null };
  listed(): [string, Placement][] {
    return [...this.byId.entries()];
  }
}
