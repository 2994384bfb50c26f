import { Type, type Static } from '@sinclair/typebox';

/**
 * The small unions every part of the product shares. Declared once here; the agent, the status
 * page, telemetry and the fleet import them (they were declared 3-4 times before, issue 18).
 */
export const UplinkKindSchema = Type.Union([Type.Literal('wired'), Type.Literal('cellular'), Type.Literal('wifi')]);
export type UplinkKind = Static<typeof UplinkKindSchema>;

/** `slow`: answering, no loss worth the name, but round trips above the "too slow" threshold (added within v1). */
export const UplinkStateSchema = Type.Union([
  Type.Literal('unknown'),
  Type.Literal('up'),
  Type.Literal('slow'),
  Type.Literal('degraded'),
  Type.Literal('down'),
]);
export type UplinkState = Static<typeof UplinkStateSchema>;

export const TelephonyModeSchema = Type.Union([Type.Literal('cloud'), Type.Literal('survivable'), Type.Literal('down'), Type.Literal('disabled')]);
export type TelephonyMode = Static<typeof TelephonyModeSchema>;
export const TELEPHONY_MODES: readonly TelephonyMode[] = ['cloud', 'survivable', 'down', 'disabled'];

export const HealthStatusSchema = Type.Union([
  Type.Literal('ok'),
  Type.Literal('degraded'),
  Type.Literal('failed'),
  Type.Literal('starting'),
  Type.Literal('stopped'),
  Type.Literal('disabled'),
]);
export type HealthStatus = Static<typeof HealthStatusSchema>;

/** DNS through one uplink, judged on its dns targets alone (`unmeasured`: no dns target configured). */
export const DnsHealthSchema = Type.Union([Type.Literal('ok'), Type.Literal('failing'), Type.Literal('unknown'), Type.Literal('unmeasured')]);
export type DnsHealth = Static<typeof DnsHealthSchema>;
