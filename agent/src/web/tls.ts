import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Ctx } from '../core/capability.js';
import { writeFileAtomic } from '../core/fs.js';
import { AppError } from '../../../common/errors.js';

/** Why a stored certificate/key pair cannot be used (null: usable): empty, truncated, or not a pair. */
function pairProblem(certPath: string, keyPath: string): string | null {
  try {
    const cert = new X509Certificate(readFileSync(certPath));
    const key = createPrivateKey(readFileSync(keyPath));
    return cert.checkPrivateKey(key) ? null : 'the key does not belong to the certificate';
  } catch (e) {
    return (e as Error).message;
  }
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  certPath: string;
  keyPath: string;
  generated: boolean;
}

/**
 * The LAN server speaks HTTPS even on a self-signed certificate: the records viewer carries
 * patient data over the practice Wi-Fi. Operators can give a proper certificate in config;
 * otherwise one is generated once (openssl, EC P-256, 10 years) into stateDir/tls and reused,
 * so browsers that accepted it keep accepting it.
 */
export async function ensureTls(ctx: Ctx): Promise<TlsMaterial> {
  const { certPath, keyPath } = ctx.config.status.tls;
  if (certPath || keyPath) {
    if (!certPath || !keyPath) throw new AppError('CONFIG_INVALID', 'status.tls needs both certPath and keyPath');
    try {
      return { cert: readFileSync(certPath), key: readFileSync(keyPath), certPath, keyPath, generated: false };
    } catch (e) {
      throw new AppError('CONFIG_INVALID', `status.tls: cannot read certificate or key: ${(e as Error).message}`);
    }
  }
  const dir = join(ctx.config.paths.stateDir, 'tls');
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  let generated = false;
  // A power cut soon after an older version wrote them (without fsync) can leave empty files: the
  // status page would then not start at all. Set a broken pair aside and make a new one.
  const broken = existsSync(cert) && existsSync(key) ? pairProblem(cert, key) : null;
  if (broken) {
    const aside = `.broken-${Date.now()}`;
    renameSync(cert, cert + aside);
    renameSync(key, key + aside);
    ctx.log.warn('the stored TLS certificate or key is unusable; generating a new one (browsers will ask to accept it again)', { reason: broken });
  }
  if (!existsSync(cert) || !existsSync(key)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmpCert = `${cert}.tmp`;
    const tmpKey = `${key}.tmp`;
    const host = ctx.config.site.deviceId;
    await ctx.platform.commands.run(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        tmpKey,
        '-out',
        tmpCert,
        '-days',
        '3650',
        '-subj',
        `/CN=${host}/O=surgery-edge`,
        '-addext',
        `subjectAltName=DNS:${host},DNS:${host}.local,DNS:surgery-edge.local,DNS:localhost,IP:127.0.0.1`,
      ],
      { timeoutMs: 30_000 },
    );
    chmodSync(tmpKey, 0o600);
    // Key first: a cert without its key is useless, and we regenerate when either is missing. Each is
    // written durably (fsync, rename, fsync of the directory): a power cut leaves the old state or
    // the whole new pair, never an empty file (test/image/update.test.ts cuts power soon after boot).
    writeFileAtomic(key, readFileSync(tmpKey), 0o600);
    writeFileAtomic(cert, readFileSync(tmpCert), 0o644);
    rmSync(tmpKey, { force: true });
    rmSync(tmpCert, { force: true });
    generated = true;
    ctx.log.info('generated a self-signed TLS certificate', { path: cert });
  }
  return { cert: readFileSync(cert), key: readFileSync(key), certPath: cert, keyPath: key, generated };
}
