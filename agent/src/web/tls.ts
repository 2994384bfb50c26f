import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Ctx } from '../core/capability.js';
import { AppError } from '../../../common/errors.js';

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
    // Key first: a cert without its key is useless, and we regenerate when either is missing.
    renameSync(tmpKey, key);
    renameSync(tmpCert, cert);
    rmSync(`${cert}.tmp`, { force: true });
    generated = true;
    ctx.log.info('generated a self-signed TLS certificate', { path: cert });
  }
  return { cert: readFileSync(cert), key: readFileSync(key), certPath: cert, keyPath: key, generated };
}
