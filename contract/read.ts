import { Value } from '@sinclair/typebox/value';
import { REPORT_SCHEMAS, type CapabilityName, type Reports } from './reports/index.js';

/**
 * A capability's report as a receiver (fleet ingest, CLI over JSON) reads it: the typed report when
 * it matches its schema, else null. Within v1 senders only add fields, so a report from an older or
 * newer agent that lacks nothing still matches; one that does not reads as "unknown" for that
 * capability alone, never as a guess.
 */
export function readReport<K extends CapabilityName>(name: K, details: unknown): Reports[K] | null {
  return details !== undefined && Value.Check(REPORT_SCHEMAS[name], details) ? (details as Reports[K]) : null;
}

/** Every schema problem of a report, by path: for producer tests and `status --json` checks. */
export function reportProblems(name: CapabilityName, details: unknown): string[] {
  return [...Value.Errors(REPORT_SCHEMAS[name], details)].map((e) => `${e.path || '/'}: ${e.message}`);
}

/** The plain `lines` every report carries, from any capability's health (contract or not). */
export function reportLines(details: unknown): string[] {
  const l = (details as { lines?: unknown } | null | undefined)?.lines;
  return Array.isArray(l) ? l.filter((x): x is string => typeof x === 'string') : [];
}
