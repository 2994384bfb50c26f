import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * The certificate revocation list the broker checks at every TLS handshake (mosquitto `crlfile`):
 * a revoked device certificate is refused before MQTT starts. The dynamic-security plugin cannot do
 * that alone: with certificate subjects as user names mosquitto 2.0 skips the plugin's login check,
 * so a disabled client still connects (it can then neither publish nor subscribe).
 *
 * Made with `openssl ca -gencrl` from a throw-away CA database listing each revoked certificate.
 * mosquitto re-reads it on SIGHUP (checked with mosquitto 2.0.11). Valid for `days` (default ten
 * years): an expired CRL makes OpenSSL refuse every device, so it is re-made on every revocation.
 */
export function writeCrl(o: { caCert: string; caKey: string; revoked: string[]; out: string; days?: number; now?: Date }): void {
  const w = mkdtempSync(join(tmpdir(), 'se-crl-'));
  try {
    const stamp = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
    const lines = o.revoked.map((path) => {
      const c = new X509Certificate(readFileSync(path));
      const subject = c.subject
        .split('\n')
        .map((p) => `/${p}`)
        .join('');
      return ['R', stamp(new Date(c.validTo)), stamp(o.now ?? new Date()), c.serialNumber, 'unknown', subject].join('\t');
    });
    writeFileSync(join(w, 'index.txt'), lines.map((l) => l + '\n').join(''));
    // Increasing CRL numbers (time-based); openssl wants an even number of hex digits.
    const n = (o.now ?? new Date()).getTime().toString(16).toUpperCase();
    writeFileSync(join(w, 'crlnumber'), `${n.length % 2 ? '0' : ''}${n}\n`);
    writeFileSync(
      join(w, 'ca.cnf'),
      `[ca]\ndefault_ca = d\n[d]\ndatabase = ${w}/index.txt\ncrlnumber = ${w}/crlnumber\ndefault_md = sha256\ndefault_crl_days = ${o.days ?? 3650}\n`,
    );
    execFileSync('openssl', ['ca', '-gencrl', '-config', join(w, 'ca.cnf'), '-keyfile', o.caKey, '-cert', o.caCert, '-out', join(w, 'crl.pem')], {
      stdio: 'pipe',
      timeout: 15_000,
    });
    // Atomic: mosquitto may re-read it at any moment.
    writeFileSync(`${o.out}.tmp`, readFileSync(join(w, 'crl.pem')), { mode: 0o644 });
    renameSync(`${o.out}.tmp`, o.out);
  } finally {
    rmSync(w, { recursive: true, force: true });
  }
}

/** The CRL beside an issued-certificates folder (pki/devices -> pki/crl.pem). */
export const crlPathFor = (issuedDir: string): string => join(dirname(issuedDir), 'crl.pem');

/** Certificates in `dir` (<id>.crt) whose device is revoked (<id>.revoked). */
export function revokedCertificates(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const files = new Set(readdirSync(dir));
  return [...files].filter((f) => f.endsWith('.revoked') && files.has(`${f.slice(0, -8)}.crt`)).map((f) => join(dir, `${f.slice(0, -8)}.crt`));
}
