import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../../../common/errors.js';

export interface TrustedKey {
  keyId: string;
  key: KeyObject;
  file: string;
}

/** keyId: the first 16 hex digits of SHA-256 over the SPKI DER (what `update-key.sh id` prints). */
export function keyIdOf(key: KeyObject): string {
  return createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

/**
 * The ICB update keys this device trusts: every `*.pem` public key in `dir`. On the appliance the
 * directory is on the read-only root (it arrives with a signed image, never over the network), so
 * rotating the key means shipping an image that trusts both the old and the new key first.
 * Only Ed25519 keys are accepted: a stray RSA key must not silently widen what verifies.
 */
export function loadTrustedKeys(dir: string): TrustedKey[] {
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => n.endsWith('.pem'))
      .sort();
  } catch (e) {
    throw new AppError('UNAVAILABLE', `no update keys directory ${dir}: ${(e as Error).message}`);
  }
  const keys: TrustedKey[] = [];
  for (const n of names) {
    const file = join(dir, n);
    let key: KeyObject;
    try {
      key = createPublicKey(readFileSync(file));
    } catch (e) {
      throw new AppError('UNAVAILABLE', `update key ${file} is not a public key: ${(e as Error).message}`);
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new AppError('UNAVAILABLE', `update key ${file} is ${key.asymmetricKeyType}, not ed25519`);
    keys.push({ keyId: keyIdOf(key), key, file });
  }
  if (!keys.length) throw new AppError('UNAVAILABLE', `no update keys (*.pem) in ${dir}: refusing every bundle`);
  return keys;
}

/**
 * Check the detached signature over the manifest bytes. The key is chosen by the keyId the
 * manifest claims, but only among trusted keys, and the signature is then checked with it: a
 * manifest cannot name its way into trust.
 */
export function verifyManifestSignature(manifest: Buffer, signature: Buffer, claimedKeyId: string | undefined, keys: readonly TrustedKey[]): TrustedKey {
  const k = keys.find((t) => t.keyId === claimedKeyId);
  if (!k) {
    // Distinguish "signed by a key we do not know" from "tampered": try every trusted key first.
    const any = keys.find((t) => signature.length === 64 && verify(null, manifest, t.key, signature));
    if (any) return any;
    throw new AppError('UPDATE_UNTRUSTED_KEY', `bundle is signed by key ${claimedKeyId ?? '(none named)'}, which this device does not trust`, {
      keyId: claimedKeyId ?? null,
      trusted: keys.map((t) => t.keyId),
    });
  }
  if (signature.length !== 64 || !verify(null, manifest, k.key, signature)) {
    throw new AppError(
      'UPDATE_BAD_SIGNATURE',
      `manifest signature does not verify with trusted key ${k.keyId}: the bundle was altered or signed by another key`,
      { keyId: k.keyId },
    );
  }
  return k;
}
