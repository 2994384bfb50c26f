import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCb, type ScryptOptions } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { shredFile, writeFileAtomic } from '../core/fs.js';
import { AppError } from '../../../common/errors.js';

/** Re-exported for the records CLI and tests: shredding lives in core/fs.ts (the TPM blobs use it too). */
export { shredFile };

/**
 * Key policy of the records cache (see docs/threat-model.md):
 * - a random 256-bit data key encrypts the database (SQLCipher-compatible);
 * - the data key is stored only wrapped: AES-256-GCM under a key-encryption key derived from the
 *   operator's passphrase with scrypt (N=2^15, r=8, p=1: ~100 ms and 32 MiB on a Pi 4, so guessing
 *   is slow and memory-hard);
 * - after a reboot the cache is locked until someone enters the passphrase (CLI `records unlock`
 *   or the status page). The unwrapped key then lives in the agent's memory and in a 0600 file on
 *   the RAM-backed run directory (tmpfs), so an agent restart does not re-lock, but a power cycle does;
 * - optionally a second copy is sealed to the TPM (platform/tpm.ts) so an unmodified appliance self-unlocks;
 * - de-provisioning overwrites and deletes the wrapped key: the database becomes unreadable.
 */
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const MIN_PASSPHRASE = 10;

interface WrappedKeyFile {
  version: 1;
  kdf: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string;
  iv: string;
  tag: string;
  wrapped: string;
  /** Key check value: lets unwrap tell "wrong passphrase" from a corrupt file. */
  createdAt: number;
}

function scrypt(pass: string, salt: Buffer, o: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(pass.normalize('NFKC'), salt, 32, { ...o, maxmem: SCRYPT.maxmem } as ScryptOptions, (e, k) => (e ? reject(e) : resolve(k))),
  );
}

export function keyFileExists(path: string): boolean {
  return existsSync(path);
}

/** Wrap `dataKey` under `passphrase` and write it atomically (0600). */
export async function writeWrappedKey(path: string, dataKey: Buffer, passphrase: string, now = Date.now()): Promise<void> {
  if (passphrase.length < MIN_PASSPHRASE) throw new AppError('BAD_REQUEST', `passphrase must be at least ${MIN_PASSPHRASE} characters`);
  const salt = randomBytes(16);
  const kek = await scrypt(passphrase, salt, SCRYPT);
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek, iv);
  c.setAAD(Buffer.from('surgery-edge records data key v1'));
  const wrapped = Buffer.concat([c.update(dataKey), c.final()]);
  const file: WrappedKeyFile = {
    version: 1,
    kdf: 'scrypt',
    N: SCRYPT.N,
    r: SCRYPT.r,
    p: SCRYPT.p,
    salt: salt.toString('base64'),
    iv: iv.toString('base64'),
    tag: c.getAuthTag().toString('base64'),
    wrapped: wrapped.toString('base64'),
    createdAt: now,
  };
  writeFileAtomic(path, JSON.stringify(file), 0o600);
}

/** First provisioning: a fresh data key, wrapped. Refuses to overwrite an existing key. */
export async function createKey(path: string, passphrase: string): Promise<Buffer> {
  if (existsSync(path)) throw new AppError('CONFLICT', 'a records key already exists; destroy it first (records destroy-key)');
  const key = randomBytes(32);
  await writeWrappedKey(path, key, passphrase);
  return key;
}

/** Unwrap the data key. UNAUTHORIZED on a wrong passphrase, NOT_FOUND when not provisioned. */
export async function unwrapKey(path: string, passphrase: string): Promise<Buffer> {
  let file: WrappedKeyFile;
  try {
    file = JSON.parse(readFileSync(path, 'utf8')) as WrappedKeyFile;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new AppError('NOT_FOUND', 'records key not provisioned (records init)');
    throw new AppError('INTERNAL', 'records key file is corrupt');
  }
  if (file.version !== 1 || file.kdf !== 'scrypt') throw new AppError('INTERNAL', 'records key file has an unknown format');
  const kek = await scrypt(passphrase, Buffer.from(file.salt, 'base64'), { N: file.N, r: file.r, p: file.p });
  try {
    const d = createDecipheriv('aes-256-gcm', kek, Buffer.from(file.iv, 'base64'));
    d.setAAD(Buffer.from('surgery-edge records data key v1'));
    d.setAuthTag(Buffer.from(file.tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(file.wrapped, 'base64')), d.final()]);
  } catch {
    throw new AppError('UNAUTHORIZED', 'wrong passphrase');
  }
}

export async function changePassphrase(path: string, oldPass: string, newPass: string): Promise<void> {
  const key = await unwrapKey(path, oldPass);
  await writeWrappedKey(path, key, newPass);
}

/** The unlocked key's RAM-only handoff file (tmpfs run dir), so CLI unlock reaches the running agent. */
export function writeRuntimeKey(path: string, key: Buffer): void {
  writeFileAtomic(path, key.toString('hex'), 0o600);
}

export function readRuntimeKey(path: string): Buffer | null {
  try {
    const hex = readFileSync(path, 'utf8').trim();
    return /^[0-9a-f]{64}$/.test(hex) ? Buffer.from(hex, 'hex') : null;
  } catch {
    return null;
  }
}

/**
 * One line from stdin (the CLI's passphrase prompt). Passphrases never come from argv, which other
 * users can read in `ps`.
 */
export async function readPassphrase(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('passphrase: ');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) {
    chunks.push(c as Buffer);
    if (Buffer.concat(chunks).includes(0x0a)) break;
  }
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
}
