import type { TSchema } from '@sinclair/typebox';
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
