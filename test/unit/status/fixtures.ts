/**
 * Fake capabilities for status page tests: health() returns the contract shapes (contracts.md)
 * and the fake failover switches like the real one would (health changes, then the event).
 */
import type { Capability, CapabilityRegistry, DrillStep, Health } from '../../../agent/src/core/capability.js';
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

type Uplink = { name: string; kind: 'wired' | 'cellular' | 'wifi'; interface: string; state: 'unknown' | 'up' | 'degraded' | 'down'; latencyMs: number | null; lossPct: number | null; since: number; reason: string };

export function uplinks(wan: Uplink['state'], lte: Uplink['state']): Uplink[] {
  return [
    { name: 'wan', kind: 'wired', interface: 'wan0', state: wan, latencyMs: wan === 'down' ? null : 12.4, lossPct: wan === 'down' ? 100 : 0, since: 0, reason: '' },
    { name: 'lte', kind: 'cellular', interface: 'wwan0', state: lte, latencyMs: lte === 'down' ? null : 48, lossPct: lte === 'down' ? 100 : 1, since: 0, reason: '' },
  ];
}

export function failoverHealth(active: string | null, since: number | null, wan: Uplink['state'], lte: Uplink['state']): Health {
  return {
    status: active === 'wan' ? 'ok' : 'degraded',
    summary: active ? `on ${active}` : 'no uplink',
    details: { active, since, reason: 'test', holdDownMs: 60000, uplinks: uplinks(wan, lte), lines: [] },
  };
}

export const cellularHealth = (): Health => ({
  status: 'ok',
  summary: '4G registered',
  details: {
    modem: 'registered',
    operator: 'EE',
    accessTech: 'lte',
    signal: { rsrp: -95, rsrq: -10, sinr: 12, quality: 70 },
    usage: { usedBytes: 1.2e9, allowanceBytes: 20e9, usedPct: 6, cycleStart: 0 },
    lines: ['modem registered on EE'],
  },
});

export const telemetryHealth = (): Health => ({
  status: 'ok',
  summary: 'connected',
  details: { connected: true, broker: 'mqtts://broker.icb.invalid', outboxDepth: 3, lastPublishAt: Date.parse('2026-11-27T10:29:00Z'), lines: [] },
});

export const recordsHealth = (asOf: number): Health => ({
  status: 'ok',
  summary: 'cache fresh',
  details: { asOf, stale: false, patients: 120, appointments: 80, locked: false, sync: { running: false, done: 0, total: 0, lastError: null }, pendingCaptures: 0, lines: ['120 patients'] },
});

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
    this.bus().emit('failover.switched', { from, to: active, kind: active === 'wan' ? 'failback' : active ? 'failover' : 'none-available', reason: 'test', at });
  }
}

export function registry(caps: Capability[]): CapabilityRegistry {
  return {
    list: () => caps,
    get: <T extends Capability>(n: string) => caps.find((c) => c.name === n) as T | undefined,
    health: () => Object.fromEntries(caps.map((c) => [c.name, c.health()])) as Record<string, Health>,
  };
}
