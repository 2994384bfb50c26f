import type { BearerInfo, SignalInfo } from '../platform/modem-manager.js';
import type { ModemStatus } from './events.js';

/** What the cellular capability knows of the modem now (status lines and health read it). */
export interface CellularView {
  modem: ModemStatus;
  reason: string;
  operator: string | null;
  accessTech: string | null;
  bearer: BearerInfo | null;
  signal: SignalInfo | null;
  quality: number | null;
}
