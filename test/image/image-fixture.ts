import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Where `make image` put its outputs, and helpers shared by the image tests. */
export const REPO = resolve(import.meta.dirname, '../..');
export const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
export const ARCH = (process.env.ARCH ?? 'amd64') as 'amd64' | 'arm64';
export const OUT = resolve(process.env.IMAGE_OUT ?? join(REPO, 'out/image'));
export const IMAGE = process.env.SE_IMAGE ?? join(OUT, `surgery-edge-${VERSION}-${ARCH}.img`);
export const ROOT_SQFS = IMAGE.replace(/\.img$/, '.root.sqfs');

export function imageMissing(): string | false {
  if (!existsSync(IMAGE)) return `no image at ${IMAGE}: run make image ARCH=${ARCH} first`;
  const bin = ARCH === 'amd64' ? 'qemu-system-x86_64' : 'qemu-system-aarch64';
  try {
    execFileSync(bin, ['--version'], { stdio: 'ignore' });
  } catch {
    return `${bin} not installed`;
  }
  return false;
}

/** A copy-on-write disk over the built image, so every test starts from the pristine image. */
export function overlay(dir: string, base = IMAGE): string {
  mkdirSync(dir, { recursive: true });
  const p = join(dir, 'disk.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', p]);
  return p;
}

/** GET over HTTPS from the host side of the forwarded LAN port (self-signed: not verified). */
export function get(port: number, path: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port, path, rejectUnauthorized: false, timeout: timeoutMs }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (body += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end();
  });
}

export async function waitHttp(port: number, path: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    try {
      const r = await get(port, path);
      if (r.status === 200) return r;
    } catch {
      // not up yet
    }
    if (performance.now() > end) throw new Error(`https://127.0.0.1:${port}${path} did not answer 200 within ${timeoutMs} ms`);
    await sleep(1000);
  }
}

export function writeFigures(name: string, figures: Record<string, unknown>): void {
  const dir = join(REPO, 'test-artifacts', 'image');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(figures, null, 2) + '\n');
  process.stdout.write(JSON.stringify({ figure: name, ...figures }) + '\n');
}
