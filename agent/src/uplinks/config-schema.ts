import { Type } from '@sinclair/typebox';
import { Ms, Obj } from '../config/types.js';

/** A dotted-quad IPv4 address (each octet 0-255). */
export const IPV4 = '^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$';

export const ProbeTarget = Type.Object(
  {
    kind: Type.Union([Type.Literal('icmp'), Type.Literal('tcp'), Type.Literal('http'), Type.Literal('dns')]),
    host: Type.String({
      minLength: 1,
      description: 'Address to probe (for dns: the resolver address). Use addresses, not names: DNS may be the thing that is down',
    }),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    path: Type.Optional(Type.String({ description: 'http: request path' })),
    expectStatus: Type.Optional(Type.Integer({ minimum: 100, maximum: 599 })),
    query: Type.Optional(Type.String({ description: 'dns: name to resolve' })),
  },
  { additionalProperties: false },
);

export const UplinkSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, pattern: '^[a-z0-9][a-z0-9-]{0,30}$' }),
    // Shown to practice staff instead of the name; set by the first-run wizard. Printable text only
    // (it is rendered in pages and telemetry, never quoted into a command).
    label: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 40,
        pattern: '^[^\\u0000-\\u001f\\u007f<>]+$',
        description: 'The practice\'s own name for this connection, e.g. "BT broadband", "EE 4G backup" (status page, fleet)',
      }),
    ),
    // Linux interface names; the name is quoted into the nftables script, so no quotes or spaces.
    interface: Type.String({ minLength: 1, maxLength: 15, pattern: '^[A-Za-z0-9_.:@-]+$' }),
    kind: Type.Union([Type.Literal('wired'), Type.Literal('cellular'), Type.Literal('wifi')]),
    priority: Type.Integer({ minimum: 1, maximum: 99, description: 'Lower is preferred' }),
    table: Type.Integer({ minimum: 1, maximum: 252, description: 'Routing table id for this uplink' }),
    gateway: Type.Optional(
      Type.String({
        pattern: IPV4,
        description:
          "Next hop (IPv4). When absent it is discovered: the DHCP client's default route on the interface, else its lease file; a point-to-point " +
          'link (raw-IP wwan) needs none',
      }),
    ),
    probes: Obj({
      intervalMs: Ms(300, 'Probe interval per target on the active and standby uplinks', 100),
      timeoutMs: Ms(600, 'Probe timeout: a probe not answered by then counts toward the failure runs (fast blackhole detection)', 50),
      lateMs: Ms(
        2000,
        'How long after the timeout a probe still listens for its answer: a late answer is counted as latency (slow), not as loss. 0 = a timeout is loss',
        0,
      ),
      confirmMs: Ms(
        50,
        'Confirmation: when a probe to a target that answers in time has gone unanswered for twice its usual slow answer ' +
          '(90th percentile; at least this long), every target is probed again allFailRun times this far apart, so a silent blackhole ' +
          'is proven in about one timeout (~0.8 s at 250/600 ms) instead of allFailRun intervals + one timeout (~1.3 s). ' +
          'At most one confirmation a second on average (a burst of two). 0 = off',
        0,
      ),
      window: Type.Integer({ default: 20, minimum: 3, maximum: 120, description: 'Samples in the sliding window per target (loss and latency figures)' }),
      allFailRun: Type.Integer({
        default: 3,
        minimum: 1,
        maximum: 50,
        description: 'Down at once when EVERY target has failed this many probes in a row (silent blackhole: fast)',
      }),
      quorumFailRun: Type.Integer({
        default: 6,
        minimum: 1,
        maximum: 100,
        description: 'Down when a majority of targets have failed this many probes in a row (some targets answering: slower, robust)',
      }),
      upRun: Type.Integer({
        default: 3,
        minimum: 1,
        maximum: 50,
        description: 'A target is healthy after this many successes in a row; up needs a majority healthy',
      }),
      degradedLossPct: Type.Number({ default: 10, minimum: 0, maximum: 100, description: 'Up but windowed loss at or above this is reported degraded' }),
      slowLatencyMs: Ms(
        400,
        'Too slow for voice/clinical use: median round trip at or above this is reported `slow` (still usable: never a reason to fail over by itself)',
      ),
      degradedLatencyMs: Type.Optional(Type.Integer({ minimum: 0, description: 'Deprecated name of slowLatencyMs (still honoured when set)' })),
      dnsFailRun: Type.Integer({
        default: 12,
        minimum: 1,
        maximum: 100,
        description: 'DNS through this uplink is "not answering" when every dns target has failed this many probes in a row',
      }),
      targets: Type.Array(ProbeTarget, { default: [], description: 'Diverse targets; an uplink is judged on a quorum of them, never on one' }),
    }),
  },
  { additionalProperties: false },
);

export const UplinksSection = Type.Array(UplinkSchema, {
  default: [],
  description: 'Uplinks in priority order (wired primary, 4G, Wi-Fi). Empty: the agent runs without failover',
});
