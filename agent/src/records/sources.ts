import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { AppError } from '../../../common/errors.js';
import { FhirDayListSource, FileDayListSource, type DayListSource } from './day-list.js';
import { GpConnectClient } from './gpconnect/client.js';
import { HttpClient } from './http-fetch.js';
import type { SummarySource } from './sync.js';

/** Where the records files live; shared by the capability and the CLI so both agree. */
export function recordsPaths(config: Config): { db: string; key: string; runtimeKey: string } {
  const r = config.records;
  return {
    db: r.dbPath || join(config.paths.stateDir, 'records.db'),
    key: r.keyPath || join(config.paths.stateDir, 'records.key'),
    // RAM-backed run dir (tmpfs): the unlocked key never reaches the SD card.
    runtimeKey: join(config.paths.runDir, 'records.unlocked-key'),
  };
}

export function buildSources(config: Config, version: string): { dayList: DayListSource; summaries: SummarySource } {
  const r = config.records;
  const g = r.gpconnect;
  if (!g.baseUrl) throw new AppError('CONFIG_INVALID', 'records.gpconnect.baseUrl is not set');
  if (!g.fromAsid || !g.toAsid) throw new AppError('CONFIG_INVALID', 'records.gpconnect.fromAsid and toAsid are required (Spine Secure Proxy headers)');
  const summaries = new GpConnectClient({
    ...g,
    organizationOds: g.organizationOds || config.site.odsCode,
    organizationName: g.organizationName || config.site.practiceName,
    deviceVersion: version,
    requestTimeoutMs: r.requestTimeoutMs,
    fetch: new HttpClient({ ...(g.tlsCaPath ? { ca: readCa(g.tlsCaPath) } : {}), maxSockets: Math.max(1, r.concurrency) }).fetch,
  });
  const d = r.dayList;
  let dayList: DayListSource;
  if (d.source === 'file') {
    if (!d.filePath) throw new AppError('CONFIG_INVALID', 'records.dayList.filePath is not set');
    dayList = new FileDayListSource({ path: d.filePath, format: d.fileFormat });
  } else {
    if (!d.fhirBaseUrl) throw new AppError('CONFIG_INVALID', 'records.dayList.fhirBaseUrl is not set');
    dayList = new FhirDayListSource({ baseUrl: d.fhirBaseUrl, bearerToken: d.bearerToken, timeoutMs: r.requestTimeoutMs });
  }
  return { dayList, summaries };
}

function readCa(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new AppError('CONFIG_INVALID', `records.gpconnect.tlsCaPath: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
