import { AppError } from '../../../common/errors.js';
import type { CommandRunner } from './command.js';

/** nftables adapter: list a table as JSON (`nft -j`), apply a whole script atomically (`nft -f -`). */
export class NftAdapter {
  constructor(
    private readonly commands: CommandRunner,
    private readonly timeoutMs = 5000,
  ) {}

  /** The table's JSON ruleset items, or null when the table does not exist. */
  async listTable(family: string, name: string): Promise<unknown[] | null> {
    const r = await this.commands.run('nft', ['-j', 'list', 'table', family, name], { timeoutMs: this.timeoutMs, allowFailure: true });
    if (r.code !== 0) {
      if (/No such file or directory|does not exist/i.test(r.stderr)) return null;
      throw new AppError('COMMAND_FAILED', `nft list table ${family} ${name}: exit ${r.code}: ${r.stderr.trim().slice(0, 200)}`, { cmd: 'nft', code: r.code });
    }
    let doc: { nftables?: unknown } | undefined;
    try {
      doc = JSON.parse(r.stdout) as { nftables?: unknown };
    } catch {
      doc = undefined;
    }
    if (!doc || !Array.isArray(doc.nftables))
      throw new AppError('UPSTREAM_ERROR', `nft -j list table ${family} ${name}: output is not nft JSON (${r.stdout.trim().slice(0, 80)})`, { cmd: 'nft' });
    return doc.nftables;
  }

  /** One transaction: either the whole script applies or nothing changes. */
  async apply(script: string): Promise<void> {
    await this.commands.run('nft', ['-f', '-'], { input: script, timeoutMs: this.timeoutMs });
  }

  async deleteTable(family: string, name: string): Promise<void> {
    await this.commands.run('nft', ['delete', 'table', family, name], { timeoutMs: this.timeoutMs, allowFailure: true });
  }
}
