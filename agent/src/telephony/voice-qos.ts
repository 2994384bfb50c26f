import type { CommandRunner } from '../platform/command.js';
import type { NftAdapter } from '../platform/nft.js';

/**
 * Voice first on 4G. Two parts, both generated here from the practice config:
 *   - nft table `inet surgery_edge_voice`: DSCP EF on SIP (the kamailio port) and RTP (the
 *     handsets' RTP port range) leaving on the 4G interface (upload) and on the LAN interface
 *     (download), in postrouting, i.e. before the egress qdisc classifies the packet.
 *   - tc htb on each shaped interface: the whole link capped a little below what the 4G link
 *     really carries (so the queue forms here, where voice can jump it, not in the carrier's
 *     buffer), voice (EF) in its own class with priority 0 and a guaranteed rate, everything else
 *     borrowing the rest. Download is shaped on the LAN side (lan0 egress), the classic way to
 *     control an ingress bottleneck without an ifb device.
 * Only htb, tbf and pfifo exist on the target kernels we test on (no fq_codel/sfq/prio modules),
 * so the leaves are short pfifos: a short voice queue, a longer bulk queue.
 */
export const VOICE_TABLE = 'surgery_edge_voice';

export interface VoiceQosSpec {
  /** 4G-side interface (upload is shaped on its egress). */
  wanInterface: string;
  lanInterface: string;
  uplinkKbit: number;
  /** 0 = do not shape the download direction. */
  downlinkKbit: number;
  voiceKbit: number;
  sipPort: number;
  rtpPorts: { from: number; to: number };
}

/** DSCP EF = 46; the tos byte is dscp << 2 = 0xb8 (RFC 3246). */
const EF_TOS = '0xb8';

export function voiceNftScript(s: VoiceQosSpec): string {
  const ifs = [s.wanInterface, ...(s.downlinkKbit > 0 ? [s.lanInterface] : [])].map((i) => JSON.stringify(i)).join(', ');
  const rtp = `${s.rtpPorts.from}-${s.rtpPorts.to}`;
  return `table inet ${VOICE_TABLE}
delete table inet ${VOICE_TABLE}
table inet ${VOICE_TABLE} {
	chain post {
		type filter hook postrouting priority mangle; policy accept;
		oifname { ${ifs} } udp sport ${s.sipPort} ip dscp set ef
		oifname { ${ifs} } udp dport ${s.sipPort} ip dscp set ef
		oifname { ${ifs} } udp sport ${rtp} udp dport ${rtp} ip dscp set ef
	}
}
`;
}

/**
 * `tc -batch` lines for one interface, on a root cleared first (VoiceQos.apply): pfifo has no
 * change operation, so "replace" on an existing tree fails; rebuilding it is the idempotent way.
 */
export function tcBatch(dev: string, rateKbit: number, voiceKbit: number): string {
  const voice = Math.min(voiceKbit, Math.floor(rateKbit / 2));
  const bulk = Math.max(8, rateKbit - voice);
  return [
    `qdisc add dev ${dev} root handle 1: htb default 20`,
    `class add dev ${dev} parent 1: classid 1:1 htb rate ${rateKbit}kbit ceil ${rateKbit}kbit`,
    `class add dev ${dev} parent 1:1 classid 1:10 htb rate ${voice}kbit ceil ${rateKbit}kbit prio 0`,
    `class add dev ${dev} parent 1:1 classid 1:20 htb rate ${bulk}kbit ceil ${rateKbit}kbit prio 1`,
    `qdisc add dev ${dev} parent 1:10 handle 10: pfifo limit 30`,
    `qdisc add dev ${dev} parent 1:20 handle 20: pfifo limit 100`,
    `filter add dev ${dev} parent 1: protocol ip prio 1 u32 match ip tos ${EF_TOS} 0xfc flowid 1:10`,
    '',
  ].join('\n');
}

export class VoiceQos {
  private applied: string[] = [];
  constructor(
    private readonly commands: CommandRunner,
    private readonly nft: NftAdapter,
  ) {}

  async apply(s: VoiceQosSpec): Promise<void> {
    await this.nft.apply(voiceNftScript(s));
    const shaped: [string, number][] = [
      [s.wanInterface, s.uplinkKbit],
      ...(s.downlinkKbit > 0 ? ([[s.lanInterface, s.downlinkKbit]] as [string, number][]) : []),
    ];
    for (const [dev, rate] of shaped) {
      await this.commands.run('tc', ['qdisc', 'del', 'dev', dev, 'root'], { allowFailure: true });
      await this.commands.run('tc', ['-batch', '-'], { input: tcBatch(dev, rate, s.voiceKbit) });
      this.applied.push(dev);
    }
  }

  async remove(): Promise<void> {
    for (const dev of this.applied.splice(0)) await this.commands.run('tc', ['qdisc', 'del', 'dev', dev, 'root'], { allowFailure: true });
    await this.nft.deleteTable('inet', VOICE_TABLE);
  }
}
