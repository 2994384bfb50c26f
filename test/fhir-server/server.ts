import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { patientAppointmentsBundle, r4AppointmentPage, structuredBundle } from './bundles.js';
import { DEFAULT_PRACTICE, SyntheticPractice, type PracticeOptions } from './synthetic.js';

/**
 * The test upstream: a local FHIR server with
 *   POST /gpc/Patient/$gpc.getstructuredrecord    GP Connect Access Record: Structured (STU3)
 *   GET  /gpc/Patient/:id/Appointment?start=geD    GP Connect Appointment Management (patient's appointments)
 *   GET  /r4/Appointment?date=D[&_count&page]      FHIR R4 day list, paged, _include'd Patient/Practitioner
 *   GET  /fixtures/<dir>/<file>                    the published GP Connect examples, byte for byte
 *   POST /_control                                 change faults/generation (JSON) from another process
 * GP Connect requests must carry the SSP headers and an unsigned JWT, as the real SSP demands.
 * NHS number 9999999999 (the examples' patient) is answered with a published example Bundle.
 */
export interface Faults {
  /** Fraction of GP Connect requests answered 500. */
  errorRate: number;
  /** Fraction of GP Connect responses cut off half way (socket destroyed). */
  partialRate: number;
  /** Added latency per request, ms. */
  delayMs: number;
  /** Day-list requests fail with 503. */
  failDayList: boolean;
  /** These NHS numbers always fail with 500. */
  failNhs: string[];
}

export interface FhirServerOptions {
  port?: number;
  host?: string;
  practice?: Partial<PracticeOptions>;
  fixturesDir?: string;
  faults?: Partial<Faults>;
  random?: () => number;
}

export interface FhirServer {
  url: string;
  gpcBase: string;
  r4Base: string;
  practice: SyntheticPractice;
  faults: Faults;
  stats: { structured: number; appointments: number; dayList: number; errors: number; partial: number; rejected: number };
  lastHeaders: Record<string, string | string[] | undefined> | null;
  setPractice(o: Partial<PracticeOptions>): void;
  close(): Promise<void>;
}

const FIXTURE_NHS = '9999999999';
const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/fhir+json' });
  res.end(JSON.stringify(body));
};
const outcome = (code: string, text: string) => ({
  resourceType: 'OperationOutcome',
  issue: [
    { severity: 'error', code: 'invalid', details: { coding: [{ system: 'https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1', code }], text } },
  ],
});

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** SSP + JWT checks the Spine Secure Proxy and providers apply; returns a problem or null. */
export function checkGpcRequest(req: IncomingMessage, interaction: string): string | null {
  for (const h of ['ssp-traceid', 'ssp-from', 'ssp-to', 'ssp-interactionid']) if (!req.headers[h]) return `missing header ${h}`;
  if (req.headers['ssp-interactionid'] !== interaction) return `wrong Ssp-InteractionID ${String(req.headers['ssp-interactionid'])}`;
  const m = /^Bearer ([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.$/.exec(String(req.headers.authorization ?? ''));
  if (!m) return 'missing or malformed unsigned JWT';
  try {
    const header = JSON.parse(Buffer.from(m[1]!, 'base64url').toString()) as Record<string, unknown>;
    const claims = JSON.parse(Buffer.from(m[2]!, 'base64url').toString()) as Record<string, unknown>;
    if (header.alg !== 'none') return 'JWT alg must be none';
    for (const c of [
      'iss',
      'sub',
      'aud',
      'exp',
      'iat',
      'reason_for_request',
      'requested_scope',
      'requesting_device',
      'requesting_organization',
      'requesting_practitioner',
    ])
      if (claims[c] === undefined) return `JWT claim ${c} missing`;
    if (claims.reason_for_request !== 'directcare') return 'reason_for_request must be directcare';
    if (Number(claims.exp) - Number(claims.iat) > 300) return 'JWT lifetime over 5 minutes';
  } catch {
    return 'JWT not decodable';
  }
  return null;
}

export async function startFhirServer(opts: FhirServerOptions = {}): Promise<FhirServer> {
  const fixturesDir = opts.fixturesDir ?? process.env.GPC_FIXTURES ?? '/work/shared/fixtures/gpconnect';
  const random = opts.random ?? Math.random;
  let practice = new SyntheticPractice({ ...DEFAULT_PRACTICE, ...opts.practice });
  const faults: Faults = { errorRate: 0, partialRate: 0, delayMs: 0, failDayList: false, failNhs: [], ...opts.faults };
  const stats = { structured: 0, appointments: 0, dayList: 0, errors: 0, partial: 0, rejected: 0 };
  const state = { lastHeaders: null as FhirServer['lastHeaders'] };

  const gpcFault = (res: ServerResponse, body: string): boolean => {
    if (random() < faults.errorRate) {
      stats.errors++;
      json(res, 500, outcome('INTERNAL_SERVER_ERROR', 'injected error'));
      return true;
    }
    if (random() < faults.partialRate) {
      stats.partial++;
      res.writeHead(200, { 'content-type': 'application/fhir+json', 'content-length': String(Buffer.byteLength(body)) });
      res.write(body.slice(0, Math.floor(body.length / 2)));
      setImmediate(() => res.destroy());
      return true;
    }
    return false;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    if (faults.delayMs > 0 && path !== '/_control') await new Promise((r) => setTimeout(r, faults.delayMs));
    if (req.method === 'POST' && path === '/_control') {
      const body = JSON.parse((await readBody(req)) || '{}') as Partial<Faults> & { generation?: number };
      const { generation, ...f } = body;
      Object.assign(faults, f);
      if (generation !== undefined) practice = new SyntheticPractice({ ...practice.o, generation });
      return json(res, 200, { faults, generation: practice.o.generation });
    }
    if (req.method === 'POST' && path === '/gpc/Patient/$gpc.getstructuredrecord') {
      state.lastHeaders = { ...req.headers };
      const problem = checkGpcRequest(req, 'urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1');
      if (problem) return (stats.rejected++, json(res, 400, outcome('BAD_REQUEST', problem)));
      stats.structured++;
      const params = JSON.parse(await readBody(req)) as { parameter?: { name: string; valueIdentifier?: { value?: string } }[] };
      const nhs = params.parameter?.find((p) => p.name === 'patientNHSNumber')?.valueIdentifier?.value ?? '';
      if (faults.failNhs.includes(nhs)) return (stats.errors++, json(res, 500, outcome('INTERNAL_SERVER_ERROR', 'injected error')));
      let body: string;
      if (nhs === FIXTURE_NHS) {
        body = readFileSync(join(fixturesDir, 'structured', 'consultations_forwards_response1.json'), 'utf8')
          .replace(/^\{%.*%\}\s*/, '')
          .replace(/\{%\s*endhighlight\s*%\}\s*$/, '');
      } else {
        const i = practice.indexOf(nhs);
        if (i === undefined) return json(res, 404, outcome('PATIENT_NOT_FOUND', 'no such patient'));
        body = JSON.stringify(structuredBundle(practice, practice.patient(i)));
      }
      if (gpcFault(res, body)) return;
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      return res.end(body);
    }
    const apptMatch = /^\/gpc\/Patient\/([^/]+)\/Appointment$/.exec(path);
    if (req.method === 'GET' && apptMatch) {
      const problem = checkGpcRequest(req, 'urn:nhs:names:services:gpconnect:fhir:rest:search:patient_appointments-1');
      if (problem) return (stats.rejected++, json(res, 400, outcome('BAD_REQUEST', problem)));
      stats.appointments++;
      const id = decodeURIComponent(apptMatch[1]!);
      const i = id.startsWith('pat-') ? Number(id.slice(4)) : NaN;
      if (!Number.isInteger(i) || i < 0 || i >= practice.o.patients) return json(res, 200, { resourceType: 'Bundle', type: 'searchset', total: 0, entry: [] });
      const from = (url.searchParams.get('start') ?? '').replace(/^ge/, '') || new Date().toISOString().slice(0, 10);
      const dates = Array.from({ length: 8 }, (_, k) => new Date(Date.parse(`${from}T12:00:00Z`) + k * 86_400_000).toISOString().slice(0, 10));
      const body = JSON.stringify(patientAppointmentsBundle(practice, practice.patient(i), dates));
      if (gpcFault(res, body)) return;
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      return res.end(body);
    }
    if (req.method === 'GET' && path === '/r4/Appointment') {
      stats.dayList++;
      if (faults.failDayList) return json(res, 503, outcome('UNAVAILABLE', 'injected day-list failure'));
      const date = url.searchParams.get('date') ?? '';
      if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return json(res, 400, outcome('BAD_REQUEST', 'date=YYYY-MM-DD required'));
      const count = Math.min(1000, Number(url.searchParams.get('_count') ?? 200) || 200);
      const page = Number(url.searchParams.get('page') ?? 0) || 0;
      return json(res, 200, r4AppointmentPage(practice, date, page, count, `${origin()}/r4`));
    }
    if (req.method === 'GET' && path.startsWith('/fixtures/')) {
      const rel = path.slice('/fixtures/'.length);
      if (!/^(structured|appointments|foundations)\/[\w.-]+\.json$/.test(rel)) return json(res, 404, outcome('NOT_FOUND', 'no such fixture'));
      try {
        res.writeHead(200, { 'content-type': 'application/fhir+json' });
        return res.end(readFileSync(join(fixturesDir, rel)));
      } catch {
        return json(res, 404, outcome('NOT_FOUND', 'no such fixture'));
      }
    }
    json(res, 404, outcome('NOT_FOUND', `no route ${req.method} ${path}`));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) json(res, 500, outcome('INTERNAL_SERVER_ERROR', (e as Error).message));
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((r) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', r));
  const origin = () => `http://${opts.host ?? '127.0.0.1'}:${(server.address() as AddressInfo).port}`;
  return {
    url: origin(),
    gpcBase: `${origin()}/gpc`,
    r4Base: `${origin()}/r4`,
    get practice() {
      return practice;
    },
    faults,
    stats,
    get lastHeaders() {
      return state.lastHeaders;
    },
    setPractice(o) {
      practice = new SyntheticPractice({ ...practice.o, ...o });
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  } as FhirServer;
}

// `node --import tsx test/fhir-server/server.ts [--port N] [--seed N] [--patients N]`: run standalone.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (n: string, d: number) => {
    const i = process.argv.indexOf(`--${n}`);
    return i > 0 ? Number(process.argv[i + 1]) : d;
  };
  const s = await startFhirServer({ port: arg('port', 8090), practice: { seed: arg('seed', 42), patients: arg('patients', 12_000) } });
  process.stdout.write(`${JSON.stringify({ url: s.url, gpcBase: s.gpcBase, r4Base: s.r4Base })}\n`);
}
