import { Type } from '@sinclair/typebox';
import { Ms, Obj } from '../config/types.js';

export const ProbeTarget = Type.Object(
  {
    kind: Type.Union([Type.Literal('icmp'), Type.Literal('tcp'), Type.Literal('http'), Type.Literal('dns')]),
    host: Type.String({ minLength: 1, description: 'Address or name to probe (for dns: the resolver address)' }),
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
    interface: Type.String({ minLength: 1, maxLength: 15 }),
    kind: Type.Union([Type.Literal('wired'), Type.Literal('cellular'), Type.Literal('wifi')]),
    priority: Type.Integer({ minimum: 1, maximum: 99, description: 'Lower is preferred' }),
    table: Type.Integer({ minimum: 1, maximum: 252, description: 'Routing table id for this uplink' }),
    gateway: Type.Optional(Type.String({ description: 'Next hop; discovered from the interface when absent' })),
    probes: Obj({
      intervalMs: Ms(500, 'Probe interval per target on the active and standby uplinks', 100),
      timeoutMs: Ms(800, 'Probe timeout', 50),
      window: Type.Integer({ default: 10, minimum: 3, maximum: 120, description: 'Samples in the sliding window per target' }),
      targets: Type.Array(ProbeTarget, { default: [], description: 'Diverse targets; an uplink is judged on a quorum of them' }),
    }),
  },
  { additionalProperties: false },
);

export const UplinksSection = Type.Array(UplinkSchema, { default: [] });
