import { readFileSync } from 'node:fs';
import type { IfaceInfo, RouteEntry } from '../platform/ip.js';
import { IPV4 } from './config-schema.js';

/**
 * Where an uplink's default route points when the config gives no `gateway`. A wired WAN behind
 * the practice's router learns its router by DHCP; binding the default route to the interface
 * alone would make the kernel ARP for every internet address, which a normal router does not
 * answer. Only a point-to-point link (raw-IP wwan, PPP) can do without a next hop.
 */
export type NextHopSource = 'config' | 'kernel' | 'lease' | 'remembered' | 'point-to-point' | 'unknown';

export interface NextHop {
  gateway: string | undefined;
  source: NextHopSource;
}

const ipv4 = new RegExp(IPV4);
const isIpv4 = (s: string | undefined): s is string => s !== undefined && ipv4.test(s);

/**
 * The DHCP client's default route through this interface, from `ip -j -4 route show table all
 * default`. Our own uplink tables are skipped (they hold what we derived, not what was learnt).
 * Routes the actuator installed carry `onlink` (DHCP clients do not add it), so a learnt route
 * wins over ours after a renew with a new router; then the main table, then the lowest metric.
 */
export function kernelGateway(routes: readonly RouteEntry[], iface: string, ownTables: ReadonlySet<string>): string | undefined {
  const ours = (r: RouteEntry) => Number(Boolean(r.flags?.includes('onlink')));
  const cands = routes
    .filter((r) => r.dev === iface && isIpv4(r.gateway) && !ownTables.has(r.table ?? 'main'))
    .sort((a, b) => ours(a) - ours(b) || Number(a.table !== undefined) - Number(b.table !== undefined) || (a.metric ?? 0) - (b.metric ?? 0));
  return cands[0]?.gateway;
}

/**
 * Lease files of the usual DHCP clients (dhcpcd's are binary: it installs its route in the kernel,
 * which `kernelGateway` reads); the newest lease is the last one in dhclient's file.
 */
export function leasePaths(iface: string, ifindex: number): string[] {
  return [
    `/run/systemd/netif/leases/${ifindex}`, // systemd-networkd: ROUTER=a.b.c.d
    `/var/lib/dhcp/dhclient.${iface}.leases`, // ISC dhclient (Debian): option routers a.b.c.d;
    `/var/lib/dhclient/dhclient-${iface}.leases`,
  ];
}

export function parseLease(text: string): string | undefined {
  const networkd = /^ROUTER=([0-9.]+)/m.exec(text)?.[1];
  if (isIpv4(networkd)) return networkd;
  const dhclient = [...text.matchAll(/option routers ([0-9.]+)/g)].at(-1)?.[1];
  return isIpv4(dhclient) ? dhclient : undefined;
}

export function leaseGateway(iface: string, ifindex: number, hostPath: (p: string) => string): string | undefined {
  for (const p of leasePaths(iface, ifindex)) {
    let text: string;
    try {
      text = readFileSync(hostPath(p), 'utf8');
    } catch {
      continue;
    }
    const gw = parseLease(text);
    if (gw) return gw;
  }
  return undefined;
}

/**
 * Decide the next hop. `previous` is what was found last time: when the kernel route is gone
 * (our own main default replaced it during a failover) the learnt router is kept.
 */
export function resolveNextHop(
  configured: string | undefined,
  info: IfaceInfo | undefined,
  routes: readonly RouteEntry[] | null,
  ownTables: ReadonlySet<string>,
  lease: () => string | undefined,
  previous: NextHop | undefined,
): NextHop {
  if (configured) return { gateway: configured, source: 'config' };
  if (!info) return previous ?? { gateway: undefined, source: 'unknown' };
  if (info.pointToPoint) return { gateway: undefined, source: 'point-to-point' };
  const k = routes ? kernelGateway(routes, info.name, ownTables) : undefined;
  if (k) return { gateway: k, source: 'kernel' };
  const l = lease();
  if (l) return { gateway: l, source: 'lease' };
  if (previous?.gateway) return { gateway: previous.gateway, source: 'remembered' };
  return { gateway: undefined, source: 'unknown' };
}
