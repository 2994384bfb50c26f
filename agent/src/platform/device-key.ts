import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { AppError } from '../../../common/errors.js';
import { writeFileAtomic } from '../core/fs.js';
import type { CommandRunner } from './command.js';
import { DEFAULT_TCTI, tpmAvailable as tpmAnswers, TpmSealer } from './tpm.js';

/**
 * The device's MQTT client key (docs/image.md, "Enrolment"; docs/threat-model.md): made by enrolment,
 * loaded by enrolment's identity check and by telemetry's MQTT connection.
 *
 * With a TPM 2.0 present the EC P-256 private scalar (32 bytes) is sealed to that TPM
 * (platform/tpm.ts: tpm2_create under the owner hierarchy's primary key) and never written to disk in the
 * clear. The key file then holds only the public point and a format marker; the sealed blobs
 * (`<key>.tpm.pub/.priv`) beside it load only into the TPM that made them. A copied SD card or
 * disk therefore cannot impersonate the practice's box. The agent unseals the scalar into memory
 * when it connects.
 *
 * No PCR policy by default: a signed update that changes the boot loader must not un-enrol the
 * box (unlike the records key, there is no passphrase to fall back on). `enrolment.tpmPcrs` can add
 * one where the ICB prefers re-enrolment after boot-chain changes.
 *
 * Without a TPM (or keyProtection: file) the key is a 0600 PEM file, as before; loading accepts
 * both formats, so boxes enrolled by older agents keep working.
 */
export const SEALED_FORMAT = 'surgery-edge-tpm-sealed-ec-key/1';

interface SealedKeyFile {
  format: typeof SEALED_FORMAT;
  crv: 'P-256';
  x: string;
  y: string;
  pcrs: string;
  createdAt: string;
}

export interface DeviceKeyOptions {
  runner: CommandRunner;
  /** Scratch directory for TPM object contexts (the run dir, tmpfs). */
  workDir: string;
  /** TPM2TOOLS_TCTI; '' = device:/dev/tpmrm0. */
  tcti: string;
  pcrs: string;
  hostPath: (p: string) => string;
}

export type KeyProtection = 'auto' | 'tpm' | 'file';

function sealer(keyFile: string, o: DeviceKeyOptions): TpmSealer {
  return new TpmSealer({
    runner: o.runner,
    blobDir: dirname(keyFile),
    workDir: o.workDir,
    name: `${basename(keyFile)}.tpm`,
    tcti: o.tcti || DEFAULT_TCTI,
    pcrs: o.pcrs,
  });
}

export function tpmAvailable(o: DeviceKeyOptions): boolean {
  return tpmAnswers(o.tcti, o.hostPath);
}

/** The sealed-key descriptor when `text` is one, else null (a PEM key, or something else). */
export function parseSealedKeyFile(text: string): SealedKeyFile | null {
  if (!text.trimStart().startsWith('{')) return null;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new AppError('CONFIG_INVALID', 'device key file is neither a PEM key nor a sealed-key descriptor');
  }
  const d = doc as Partial<SealedKeyFile>;
  if (d.format !== SEALED_FORMAT || d.crv !== 'P-256' || typeof d.x !== 'string' || typeof d.y !== 'string' || typeof d.pcrs !== 'string') {
    throw new AppError('CONFIG_INVALID', `device key file: unknown sealed-key format ${JSON.stringify(d.format ?? null)}`);
  }
  return d as SealedKeyFile;
}

/**
 * Make the device key at `keyFile` (a host path) unless one exists. Returns how it is held.
 * 'tpm' fails when no TPM answers; 'auto' uses the TPM where present.
 */
export async function createDeviceKey(keyFile: string, protection: KeyProtection, o: DeviceKeyOptions): Promise<'tpm' | 'file'> {
  if (existsSync(keyFile)) return parseSealedKeyFile(readFileSync(keyFile, 'utf8')) ? 'tpm' : 'file';
  const useTpm = protection === 'tpm' || (protection === 'auto' && tpmAvailable(o));
  if (protection === 'tpm' && !tpmAvailable(o)) throw new AppError('UNAVAILABLE', 'enrolment.keyProtection is tpm but no TPM is present (/dev/tpmrm0)');
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  if (!useTpm) {
    writeFileAtomic(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
    return 'file';
  }
  const jwk = privateKey.export({ format: 'jwk' });
  const d = Buffer.from(jwk.d!, 'base64url');
  try {
    // Blobs first, descriptor last: a power cut leaves no key file, and the next `enrol csr` makes a new key.
    await sealer(keyFile, o).seal(d);
  } finally {
    d.fill(0);
  }
  const desc: SealedKeyFile = { format: SEALED_FORMAT, crv: 'P-256', x: jwk.x!, y: jwk.y!, pcrs: o.pcrs, createdAt: new Date().toISOString() };
  writeFileAtomic(keyFile, JSON.stringify(desc, null, 2) + '\n', 0o600);
  return 'tpm';
}

interface Cached {
  stamp: string;
  key: KeyObject;
}
const cache = new Map<string, Cached>();

function stampOf(keyFile: string): string {
  const parts = [keyFile, `${keyFile}.tpm.pub`, `${keyFile}.tpm.priv`].map((p) => {
    try {
      const s = statSync(p);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return '-';
    }
  });
  return parts.join('|');
}

/**
 * The device private key, unsealed through the TPM when it is sealed. Cached per file state, so
 * the enrolment re-check each minute does not ask the TPM again. Throws AppError with a reason an
 * ICB engineer acts on: UNAUTHORIZED when this TPM refuses (another box, TPM cleared, boot chain
 * changed under a PCR policy).
 */
export async function loadDeviceKey(keyFile: string, o: Pick<DeviceKeyOptions, 'runner' | 'workDir' | 'tcti'>): Promise<{ key: KeyObject; sealed: boolean }> {
  const text = readFileSync(keyFile, 'utf8');
  const desc = parseSealedKeyFile(text);
  if (!desc) return { key: createPrivateKey(text), sealed: false };
  const stamp = stampOf(keyFile);
  const hit = cache.get(keyFile);
  if (hit && hit.stamp === stamp) return { key: hit.key, sealed: true };
  const s = sealer(keyFile, { ...o, pcrs: desc.pcrs, hostPath: (p) => p });
  if (!s.isSealed()) throw new AppError('NOT_FOUND', `device key is TPM-sealed but ${basename(s.pubPath)}/.priv are missing beside it: re-enrol`);
  let d: Buffer;
  try {
    d = await s.unseal();
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new AppError(
      code === 'UNAUTHORIZED' ? 'UNAUTHORIZED' : 'COMMAND_FAILED',
      `the TPM did not release the device key (${code === 'UNAUTHORIZED' ? 'boot chain changed' : 'not the TPM that sealed it, or TPM cleared'}): ` +
        `re-enrol. ${(e as Error).message}`,
    );
  }
  try {
    const key = createPrivateKey({ key: { kty: 'EC', crv: desc.crv, x: desc.x, y: desc.y, d: d.toString('base64url') }, format: 'jwk' });
    cache.set(keyFile, { stamp, key });
    return { key, sealed: true };
  } catch (e) {
    throw new AppError('INTERNAL', `unsealed device key does not form a valid P-256 key: ${(e as Error).message}`);
  } finally {
    d.fill(0);
  }
}

/** PEM of the unsealed key for TLS options (node:tls takes PEM or a KeyObject only via this). */
export function keyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}
