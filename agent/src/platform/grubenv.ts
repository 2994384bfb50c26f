import { AppError } from '../core/errors.js';

/**
 * GRUB's environment block (`grubenv`), byte for byte as grub-editenv writes it: exactly 1024
 * bytes, a fixed header line, `key=value` lines, padded with '#'. GRUB's `load_env`/`save_env`
 * read and rewrite it in place at boot; we rewrite it from Linux with write+fsync+rename, so a
 * power cut leaves the old block or the new one (grub-editenv itself truncates and rewrites in
 * place, which a power cut can leave empty).
 */
export const GRUBENV_SIZE = 1024;
const HEADER = '# GRUB Environment Block\n';
const SAFE = /^[A-Za-z0-9_.-]*$/;

export type GrubEnv = Record<string, string>;

export function parseGrubEnv(buf: Buffer): GrubEnv {
  const text = buf.toString('latin1');
  if (!text.startsWith(HEADER)) throw new AppError('CONFIG_UNREADABLE', 'not a GRUB environment block (bad header)');
  if (buf.length !== GRUBENV_SIZE) throw new AppError('CONFIG_UNREADABLE', `GRUB environment block is ${buf.length} bytes, not ${GRUBENV_SIZE}`);
  const env: GrubEnv = {};
  for (const line of text.slice(HEADER.length).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    env[line.slice(0, eq)] = line.slice(eq + 1).replace(/\\(.)/g, '$1');
  }
  return env;
}

export function renderGrubEnv(env: GrubEnv): Buffer {
  let body = HEADER;
  for (const [k, v] of Object.entries(env)) {
    // Our variables never need GRUB's backslash escapes; refusing them keeps both parsers in step.
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || !SAFE.test(v)) throw new AppError('BAD_REQUEST', `unsafe grubenv entry ${k}=${v}`);
    body += `${k}=${v}\n`;
  }
  if (body.length > GRUBENV_SIZE) throw new AppError('BAD_REQUEST', 'GRUB environment block overflow');
  return Buffer.from(body + '#'.repeat(GRUBENV_SIZE - body.length), 'latin1');
}

export type Slot = 'a' | 'b';
export const otherSlot = (s: Slot): Slot => (s === 'a' ? 'b' : 'a');

/**
 * What image/grub/grub.cfg does with the block at boot, mirrored for tests: boot `se_active`
 * (default a); when `se_try=1`, clear it first (save_env) and boot `se_try_slot` once. Returns the
 * slot booted and the block as GRUB leaves it. The qemu test (make test-image) runs the real GRUB.
 */
export function grubBoot(env: GrubEnv): { slot: Slot; env: GrubEnv } {
  const active: Slot = env.se_active === 'b' ? 'b' : 'a';
  if (env.se_try === '1') {
    const next = { ...env, se_try: '0' };
    const trySlot = env.se_try_slot === 'a' || env.se_try_slot === 'b' ? env.se_try_slot : active;
    return { slot: trySlot, env: next };
  }
  return { slot: active, env };
}
