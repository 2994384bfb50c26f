import { e } from './html.js';

/**
 * A device event in words for the device page ("Switched from wan to 4G: wan down"), from the
 * agent's bus events (agent/src/* /events.ts; the fleet never imports them, so payloads are read
 * defensively). An event this does not know is still shown, by name, with its fields. Returns HTML.
 */
type P = Record<string, unknown>;
const s = (v: unknown) => e(typeof v === 'string' || typeof v === 'number' ? v : v === null || v === undefined ? '' : JSON.stringify(v));
const link = (v: unknown) => (v === '4g' ? '4G' : v === null || v === undefined ? 'no uplink' : s(v));
const mb = (v: unknown) => (typeof v === 'number' ? `${Math.round(v / 1e6)} MB` : '?');

const WORDS: Record<string, (p: P) => string> = {
  'failover.switched': (p) => {
    const why = p.reason ? `: ${s(p.reason)}` : '';
    if (p.kind === 'none-available') return `<span class="bad">No uplink available</span>${why}`;
    if (p.kind === 'initial') return `Started on ${link(p.to)}${why}`;
    if (p.kind === 'failback') return `Back on ${link(p.to)} (from ${link(p.from)})${why}`;
    return `${p.kind === 'forced' ? 'Forced' : 'Switched'} from ${link(p.from)} to <b>${link(p.to)}</b>${why}`;
  },
  'uplink.changed': (p) => `Uplink ${s(p.name)} went from ${s(p.from)} to <b>${s(p.to)}</b>${p.reason ? `: ${s(p.reason)}` : ''}`,
  'drill.started': (p) => `Backup drill started (${s(p.trigger)})`,
  'drill.completed': (p) => {
    const steps = Array.isArray(p.steps) ? (p.steps as P[]) : [];
    const failed = steps.filter((x) => x.passed === false).map((x) => s(x.name));
    return p.passed
      ? `Backup drill <span class="ok">passed</span> (${steps.length} step(s))`
      : `Backup drill <span class="bad">failed</span>${failed.length ? `: ${failed.join(', ')}` : ''}`;
  },
  'agent.started': (p) => `Agent started${p.version ? `, version ${s(p.version)}` : ''}`,
  'agent.stopping': (p) => `Agent stopping${p.reason ? `: ${s(p.reason)}` : ''}`,
  'capability.failed': (p) => `<span class="bad">${s(p.name)} failed</span>: ${s(p.message)}`,
  'config.applied': (p) => `Config version ${s(p.version)} applied (${p.source === 'remote' ? 'sent by the fleet' : 'from the file on the box'})`,
  'telephony.mode': (p) => `Telephony ${s(p.from)} to <b>${s(p.to)}</b>${p.reason ? `: ${s(p.reason)}` : ''}`,
  'records.synced': (p) =>
    `Records cache synced: ${s(p.patients)} patients, ${s(p.appointments)} appointments` +
    (p.errors ? `, <span class="warn">${s(p.errors)} error(s)</span>` : ''),
  'records.capture-state': (p) => `Offline record capture ${s(p.kind)} is now ${s(p.state)}`,
  'cellular.changed': (p) => `4G modem ${s(p.modem)}${p.operator ? ` on ${s(p.operator)}` : ''}`,
  'cellular.usage-threshold': (p) => `<span class="warn">4G data at ${s(p.pct)}% of the allowance</span> (${mb(p.usedBytes)} of ${mb(p.allowanceBytes)})`,
  'telemetry.outbox-full': (p) => `<span class="warn">Telemetry backlog full</span>: ${s(p.dropped)} old message(s) dropped`,
  'backup.completed': (p) => (p.ok ? `Backup completed (${s(p.trigger)})` : `<span class="bad">Backup failed</span>: ${s(p.error)}`),
  'update.progress': (p) => `Update to ${s(p.version)}: ${s(p.phase)}`,
  'update.refused': (p) => `<span class="bad">Update to ${s(p.version)} refused</span>: ${s(p.message)}`,
  'update.failed': (p) => `<span class="bad">Update to ${s(p.version)} failed</span>: ${s(p.message)}`,
  'update.committed': (p) => `Updated to ${s(p.version)}${p.fromVersion ? ` from ${s(p.fromVersion)}` : ''}`,
  'update.rolled-back': (p) => `<span class="bad">Update to ${s(p.version)} rolled back</span>: ${s(p.reason)}`,
};

export function eventWords(name: string, payload: string | null): string {
  let p: unknown = null;
  try {
    p = JSON.parse(payload ?? 'null');
  } catch {
    p = null;
  }
  if (!p || typeof p !== 'object' || Array.isArray(p)) return e(name);
  const obj = p as P;
  const f = WORDS[name];
  if (f) return f(obj);
  const fields = Object.entries(obj)
    .filter(([k]) => k !== 'at')
    .slice(0, 6)
    .map(([k, v]) => `${e(k)} ${s(v)}`)
    .join(', ');
  return `${e(name)}${fields ? `: ${fields}` : ''}`;
}
