import type { TelemetryMessage } from '../../../contract/mqtt.js';
import { readReport } from '../../../contract/read.js';
import type { CapabilityName, Reports } from '../../../contract/reports/index.js';

/** The meaningful part of one telemetry sample, flattened: `failover.active` -> '4g'. */
export type Flat = Record<string, string | number | boolean | null>;

/**
 * What counts as a meaningful change on 4G (docs/mqtt-contract.md, "Telemetry on 4G"): states,
 * routes and health statuses as they are; figures only by the band they sit in, so a full report
 * goes out when a threshold is crossed and not when a counter ticks. Bands have hysteresis
 * (`margin`): a value must pass an edge by the margin to leave the band the last report was in,
 * so a figure wobbling on an edge does not send a report each check. Anything left out here
 * (latency, call counts, sync times, uptime, summaries) still reaches the fleet in the full report
 * sent at least every `cellularFullEveryMs`.
 */
export class Fields {
  readonly out: Flat = {};
  constructor(private readonly prev: Flat | null) {}

  set(key: string, v: string | number | boolean | null | undefined): void {
    this.out[key] = v ?? null;
  }

  /** The index of the band `v` is in (edges ascending), kept at the previous band within `margin` of its edges. */
  band(key: string, v: number | null | undefined, edges: readonly number[], margin: number): void {
    if (v === null || v === undefined || !Number.isFinite(v)) return this.set(key, null);
    const p = this.prev?.[key];
    this.set(key, bandOf(v, edges, margin, typeof p === 'number' ? p : undefined));
  }

  /** Counters by power of two: 0, 1, 2-3, 4-7, ... (the bucket's lower bound). */
  count(key: string, n: number | null | undefined): void {
    this.set(key, n === null || n === undefined ? null : n <= 0 ? 0 : 2 ** Math.floor(Math.log2(n)));
  }
}

export function bandOf(v: number, edges: readonly number[], margin: number, prev?: number): number {
  let b = edges.filter((e) => v >= e).length;
  if (prev === undefined || b === prev) return b;
  if (b > prev) while (b > prev && v < edges[b - 1]! + margin) b--;
  else while (b < prev && v >= edges[b]! - margin) b++;
  return b;
}

type Projection<K extends CapabilityName> = (r: Reports[K], f: Fields, p: string) => void;

/** Per capability report (contract/reports/): the fields whose change is worth a report on 4G. */
const PROJECT: { [K in CapabilityName]: Projection<K> } = {
  uplinks: (r, f, p) => {
    for (const u of r.uplinks) {
      f.set(`${p}.${u.name}.state`, u.state);
      f.set(`${p}.${u.name}.carrier`, u.carrier);
      f.set(`${p}.${u.name}.dns`, u.dns);
      f.set(`${p}.${u.name}.address`, u.address);
    }
  },
  failover: (r, f, p) => {
    f.set(`${p}.active`, r.active);
    f.set(`${p}.forced`, r.forced ? (r.forced.uplink ?? 'automatic') : null);
    f.set(`${p}.failbackPending`, r.failbackAt !== null);
    for (const u of r.uplinks) f.set(`${p}.${u.name}.state`, u.state);
    f.set(
      `${p}.dnsForwarder`,
      r.dnsForwarder ? `${r.dnsForwarder.listening ?? '-'} via ${r.dnsForwarder.via ?? '-'}${r.dnsForwarder.error ? ' error' : ''}` : null,
    );
  },
  cellular: (r, f, p) => {
    f.set(`${p}.modem`, r.modem);
    f.set(`${p}.operator`, r.operator);
    f.set(`${p}.accessTech`, r.accessTech);
    f.set(`${p}.interface`, r.interface);
    // RSRP bands as phones draw bars: < -120 none, -120..-105 poor, -105..-90 fair, >= -90 good.
    f.band(`${p}.signal`, r.signal.rsrp, [-120, -105, -90], 3);
    f.band(`${p}.usedPct`, r.usage.usedPct, [50, 75, 90, 95, 100], 0.5);
    f.set(`${p}.cycleStart`, r.usage.cycleStart);
    f.set(`${p}.policy`, `${r.policy.nonCritical}${r.policy.applied ? '' : ' not-applied'}${r.policy.lastError ? ' error' : ''}`);
  },
  wifi: (r, f, p) => {
    f.set(`${p}.connected`, r.connected);
    f.set(`${p}.ssid`, r.ssid);
    f.band(`${p}.rssi`, r.rssi, [-80, -70, -60], 3);
  },
  telephony: (r, f, p) => {
    f.set(`${p}.mode`, r.mode);
    f.set(`${p}.pbxReachable`, r.pbxReachable);
    f.set(`${p}.uplinkDown`, r.uplinkDown);
    f.set(`${p}.outsideCalls`, r.outsideCalls);
    f.set(`${p}.emergencyRoute`, r.emergencyRoute);
    f.set(`${p}.problem`, r.problem);
    f.count(`${p}.registered`, r.registered);
    f.set(`${p}.restarts`, r.restarts);
  },
  records: (r, f, p) => {
    f.set(`${p}.stale`, r.stale);
    f.set(`${p}.locked`, r.locked);
    f.set(`${p}.provisioned`, r.provisioned ?? true);
    f.set(`${p}.syncError`, r.sync.lastError !== null);
    f.count(`${p}.pendingCaptures`, r.pendingCaptures);
  },
  telemetry: (r, f, p) => {
    f.set(`${p}.connected`, r.connected);
    f.set(`${p}.broker`, r.broker);
    f.band(`${p}.outboxDepth`, r.outboxDepth, [10, 100, 1000, 10_000], 0);
  },
  update: (r, f, p) => {
    for (const k of ['phase', 'version', 'target', 'booted', 'active', 'armed', 'trial', 'floorVersion'] as const) f.set(`${p}.${k}`, r[k]);
    f.set(`${p}.unmet`, r.unmet.join(','));
    f.set(`${p}.error`, r.error?.code ?? null);
    f.band(`${p}.progress`, r.progress && r.progress.total > 0 ? (100 * r.progress.bytes) / r.progress.total : null, [25, 50, 75, 100], 0);
  },
  enrolment: (r, f, p) => {
    for (const k of ['enrolled', 'required', 'subject', 'issuer', 'notAfter', 'tpmSealed', 'claimState'] as const) f.set(`${p}.${k}`, r[k]);
  },
  drills: (r, f, p) => {
    f.set(`${p}.last`, r.last ? `${r.last.id} ${r.last.passed ? 'passed' : 'failed'}` : null);
    f.set(`${p}.running`, r.running);
  },
  status: (r, f, p) => f.set(`${p}.url`, r.url),
  backup: (r, f, p) => {
    for (const k of ['running', 'lastSnapshotId', 'lastAttemptOk', 'deferred', 'stale', 'keyProblem'] as const) f.set(`${p}.${k}`, r[k]);
    f.set(`${p}.error`, r.lastError !== null);
  },
  setup: (r, f, p) => {
    for (const k of ['setUp', 'required', 'codeIssued', 'setupCode'] as const) f.set(`${p}.${k}`, r[k]);
  },
};

function project<K extends CapabilityName>(name: K, details: unknown, f: Fields): void {
  const r = readReport(name, details);
  // A report that does not match its schema counts by its status alone (set by the caller).
  if (r) PROJECT[name](r, f, name);
}

const isContract = (name: string): name is CapabilityName => Object.hasOwn(PROJECT, name);

/**
 * The meaningful fields of one sample. `prev` is what the last full report read as (for the bands'
 * hysteresis). Capabilities outside the contract (a plug-in) count by their status alone.
 */
export function meaningful(msg: TelemetryMessage, prev: Flat | null = null): Flat {
  const f = new Fields(prev);
  f.set('bootId', msg.bootId);
  f.set('activeUplink', msg.activeUplink);
  f.set('activeKind', msg.activeKind);
  const s = msg.system;
  f.band('system.memUsedPct', s.memUsedPct, [90, 95], 2);
  f.band('system.cpuTempC', s.cpuTempC, [70, 80], 2);
  for (const d of s.disks) f.band(`system.disk.${d.mount}`, d.usedPct, [80, 90, 95], 1);
  if (s.throttled)
    for (const k of ['underVoltageNow', 'throttledNow', 'underVoltageSinceBoot', 'throttledSinceBoot'] as const) f.set(`system.${k}`, s.throttled[k]);
  for (const [name, h] of Object.entries(msg.capabilities)) {
    f.set(`${name}.status`, h.status);
    if (isContract(name)) project(name, h.details, f);
  }
  return f.out;
}

/** Keys whose value differs (added, removed or changed), sorted; every key when there is no previous report. */
export function changedKeys(prev: Flat | null, next: Flat): string[] {
  if (!prev) return Object.keys(next).sort();
  const keys = new Set([...Object.keys(prev), ...Object.keys(next)]);
  return [...keys].filter((k) => !Object.is(prev[k] ?? null, next[k] ?? null) || Object.hasOwn(prev, k) !== Object.hasOwn(next, k)).sort();
}
