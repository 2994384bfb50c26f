import { isIP } from 'node:net';
import { AppError } from '../../../common/errors.js';
import type { CommandRunner } from '../platform/command.js';

/**
 * The 4G traffic policy as one nftables table of our own (`inet surgery_edge_4g`), so it never
 * fights the failover NAT table: a drop in any table is final, an accept only ends this table.
 * Only forwarded LAN traffic on the cellular interface is touched; the agent's own traffic
 * (telemetry, records sync) uses the output hook and is never policed here.
 */
export const TABLE = 'surgery_edge_4g';

export type NonCritical = 'allow' | 'rate-limit' | 'block';

export interface ResolvedDestination {
  name: string;
  /** Addresses or CIDRs, already resolved from host names. */
  addrs: string[];
  protocol: 'tcp' | 'udp' | 'any';
  ports: string[];
}

export interface PolicySpec {
  iface: string;
  nonCritical: NonCritical;
  rateLimitKbytes: number;
  allowDns: boolean;
  critical: ResolvedDestination[];
  voice: { udpPorts: string[]; tcpPorts: string[] };
}

/** True for an IPv4/IPv6 address or CIDR; host names are resolved before they get here. */
export function addrFamily(a: string): 4 | 6 | 0 {
  const [ip, len, extra] = a.split('/');
  if (extra !== undefined || !ip) return 0;
  const fam = isIP(ip);
  if (fam === 0) return 0;
  if (len !== undefined && !(/^\d{1,3}$/.test(len) && Number(len) <= (fam === 4 ? 32 : 128))) return 0;
  return fam as 4 | 6;
}

const q = (s: string) => `"${s.replace(/[^A-Za-z0-9 ._:/-]/g, '')}"`;
const set = (xs: string[]) => (xs.length === 1 ? xs[0]! : `{ ${xs.join(', ')} }`);

function checkPorts(ports: string[]): string[] {
  for (const p of ports) {
    const [a, b] = p.split('-').map(Number);
    if (!a || a > 65535 || (b !== undefined && (!b || b > 65535 || b < a))) throw new AppError('CONFIG_INVALID', `bad port "${p}" in 4G policy`);
  }
  return ports;
}

/** Match expressions for one destination, as [ipv4 match, ipv6 match] strings (null when none). */
function destMatches(d: ResolvedDestination, dir: 'd' | 's'): string[] {
  const out: string[] = [];
  const ports = checkPorts(d.ports);
  const portMatch =
    ports.length === 0
      ? d.protocol === 'any'
        ? ''
        : ` meta l4proto ${d.protocol}`
      : d.protocol === 'any'
        ? ` meta l4proto { tcp, udp } th ${dir}port ${set(ports)}`
        : ` ${d.protocol} ${dir}port ${set(ports)}`;
  const v4 = d.addrs.filter((a) => addrFamily(a) === 4);
  const v6 = d.addrs.filter((a) => addrFamily(a) === 6);
  if (v4.length) out.push(`ip ${dir}addr ${set(v4)}${portMatch}`);
  if (v6.length) out.push(`ip6 ${dir}addr ${set(v6)}${portMatch}`);
  return out;
}

/**
 * The whole table as one `nft -f` script. "table; delete table; table {...}" in one file is applied
 * by nft as a single transaction: atomic (no moment without the policy) and idempotent (applying it
 * twice leaves exactly one copy), whatever state the table was in before.
 */
export function renderPolicy(spec: PolicySpec): string {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(spec.iface)) throw new AppError('CONFIG_INVALID', `bad cellular interface name "${spec.iface}"`);
  const IF = q(spec.iface);
  const fwd: string[] = [];
  fwd.push(`iifname != ${IF} oifname != ${IF} accept comment "not 4G traffic"`);
  if (spec.allowDns) {
    fwd.push(`oifname ${IF} meta l4proto { tcp, udp } th dport 53 accept comment "dns"`);
    fwd.push(`iifname ${IF} meta l4proto { tcp, udp } th sport 53 accept comment "dns"`);
  }
  for (const d of spec.critical) {
    for (const m of destMatches(d, 'd')) fwd.push(`oifname ${IF} ${m} counter accept comment ${q('critical ' + d.name)}`);
    for (const m of destMatches(d, 's')) fwd.push(`iifname ${IF} ${m} counter accept comment ${q('critical ' + d.name)}`);
  }
  if (spec.nonCritical === 'block') {
    fwd.push(`oifname ${IF} counter drop comment "non-critical blocked on 4G"`);
    fwd.push(`iifname ${IF} counter drop comment "non-critical blocked on 4G"`);
  } else if (spec.nonCritical === 'rate-limit') {
    const r = Math.max(1, Math.round(spec.rateLimitKbytes));
    fwd.push(`oifname ${IF} limit rate over ${r} kbytes/second counter drop comment "non-critical rate-limited on 4G"`);
    fwd.push(`iifname ${IF} limit rate over ${r} kbytes/second counter drop comment "non-critical rate-limited on 4G"`);
  }
  const post: string[] = [];
  // Voice first in the carrier's queues where it honours DSCP: EF (46) for SIP signalling and RTP.
  const udp = checkPorts(spec.voice.udpPorts);
  const tcp = checkPorts(spec.voice.tcpPorts);
  for (const fam of ['ip', 'ip6'] as const) {
    const proto = fam === 'ip' ? 'ipv4' : 'ipv6';
    if (udp.length) post.push(`oifname ${IF} meta nfproto ${proto} udp dport ${set(udp)} ${fam} dscp set ef`);
    if (tcp.length) post.push(`oifname ${IF} meta nfproto ${proto} tcp dport ${set(tcp)} ${fam} dscp set ef`);
  }
  const ind = (xs: string[]) => xs.map((l) => `\t\t${l}`).join('\n');
  return [
    `table inet ${TABLE}`,
    `delete table inet ${TABLE}`,
    `table inet ${TABLE} {`,
    `\tchain forward {`,
    `\t\ttype filter hook forward priority filter; policy accept;`,
    ind(fwd),
    `\t}`,
    `\tchain postrouting {`,
    `\t\ttype filter hook postrouting priority mangle; policy accept;`,
    ...(post.length ? [ind(post)] : []),
    `\t}`,
    `}`,
    '',
  ].join('\n');
}

export type Resolver = (host: string) => Promise<string[]>;

/**
 * Turns configured destinations into addresses. A host name that does not resolve keeps its last
 * known addresses (DNS over a failing uplink is exactly when it flakes), and is logged by the caller.
 */
export async function resolveDestinations(
  list: ReadonlyArray<{ name: string; destination: string; protocol: 'tcp' | 'udp' | 'any'; ports: string[] }>,
  resolve: Resolver,
  previous: Map<string, string[]>,
): Promise<{ resolved: ResolvedDestination[]; failures: string[] }> {
  const resolved: ResolvedDestination[] = [];
  const failures: string[] = [];
  for (const d of list) {
    let addrs: string[];
    if (addrFamily(d.destination)) addrs = [d.destination];
    else {
      try {
        addrs = (await resolve(d.destination)).filter((a) => addrFamily(a) !== 0);
        if (!addrs.length) throw new Error('no addresses');
        previous.set(d.destination, addrs);
      } catch {
        failures.push(d.name);
        addrs = previous.get(d.destination) ?? [];
      }
    }
    resolved.push({ name: d.name, addrs: [...new Set(addrs)].sort(), protocol: d.protocol, ports: d.ports });
  }
  return { resolved, failures };
}

/** Applies the rendered table with `nft -f -`; skips when the kernel already has what we last applied. */
export class PolicyApplier {
  private lastApplied: string | null = null;
  constructor(private readonly commands: CommandRunner) {}

  async apply(script: string): Promise<boolean> {
    if (script === this.lastApplied && (await this.present())) return false;
    await this.commands.run('nft', ['-f', '-'], { input: script, timeoutMs: 10_000 });
    this.lastApplied = script;
    return true;
  }

  async present(): Promise<boolean> {
    const r = await this.commands.run('nft', ['list', 'table', 'inet', TABLE], { allowFailure: true, timeoutMs: 5_000 });
    return r.code === 0;
  }

  async remove(): Promise<void> {
    await this.commands.run('nft', ['-f', '-'], { input: `table inet ${TABLE}\ndelete table inet ${TABLE}\n`, timeoutMs: 10_000 });
    this.lastApplied = null;
  }
}
