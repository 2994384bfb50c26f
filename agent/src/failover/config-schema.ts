import { Type } from '@sinclair/typebox';
import { Bool, Ms, Obj } from '../config/types.js';
import { IPV4 } from '../uplinks/config-schema.js';

export const FailoverSection = Obj({
  holdDownMs: Ms(60_000, 'Primary must be clean this long before traffic fails back'),
  maxHoldDownMs: Ms(900_000, 'Hold-down doubles per flap (down transition in the last hour) up to this'),
  maxFailbacksPerHour: Type.Integer({ default: 2, minimum: 0 }),
  onDnsFailure: Type.Union([Type.Literal('failover'), Type.Literal('report')], {
    default: 'failover',
    description:
      "DNS not answering on the active uplink while its other targets answer: 'failover' moves traffic (and so the LAN's lookups) to an uplink whose " +
      "DNS answers, if there is one; 'report' only reports it",
  }),
  bootGraceMs: Ms(3_000, 'At boot, wait this long for a preferred uplink still being proven before starting on a lesser one that proved itself first', 0),
  reconcileMs: Ms(5_000, 'How often the actuator re-applies routes, rules and NAT (puts back hand-made changes)', 200),
  manageRouting: Bool(true, 'Change kernel routing/NAT/conntrack; false = decide and report only'),
  ruleBasePriority: Type.Integer({ default: 1000, minimum: 1, maximum: 32000, description: 'ip rule priority of the first uplink source rule' }),
  nftTable: Type.String({ default: 'surgery_edge', pattern: '^[a-z][a-z0-9_]{0,30}$', description: 'nftables table (family ip) the agent owns for LAN NAT' }),
  dnsForwarder: Obj({
    enabled: Bool(false, "Serve DNS to the LAN (UDP) through an uplink whose DNS answers; point the PCs' resolver (DHCP) at `listen`"),
    listen: Type.String({ default: '192.168.50.1', pattern: IPV4, description: "Address to listen on: the appliance's LAN address" }),
    port: Type.Integer({ default: 53, minimum: 1, maximum: 65535 }),
    upstreams: Type.Array(Type.String({ pattern: IPV4 }), {
      default: [],
      description: "Resolvers to forward to, in order; empty: the chosen uplink's own dns probe targets",
    }),
    timeoutMs: Ms(1500, 'Per upstream: no answer by then, the next upstream; none: SERVFAIL', 100),
  }),
  lan: Obj({
    interface: Type.String({ default: 'lan0', maxLength: 15, pattern: '^[A-Za-z0-9_.:@-]+$' }),
    // Written into the nftables NAT rule: an IPv4 CIDR only.
    subnet: Type.String({
      default: '192.168.50.0/24',
      pattern: IPV4.slice(0, -1) + '/([0-9]|[12][0-9]|3[0-2])$',
      description: 'LAN IPv4 subnet (CIDR) masqueraded out of the uplinks',
    }),
  }),
});
