import type { Health, HealthMap } from '../core/capability.js';
import type { SystemHealth } from '../../../contract/mqtt.js';
import type { PracticeState } from './state.js';

/**
 * /metrics in the Prometheus text exposition format (version 0.0.4): HELP and TYPE once per
 * family, label values escaped (\\, \", \n), gauges only (the agent keeps no counters that
 * survive a restart, so counters would mislead).
 */
type Labels = Record<string, string>;

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const fmtLabels = (l: Labels) => {
  const keys = Object.keys(l);
  return keys.length ? `{${keys.map((k) => `${k}="${escapeLabel(l[k]!)}"`).join(',')}}` : '';
};

class Families {
  private readonly out: string[] = [];
  private readonly seen = new Set<string>();
  gauge(name: string, help: string, value: number | null | undefined, labels: Labels = {}): void {
    if (value === null || value === undefined || !Number.isFinite(value)) return;
    const full = `surgery_edge_${name}`;
    if (!this.seen.has(full)) {
      this.seen.add(full);
      this.out.push(`# HELP ${full} ${help}`, `# TYPE ${full} gauge`);
    }
    this.out.push(`${full}${fmtLabels(labels)} ${value}`);
  }
  text(): string {
    return this.out.join('\n') + '\n';
  }
}

// Every level, so a not-enrolled or not-set-up box is never a row of zeros (issue 16).
const LEVELS = ['normal', 'attention', 'backup', 'offline', 'unknown', 'unenrolled', 'setup'] as const satisfies readonly PracticeState['level'][];
const UPLINK_STATES = ['unknown', 'up', 'slow', 'degraded', 'down'] as const;

export function renderMetrics(health: HealthMap, state: PracticeState, box: SystemHealth | null, now: number): string {
  const m = new Families();
  m.gauge('up', 'The agent is running and serving', 1);
  for (const l of LEVELS) m.gauge('practice_state', 'Current practice state (1 = this state)', state.level === l ? 1 : 0, { state: l });
  for (const [name, h] of Object.entries(health)) {
    m.gauge('capability_ok', 'Capability health is ok (1) or not (0)', h.status === 'ok' ? 1 : 0, { capability: name, status: h.status });
  }
  const fo = health.failover?.details;
  if (fo) {
    for (const u of fo.uplinks) {
      const l = { uplink: u.name, kind: u.kind };
      m.gauge('uplink_active', 'This uplink carries the practice traffic', fo.active === u.name ? 1 : 0, l);
      for (const s of UPLINK_STATES) m.gauge('uplink_state', 'Uplink health state (1 = this state)', u.state === s ? 1 : 0, { ...l, state: s });
      m.gauge('uplink_latency_seconds', 'Probe round-trip time', u.latencyMs === null ? null : u.latencyMs / 1000, l);
      m.gauge('uplink_loss_ratio', 'Probe loss over the window (0..1)', u.lossPct === null ? null : u.lossPct / 100, l);
    }
    if (fo.since) m.gauge('failover_since_timestamp_seconds', 'When the active uplink last changed', fo.since / 1000);
  }
  const cell = health.cellular?.details;
  if (cell) {
    m.gauge('cellular_rsrp_dbm', '4G reference signal received power', cell.signal?.rsrp);
    m.gauge(
      'cellular_signal_quality_ratio',
      '4G signal quality (0..1)',
      cell.signal?.quality === null || cell.signal?.quality === undefined ? null : cell.signal.quality / 100,
    );
    m.gauge('cellular_data_used_bytes', '4G data used this billing cycle', cell.usage?.usedBytes);
    m.gauge('cellular_data_allowance_bytes', '4G data allowance per billing cycle', cell.usage?.allowanceBytes);
  }
  const tel = health.telemetry?.details;
  if (tel) {
    m.gauge('telemetry_connected', 'Connected to the ICB MQTT broker', tel.connected ? 1 : 0);
    m.gauge('telemetry_outbox_depth', 'Messages waiting in the durable outbox', tel.outboxDepth);
  }
  const rec = health.records?.details;
  if (rec && rec.asOf) m.gauge('records_cache_age_seconds', 'Age of the offline records cache', Math.max(0, (now - rec.asOf) / 1000));
  const drill = health.drills?.details;
  if (drill) {
    m.gauge('drill_running', 'A drill is running now', drill.running ? 1 : 0);
    if (drill.last) {
      m.gauge('drill_last_passed', 'The last drill passed', drill.last.passed ? 1 : 0);
      m.gauge('drill_last_timestamp_seconds', 'When the last drill ran', drill.last.at / 1000);
    }
  }
  if (box) {
    m.gauge('cpu_load_ratio', 'CPU load (0..1)', box.cpuLoadPct === null ? null : box.cpuLoadPct / 100);
    m.gauge('memory_used_ratio', 'Memory in use (0..1)', box.memUsedPct === null ? null : box.memUsedPct / 100);
    for (const d of box.disks) m.gauge('disk_used_ratio', 'Disk space in use (0..1)', d.usedPct / 100, { mount: d.mount });
    m.gauge('cpu_temperature_celsius', 'CPU temperature', box.cpuTempC);
  }
  return m.text();
}
