import type { NftAdapter } from '../platform/nft.js';

/**
 * SIP exposure as one nftables table of our own (`inet surgery_edge_sip`), beside the failover and
 * 4G tables (a drop in any table is final, so this one can only tighten). For the SIP port:
 *   - from any interface but the LAN: only replies and in-dialog traffic of flows kamailio opened
 *     itself (conntrack established: OPTIONS to the PBX keep that pinhole open, as a NAT keepalive
 *     does) and new requests from the configured peers (PBX, trunks: inbound DDI calls); anything
 *     else from the WAN side is dropped before kamailio sees it;
 *   - from the LAN: a per-source packet rate limit (dynamic set, so a flooding handset cannot
 *     starve the others); kamailio's pike module is the second line behind it.
 */
export const SIP_TABLE = 'surgery_edge_sip';

export interface SipFirewallSpec {
  lanInterface: string;
  port: number;
  packetsPerSecond: number;
  burst: number;
  /** Configured SIP peers (PBX, trunks): the only WAN-side sources that may open a new SIP flow. */
  trustedPeers: string[];
}

export function sipFirewallScript(s: SipFirewallSpec): string {
  const iface = JSON.stringify(s.lanInterface);
  return `table inet ${SIP_TABLE}
delete table inet ${SIP_TABLE}
table inet ${SIP_TABLE} {
	counter wan_dropped { }
	counter flood_dropped { }
	set flooders4 {
		type ipv4_addr
		flags dynamic
		size 4096
		timeout 60s
	}
	set flooders6 {
		type ipv6_addr
		flags dynamic
		size 4096
		timeout 60s
	}
	chain input {
		type filter hook input priority filter - 5; policy accept;
		meta l4proto { udp, tcp } th dport ${s.port} jump sip
	}
	chain sip {
		iifname != ${iface} ct state established,related accept
${s.trustedPeers.length ? `\t\tiifname != ${iface} ip saddr { ${s.trustedPeers.join(', ')} } accept\n` : ''}		iifname != ${iface} counter name wan_dropped drop
		meta nfproto ipv4 update @flooders4 { ip saddr limit rate over ${s.packetsPerSecond}/second burst ${s.burst} packets } counter name flood_dropped drop
		meta nfproto ipv6 update @flooders6 { ip6 saddr limit rate over ${s.packetsPerSecond}/second burst ${s.burst} packets } counter name flood_dropped drop
	}
}
`;
}

export class SipFirewall {
  constructor(private readonly nft: NftAdapter) {}

  apply(spec: SipFirewallSpec): Promise<void> {
    return this.nft.apply(sipFirewallScript(spec));
  }

  remove(): Promise<void> {
    return this.nft.deleteTable('inet', SIP_TABLE);
  }
}
