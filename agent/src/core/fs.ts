import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * Every host path goes through a root prefix so tests run against a fixture tree
 * (e.g. a fake /sys/class/leds) and nothing in a test touches the real host.
 */
export function makeHostPath(root: string): (p: string) => string {
  const base = resolve(root || '/');
  return (p: string) => (base === '/' ? resolve(p) : join(base, resolve('/', p)));
}

/**
 * write + fsync + rename + fsync(dir): after a power cut the file is either the old one or the
 * new one, never half of each (SD cards on a Pi lose power routinely).
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

/** Make a rename in `dir` durable (power cuts). Not every filesystem supports it; the rename is atomic anyway. */
export function fsyncDir(dir: string): void {
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Directory fsync is not supported on every filesystem; the rename is still atomic.
  }
}

/** Overwrite a file with random bytes, fsync, delete: best effort against recovery from flash. */
export function shredFile(path: string): boolean {
  if (!existsSync(path)) return false;
  try {
    const size = Math.max(1, statSync(path).size);
    const fd = openSync(path, 'r+');
    try {
      writeSync(fd, randomBytes(size), 0, size, 0);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* still delete below */
  }
  unlinkSync(path);
  return true;
}
