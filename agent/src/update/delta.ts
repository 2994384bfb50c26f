import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { http } from '../../../common/node-builtins.js';
import { get as httpsGet } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { zstdDecompressSync } from 'node:zlib';
import { AppError } from '../../../common/errors.js';
import { niced, nicedNotFound } from '../../../common/priority.js';

/**
 * Delta installs (bundle format 2, docs/updates.md): Debian's casync rebuilds the target slot image
 * from a signed blob index, taking every chunk it can from the running slot (the seed) and fetching
 * the rest from the chunk store published beside the bundle.
 *
 * casync never talks to the network itself. It fetches from a loopback HTTP server in this process
 * (the chunk proxy), which fetches each chunk from the real store with the same CA pinning, idle
 * timeout and size limits as a full bundle download, and checks every chunk against its name (the
 * SHA-512/256 of its decompressed bytes) before casync sees it. casync checks the chunks again, and
 * the installer hashes the whole written slot against the signed image SHA-256 before arming it.
 */

/** casync's chunk file name inside a store: <first 4 hex>/<64 hex>.cacnk (zstd-compressed chunk). */
const CHUNK_PATH = /^\/([0-9a-f]{4})\/([0-9a-f]{64})\.cacnk$/;
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
/** casync's largest chunk is 256 KiB by default (make-bundle.sh uses the defaults); allow margin. */
export const MAX_CHUNK_BYTES = 4 * 1024 * 1024;

export interface DeltaOptions {
  /** The casync blob index, already verified against the signed manifest. */
  index: Buffer;
  /** The chunk store: an http(s) URL or an absolute directory. */
  store: string;
  /** Read-only seeds: the running slot (block device or file). */
  seeds: readonly string[];
  /** The inactive slot to write. */
  target: string;
  /** PEM CA for an https store. */
  ca?: Buffer | undefined;
  idleTimeoutMs: number;
  /** Most chunk bytes fetched in all (the update.maxBundleBytes limit). */
  maxBytes: number;
  signal?: AbortSignal;
  /** Scratch directory for the index file casync reads. */
  tmpDir: string;
  /** After each chunk fetched and checked: chunks and compressed bytes so far. */
  onChunk?: (chunks: number, bytes: number) => void;
  /** The casync binary (tests); default `casync` on PATH. */
  casync?: string;
}

export interface DeltaResult {
  /** Chunks casync had to fetch (not in the seed) and their compressed bytes. */
  chunks: number;
  fetchedBytes: number;
  ms: number;
}

/** Where the chunk store named by a manifest lives: beside the bundle (same URL directory or folder). */
export function storeLocation(bundle: string, store: string): string {
  if (/^https?:\/\//.test(bundle)) return new URL(`${store}/`, bundle).href;
  const path = bundle.startsWith('file://') ? fileURLToPath(bundle) : bundle;
  return join(dirname(path), store);
}

function fetchUrl(url: URL, o: Pick<DeltaOptions, 'ca' | 'idleTimeoutMs' | 'signal'>, max: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const opts = { timeout: o.idleTimeoutMs, ...(o.signal ? { signal: o.signal } : {}), ...(url.protocol === 'https:' && o.ca ? { ca: o.ca } : {}) };
    const req = (url.protocol === 'https:' ? httpsGet : http.get)(url, opts, (res: IncomingMessage) => {
      if (res.statusCode === 404) {
        res.resume();
        resolve(null);
        return;
      }
      if (res.statusCode !== 200) {
        res.resume();
        reject(new AppError('UPSTREAM_ERROR', `chunk store ${url.origin}: HTTP ${res.statusCode} for ${url.pathname}`));
        return;
      }
      res.setTimeout(o.idleTimeoutMs, () => res.destroy(new AppError('UPSTREAM_ERROR', `chunk download stalled for ${o.idleTimeoutMs} ms`)));
      const parts: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n > max) res.destroy(new AppError('UPDATE_TOO_LARGE', `chunk ${url.pathname} is over ${max} bytes`));
        else parts.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(parts)));
      res.on('error', (e) => reject(e instanceof AppError ? e : new AppError('UPSTREAM_ERROR', `chunk download failed: ${e.message}`)));
    });
    req.on('timeout', () => req.destroy(new AppError('UPSTREAM_ERROR', `chunk store: no response in ${o.idleTimeoutMs} ms`)));
    req.on('error', (e) => reject(e instanceof AppError ? e : new AppError('UPSTREAM_ERROR', `chunk download failed: ${e.message}`)));
  });
}

async function readChunkFile(path: string, max: number): Promise<Buffer | null> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return null;
  }
  if (size > max) throw new AppError('UPDATE_TOO_LARGE', `chunk ${path} is ${size} bytes, over ${max}`);
  const fh = await open(path, 'r');
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** A chunk is good when its decompressed bytes hash (SHA-512/256, casync's default) to its name. */
export function checkChunk(id: string, compressed: Buffer): void {
  if (!compressed.subarray(0, 4).equals(ZSTD_MAGIC)) throw new AppError('UPDATE_CORRUPT', `chunk ${id.slice(0, 16)}... is not a zstd casync chunk`);
  let data: Buffer;
  try {
    data = zstdDecompressSync(compressed, { maxOutputLength: MAX_CHUNK_BYTES });
  } catch {
    throw new AppError('UPDATE_CORRUPT', `chunk ${id.slice(0, 16)}... does not decompress`);
  }
  const got = createHash('sha512-256').update(data).digest('hex');
  if (got !== id)
    throw new AppError(
      'UPDATE_CORRUPT',
      `chunk ${id.slice(0, 16)}... holds other data (hash ${got.slice(0, 16)}...): the chunk store is damaged or tampered with`,
    );
}

/**
 * The loopback server casync fetches chunks from. It answers only chunk paths, fetches each from the
 * real store, checks it and counts it; the first problem is kept so the install fails with its real
 * reason (a missing or tampered chunk) rather than casync's terse exit.
 */
class ChunkProxy {
  private server: Server | null = null;
  problem: AppError | null = null;
  chunks = 0;
  bytes = 0;

  constructor(private readonly o: DeltaOptions) {}

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => void this.serve(req.url ?? '', res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(0, '127.0.0.1', resolve);
    });
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private fail(res: ServerResponse, status: number, e: AppError): void {
    this.problem ??= e;
    res.writeHead(status, { 'content-type': 'text/plain' }).end(`${e.message}\n`);
  }

  private async serve(url: string, res: ServerResponse): Promise<void> {
    const m = CHUNK_PATH.exec(url);
    if (!m || !m[2]!.startsWith(m[1]!)) {
      res.writeHead(404).end();
      return;
    }
    const id = m[2]!;
    const rel = `${m[1]}/${id}.cacnk`;
    try {
      const body = /^https?:\/\//.test(this.o.store)
        ? await fetchUrl(new URL(rel, this.o.store.endsWith('/') ? this.o.store : `${this.o.store}/`), this.o, MAX_CHUNK_BYTES)
        : await readChunkFile(join(this.o.store, rel), MAX_CHUNK_BYTES);
      if (!body) {
        this.fail(
          res,
          404,
          new AppError('UPDATE_CHUNK_MISSING', `the chunk store ${this.o.store} has no chunk ${id}: publish the store again, or send the full bundle`, {
            chunk: id,
          }),
        );
        return;
      }
      checkChunk(id, body);
      this.bytes += body.length;
      if (this.bytes > this.o.maxBytes) throw new AppError('UPDATE_TOO_LARGE', `delta download exceeds the ${this.o.maxBytes}-byte limit`);
      this.chunks++;
      this.o.onChunk?.(this.chunks, this.bytes);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
    } catch (e) {
      const err = e instanceof AppError ? e : new AppError('UPSTREAM_ERROR', `chunk ${id.slice(0, 16)}...: ${(e as Error).message}`);
      this.fail(res, 502, err);
    }
  }
}

/** Environment for casync: no proxy variables (its HTTP helper is curl, which would honour them). */
function casyncEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(https?|all|no|ftp)_proxy$/i.test(k)) env[k] = v;
  return { ...env, NO_PROXY: '*', no_proxy: '*' };
}

/** Rebuild the slot image the index describes into `target`; the caller checks its SHA-256 after. */
export async function extractDelta(o: DeltaOptions): Promise<DeltaResult> {
  const started = performance.now();
  const dir = mkdtempSync(join(o.tmpDir, 'delta-'));
  const indexPath = join(dir, 'index.caibx');
  writeFileSync(indexPath, o.index, { mode: 0o600 });
  const proxy = new ChunkProxy(o);
  try {
    const storeUrl = await proxy.start();
    const args = [
      'extract',
      `--store=${storeUrl}`,
      ...o.seeds.map((s) => `--seed=${s}`),
      // Seed only from the running slot: the target's old content is being overwritten.
      '--seed-output=no',
      // A slot is a plain block device: no hole punching (discard) and no reflinks, just writes.
      '--punch-holes=no',
      '--reflink=no',
      indexPath,
      o.target,
    ];
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      // Niced (common/priority.ts): rebuilding a slot yields the CPU to the agent.
      const child = spawn(...niced(o.casync ?? 'casync', args), { env: casyncEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-4000)));
      const abort = () => child.kill('SIGKILL');
      o.signal?.addEventListener('abort', abort, { once: true });
      child.on('error', (e: NodeJS.ErrnoException) => {
        o.signal?.removeEventListener('abort', abort);
        reject(
          e.code === 'ENOENT'
            ? new AppError('UNAVAILABLE', 'casync is not installed on this device, so it cannot install a delta bundle: send the full bundle')
            : new AppError('COMMAND_FAILED', `casync: ${e.message}`),
        );
      });
      child.on('close', (c) => {
        o.signal?.removeEventListener('abort', abort);
        resolve({ code: c, stderr: err });
      });
    });
    if (proxy.problem) throw proxy.problem;
    if (o.signal?.aborted) throw new AppError('UNAVAILABLE', 'delta install cancelled');
    if (nicedNotFound(code, stderr))
      throw new AppError('UNAVAILABLE', 'casync is not installed on this device, so it cannot install a delta bundle: send the full bundle');
    if (code !== 0) {
      const last = stderr.trim().split('\n').slice(-3).join(' | ');
      throw new AppError('COMMAND_FAILED', `casync could not rebuild the slot image from the index (exit ${code}): ${last}`);
    }
    return { chunks: proxy.chunks, fetchedBytes: proxy.bytes, ms: Math.round(performance.now() - started) };
  } finally {
    await proxy.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
