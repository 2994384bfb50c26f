import { execFileSync } from 'node:child_process';
import { createPublicKey, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '../../../common/errors.js';

export const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** The name a box asks for before it has one (agent/src/enrolment/claimer.ts); never issued. */
export const PROVISIONAL = /^unclaimed-[0-9a-f]{8}$/;
const RESERVED = /^(fleet([-_.].*)?|admin|administrator|root|broker|mosquitto|icb|ca|server|localhost|unenrolled|unclaimed.*)$/i;

/**
 * Why `cn` may not be a device's certificate name, or null. The broker takes the certificate CN as
 * the MQTT user name and `fleet` may read and write every device's topics (docs/mqtt-contract.md),
 * so the fleet's own names and anything that is not a device id are never issued to a box.
 */
export function reservedIdentity(cn: string): string | null {
  if (!DEVICE_ID.test(cn)) return `${JSON.stringify(cn.slice(0, 80))} is not a device id (letters, digits, . _ -; at most 64)`;
  if (RESERVED.test(cn)) return `${cn} is a reserved identity`;
  return null;
}

export interface CsrInfo {
  cn: string;
  spkiPem: string;
  spkiDer: Buffer;
}

function openssl(args: string[], dir: string): string {
  try {
    return execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000 }).toString();
  } catch (e) {
    throw new AppError(
      'BAD_REQUEST',
      `openssl ${args[0]}: ${String((e as { stderr?: Buffer }).stderr ?? e)
        .trim()
        .split('\n')[0]
        ?.slice(0, 200)}`,
    );
  }
}

function withDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'fl-claim-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Read a box's CSR: its own signature must verify (it holds the key), the key must be EC P-256
 * like the rest of the PKI, and it may not ask for extra names (subjectAltName): the fleet chooses
 * every name in the certificate.
 */
export function inspectCsr(pem: string): CsrInfo {
  if (typeof pem !== 'string' || pem.length > 8192 || !pem.includes('-----BEGIN CERTIFICATE REQUEST-----'))
    throw new AppError('BAD_REQUEST', 'csr must be one PEM certificate request');
  return withDir((dir) => {
    writeFileSync(join(dir, 'r.csr'), pem);
    const out = openssl(
      [
        'req',
        '-in',
        'r.csr',
        '-noout',
        '-verify',
        '-pubkey',
        '-subject',
        '-nameopt',
        'multiline',
        '-reqopt',
        'no_header,no_version,no_subject,no_pubkey,no_sigdump',
        '-text',
      ],
      dir,
    );
    if (/Subject Alternative Name/i.test(out)) throw new AppError('BAD_REQUEST', 'the CSR asks for subjectAltName: refused (the fleet chooses the names)');
    const spkiPem = /-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----\n?/.exec(out)?.[0];
    const cn = /^\s*commonName\s*=\s*(.+)$/m.exec(out)?.[1]?.trim();
    if (!spkiPem || !cn) throw new AppError('BAD_REQUEST', 'the CSR has no public key or no common name');
    const key = createPublicKey(spkiPem);
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
      throw new AppError('BAD_REQUEST', 'the CSR key must be EC P-256');
    return { cn, spkiPem, spkiDer: key.export({ type: 'spki', format: 'der' }) };
  });
}

/**
 * Sign the box's public key as `deviceId` with the ICB CA: subject and extensions are the fleet's
 * (client auth only, not a CA), never copied from the CSR, as provisioning/pki.sh sign-csr does.
 */
export function signDevice(o: { caCertPath: string; caKeyPath: string; spkiPem: string; deviceId: string; days: number }): string {
  if (reservedIdentity(o.deviceId) || PROVISIONAL.test(o.deviceId)) throw new AppError('BAD_REQUEST', `refusing to issue ${o.deviceId}`);
  return withDir((dir) => {
    writeFileSync(join(dir, 'pub.pem'), o.spkiPem);
    writeFileSync(join(dir, 'ext'), 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n');
    openssl(
      [
        'x509',
        '-new',
        '-subj',
        `/CN=${o.deviceId}`,
        '-force_pubkey',
        'pub.pem',
        '-CA',
        o.caCertPath,
        '-CAkey',
        o.caKeyPath,
        '-days',
        String(o.days),
        '-sha256',
        '-set_serial',
        `0x${randomBytes(16)
          .toString('hex')
          .replace(/^[89a-f]/, '1')}`,
        '-extfile',
        'ext',
        '-out',
        'device.crt',
      ],
      dir,
    );
    const pem = readFileSync(join(dir, 'device.crt'), 'utf8');
    const cert = new X509Certificate(pem);
    if (!cert.verify(new X509Certificate(readFileSync(o.caCertPath)).publicKey))
      throw new AppError('INTERNAL', 'issued certificate does not verify against the CA');
    return pem;
  });
}
