import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { describeError } from '../../../common/errors.js';
import type { Logger } from '../../../common/log.js';
import type { ConntrackAdapter } from '../platform/conntrack.js';
import type { IpAdapter, RouteEntry } from '../platform/ip.js';
import type { NftAdapter } from '../platform/nft.js';
import type { UplinkView } from '../../../contract/reports/index.js';

export interface ActuatorOptions {
  ruleBasePriority: number;
  nftTable: string;
  lanSubnet: string;
  /** Resolved host path of /proc/sys/net/ipv4/ip_forward (absent in unit-test roots: skipped). */
  ipForwardPath?: string;
}

export interface ReconcileResult {
  changes: string[];
  errors: string[];
}

/**
 * Makes the kernel match the decision, idempotently: read state (`ip -j`, `nft -j`), change only
 * what differs. Runs on every decision and periodically, so a hand-made change is put back.
 * Each step is independent: one failing command is logged and the others still run; nothing is
 * torn down on error, so the kernel keeps its last good state.
 */
export class RoutingActuator {
  constructor(
    private readonly ip: IpAdapter,
    private readonly nft: NftAdapter,
    private readonly conntrack: ConntrackAdapter,
    private readonly log: Logger,
    private readonly opts: ActuatorOptions,
  ) {}

  async reconcile(uplinks: readonly UplinkView[], active: string | null): Promise<ReconcileResult> {
    const res: ReconcileResult = { changes: [], errors: [] };
    const step = async (what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (e) {
        res.errors.push(`${what}: ${describeError(e).message}`);
      }
    };
    // The main default route first: it is what LAN traffic follows.
    const act = uplinks.find((u) => u.name === active);
    if (act) await step('default route', () => this.mainDefault(act, res));
    await step('uplink tables', () => this.tables(uplinks, res));
    await step('source rules', () => this.rules(uplinks, res));
    await step('nat', () => this.nat(uplinks, res));
    this.ipForward(res);
    return res;
  }

  /**
   * On a switch, the one change new LAN connections wait for, made at once with one command (no
   * read first): the main default route via `u`. The full reconcile follows and finds it done.
   */
  async moveDefault(u: UplinkView): Promise<void> {
    if (u.nextHop === 'unknown') throw new Error(`no next hop known on ${u.interface}`);
    await this.ip.replaceDefault('main', u.interface, u.gateway);
  }

  /**
   * Flush the flows of the uplink traffic just left. Masquerade fixed their source address when
   * they started, so after the route moves their packets would leave by the new uplink with the
   * old one's address and die silently; a UDP flow kept alive by its own traffic (a phone's SIP
   * registration) would never recover. Deleted, the client's next packet is NATed afresh.
   * natOnly (failback, forced): the left uplink still works; only LAN flows NATed behind it go.
   */
  async flush(u: UplinkView, natOnly = false): Promise<number> {
    if (!u.address) return 0;
    return this.conntrack.flushAddress(u.address, { natOnly });
  }

  private async mainDefault(u: UplinkView, res: ReconcileResult): Promise<void> {
    if (u.nextHop === 'unknown') throw new Error(`no next hop known on ${u.interface}; main default left as it is`);
    const routes = await this.ip.defaultRoutes('main');
    // We own the metric-0 default; others (e.g. a DHCP client's, at higher metrics) are left alone.
    const ours = routes.filter((r) => !r.metric);
    if (ours.length === 1 && same(ours[0]!, u)) return;
    await this.ip.replaceDefault('main', u.interface, u.gateway);
    res.changes.push(`main default -> ${u.interface}`);
  }

  private async tables(uplinks: readonly UplinkView[], res: ReconcileResult): Promise<void> {
    for (const u of uplinks) {
      // A broadcast link with no known router: a route bound to the interface alone would not
      // work, so the table keeps what it has until the uplinks capability finds the router.
      if (u.nextHop === 'unknown') {
        res.errors.push(`table ${u.table}: no next hop known on ${u.interface} (set uplinks[].gateway or run DHCP)`);
        continue;
      }
      const routes = await this.ip.defaultRoutes(u.table);
      if (routes.length === 1 && same(routes[0]!, u)) continue;
      for (const r of routes.filter((r) => !same(r, u))) await this.ip.deleteDefault(u.table, r);
      await this.ip.replaceDefault(u.table, u.interface, u.gateway);
      res.changes.push(`table ${u.table} default -> ${u.interface}`);
    }
  }

  private async rules(uplinks: readonly UplinkView[], res: ReconcileResult): Promise<void> {
    const rules = await this.ip.rules();
    for (const [i, u] of uplinks.entries()) {
      const prio = this.opts.ruleBasePriority + i;
      const at = rules.filter((r) => r.priority === prio);
      const want = u.address;
      const good = want !== null && at.length === 1 && at[0]!.src === want && at[0]!.table === String(u.table);
      if (good || (want === null && at.length === 0)) continue;
      for (let k = 0; k < at.length; k++) await this.ip.deleteRule(prio);
      if (want) await this.ip.addRule(prio, want, u.table);
      res.changes.push(want ? `rule ${prio}: from ${want} lookup ${u.table}` : `rule ${prio} removed (${u.name} has no address)`);
    }
  }

  private async nat(uplinks: readonly UplinkView[], res: ReconcileResult): Promise<void> {
    // Masquerade LAN traffic out of every uplink interface: the rule does not need to change on
    // failover (routing picks the way out), and a drill through the standby is NATed too.
    const ifaces = uplinks.map((u) => `"${u.interface}"`).join(', ');
    const fp = createHash('sha256').update(`${this.opts.lanSubnet}|${ifaces}`).digest('hex').slice(0, 12);
    const t = this.opts.nftTable;
    const items = await this.nft.listTable('ip', t);
    if (items && countRules(items) === 1 && JSON.stringify(items).includes(`se:${fp}`)) return;
    const script = [
      `table ip ${t} {}`,
      `delete table ip ${t}`,
      `table ip ${t} {`,
      `  chain postrouting {`,
      `    type nat hook postrouting priority srcnat; policy accept;`,
      `    ip saddr ${this.opts.lanSubnet} oifname { ${ifaces} } masquerade comment "se:${fp}"`,
      `  }`,
      `}`,
      '',
    ].join('\n');
    await this.nft.apply(script);
    res.changes.push(`nft table ip ${t} (LAN ${this.opts.lanSubnet} masquerade)`);
  }

  private ipForward(res: ReconcileResult): void {
    const p = this.opts.ipForwardPath;
    if (!p) return;
    try {
      if (readFileSync(p, 'utf8').trim() === '1') return;
      writeFileSync(p, '1\n');
      res.changes.push('ip_forward enabled');
    } catch (e) {
      res.errors.push(`ip_forward: ${describeError(e).message}`);
    }
  }

  /** Remove what we own (agent stop leaves routes alone: the LAN must keep working). */
  async removeNat(): Promise<void> {
    try {
      await this.nft.deleteTable('ip', this.opts.nftTable);
    } catch (e) {
      this.log.warn('could not remove nft table', describeError(e));
    }
  }
}

function same(r: RouteEntry, u: UplinkView): boolean {
  return r.dev === u.interface && (u.gateway ? r.gateway === u.gateway : !r.gateway);
}

function countRules(items: unknown[]): number {
  return items.filter((i) => typeof i === 'object' && i !== null && 'rule' in i).length;
}
