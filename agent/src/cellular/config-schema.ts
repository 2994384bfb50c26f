import { Type } from '@sinclair/typebox';
import { Bool, Ms, Obj, Str } from '../config/types.js';

/** One critical destination that always passes on 4G (clinical system, telephony, NHSmail...). */
export const CriticalDestination = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'Label for logs and the status page, e.g. "clinical-system"' }),
    destination: Type.String({ minLength: 1, description: 'IPv4/IPv6 address, CIDR, or host name (resolved at apply time and every resolveIntervalMs)' }),
    protocol: Type.Union([Type.Literal('tcp'), Type.Literal('udp'), Type.Literal('any')], { default: 'any' }),
    ports: Type.Array(Type.String({ pattern: '^[0-9]{1,5}(-[0-9]{1,5})?$' }), {
      default: [],
      description: 'Destination ports or ranges ("443", "10000-20000"); empty = every port (protocol must then be any)',
    }),
  },
  { additionalProperties: false },
);

export const CellularSection = Obj({
  enabled: Type.Boolean({ default: true }),
  uplink: Type.String({ default: '4g', description: 'Name of the cellular uplink in `uplinks` (its interface is policed and metered)' }),
  interface: Type.Optional(
    Type.String({ maxLength: 15, description: "Cellular interface when no uplink of that name is configured (default: the bearer's, else wwan0)" }),
  ),
  modem: Str('any', 'Which modem: "any" (the first ModemManager lists) or its index'),
  apn: Str('internet', 'APN for --simple-connect'),
  pollIntervalMs: Ms(30_000, 'Sparse poll of modem state, bearer and signal (warm standby)', 1000),
  reconnect: Obj({
    initialMs: Ms(5_000, 'First reconnect delay after the bearer drops', 100),
    maxMs: Ms(300_000, 'Reconnect backoff cap', 1000),
  }),
  allowanceMb: Type.Integer({
    default: 50_000,
    minimum: 0,
    description: 'SIM data allowance per billing cycle, in MB of 10^6 bytes (as carriers count); 0 = unmetered',
  }),
  billingDay: Type.Integer({ default: 1, minimum: 1, maximum: 28, description: 'Day of month (UTC) the billing cycle starts' }),
  policy: Obj(
    {
      enabled: Bool(true, 'Install the inet surgery_edge_4g nftables table'),
      nonCritical: Type.Union([Type.Literal('allow'), Type.Literal('rate-limit'), Type.Literal('block')], {
        default: 'rate-limit',
        description: 'What happens to forwarded LAN traffic on 4G that is not to a critical destination',
      }),
      rateLimitKbytes: Type.Integer({ default: 256, minimum: 1, description: 'rate-limit: kbytes/second per direction for non-critical traffic' }),
      allowDns: Bool(true, 'DNS (udp/tcp 53) always passes on 4G: without it no host name resolves, critical ones included'),
      critical: Type.Array(CriticalDestination, { default: [], description: 'Destinations that always pass on 4G' }),
      resolveIntervalMs: Ms(600_000, 'Re-resolve host names in the critical list this often', 10_000),
      voice: Obj({
        udpPorts: Type.Array(Type.String({ pattern: '^[0-9]{1,5}(-[0-9]{1,5})?$' }), {
          default: ['5060', '10000-20000'],
          description: 'SIP/RTP destination ports marked DSCP EF when leaving on 4G',
        }),
        tcpPorts: Type.Array(Type.String({ pattern: '^[0-9]{1,5}(-[0-9]{1,5})?$' }), { default: ['5060', '5061'] }),
      }),
    },
    '4G traffic policy (see docs/cellular.md)',
  ),
});
