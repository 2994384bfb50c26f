import { AppError } from '../../../common/errors.js';
import type { CommandRunner } from './command.js';

/**
 * iproute2 adapter, JSON in (`ip -j`), argv out (no shell). The fake for tests is
 * test/helpers/fake-ip.ts, which keeps a tiny kernel model and prints the same JSON shapes.
 */
export interface IfaceInfo {
  name: string;
  adminUp: boolean;
  /** LOWER_UP without NO-CARRIER: the cable/peer is there. */
  carrier: boolean;
  /** IPv4 addresses (local), first one is the primary. */
  ipv4: string[];
  ifindex: number;
  /**
   * No link-layer neighbours to ARP for (POINTOPOINT, no BROADCAST, or a /32 primary address, as
   * raw-IP wwan and PPP links are): a default route bound to the interface alone works there, and
   * only there. A broadcast link (Ethernet behind a router) needs a next hop.
   */
  pointToPoint: boolean;
}

export interface RouteEntry {
  dst: string;
  gateway?: string;
  dev?: string;
  metric?: number;
  flags?: string[];
  /** Absent for the main table in `ip -j` output. */
  table?: string;
  protocol?: string;
}

export interface RuleEntry {
  priority: number;
  src?: string;
  table?: string;
}

interface RawAddr {
  ifindex?: number;
  ifname: string;
  flags?: string[];
  addr_info?: { family: string; local: string; prefixlen?: number }[];
}

export class IpAdapter {
  constructor(
    private readonly commands: CommandRunner,
    private readonly timeoutMs = 3000,
  ) {}

  private async json<T>(args: string[]): Promise<T> {
    const r = await this.commands.run('ip', ['-j', ...args], { timeoutMs: this.timeoutMs });
    return parseJsonArray<T>(r.stdout, `ip -j ${args.join(' ')}`);
  }

  private async exec(args: string[]): Promise<void> {
    await this.commands.run('ip', args, { timeoutMs: this.timeoutMs });
  }

  /** Every interface with its carrier and IPv4 addresses, in one `ip -j addr show`. */
  async interfaces(): Promise<Map<string, IfaceInfo>> {
    const raw = await this.json<RawAddr[]>(['addr', 'show']);
    const out = new Map<string, IfaceInfo>();
    for (const l of raw) {
      const flags = l.flags ?? [];
      const v4 = (l.addr_info ?? []).filter((a) => a.family === 'inet');
      out.set(l.ifname, {
        name: l.ifname,
        adminUp: flags.includes('UP'),
        carrier: flags.includes('LOWER_UP') && !flags.includes('NO-CARRIER'),
        ipv4: v4.map((a) => a.local),
        ifindex: l.ifindex ?? 0,
        pointToPoint: flags.includes('POINTOPOINT') || !flags.includes('BROADCAST') || v4[0]?.prefixlen === 32,
      });
    }
    return out;
  }

  async defaultRoutes(table: number | 'main'): Promise<RouteEntry[]> {
    const args = ['-j', 'route', 'show', 'table', String(table), 'default'];
    const r = await this.commands.run('ip', args, { timeoutMs: this.timeoutMs, allowFailure: true });
    // A table with no routes yet does not exist for the kernel: that is "empty", not an error.
    if (r.code !== 0) {
      if (/table does not exist/i.test(r.stderr)) return [];
      throw new AppError('COMMAND_FAILED', `ip ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim().slice(0, 300)}`, { cmd: 'ip', code: r.code });
    }
    return parseJsonArray<RouteEntry[]>(r.stdout, `ip ${args.join(' ')}`);
  }

  /** Every IPv4 default route in every table (`table` absent = main): where DHCP put its router. */
  allDefaultRoutes(): Promise<RouteEntry[]> {
    return this.json<RouteEntry[]>(['-4', 'route', 'show', 'table', 'all', 'default']);
  }

  /** `replace` is idempotent: it creates or overwrites the route with the same dst+metric. */
  replaceDefault(table: number | 'main', dev: string, gateway: string | undefined): Promise<void> {
    const via = gateway ? ['via', gateway, 'dev', dev, 'onlink'] : ['dev', dev];
    return this.exec(['route', 'replace', 'default', ...via, 'table', String(table)]);
  }

  deleteDefault(table: number | 'main', route: RouteEntry): Promise<void> {
    const args = ['route', 'del', 'default'];
    if (route.gateway) args.push('via', route.gateway);
    if (route.dev) args.push('dev', route.dev);
    if (route.metric !== undefined) args.push('metric', String(route.metric));
    return this.exec([...args, 'table', String(table)]);
  }

  rules(): Promise<RuleEntry[]> {
    return this.json<RuleEntry[]>(['rule', 'show']);
  }

  addRule(priority: number, from: string, table: number): Promise<void> {
    return this.exec(['rule', 'add', 'priority', String(priority), 'from', from, 'lookup', String(table)]);
  }

  deleteRule(priority: number): Promise<void> {
    return this.exec(['rule', 'del', 'priority', String(priority)]);
  }
}

/** `ip -j` prints a JSON array (nothing at all for an empty dump); anything else is a clear error. */
function parseJsonArray<T>(stdout: string, what: string): T {
  const text = stdout.trim();
  if (!text) return [] as T;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    doc = undefined;
  }
  if (!Array.isArray(doc)) throw new AppError('UPSTREAM_ERROR', `${what}: output is not a JSON array (${text.slice(0, 80)})`, { cmd: 'ip' });
  return doc as T;
}
