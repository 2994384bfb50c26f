import { request } from 'node:https';
import { AppError } from '../../../common/errors.js';
import { Fields, fieldsOf, parseFields } from '../../../common/fields.js';

/** What the fleet answers a box that polls its claim request (fleet/src/claim/endpoint.ts). */
export type ClaimPoll =
  | { status: 'pending'; expiresAt: number }
  | { status: 'expired' | 'unknown' }
  | { status: 'claimed'; deviceId: string; odsCode: string; practiceName: string; certificate: string; caChain: string; brokers: string[]; prefix?: string };

export interface ClaimSubmit {
  requestId: string;
  expiresAt: number;
}

const MAX_BODY = 64 * 1024;

/**
 * The box's side of the enrolment endpoint: JSON over HTTPS that trusts only the pinned ICB CA
 * (enrolment.claimCaPath), never the system's CAs. No client certificate: the box has none yet.
 */
export class ClaimClient {
  constructor(
    private readonly baseUrl: string,
    private readonly caPem: string,
    private readonly timeoutMs = 15_000,
  ) {}

  async submit(csr: string, commitment: string): Promise<ClaimSubmit> {
    const r = await this.call('POST', '/enrol/v1/requests', { csr, commitment });
    if (r.status !== 201 && r.status !== 200)
      throw new AppError('UPSTREAM_ERROR', `fleet refused the claim request (${r.status}): ${String(r.body.error ?? '').slice(0, 200)}`);
    const { requestId, expiresAt } = r.body as { requestId?: unknown; expiresAt?: unknown };
    if (typeof requestId !== 'string' || !/^[A-Za-z0-9_-]{16,64}$/.test(requestId) || typeof expiresAt !== 'number')
      throw new AppError('UPSTREAM_ERROR', 'fleet answered the claim request without a request id');
    return { requestId, expiresAt };
  }

  async poll(requestId: string): Promise<ClaimPoll> {
    const r = await this.call('GET', `/enrol/v1/requests/${encodeURIComponent(requestId)}`);
    if (r.status === 404) return { status: 'unknown' };
    if (r.status === 410) return { status: 'expired' };
    if (r.status !== 200) throw new AppError('UPSTREAM_ERROR', `fleet answered ${r.status}: ${String(r.body.error ?? '').slice(0, 200)}`);
    const b = fieldsOf(r.body);
    if (b.status === 'pending') return { status: 'pending', expiresAt: Number(b.expiresAt) };
    const str = (k: string) => (typeof b[k] === 'string' ? (b[k] as string) : '');
    if (
      b.status === 'claimed' &&
      str('deviceId') &&
      str('certificate') &&
      str('caChain') &&
      Array.isArray(b.brokers) &&
      b.brokers.every((x) => typeof x === 'string')
    ) {
      return {
        status: 'claimed',
        deviceId: str('deviceId'),
        odsCode: str('odsCode'),
        practiceName: str('practiceName'),
        certificate: str('certificate'),
        caChain: str('caChain'),
        brokers: b.brokers as string[],
        ...(str('prefix') ? { prefix: str('prefix') } : {}),
      };
    }
    throw new AppError('UPSTREAM_ERROR', `fleet answered an unknown claim status ${JSON.stringify(b.status ?? null)}`);
  }

  private call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const url = new URL(path, this.baseUrl.endsWith('/') ? this.baseUrl : `${this.baseUrl}/`);
    if (url.protocol !== 'https:') return Promise.reject(new AppError('CONFIG_INVALID', `enrolment.claimUrl must be https: ${this.baseUrl}`));
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          ca: this.caPem,
          timeout: this.timeoutMs,
          headers: { accept: 'application/json', ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_BODY) req.destroy(new AppError('UPSTREAM_ERROR', 'fleet answer too large'));
            else chunks.push(c);
          });
          res.on('end', () => {
            let parsed: Fields = {};
            try {
              parsed = parseFields(Buffer.concat(chunks).toString('utf8') || '{}');
            } catch {
              /* a non-JSON answer: the status code says enough */
            }
            resolve({ status: res.statusCode ?? 0, body: parsed && typeof parsed === 'object' ? parsed : {} });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new AppError('UPSTREAM_ERROR', `no answer from ${url.host} within ${this.timeoutMs} ms`)));
      req.on('error', (e) =>
        reject(e instanceof AppError ? e : new AppError('UPSTREAM_ERROR', `cannot reach the fleet at ${url.host}: ${(e as Error).message}`)),
      );
      req.end(data);
    });
  }
}
