import { createReadStream } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { http } from '../../../common/node-builtins.js';
import { get as httpsGet } from 'node:https';
import { fileURLToPath } from 'node:url';
import { AppError } from '../../../common/errors.js';

export interface SourceOptions {
  /** PEM CA for https URLs. */
  ca?: Buffer | undefined;
  idleTimeoutMs: number;
  maxBytes: number;
  signal?: AbortSignal;
}

async function* limited(src: AsyncIterable<Buffer>, maxBytes: number): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const c of src) {
    n += c.length;
    if (n > maxBytes) throw new AppError('UPDATE_TOO_LARGE', `download exceeds the ${maxBytes}-byte limit`);
    yield c;
  }
}

function request(url: URL, o: SourceOptions): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const opts = { timeout: o.idleTimeoutMs, ...(o.signal ? { signal: o.signal } : {}), ...(url.protocol === 'https:' && o.ca ? { ca: o.ca } : {}) };
    const req = (url.protocol === 'https:' ? httpsGet : http.get)(url, opts, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new AppError('UPSTREAM_ERROR', `bundle download ${url.origin}${url.pathname}: HTTP ${res.statusCode}`));
        return;
      }
      // An idle socket (the 4G link went away) must end the download, not hang the update for ever.
      res.setTimeout(o.idleTimeoutMs, () => res.destroy(new AppError('UPSTREAM_ERROR', `bundle download stalled for ${o.idleTimeoutMs} ms`)));
      resolve(res);
    });
    req.on('timeout', () => req.destroy(new AppError('UPSTREAM_ERROR', `bundle download: no response in ${o.idleTimeoutMs} ms`)));
    req.on('error', (e) => reject(e instanceof AppError ? e : new AppError('UPSTREAM_ERROR', `bundle download failed: ${e.message}`)));
  });
}

/** The bundle as a byte stream: http(s) URL, file:// URL or a local path (USB stick, engineer's laptop). */
export async function openSource(where: string, o: SourceOptions): Promise<AsyncIterable<Buffer>> {
  if (/^https?:\/\//.test(where)) {
    const res = await request(new URL(where), o);
    const len = Number(res.headers['content-length'] ?? 0);
    if (len > o.maxBytes) {
      res.destroy();
      throw new AppError('UPDATE_TOO_LARGE', `bundle of ${len} bytes exceeds the ${o.maxBytes}-byte limit`);
    }
    return limited(res, o.maxBytes);
  }
  const path = where.startsWith('file://') ? fileURLToPath(where) : where;
  if (!path.startsWith('/')) throw new AppError('BAD_REQUEST', `bundle location must be an http(s) URL or an absolute path: ${where}`);
  return limited(createReadStream(path, { highWaterMark: 1 << 20, ...(o.signal ? { signal: o.signal } : {}) }) as AsyncIterable<Buffer>, o.maxBytes);
}
