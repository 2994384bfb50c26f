import { AppError } from '../../../common/errors.js';
import type { CommandRunner } from './command.js';

/**
 * ModemManager through `mmcli -J` (JSON output, ModemManager >= 1.10). Every value mmcli prints is a
 * string; unknown ones are "--" (see cli/mmcli-output.c upstream), and numbers follow the C locale of
 * the mmcli process, which on some images is a comma ("-67,00"). We parse defensively: a field we
 * cannot read is null, never a thrown error, because a half-initialised modem prints half a document.
 */
export type MmState =
  | 'failed'
  | 'unknown'
  | 'initializing'
  | 'locked'
  | 'disabled'
  | 'disabling'
  | 'enabling'
  | 'enabled'
  | 'searching'
  | 'registered'
  | 'disconnecting'
  | 'connecting'
  | 'connected';

export interface ModemInfo {
  path: string;
  index: string;
  state: MmState;
  failedReason: string | null;
  operator: string | null;
  operatorCode: string | null;
  registration: string | null;
  accessTech: string | null;
  quality: number | null;
  bearers: string[];
  model: string | null;
}

export interface SignalInfo {
  rsrp: number | null;
  rsrq: number | null;
  sinr: number | null;
  rssi: number | null;
  refreshRate: number;
}

export interface BearerInfo {
  path: string;
  connected: boolean;
  interface: string | null;
  address: string | null;
  error: string | null;
}

const STATES: readonly MmState[] = [
  'failed',
  'unknown',
  'initializing',
  'locked',
  'disabled',
  'disabling',
  'enabling',
  'enabled',
  'searching',
  'registered',
  'disconnecting',
  'connecting',
  'connected',
];

type Json = Record<string, unknown>;

function obj(v: unknown): Json {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
}

/** "--", "", "unknown" and "none" all mean "no value" in mmcli output. */
export function str(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const s = v.trim();
  return s === '' || s === '--' || s === 'unknown' || s === 'none' ? null : s;
}

export function num(v: unknown): number | null {
  const s = str(v);
  if (s === null) return null;
  const n = Number(s.replace(',', '.'));
  return Number.isFinite(n) ? n : null;
}

function strList(v: unknown): string[] {
  return Array.isArray(v) ? v.map(str).filter((s): s is string => s !== null) : [];
}

function parseJson(text: string, what: string): Json {
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Json;
  } catch {
    // fall through
  }
  throw new AppError('UPSTREAM_ERROR', `mmcli ${what}: output is not the expected JSON (${text.trim().slice(0, 80) || 'empty'})`);
}

export function parseModemList(text: string): string[] {
  const doc = parseJson(text, '-L');
  if (!Array.isArray(doc['modem-list'])) throw new AppError('UPSTREAM_ERROR', 'mmcli -L: no "modem-list" in output');
  return strList(doc['modem-list']);
}

export function parseModem(text: string): ModemInfo {
  const doc = parseJson(text, '-m');
  const modem = obj(doc.modem);
  const g = obj(modem.generic);
  const p3 = obj(modem['3gpp']);
  const path = str(modem['dbus-path']);
  if (!path || !('state' in g)) throw new AppError('UPSTREAM_ERROR', 'mmcli -m: no modem.generic.state in output');
  const rawState = str(g.state) ?? 'unknown';
  const state = (STATES as readonly string[]).includes(rawState) ? (rawState as MmState) : 'unknown';
  const tech = strList(g['access-technologies']);
  return {
    path,
    index: path.split('/').pop() ?? path,
    state,
    failedReason: str(g['state-failed-reason']),
    operator: str(p3['operator-name']),
    operatorCode: str(p3['operator-code']),
    registration: str(p3['registration-state']),
    // "lte" (or "lte, 5gnr" on NSA): the most capable listed last in MM's flag order; report them all.
    accessTech: tech.length ? tech.join(',') : null,
    quality: num(obj(g['signal-quality']).value),
    bearers: strList(g.bearers),
    model: str(g.model),
  };
}

export function parseSignal(text: string): SignalInfo {
  const doc = parseJson(text, '--signal-get');
  const sig = obj(obj(doc.modem).signal);
  if (!('lte' in sig) && !('refresh' in sig)) throw new AppError('UPSTREAM_ERROR', 'mmcli --signal-get: no modem.signal in output');
  const lte = obj(sig.lte);
  const nr = obj(sig['5g']);
  return {
    // LTE first; on a 5G NSA anchor the LTE figures are what keeps the link alive.
    rsrp: num(lte.rsrp) ?? num(nr.rsrp),
    rsrq: num(lte.rsrq) ?? num(nr.rsrq),
    sinr: num(lte.snr) ?? num(nr.snr),
    rssi: num(lte.rssi),
    refreshRate: num(obj(sig.refresh).rate) ?? 0,
  };
}

export function parseBearer(text: string): BearerInfo {
  const doc = parseJson(text, '-b');
  const b = obj(doc.bearer);
  const status = obj(b.status);
  const path = str(b['dbus-path']);
  if (!path || !('connected' in status)) throw new AppError('UPSTREAM_ERROR', 'mmcli -b: no bearer.status in output');
  const err = obj(status['connection-error']);
  return {
    path,
    connected: str(status.connected) === 'yes',
    interface: str(status.interface),
    address: str(obj(b['ipv4-config']).address) ?? str(obj(b['ipv6-config']).address),
    error: str(err.message) ?? str(err.name),
  };
}

/** What mmcli's stderr means, so the capability can tell "no modem" from "no ModemManager". */
function classify(stderr: string): 'no-modem' | 'no-daemon' | 'other' {
  // Daemon first: "couldn't find the ModemManager process" would also match the modem pattern.
  if (/couldn't find the ModemManager process|ModemManager.*not running|couldn't create manager/i.test(stderr)) return 'no-daemon';
  if (/couldn't find modem|modem .* not found|no modems? (were )?found/i.test(stderr)) return 'no-modem';
  return 'other';
}

export class ModemManager {
  constructor(
    private readonly commands: CommandRunner,
    private readonly bin = 'mmcli',
    private readonly timeoutMs = 15_000,
  ) {}

  private async mmcli(args: string[], timeoutMs = this.timeoutMs): Promise<string> {
    // C locale: decimal points, untranslated error text (classify() matches the English messages).
    const r = await this.commands.run(this.bin, args, { timeoutMs, allowFailure: true, env: { LC_ALL: 'C' } });
    if (r.code !== 0) {
      const kind = classify(r.stderr);
      const msg = r.stderr.trim().slice(0, 200) || `exit ${r.code}`;
      if (kind === 'no-modem') throw new AppError('NOT_FOUND', `mmcli ${args.join(' ')}: ${msg}`, { kind });
      throw new AppError(kind === 'no-daemon' ? 'UNAVAILABLE' : 'COMMAND_FAILED', `mmcli ${args.join(' ')}: ${msg}`, { kind });
    }
    return r.stdout;
  }

  async list(): Promise<string[]> {
    return parseModemList(await this.mmcli(['-J', '-L']));
  }

  async modem(m: string): Promise<ModemInfo> {
    return parseModem(await this.mmcli(['-J', '-m', m]));
  }

  async signal(m: string): Promise<SignalInfo> {
    return parseSignal(await this.mmcli(['-J', '-m', m, '--signal-get']));
  }

  /** Ask the modem to refresh extended signal figures every `rateS` seconds (0 turns it off). */
  async signalSetup(m: string, rateS: number): Promise<void> {
    await this.mmcli(['-m', m, `--signal-setup=${Math.max(0, Math.round(rateS))}`]);
  }

  async bearer(path: string): Promise<BearerInfo> {
    return parseBearer(await this.mmcli(['-J', '-b', path]));
  }

  async enable(m: string): Promise<void> {
    await this.mmcli(['-m', m, '-e'], 60_000);
  }

  /** Creates (or reuses) a bearer and connects it; ModemManager may take tens of seconds. */
  async simpleConnect(m: string, apn: string): Promise<void> {
    if (!/^[A-Za-z0-9.\-_]{0,100}$/.test(apn)) throw new AppError('CONFIG_INVALID', 'cellular.apn has characters mmcli cannot take');
    await this.mmcli(['-m', m, `--simple-connect=apn=${apn}`], 120_000);
  }
}
