import type { Static } from '@sinclair/typebox';
import type { TelephonySection } from './config-schema.js';

export type TelephonyConfig = Static<typeof TelephonySection>;

/** Peers with host names already resolved to IPv4 addresses (kamailio compares $si against them). */
export interface ResolvedPeers {
  pbx: { ip: string; port: number } | null;
  trunk: { ip: string; port: number; outboundPattern: string } | null;
  emergency: { ip: string; port: number } | null;
}
