import { FakeRunner } from './fake-runner.js';

/**
 * A tiny kernel model behind a FakeRunner, answering `ip`, `nft` and `conntrack` in their real
 * output formats (`ip -j` JSON arrays, `nft -j` {nftables: [...]}, conntrack's stderr count line).
 * Used by the failover unit tests and the simulated demo. `fail` makes a tool exit non-zero.
 */
export interface FakeLink {
  name: string;
  carrier: boolean;
  ipv4: string[];
  /** Raw-IP wwan / PPP: `POINTOPOINT,NOARP` flags and a /32 address, as qmi_wwan shows them. */
  pointToPoint?: boolean;
}

export interface FakeRoute {
  dst: string;
  gateway?: string;
  dev: string;
  metric?: number;
  protocol?: string;
  /** ['onlink'] when added with `onlink`, as the kernel reports it. */
  flags?: string[];
}

export class FakeNet {
  readonly runner = new FakeRunner();
  links = new Map<string, FakeLink>();
  /** table -> default routes */
  routes = new Map<string, FakeRoute[]>();
  rules: { priority: number; src: string; table: string }[] = [];
  nftTables = new Map<string, string>();
  conntrackFlushes: string[] = [];
  fail = new Set<'ip' | 'nft' | 'conntrack'>();
  /** The tool exits 0 but prints something that is not its JSON (a broken build, a wrapper's banner). */
  garbage = new Set<'ip' | 'nft'>();

  constructor(links: FakeLink[]) {
    for (const l of links) this.links.set(l.name, { ...l });
    this.runner.on('ip', (args) => this.ip(args));
    this.runner.on('nft', (args, input) => this.nft(args, input));
    this.runner.on('conntrack', (args) => {
      if (this.fail.has('conntrack')) return { code: 1, stderr: 'conntrack v1.4.7 (conntrack-tools): Operation failed: invalid parameters\n' };
      this.conntrackFlushes.push(args.join(' '));
      return { code: 1, stderr: 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n' };
    });
  }

  defaultVia(table: string): string | undefined {
    return this.routes.get(table)?.find((r) => !r.metric)?.dev;
  }

  private ip(a: string[]) {
    if (this.fail.has('ip')) return { code: 2, stderr: 'RTNETLINK answers: Operation not permitted\n' };
    if (this.garbage.has('ip') && a[0] === '-j') return { stdout: 'Usage: ip [ OPTIONS ] OBJECT { COMMAND | help }\n' };
    const json = a[0] === '-j';
    const args = json ? a.slice(1) : a;
    const [obj, verb] = args;
    if (obj === 'addr' && verb === 'show') {
      const out = [...this.links.values()].map((l, i) => {
        const kind = l.pointToPoint ? ['POINTOPOINT', 'MULTICAST', 'NOARP'] : ['BROADCAST', 'MULTICAST'];
        return {
          ifindex: i + 2,
          ifname: l.name,
          flags: l.carrier ? [...kind, 'UP', 'LOWER_UP'] : ['NO-CARRIER', ...kind, 'UP'],
          operstate: l.carrier ? 'UP' : 'LOWERLAYERDOWN',
          link_type: l.pointToPoint ? 'none' : 'ether',
          addr_info: l.ipv4.map((ip) => ({ family: 'inet', local: ip, prefixlen: l.pointToPoint ? 32 : 24, scope: 'global', label: l.name })),
        };
      });
      return { stdout: JSON.stringify(out) + '\n' };
    }
    if (args[0] === '-4' && args[1] === 'route' && args[2] === 'show' && args[4] === 'all') {
      // `ip -j -4 route show table all default`: every table, `table` omitted for main.
      const out = [...this.routes.entries()].flatMap(([t, list]) =>
        list.map((r) => ({ ...r, ...(t === 'main' ? {} : { table: t }), ...(r.gateway ? {} : { scope: 'link' }), flags: r.flags ?? [] })),
      );
      return { stdout: JSON.stringify(out) + '\n' };
    }
    if (obj === 'route' && verb === 'show') {
      const table = args[args.indexOf('table') + 1]!;
      if (table !== 'main' && !this.routes.has(table)) return { code: 2, stderr: 'Error: ipv4: FIB table does not exist.\nDump terminated\n' };
      return { stdout: JSON.stringify((this.routes.get(table) ?? []).map((r) => ({ ...r, flags: r.flags ?? [] }))) + '\n' };
    }
    if (obj === 'route' && (verb === 'replace' || verb === 'del')) {
      const table = args[args.indexOf('table') + 1]!;
      const dev = args[args.indexOf('dev') + 1]!;
      const gw = args.includes('via') ? args[args.indexOf('via') + 1] : undefined;
      const metric = args.includes('metric') ? Number(args[args.indexOf('metric') + 1]) : undefined;
      if (verb === 'replace' && !this.links.has(dev)) return { code: 1, stderr: `Cannot find device "${dev}"\n` };
      if (verb === 'del' && !(this.routes.get(table) ?? []).some((r) => (r.metric ?? 0) === (metric ?? 0)))
        return { code: 2, stderr: 'RTNETLINK answers: No such process\n' };
      const list = (this.routes.get(table) ?? []).filter((r) => (r.metric ?? 0) !== (metric ?? 0));
      if (verb === 'replace') list.push({ dst: 'default', dev, ...(gw ? { gateway: gw } : {}), ...(args.includes('onlink') ? { flags: ['onlink'] } : {}) });
      this.routes.set(table, list);
      return {};
    }
    if (obj === 'rule' && verb === 'show') {
      const base = [{ priority: 0, src: 'all', table: 'local' }, ...this.rules, { priority: 32766, src: 'all', table: 'main' }];
      return { stdout: JSON.stringify(base) + '\n' };
    }
    if (obj === 'rule' && verb === 'add') {
      this.rules.push({ priority: Number(args[args.indexOf('priority') + 1]), src: args[args.indexOf('from') + 1]!, table: args[args.indexOf('lookup') + 1]! });
      this.rules.sort((x, y) => x.priority - y.priority);
      return {};
    }
    if (obj === 'rule' && verb === 'del') {
      const p = Number(args[args.indexOf('priority') + 1]);
      const i = this.rules.findIndex((r) => r.priority === p);
      if (i < 0) return { code: 2, stderr: 'RTNETLINK answers: No such file or directory\n' };
      this.rules.splice(i, 1);
      return {};
    }
    return { code: 255, stderr: `Object "${obj}" is unknown, try "ip help".\n` };
  }

  private nft(args: string[], input?: string) {
    if (this.fail.has('nft')) return { code: 1, stderr: 'Error: Could not process rule: Operation not permitted\n' };
    if (this.garbage.has('nft') && args[0] === '-j') return { stdout: 'table ip surgery_edge {\n}\n' };
    if (args[0] === '-j' && args[1] === 'list') {
      const name = args[4]!;
      const body = this.nftTables.get(name);
      if (body === undefined) return { code: 1, stderr: `Error: No such file or directory\nlist table ip ${name}\n` };
      const comment = /comment "([^"]+)"/.exec(body)?.[1];
      const items: unknown[] = [
        { metainfo: { version: '1.0.6' } },
        { table: { family: 'ip', name } },
        { chain: { family: 'ip', table: name, name: 'postrouting' } },
      ];
      if (comment) items.push({ rule: { family: 'ip', table: name, chain: 'postrouting', comment, expr: [{ masquerade: null }] } });
      return { stdout: JSON.stringify({ nftables: items }) + '\n' };
    }
    if (args[0] === '-f') {
      const m = /table ip (\S+) \{\n/.exec(input ?? '');
      if (m) this.nftTables.set(m[1]!, input!);
      return {};
    }
    if (args[0] === 'delete') {
      this.nftTables.delete(args[3]!);
      return {};
    }
    return { code: 1, stderr: 'Error: syntax error\n' };
  }
}
