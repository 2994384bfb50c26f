import { AppError } from '../../../common/errors.js';
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

  /**
   * Returns how many entries were deleted. conntrack exits 1 when there was nothing to delete.
   * natOnly: only LAN flows masqueraded behind the address (`--reply-dst`), not the appliance's
   * own flows sourced from it (its probes of that uplink, which keep working).
   */
  async flushAddress(address: string, opts: { natOnly?: boolean } = {}): Promise<number> {
    let total = 0;
    const sels = [['--reply-dst', address], ...(opts.natOnly ? [] : [['--orig-src', address]])];
    for (const sel of sels) {
      const r = await this.commands.run('conntrack', ['-D', ...sel], { timeoutMs: this.timeoutMs, allowFailure: true });
      const m = /(\d+) flow entries have been deleted/.exec(r.stderr + r.stdout);
      if (!m && r.code !== 0)
        throw new AppError('COMMAND_FAILED', `conntrack -D ${sel.join(' ')}: exit ${r.code}: ${r.stderr.trim().slice(0, 200)}`, {
          cmd: 'conntrack',
          code: r.code,
        });
      total += m ? Number(m[1]) : 0;
    }
    return total;
  }
}
