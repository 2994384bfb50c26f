import { Type } from '@sinclair/typebox';
import { Bool, Ms, Obj, Str } from '../config/types.js';

const Host = (description: string) => Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.:-]+$', description });
const Port = (def: number, description: string) => Type.Integer({ default: def, minimum: 1, maximum: 65535, description });
const Digits = Type.String({ pattern: '^[0-9*#+]{1,32}$' });

/** A SIP peer the appliance sends calls to (cloud PBX, local/4G trunk, emergency trunk). */
export const SipPeer = Type.Object(
  {
    host: Host('IPv4 address or host name (resolved when the kamailio config is written)'),
    port: Port(5060, 'UDP port'),
  },
  { additionalProperties: false },
);

export const Extension = Type.Object(
  {
    ext: Type.String({ pattern: '^[0-9]{2,8}$', description: 'Extension number = SIP user name of the handset' }),
    password: Type.String({ minLength: 8, maxLength: 128, description: 'SIP digest password (the same the handset uses for the cloud PBX)' }),
    name: Type.Optional(Type.String({ maxLength: 64, description: 'Label, e.g. "Reception 1" (never logged with calls)' })),
  },
  { additionalProperties: false },
);

/**
 * Survivable telephony (docs/telephony.md). Off by default: an appliance without handsets or
 * without kamailio installed must start exactly as before.
 */
export const TelephonySection = Obj({
  enabled: Bool(false, 'Run the local SIP registrar/proxy (kamailio) and survivable mode'),
  kamailioBinary: Str('kamailio', 'kamailio executable (Debian package kamailio)'),
  kamcmdBinary: Str('kamcmd', 'kamcmd executable (RPC over the ctl socket)'),
  listen: Str('192.168.50.1', "LAN address kamailio listens on (the appliance's lan0 address); handsets use it as SIP server / outbound proxy"),
  port: Port(5060, 'SIP UDP port on the LAN address'),
  lanInterface: Type.String({
    default: 'lan0',
    maxLength: 15,
    pattern: '^[A-Za-z0-9._-]+$',
    description: 'LAN interface: the only one on which SIP is accepted (nft)',
  }),
  lanSubnets: Type.Array(Type.String({ pattern: '^[0-9.]+/[0-9]{1,2}$' }), {
    default: ['192.168.50.0/24'],
    description: 'Only handsets from these IPv4 subnets may register or call (403 otherwise)',
  }),
  realm: Type.String({ default: 'surgery-edge', pattern: '^[A-Za-z0-9.-]{1,64}$', description: 'Digest realm of the local registrar' }),
  extensions: Type.Array(Extension, { default: [], description: 'Handsets that may register locally' }),
  pbx: Type.Optional(SipPeer),
  trunk: Type.Optional(
    Type.Object(
      {
        host: Host("Local SIP trunk or the 4G modem's SIP/voice gateway"),
        port: Port(5060, 'UDP port'),
        outboundPattern: Type.String({
          pattern: '^[^"\\\\\\n]{1,200}$',
          default: '^(0[1-9][0-9]{8,9}|00[0-9]{6,15})$',
          description: 'Numbers (regex on the dialled digits) sent to this trunk in survivable mode',
        }),
      },
      { additionalProperties: false },
    ),
  ),
  emergency: Obj({
    numbers: Type.Array(Digits, {
      default: ['999', '112'],
      minItems: 1,
      description: 'Always routable from any LAN handset, authenticated or not, in every mode',
    }),
    trunk: Type.Optional(SipPeer),
  }),
  huntGroup: Obj({
    ddis: Type.Array(Digits, { default: [], description: 'Inbound numbers from the fallback trunk that ring the hunt group' }),
    members: Type.Array(Type.String({ pattern: '^[0-9]{2,8}$' }), { default: [], description: 'Extensions in hunt order: reception first' }),
    ringMs: Ms(15_000, 'How long each member rings before the next', 3000),
  }),
  probe: Obj({
    intervalS: Type.Integer({ default: 2, minimum: 1, maximum: 60, description: 'SIP OPTIONS to the cloud PBX every this many seconds (kamailio dispatcher)' }),
    failAfter: Type.Integer({ default: 2, minimum: 1, maximum: 10, description: 'Unanswered OPTIONS in a row before survivable mode' }),
    recoverAfter: Type.Integer({ default: 3, minimum: 1, maximum: 20, description: 'Answered OPTIONS in a row before failback to the cloud PBX' }),
    timeoutMs: Ms(1500, 'No reply within this = unanswered (tm fr_timer)', 200),
  }),
  pollMs: Ms(1000, 'How often the agent reads kamailio state (mode, registrations, calls)', 200),
  restart: Obj({
    initialMs: Ms(1000, 'First restart delay after kamailio exits', 100),
    maxMs: Ms(60_000, 'Restart backoff cap', 1000),
  }),
  firewall: Obj({
    enabled: Bool(true, 'Install the inet surgery_edge_sip nft table: SIP only from the LAN interface, per-source rate limit'),
    packetsPerSecond: Type.Integer({ default: 50, minimum: 1, description: 'SIP packets per second per LAN source before drops' }),
    burst: Type.Integer({ default: 100, minimum: 1 }),
  }),
  auth: Obj({
    maxFailures: Type.Integer({
      default: 5,
      minimum: 1,
      maximum: 100,
      description: 'Failed digest checks (wrong password / unknown user) from one source before it is banned',
    }),
    banS: Type.Integer({
      default: 300,
      minimum: 2,
      maximum: 86_400,
      description: 'A banned source gets 403 without its credentials being checked for this long after its last attempt (999/112 still work)',
    }),
  }),
  voice: Obj({
    enabled: Bool(
      false,
      'Voice first on 4G: DSCP EF on SIP/RTP and an htb shaper (voice class first) on the 4G interface (upload) and the LAN interface (download)',
    ),
    interface: Type.String({ default: 'wwan0', maxLength: 15, pattern: '^[A-Za-z0-9._-]+$', description: '4G-side interface whose egress (upload) is shaped' }),
    uplinkKbit: Type.Integer({
      default: 4000,
      minimum: 64,
      description: 'Shape upload to this (a little below what the 4G link really carries, so the queue forms here)',
    }),
    downlinkKbit: Type.Integer({ default: 0, minimum: 0, description: 'Shape download (LAN egress) to this; 0 = not shaped' }),
    voiceKbit: Type.Integer({ default: 512, minimum: 16, description: 'Guaranteed rate of the voice class (G.711 call ~90 kbit/s each way)' }),
    rtpPorts: Obj({
      from: Type.Integer({ default: 10000, minimum: 1024, maximum: 65535, description: 'Lowest RTP port the handsets use' }),
      to: Type.Integer({ default: 32767, minimum: 1024, maximum: 65535, description: 'Highest RTP port the handsets use' }),
    }),
  }),
  pike: Obj({
    reqsDensity: Type.Integer({ default: 30, minimum: 1, description: 'kamailio pike: requests per source per sampling interval before blocking' }),
    samplingS: Type.Integer({ default: 2, minimum: 1 }),
  }),
});
