import { createReadStream, renameSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppError } from '../../../common/errors.js';
import { fsyncDir } from '../core/fs.js';
import { verifyBundle, type VerifiedBundle, type VerifyOptions } from './verify.js';

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
    const req = (url.protocol === 'https:' ? httpsGet : httpGet)(url, opts, (res) => {
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

/**
 * Stream the bundle to `dest` while verifying it: each chunk is written to `dest.part` and then
 * checked, so memory stays at one chunk and a wrong-key bundle is refused within its first
 * kilobytes (the download is abandoned there). Only a bundle that verified end to end is renamed
 * to `dest` (fsync, rename, fsync dir); a refused or cut download leaves no file behind.
 */
export async function downloadVerified(where: string, dest: string, src: SourceOptions, verify: VerifyOptions): Promise<VerifiedBundle> {
  const part = `${dest}.part`;
  const fh = await open(part, 'w', 0o600);
  let ok = false;
  try {
    const source = await openSource(where, src);
    async function* tee(): AsyncGenerator<Buffer> {
      for await (const c of source) {
        await fh.write(c);
        yield c;
      }
    }
    const r = await verifyBundle(tee(), verify);
    await fh.sync();
    ok = true;
    return r;
  } finally {
    await fh.close();
    if (ok) {
      renameSync(part, dest);
      fsyncDir(dirname(dest));
    } else rmSync(part, { force: true });
  }
}
