import type { TelemetryMessage } from '../../../agent/src/telemetry/contract.js';
import type { Derived } from '../store/types.js';

type Caps = TelemetryMessage['capabilities'];
const TELEPHONY_MODES = new Set(['cloud', 'survivable', 'down', 'disabled']);

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const bool = (v: unknown): boolean | null => (typeof v === 'boolean' ? v : null);
const obj = (v: unknown): Record<string, unknown> | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null);

/**
 * The dashboard's columns from one telemetry message. Each capability documents its own `details`
 * (docs/mqtt-contract.md): failover {active, since}, cellular {usage: {usedPct, usedBytes,
 * allowanceBytes}}, records {stale, asOf}, telephony {mode, registered, callsInProgress}.
 * Anything absent or of the wrong type reads as unknown (null): a device without telephony, or an
 * older agent, is not an error.
 */
export function deriveTelemetry(m: TelemetryMessage): Derived {
  const caps: Caps = m.capabilities;
  const fo = obj(caps.failover?.details);
  const cell = obj(obj(caps.cellular?.details)?.usage);
  const rec = obj(caps.records?.details);
  const tel = obj(caps.telephony?.details);
  const mode = typeof tel?.mode === 'string' && TELEPHONY_MODES.has(tel.mode) ? tel.mode : null;
  const health: Derived['health'] = {};
  for (const [name, h] of Object.entries(caps).slice(0, 32)) {
    health[name.slice(0, 40)] = { status: String(h.status).slice(0, 20), summary: String(h.summary).slice(0, 200) };
    // The box's one-time set-up code (enrolment or setup details), for the device page: the ICB
    // engineer reads it to the practice manager, who types it into the box's set-up wizard.
    const code = (name === 'enrolment' || name === 'setup') ? obj(h.details)?.setupCode : undefined;
    if (typeof code === 'string' && /^[A-Za-z0-9 -]{4,32}$/.test(code)) health[name.slice(0, 40)]!.setupCode = code;
  }
  return {
    activeUplink: m.activeUplink,
    activeKind: m.activeKind,
    cellularSince: m.activeKind === 'cellular' ? num(fo?.since) : null,
    telephonyMode: mode,
    telephonyRegistered: bool(tel?.registered),
    telephonyCalls: num(tel?.callsInProgress),
    recordsStale: rec && caps.records?.status !== 'disabled' ? bool(rec.stale) : null,
    recordsAsOf: num(rec?.asOf),
    dataPct: num(cell?.usedPct),
    dataUsed: num(cell?.usedBytes),
    dataAllowance: num(cell?.allowanceBytes),
    health,
  };
}
