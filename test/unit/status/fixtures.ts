/**
 * Fake capabilities for status page tests: health() returns the contract shapes (contracts.md)
 * and the fake failover switches like the real one would (health changes, then the event).
 */
import type { Capability, CapabilityRegistry, DrillStep, Health } from '../../../agent/src/core/capability.js';
import { CapabilitySet } from '../../../agent/src/core/capability-set.js';
import type { CellularReport, FailoverReport, RecordsReport, TelemetryReport } from '../../../contract/reports/index.js';
import { healthOf } from '../../helpers/reports.js';
import type { EventBus } from '../../../agent/src/core/bus.js';

export class FakeCap implements Capability {
  constructor(
    readonly name: string,
    public h: Health,
    public steps?: DrillStep[],
  ) {
    if (steps) this.drillSteps = () => this.steps!;
  }
  drillSteps?: () => DrillStep[];
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  health(): Health {
    return this.h;
  }
}

type Uplink = FailoverReport['uplinks'][number];

export function uplinks(wan: Uplink['state'], lte: Uplink['state']): Uplink[] {
  return [
    {
      name: 'wan',
      label: 'wan',
      dns: 'ok',
      kind: 'wired',
      interface: 'wan0',
      state: wan,
      latencyMs: wan === 'down' ? null : 12.4,
      lossPct: wan === 'down' ? 100 : 0,
      since: 0,
      reason: '',
    },
    {
      name: 'lte',
      label: 'lte',
      dns: 'ok',
      kind: 'cellular',
      interface: 'wwan0',
      state: lte,
      latencyMs: lte === 'down' ? null : 48,
      lossPct: lte === 'down' ? 100 : 1,
      since: 0,
      reason: '',
    },
  ];
}

export function failoverHealth(active: string | null, since: number | null, wan: Uplink['state'], lte: Uplink['state']): Health<FailoverReport> {
  return healthOf('failover', { active, since, uplinks: uplinks(wan, lte) }, active === 'wan' ? 'ok' : 'degraded', active ? `on ${active}` : 'no uplink');
}

export const cellularHealth = (): Health<CellularReport> => healthOf('cellular', { modem: 'registered' }, 'ok', '4G registered');

export const telemetryHealth = (): Health<TelemetryReport> =>
  healthOf('telemetry', { connected: true, outboxDepth: 3, lastPublishAt: Date.parse('2026-11-27T10:29:00Z') }, 'ok', 'connected');

export const recordsHealth = (asOf: number): Health<RecordsReport> =>
  healthOf('records', { asOf, stale: false, patients: 120, appointments: 80, lines: ['120 patients'] }, 'ok', 'cache fresh');

/** A failover the status page can watch switch: health first, then the bus event (as the real one does). */
export class FakeFailover extends FakeCap {
  forced: Array<{ uplink: string | null; ms: number }> = [];
  constructor(private readonly bus: () => EventBus) {
    super('failover', failoverHealth('wan', Date.parse('2026-11-27T08:00:00Z'), 'up', 'up'));
  }
  force(uplink: string | null, durationMs: number): void {
    this.forced.push({ uplink, ms: durationMs });
  }
  switchTo(active: string | null, at: number, wan: Uplink['state'], lte: Uplink['state']): void {
    const from = (this.h.details as { active: string | null }).active;
    this.h = failoverHealth(active, at, wan, lte);
    this.bus().emit('failover.switched', {
      from,
      to: active,
      kind: active === 'wan' ? 'failback' : active ? 'failover' : 'none-available',
      reason: 'test',
      at,
    });
  }
}

export function registry(caps: Capability[]): CapabilityRegistry {
  return new CapabilitySet(caps);
}
