import type { CommandRunner } from './command.js';

/**
 * conntrack adapter. Flushing only the failed uplink's flows (those NATed to, or sourced from, its
 * address) makes LAN clients' next packets pick the new route at once, without cutting the flows
 * that already run over the other uplinks.
 */
export class ConntrackAdapter {
  constructor(
    private readonly commands: CommandRunner,
    private readonly timeoutMs = 5000,
  ) {}

  /** Returns how many entries were deleted. conntrack exits 1 when there was nothing to delete. */
  async flushAddress(address: string): Promise<number> {
    let total = 0;
    for (const sel of [['--reply-dst', address], ['--orig-src', address]]) {
      const r = await this.commands.run('conntrack', ['-D', ...sel], { timeoutMs: this.timeoutMs, allowFailure: true });
      const m = /(\d+) flow entries have been deleted/.exec(r.stderr + r.stdout);
      if (!m && r.code !== 0) throw new Error(`conntrack -D ${sel.join(' ')}: exit ${r.code}: ${r.stderr.trim().slice(0, 200)}`);
      total += m ? Number(m[1]) : 0;
    }
    return total;
  }
}
