import type { Agent as HttpAgent, IncomingMessage } from 'node:http';
import { http } from '../../../common/node-builtins.js';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';

/**
 * The small HTTP(S) client the records sync and the capture forwarder use instead of Node's global
 * `fetch`. Why: `fetch` is undici, about 16 MB of resident JavaScript and buffers once loaded, and
 * the agent needs only "send one request, read one bounded body" (make bench-memory,
 * docs/architecture.md "Memory"). What it keeps from `fetch`, and where it is stricter:
 *
 * - TLS is always verified (`rejectUnauthorized` is never turned off); `ca` replaces the system CAs
 *   when the config names one (records.gpconnect.tlsCaPath).
 * - Redirects are never followed: a 3xx comes back as a response that is not `ok`, so the caller
 *   reports "HTTP 302" and no bearer token or GP Connect JWT is sent to a host nobody configured.
 * - The body is capped (`maxBytes`, before and after decompression); a bigger answer is an error,
 *   not an out-of-memory agent. No `accept-encoding` is sent; gzip/deflate/br are still decoded.
 * - Aborts through `signal` (e.g. `AbortSignal.timeout`) reject with the signal's reason, so a
 *   timeout reads as `TimeoutError` exactly as it did with `fetch`; `idleTimeoutMs` bounds a
 *   socket that goes quiet even when the caller gave no signal.
 * - Connections are kept alive and reused (one pool per client), as undici did.
 */
export interface HttpResponse {
  ok: boolean;
  status: number;
  statusText: string;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}

export interface HttpRequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

/** The part of `fetch` the records code uses: the global `fetch` also fits (tests inject it). */
export type FetchLike = (url: string, init?: HttpRequestInit) => Promise<HttpResponse>;

export interface HttpClientOptions {
  /** PEM CA certificate(s) trusted instead of the system CAs. */
  ca?: string | Buffer;
  /** Largest body accepted, bytes (default 64 MiB: a big practice's day list or a long record). */
  maxBytes?: number;
  /** A socket silent for this long fails the request (default 60 s). */
  idleTimeoutMs?: number;
  /** Sockets per host, kept alive between requests (default 6: records.concurrency's default). */
  maxSockets?: number;
}

export class HttpError extends Error {
  constructor(
    message: string,
    readonly code: 'TOO_LARGE' | 'BAD_URL' | 'BAD_ENCODING' | 'IDLE_TIMEOUT',
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

export class HttpClient {
  private readonly http: HttpAgent;
  private readonly https: HttpsAgent;
  private readonly maxBytes: number;
  private readonly idleTimeoutMs: number;

  constructor(o: HttpClientOptions = {}) {
    const maxSockets = o.maxSockets ?? 6;
    const pool = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' as const };
    this.http = new http.Agent(pool);
    this.https = new HttpsAgent({ ...pool, rejectUnauthorized: true, ...(o.ca ? { ca: o.ca } : {}) });
    this.maxBytes = o.maxBytes ?? DEFAULT_MAX_BYTES;
    this.idleTimeoutMs = o.idleTimeoutMs ?? 60_000;
  }

  /** `fetch`-shaped and bound, so it can be handed around as a function. */
  readonly fetch: FetchLike = (url, init = {}) => this.request(url, init);

  /** Close the kept-alive sockets (the agent stopping, or a test ending). */
  close(): void {
    this.http.destroy();
    this.https.destroy();
  }

  private request(url: string, init: HttpRequestInit): Promise<HttpResponse> {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return Promise.reject(new HttpError('invalid URL', 'BAD_URL'));
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return Promise.reject(new HttpError(`unsupported URL scheme ${u.protocol}`, 'BAD_URL'));
    const signal = init.signal;
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const body = init.body === undefined ? undefined : Buffer.from(init.body);
    const headers: Record<string, string> = { ...init.headers };
    if (body) headers['content-length'] = String(body.length);
    const secure = u.protocol === 'https:';
    const options = { method: init.method ?? 'GET', headers, agent: secure ? this.https : this.http, ...(secure ? { rejectUnauthorized: true } : {}) };
    return new Promise<HttpResponse>((resolve, reject) => {
      const req = (secure ? httpsRequest : http.request)(u, options);
      const onAbort = () => req.destroy(abortReason(signal!));
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => signal?.removeEventListener('abort', onAbort);
      req.setTimeout(this.idleTimeoutMs, () => req.destroy(new HttpError(`no data for ${this.idleTimeoutMs} ms`, 'IDLE_TIMEOUT')));
      req.once('error', (e) => {
        done();
        reject(e);
      });
      req.once('response', (res) => {
        const text = this.readBody(res, req.destroy.bind(req)).finally(done);
        // A caller that never reads the body must not leave an unhandled rejection behind.
        text.catch(() => {});
        const status = res.statusCode ?? 0;
        resolve({
          ok: status >= 200 && status < 300,
          status,
          statusText: res.statusMessage ?? '',
          headers: { get: (name) => headerValue(res, name) },
          text: () => text,
        });
      });
      req.end(body);
    });
  }

  private readBody(res: IncomingMessage, destroy: (e: Error) => void): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > this.maxBytes) {
        const e = new HttpError(`response of ${declared} bytes is over the ${this.maxBytes}-byte limit`, 'TOO_LARGE');
        destroy(e);
        return reject(e);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > this.maxBytes) {
          const e = new HttpError(`response over the ${this.maxBytes}-byte limit`, 'TOO_LARGE');
          destroy(e);
          reject(e);
        } else chunks.push(c);
      });
      res.once('error', reject);
      res.once('aborted', () => reject(new Error('response aborted')));
      res.once('end', () => {
        try {
          resolve(this.decode(Buffer.concat(chunks), String(res.headers['content-encoding'] ?? 'identity')).toString('utf8'));
        } catch (e) {
          reject(e as Error);
        }
      });
    });
  }

  private decode(raw: Buffer, encoding: string): Buffer {
    const opts = { maxOutputLength: this.maxBytes };
    try {
      switch (encoding.trim().toLowerCase()) {
        case 'identity':
        case '':
          return raw;
        case 'gzip':
        case 'x-gzip':
          return gunzipSync(raw, opts);
        case 'deflate':
          return inflateSync(raw, opts);
        case 'br':
          return brotliDecompressSync(raw, opts);
      }
    } catch (e) {
      const tooLarge = (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      if (tooLarge) throw new HttpError(`decoded response over the ${this.maxBytes}-byte limit`, 'TOO_LARGE');
      throw new HttpError(`undecodable ${encoding} body: ${(e as Error).message}`, 'BAD_ENCODING');
    }
    throw new HttpError(`unsupported content-encoding ${encoding}`, 'BAD_ENCODING');
  }
}

function headerValue(res: IncomingMessage, name: string): string | null {
  const v = res.headers[name.toLowerCase()];
  if (v === undefined) return null;
  return Array.isArray(v) ? v.join(', ') : String(v);
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new DOMException('This operation was aborted', 'AbortError');
}
