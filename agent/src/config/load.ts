import { isKnownTimeZone } from '../../../common/zoned-time.js';
import { Value } from '@sinclair/typebox/value';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { AppError } from '../../../common/errors.js';
import { CONFIG_VERSION, ConfigSchema, type Config } from './schema.js';
import { migrations } from './migrations.js';

export interface ConfigProblem {
  path: string;
  message: string;
}

/** Cross-field rules the schema cannot express. */
function semanticProblems(c: Config): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const seen = new Map<string, number>();
  c.uplinks.forEach((u, i) => {
    for (const key of ['name', 'interface', 'table', 'priority'] as const) {
      const k = `${key}:${u[key]}`;
      if (seen.has(k)) out.push({ path: `/uplinks/${i}/${key}`, message: `duplicate ${key} ${JSON.stringify(u[key])} (also uplinks/${seen.get(k)})` });
      else seen.set(k, i);
    }
    u.probes.targets.forEach((t, j) => {
      if (t.kind === 'tcp' && t.port === undefined) out.push({ path: `/uplinks/${i}/probes/targets/${j}/port`, message: 'tcp probe needs a port' });
    });
    if (u.probes.timeoutMs >= u.probes.intervalMs * u.probes.window)
      out.push({ path: `/uplinks/${i}/probes/timeoutMs`, message: 'timeout must be shorter than the whole window' });
  });
  if (c.cellular.enabled && c.uplinks.length && !c.uplinks.some((u) => u.name === c.cellular.uplink && u.kind === 'cellular'))
    out.push({ path: '/cellular/uplink', message: `no uplink named ${JSON.stringify(c.cellular.uplink)} of kind cellular` });
  if (c.wifi.enabled && !c.uplinks.some((u) => u.name === c.wifi.uplink && u.kind === 'wifi'))
    out.push({ path: '/wifi/uplink', message: `no uplink named ${JSON.stringify(c.wifi.uplink)} of kind wifi` });
  if (!isKnownTimeZone(c.records.timeZone))
    out.push({ path: '/records/timeZone', message: `${JSON.stringify(c.records.timeZone)} is not a time zone (an IANA name, e.g. Europe/London)` });
  return out;
}

/**
 * Validate an already-parsed document: migrate to the current version, fill defaults, and return
 * every problem with its JSON pointer path (not just the first).
 */
export function validateConfig(raw: unknown): { ok: true; config: Config } | { ok: false; problems: ConfigProblem[] } {
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, problems: [{ path: '/', message: 'config must be a mapping' }] };
  let doc = structuredClone(raw) as Record<string, unknown>;
  let version = doc.version === undefined ? CONFIG_VERSION : doc.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1 || version > CONFIG_VERSION)
    return {
      ok: false,
      problems: [{ path: '/version', message: `unsupported config version ${JSON.stringify(version)} (this agent reads 1..${CONFIG_VERSION})` }],
    };
  for (const m of migrations) {
    if (m.from === version) {
      doc = m.migrate(doc);
      version = m.from + 1;
    }
  }
  doc.version = version;
  const withDefaults = Value.Default(ConfigSchema, doc);
  const problems: ConfigProblem[] = [...Value.Errors(ConfigSchema, withDefaults)].map((e) => ({ path: e.path || '/', message: e.message }));
  if (problems.length) return { ok: false, problems: dedupe(problems) };
  const config = withDefaults as Config;
  const semantic = semanticProblems(config);
  return semantic.length ? { ok: false, problems: semantic } : { ok: true, config };
}

function dedupe(p: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return p.filter((x) => {
    const k = `${x.path} ${x.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function parseConfigText(text: string, source = 'config'): unknown {
  try {
    return parseYaml(text, { maxAliasCount: 100 });
  } catch (e) {
    throw new AppError('CONFIG_INVALID', `${source}: not valid YAML: ${(e as Error).message.split('\n')[0]}`, {
      problems: [{ path: '/', message: `YAML syntax: ${(e as Error).message.split('\n')[0]}` }],
    });
  }
}

/** Load a config file, or the embedded defaults when `path` is undefined. Throws CONFIG_INVALID listing every problem. */
export function loadConfig(path: string | undefined): Config {
  let raw: unknown = {};
  if (path !== undefined) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new AppError('CONFIG_UNREADABLE', `cannot read config ${path}: ${(e as Error).message}`);
    }
    raw = parseConfigText(text, path);
  }
  const r = validateConfig(raw);
  if (!r.ok) throw new AppError('CONFIG_INVALID', `${path ?? 'config'}: ${r.problems.length} problem(s)`, { problems: r.problems });
  return r.config;
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `  ${p.path}: ${p.message}`).join('\n');
}

export function configJsonSchema(): object {
  return JSON.parse(JSON.stringify(ConfigSchema));
}
