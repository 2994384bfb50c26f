import type { TSchema } from '@sinclair/typebox';
import { EVENT_PAYLOADS } from './events.js';
import { REPORT_SCHEMAS } from './reports/index.js';

type S = TSchema & { description?: string; properties?: Record<string, S>; required?: string[]; anyOf?: S[]; const?: unknown; type?: string; items?: S };

function typeOf(s: S): string {
  if (s.anyOf) return s.anyOf.map(typeOf).join(' \\| ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.type === 'array') return `${s.items ? typeOf(s.items) : 'unknown'}[]`;
  if (s.type === 'object') return 'object';
  return s.type ?? 'unknown';
}

function rows(s: S, prefix: string, out: string[]): void {
  for (const [k, p] of Object.entries(s.properties ?? {})) {
    const path = `${prefix}${k}`;
    const opt = s.required?.includes(k) ? '' : ' (optional)';
    out.push(`| \`${path}\` | ${typeOf(p)}${opt} | ${(p.description ?? '').replace(/\|/g, '\\|')} |`);
    const obj = p.type === 'object' ? p : p.anyOf?.find((a) => a.type === 'object');
    if (obj) rows(obj, `${path}.`, out);
    if (p.type === 'array' && p.items?.type === 'object') rows(p.items, `${path}[].`, out);
  }
}

/** docs/mqtt-reports.md: every capability report's fields, generated from contract/reports/ (CI checks it is current). */
export function reportsMarkdown(): string {
  const out = [
    '# Capability reports (`telemetry.capabilities.<name>.details`)',
    '',
    'Generated from `contract/reports/` by `surgery-edge mqtt-schemas docs/schemas/mqtt` (do not edit by hand;',
    'a unit test fails when this file and the code differ). JSON Schemas: `docs/schemas/mqtt/report-<name>.json`.',
    'Within contract v1 fields are only added; receivers ignore fields they do not know.',
    '',
  ];
  for (const [name, schema] of Object.entries(REPORT_SCHEMAS) as [string, S][]) {
    out.push(`## ${name}`, '', (schema as { title?: string }).title ?? '', '', '| field | type | meaning |', '| --- | --- | --- |');
    rows(schema, '', out);
    out.push('');
  }
  return out.join('\n');
}

/** docs/mqtt-events.md: each event name's payload on the `events` topic, generated from contract/events.ts (CI checks it is current). */
export function eventsMarkdown(): string {
  const out = [
    '# Events (`<prefix>/<deviceId>/events`): the payload of each event name',
    '',
    'Generated from `contract/events.ts` by `surgery-edge mqtt-schemas docs/schemas/mqtt` (do not edit by hand;',
    'a unit test fails when this file and the code differ). Every message has the envelope of `event.json`',
    '(`id`, `name`, `at`, `bootId`, `payload`); `docs/schemas/mqtt/event-by-name.json` is the union keyed by `name`.',
    'Within contract v1 payloads only gain fields and names are only added: a receiver reads each message with',
    '`readEvent` (contract/events.ts) and keeps a name it does not know, or a payload that does not match, as an untyped event.',
    '',
  ];
  for (const [name, schema] of Object.entries(EVENT_PAYLOADS) as [string, S][]) {
    out.push(`## ${name}`, '');
    if (schema.description) out.push(schema.description, '');
    out.push('| field | type | meaning |', '| --- | --- | --- |');
    rows(schema, '', out);
    out.push('');
  }
  return out.join('\n');
}
