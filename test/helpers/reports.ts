/**
 * Typed builders for capability reports (contract/reports/): reader tests (status cards, LED,
 * update gate, fleet derive) take their fixtures from here, so a renamed or retyped report field
 * breaks the build instead of leaving a reader test green on a shape no producer sends.
 */
import type { Health } from '../../contract/health.js';
import type { HealthStatus } from '../../contract/kinds.js';
import type { TSchema } from '@sinclair/typebox';
import { REPORT_SCHEMAS, type CapabilityName, type Reports } from '../../contract/reports/index.js';
import { reportProblems } from '../../contract/read.js';

type Over<T> = { [K in keyof T]?: T[K] extends object | null ? T[K] : T[K] };

const DEFAULTS: { [K in CapabilityName]: () => Reports[K] } = {
  uplinks: () => ({ uplinks: [], lines: [] }),
  failover: () => ({ active: null, since: null, reason: 'test', failbackAt: null, holdDownMs: 60_000, uplinks: [], lines: [] }),
  cellular: () => ({
    modem: 'connected',
    operator: 'EE',
    accessTech: 'lte',
    signal: { rsrp: -95, rsrq: -10, sinr: 12, quality: 70 },
    usage: { usedBytes: 1.2e9, allowanceBytes: 20e9, usedPct: 6, cycleStart: 0 },
    reason: 'bearer connected',
    interface: 'wwan0',
    policy: { nonCritical: 'rate-limit', applied: true, lastError: null, critical: 4 },
    lines: ['modem connected on EE'],
  }),
  wifi: () => ({ ssid: null, connected: false, rssi: null, lines: [] }),
  telephony: () => ({
    mode: 'cloud',
    registered: 0,
    callsInProgress: 0,
    pbxReachable: true,
    since: 0,
    uplinkDown: false,
    restarts: 0,
    outsideCalls: 'pbx',
    emergencyRoute: 'pbx',
    problem: null,
    lines: [],
  }),
  records: () => ({
    asOf: null,
    stale: true,
    patients: 0,
    appointments: 0,
    locked: false,
    sync: { running: false, done: 0, total: 0, lastError: null },
    pendingCaptures: 0,
    lines: [],
  }),
  telemetry: () => ({ connected: true, broker: 'mqtts://broker.icb.invalid', outboxDepth: 0, lastPublishAt: null, lines: [] }),
  update: () => ({
    phase: 'idle',
    version: '1.0.0',
    target: null,
    booted: 'a',
    active: 'a',
    armed: null,
    trial: false,
    progress: null,
    unmet: [],
    error: null,
    floorVersion: null,
    lines: [],
  }),
  enrolment: () => ({
    enrolled: true,
    required: false,
    reason: null,
    deviceId: 'P81001-01',
    subject: 'CN=P81001-01',
    issuer: 'CN=ICB CA',
    notAfter: null,
    lines: [],
  }),
  drills: () => ({ last: null, next: null, running: false, lines: [] }),
  status: () => ({ url: 'http://0.0.0.0:8080', liveViewers: 0, lines: [] }),
  setup: () => ({ setUp: true, required: false, codeIssued: false, lines: [] }),
  backup: () => ({
    target: 'sftp:backup.icb.invalid:/p81001',
    running: false,
    runningTrigger: null,
    progress: null,
    lastSuccessAt: null,
    lastSnapshotId: null,
    lastAttemptAt: null,
    lastAttemptOk: null,
    lastError: null,
    lastDataAdded: null,
    deferred: null,
    nextNightlyAt: null,
    stale: true,
    keyProblem: null,
    lines: [],
  }),
};

/** A complete, schema-valid report for `name` with `over` applied on top. */
export function report<K extends CapabilityName>(name: K, over: Over<Reports[K]> = {}): Reports[K] {
  return { ...DEFAULTS[name](), ...over } as Reports[K];
}

/** A capability's health carrying a typed report. */
export function healthOf<K extends CapabilityName>(
  name: K,
  over: Over<Reports[K]> = {},
  status: HealthStatus = 'ok',
  summary: string = name,
): Health<Reports[K]> {
  return { status, summary, details: report(name, over) };
}

/** Keys a producer sends that its schema does not declare (recursively): every field must be documented. */
function undocumented(schema: TSchema, value: unknown, path: string): string[] {
  if (value === null || typeof value !== 'object') return [];
  const s = schema as { properties?: Record<string, TSchema>; items?: TSchema; anyOf?: TSchema[]; patternProperties?: Record<string, TSchema> };
  if (s.anyOf) return s.anyOf.flatMap((alt) => ((alt as { type?: string }).type === 'null' ? [] : undocumented(alt, value, path)));
  if (Array.isArray(value)) return s.items ? value.flatMap((v, i) => undocumented(s.items!, v, `${path}/${i}`)) : [];
  if (s.patternProperties) return Object.entries(value).flatMap(([k, v]) => undocumented(Object.values(s.patternProperties!)[0]!, v, `${path}/${k}`));
  if (!s.properties) return [];
  return Object.entries(value).flatMap(([k, v]) =>
    s.properties![k] ? undocumented(s.properties![k]!, v, `${path}/${k}`) : [`${path}/${k}: not in the schema`],
  );
}

/**
 * A producer's health(), checked against its report schema: every field present with the right
 * type and no undocumented field. Producer tests call this instead of cap.health(), so each state a
 * test drives a real capability into is also a contract check.
 */
export function reported<C extends { readonly name: string; health(): Health<unknown> }>(cap: C): ReturnType<C['health']> {
  const h = cap.health() as ReturnType<C['health']>;
  const name = cap.name;
  if (h.details !== undefined && name in REPORT_SCHEMAS) {
    const schema = REPORT_SCHEMAS[name as CapabilityName];
    const problems = [...reportProblems(name as CapabilityName, h.details), ...undocumented(schema, h.details, '')];
    if (problems.length) throw new Error(`${name}.health().details (status ${h.status}) breaks contract/reports/${name}.ts: ${problems.join('; ')}`);
  }
  return h;
}
