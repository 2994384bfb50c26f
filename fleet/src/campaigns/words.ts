import type { CampaignDeviceRow, CampaignRow } from '../store/campaign-store.js';
import type { DeviceRow } from '../store/types.js';
import { inHours } from './hours.js';

/** Error codes from the box (docs/updates.md, Refusals; the command's error codes) in words for the service desk. */
const CODE_WORDS: Record<string, string> = {
  UPDATE_UNSIGNED: 'the bundle is not signed',
  UPDATE_UNTRUSTED_KEY: 'the bundle is signed by a key this box does not trust',
  UPDATE_BAD_SIGNATURE: 'the bundle signature does not verify (altered or wrongly signed)',
  UPDATE_DOWNGRADE: 'the box already runs this version or a newer one',
  UPDATE_WRONG_ARCH: 'the bundle is for another kind of processor than this box',
  UPDATE_VERSION_MISMATCH: 'the bundle is not the version the campaign names',
  UPDATE_TRUNCATED: 'the download ended early',
  UPDATE_CORRUPT: 'the download or the written copy is corrupt (checksum differs)',
  UPDATE_MALFORMED: 'the file is not an update bundle',
  UPDATE_TOO_LARGE: 'the bundle is too large for this box',
  UPDATE_ON_BACKUP_LINK: 'waiting: the box is on 4G or backup Wi-Fi, and this campaign does not allow downloads over it',
  UNAVAILABLE: 'this box cannot take bundle updates (a .deb install, or updates are switched off)',
  CONFLICT: 'the box is already updating or trying out a new version',
  NOT_FOUND: "the box's software is too old for the update command",
  BAD_REQUEST: 'the box refused the request as malformed',
  EXPIRED: 'the command reached the box too late',
};

export function codeWords(code: string | undefined, message: string | undefined): string {
  const w = code ? CODE_WORDS[code] : undefined;
  return w ? `${w}${message ? ` (${code}: ${message})` : ` (${code})`}` : `${code ?? 'error'}${message ? `: ${message}` : ''}`;
}

/** A pending box's words while its campaign is paused (the page's paused line says who paused it and when). */
export const PAUSED_HOLD = 'not sent (campaign paused)';

/** Whether a campaign is paused now: the pause only means something while it runs (canary or all). */
export function isPaused(c: Partial<Pick<CampaignRow, 'paused_at' | 'phase'>>): boolean {
  return c.paused_at !== null && c.paused_at !== undefined && (c.phase === 'canary' || c.phase === 'all');
}

/**
 * Why a pending box is not sent the update yet (null: nothing in its way). A pause comes first, then
 * the campaign's update hours: both hold every box, whatever its link.
 */
export function holdReason(
  c: Pick<CampaignRow, 'allow_cellular'> & Partial<Pick<CampaignRow, 'hours' | 'paused_at' | 'phase'>>,
  d: DeviceRow | undefined,
  now: number,
  freshMs: number,
): string | null {
  if (isPaused(c)) return PAUSED_HOLD;
  if (!inHours(c.hours, now)) return `waiting: outside update hours ${c.hours} (UK time)`;
  if (!d || !d.online) return 'waiting: offline';
  if (c.allow_cellular) return null;
  const kind = d.telemetry_at !== null && now - d.telemetry_at <= freshMs ? d.active_kind : null;
  if (kind === 'wired') return null;
  if (kind === 'cellular') return 'waiting: on 4G';
  if (kind === 'wifi') return 'waiting: on backup Wi-Fi';
  return 'waiting: uplink unknown';
}

const PROGRESS: Record<string, string> = {
  downloading: 'downloading',
  staged: 'downloading',
  writing: 'installing',
  verifying: 'installing (checking the written copy)',
  installed: 'installed, restarting',
  rebooting: 'installed, restarting',
  trial: 'trial: running the new version, checking its health',
};

/** One line per box for the campaign page: what it is doing, in words. */
export function stepWords(c: CampaignRow, s: CampaignDeviceRow, hold: string | null): string {
  switch (s.state) {
    case 'pending':
      if (!['canary', 'all', 'draft'].includes(c.phase)) return `not sent (campaign ${c.phase})`;
      return hold ?? 'queued';
    case 'sending':
      return 'sending the update command';
    case 'sent': {
      if (!s.progress) return s.detail ?? 'accepted: starting';
      // "downloading 45 %": the phase, then the share with its "%" (split once, not at every space).
      const [phase, pct] = s.progress.split(/ (.*)/, 2);
      return `${PROGRESS[phase!] ?? phase}${pct ? ` ${pct}` : ''}`;
    }
    case 'healthy':
      return `healthy on ${c.version}`;
    case 'rolled-back':
      return `rolled back: ${s.detail ?? ''}`;
    case 'failed':
      return `failed: ${s.detail ?? ''}`;
    case 'skipped':
      return `skipped: ${s.detail ?? 'already up to date'}`;
  }
}

/** The display group a step's words fall in (the page's counters and the colour). */
export function stepGroup(s: CampaignDeviceRow, hold: string | null): 'queued' | 'waiting' | 'in progress' | 'healthy' | 'failed' | 'skipped' {
  if (s.state === 'pending') return hold ? 'waiting' : 'queued';
  if (s.state === 'sending' || s.state === 'sent') return 'in progress';
  if (s.state === 'healthy') return 'healthy';
  if (s.state === 'skipped') return 'skipped';
  return 'failed';
}
