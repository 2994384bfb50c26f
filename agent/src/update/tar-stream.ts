import { AppError } from '../../../common/errors.js';

/**
 * Just enough ustar to read an update bundle as it streams past: fixed member order, regular files
 * only, no pax/GNU extensions (the bundle tool writes `tar --format=ustar`). Anything else is
 * UPDATE_MALFORMED; running out of bytes is UPDATE_TRUNCATED. Nothing here buffers a member
 * larger than the caller asks for, so a 500 MB payload passes through in 64 KiB chunks.
 */
export const BLOCK = 512;

export interface TarHeader {
  name: string;
  size: number;
  type: string;
}

/** Pulls exact byte counts out of an async chunk source without concatenating the whole stream. */
export class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  private readonly it: AsyncIterator<Buffer | Uint8Array | string>;
  /** Bytes handed out so far (for progress and error messages). */
  consumed = 0;

  constructor(source: AsyncIterable<Buffer | Uint8Array | string>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    return true;
  }

  /** Exactly n bytes, or null when the stream ends first (the caller names the truncation). */
  async exact(n: number): Promise<Buffer | null> {
    while (this.buf.length < n) if (!(await this.fill())) return null;
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.consumed += n;
    return out;
  }

  /** Hand n bytes to `sink` chunk by chunk (awaited: the sink's backpressure holds the reader). */
  async pipe(n: number, sink: (chunk: Buffer) => Promise<void> | void): Promise<number> {
    let left = n;
    while (left > 0) {
      if (!this.buf.length && !(await this.fill())) return n - left;
      const take = Math.min(left, this.buf.length);
      const chunk = this.buf.subarray(0, take);
      this.buf = this.buf.subarray(take);
      this.consumed += take;
      left -= take;
      await sink(chunk);
    }
    return n;
  }

  /** True when nothing is left (after the end-of-archive blocks). */
  async atEnd(): Promise<boolean> {
    if (this.buf.length) return false;
    return !(await this.fill());
  }

  /** Stop the source (an HTTP download is aborted, a file closed). */
  async close(): Promise<void> {
    await this.it.return?.();
  }
}

const str = (b: Buffer, off: number, len: number): string => {
  const s = b.subarray(off, off + len);
  const nul = s.indexOf(0);
  return (nul === -1 ? s : s.subarray(0, nul)).toString('latin1');
};

const octal = (b: Buffer, off: number, len: number, what: string): number => {
  const s = str(b, off, len).trim();
  if (!/^[0-7]+$/.test(s)) throw new AppError('UPDATE_MALFORMED', `bundle is not a ustar archive (bad ${what} field)`);
  return parseInt(s, 8);
};

/** Parse one 512-byte header; null for an all-zero block (end of archive). */
export function parseHeader(block: Buffer): TarHeader | null {
  if (block.every((x) => x === 0)) return null;
  const magic = str(block, 257, 6);
  if (magic !== 'ustar') throw new AppError('UPDATE_MALFORMED', 'bundle is not a ustar archive');
  const sum = octal(block, 148, 8, 'checksum');
  let calc = 0;
  for (let i = 0; i < BLOCK; i++) calc += i >= 148 && i < 156 ? 0x20 : block[i]!;
  if (sum !== calc) throw new AppError('UPDATE_CORRUPT', 'bundle archive header checksum mismatch');
  const prefix = str(block, 345, 155);
  const name = (prefix ? `${prefix}/` : '') + str(block, 0, 100);
  const type = String.fromCharCode(block[156]!) || '0';
  return { name: name.replace(/^\.\//, ''), size: octal(block, 124, 12, 'size'), type: type === '\0' ? '0' : type };
}

/** Read the next member header, refusing anything but the expected regular file. */
export async function expectMember(r: ByteReader, name: string, maxSize: number): Promise<TarHeader | null> {
  const block = await r.exact(BLOCK);
  if (!block) throw new AppError('UPDATE_TRUNCATED', `bundle ends before ${name} (after ${r.consumed} bytes)`);
  const h = parseHeader(block);
  if (!h) return null;
  if (h.type !== '0') throw new AppError('UPDATE_MALFORMED', `bundle member ${h.name} is not a regular file (type ${h.type})`);
  if (h.name !== name) return { ...h };
  if (h.size > maxSize) throw new AppError('UPDATE_TOO_LARGE', `bundle member ${name} is ${h.size} bytes, over the limit of ${maxSize}`);
  return h;
}

export const padding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;
