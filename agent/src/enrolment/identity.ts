import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { loadDeviceKey, parseSealedKeyFile, type DeviceKeyOptions } from '../platform/device-key.js';

export interface IdentityFiles {
  deviceId: string;
  certPath: string;
  keyPath: string;
  caPath: string;
}

export interface IdentityCheck {
  enrolled: boolean;
  /** Why not, in words an ICB engineer acts on; null when enrolled. */
  reason: string | null;
  deviceId: string;
  subject: string | null;
  issuer: string | null;
  notAfter: number | null;
  /** The private key is sealed to this box's TPM (device-key.ts); false for a PEM file. */
  tpmSealed?: boolean;
}

/** CN of an X.509 subject as Node prints it ("CN=P81001-01" or multi-line "C=GB\nCN=..."). */
export function commonName(subject: string): string | null {
  const m = /(?:^|\n|,\s*)CN=([^\n,]+)/.exec(subject);
  return m ? m[1]!.trim() : null;
}

/**
 * Is this box enrolled with the ICB? Yes only when the device certificate, its private key and
 * the ICB CA are all installed, the key matches the certificate, the CA signed it, it is in date
 * and its CN is this device's id (the broker's ACL is keyed on the CN).
 */
export function checkIdentity(f: IdentityFiles, hostPath: (p: string) => string, now: number, loadedKey?: KeyObject): IdentityCheck {
  const out = (reason: string | null, cert?: X509Certificate): IdentityCheck => ({
    enrolled: reason === null,
    reason,
    deviceId: f.deviceId,
    subject: cert ? cert.subject : null,
    issuer: cert ? cert.issuer : null,
    notAfter: cert ? Date.parse(cert.validTo) : null,
  });
  if (!f.certPath || !f.keyPath || !f.caPath) return out('no device identity configured (telemetry.certPath, keyPath, caPath)');
  const read = (p: string, what: string): Buffer | string => {
    try {
      return readFileSync(hostPath(p));
    } catch {
      return `${what} ${p} is missing`;
    }
  };
  const certPem = read(f.certPath, 'device certificate');
  if (typeof certPem === 'string') return out(certPem);
  // A TPM-sealed key arrives already unsealed (checkIdentityAsync); a PEM key is read here.
  const keyPem = loadedKey ?? read(f.keyPath, 'device key');
  if (typeof keyPem === 'string') return out(keyPem);
  const caPem = read(f.caPath, 'ICB CA certificate');
  if (typeof caPem === 'string') return out(caPem);
  let cert: X509Certificate;
  let ca: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
    ca = new X509Certificate(caPem);
  } catch (e) {
    return out(`certificate unreadable: ${(e as Error).message}`);
  }
  try {
    if (!cert.checkPrivateKey(loadedKey ?? createPrivateKey(keyPem as Buffer))) return out('the device key does not match the device certificate', cert);
  } catch (e) {
    return out(`device key unreadable: ${(e as Error).message}`, cert);
  }
  if (!cert.verify(ca.publicKey)) return out('the device certificate was not signed by the installed ICB CA', cert);
  const cn = commonName(cert.subject);
  if (cn !== f.deviceId) return out(`certificate is for ${cn ?? '(no CN)'}, this device is ${f.deviceId}`, cert);
  if (Date.parse(cert.validTo) < now) return out(`device certificate expired ${cert.validTo}`, cert);
  if (Date.parse(cert.validFrom) > now) return out(`device certificate not valid until ${cert.validFrom} (is the clock right?)`, cert);
  return out(null, cert);
}

/**
 * checkIdentity for a key that may be sealed to the TPM: unseals it first (cached by the file's
 * state, so the minute re-check costs a stat). A TPM that refuses makes the box "not enrolled",
 * with the reason.
 */
export async function checkIdentityAsync(
  f: IdentityFiles,
  hostPath: (p: string) => string,
  now: number,
  key: Pick<DeviceKeyOptions, 'runner' | 'workDir' | 'tcti'>,
): Promise<IdentityCheck> {
  let sealed = false;
  try {
    sealed = !!f.keyPath && existsSync(hostPath(f.keyPath)) && parseSealedKeyFile(readFileSync(hostPath(f.keyPath), 'utf8')) !== null;
  } catch (e) {
    return { ...checkIdentity(f, hostPath, now), enrolled: false, reason: `device key unreadable: ${(e as Error).message}` };
  }
  if (!sealed) return checkIdentity(f, hostPath, now);
  try {
    const { key: k } = await loadDeviceKey(hostPath(f.keyPath), key);
    return { ...checkIdentity(f, hostPath, now, k), tpmSealed: true };
  } catch (e) {
    let cert: X509Certificate | null = null;
    try {
      cert = new X509Certificate(readFileSync(hostPath(f.certPath)));
    } catch {
      /* no certificate yet: enrolment not finished */
    }
    return {
      enrolled: false,
      reason: (e as Error).message,
      deviceId: f.deviceId,
      subject: cert?.subject ?? null,
      issuer: cert?.issuer ?? null,
      notAfter: cert ? Date.parse(cert.validTo) : null,
      tpmSealed: true,
    };
  }
}
