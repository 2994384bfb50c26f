import { AppError } from '../../../common/errors.js';
import type { CommandRunner } from '../platform/command.js';

export interface KamailioState {
  /** Dispatcher flags of the cloud PBX ("AP" active+probing, "TP" trying, "IP" inactive), or null with no PBX. */
  pbxFlags: string | null;
  pbxReachable: boolean;
  forceLocal: boolean;
  registered: number;
  callsInProgress: number;
}

/**
 * kamailio's RPC over the ctl module's unix socket, through `kamcmd` (Debian package kamailio).
 * Parses kamcmd's text output, the format the fake in the tests reproduces:
 *   dispatcher.list -> "... URI: sip:203.0.113.5:5060\n FLAGS: AP ..."
 *   stats.get_statistics NAME -> "usrloc:location_contacts = 3"
 *   pv.shvGet force_local -> "{ name: force_local  type: int  value: 0 }"
 */
export class Kamcmd {
  constructor(
    private readonly commands: CommandRunner,
    private readonly bin: string,
    private readonly socket: string,
    private readonly timeoutMs = 2000,
  ) {}

  private async rpc(...args: string[]): Promise<string> {
    const r = await this.commands.run(this.bin, ['-s', `unix:${this.socket}`, ...args], { timeoutMs: this.timeoutMs, allowFailure: true });
    if (r.code !== 0)
      throw new AppError('UNAVAILABLE', `kamcmd ${args[0]}: ${(r.stderr || r.stdout).trim().slice(0, 200) || `exit ${r.code}`}`, { cmd: 'kamcmd' });
    return r.stdout;
  }

  async ping(): Promise<void> {
    await this.rpc('core.uptime');
  }

  async setForceLocal(on: boolean): Promise<void> {
    await this.rpc('pv.shvSet', 'force_local', 'int', on ? '1' : '0');
  }

  async state(hasPbx: boolean): Promise<KamailioState> {
    const stats = parseStats(await this.rpc('stats.get_statistics', 'all'));
    const shv = await this.rpc('pv.shvGet', 'force_local');
    const forceLocal = /value:\s*1\b/.test(shv);
    let pbxFlags: string | null = null;
    if (hasPbx) pbxFlags = parseDispatcherFlags(await this.rpc('dispatcher.list'));
    return {
      pbxFlags,
      pbxReachable: pbxFlags !== null && isActive(pbxFlags),
      forceLocal,
      registered: stats['usrloc:location_contacts'] ?? 0,
      callsInProgress: stats['dialog:active_dialogs'] ?? 0,
    };
  }
}

export function parseStats(out: string): Record<string, number> {
  const r: Record<string, number> = {};
  for (const m of out.matchAll(/^\s*([\w.-]+:[\w.-]+)\s*=\s*(-?\d+)\s*$/gm)) r[m[1]!] = Number(m[2]);
  return r;
}

/** Flags of the first destination of set 1 (the only set the generated config has). */
export function parseDispatcherFlags(out: string): string | null {
  const m = /FLAGS:\s*([A-Z]+)/.exec(out);
  return m ? m[1]! : null;
}

/**
 * A = active, T = trying (some probes failed, still below the threshold, still used),
 * I = inactive, D = disabled (kamailio dispatcher docs, "ds_set_state"). X/P qualify the first.
 */
export function isActive(flags: string): boolean {
  return flags.startsWith('A') || flags.startsWith('T');
}
