import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../../../common/errors.js';
import type { FleetConfig } from '../config.js';

export interface DashboardTls {
  cert: Buffer;
  key: Buffer;
  certPath: string;
  /** True when the certificate is the generated self-signed one (browsers will warn). */
  selfSigned: boolean;
}

/**
 * The dashboard's certificate: the configured one, or (as the appliance's agent/src/web/tls.ts) a
 * self-signed EC P-256 one generated once into <dataDir>/tls and reused, so a browser exception
 * made for it keeps working. Undefined when HTTPS is off.
 */
export function dashboardTls(config: FleetConfig): DashboardTls | undefined {
  const t = config.http.tls;
  if (!t.enabled) return undefined;
  if (t.certPath || t.keyPath) {
    if (!t.certPath || !t.keyPath) throw new AppError('CONFIG_INVALID', 'http.tls needs both certPath and keyPath');
    try {
      return { cert: readFileSync(t.certPath), key: readFileSync(t.keyPath), certPath: t.certPath, selfSigned: false };
    } catch (e) {
      throw new AppError('CONFIG_INVALID', `http.tls: cannot read certificate or key: ${(e as Error).message}`);
    }
  }
  const dir = join(config.dataDir, 'tls');
  const cert = join(dir, 'dashboard.crt');
  const key = join(dir, 'dashboard.key');
  if (!existsSync(cert) || !existsSync(key)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? 'localhost' : config.http.host;
    const san = [`DNS:localhost`, `IP:127.0.0.1`, /^[\d.]+$/.test(host) ? `IP:${host}` : `DNS:${host}`];
    execFileSync(
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
        `${key}.tmp`,
        '-out',
        `${cert}.tmp`,
        '-days',
        '825',
        '-subj',
        `/O=surgery-edge/CN=${host}`,
        '-addext',
        `subjectAltName=${[...new Set(san)].join(',')}`,
      ],
      { stdio: 'ignore' },
    );
    chmodSync(`${key}.tmp`, 0o600);
    renameSync(`${key}.tmp`, key);
    renameSync(`${cert}.tmp`, cert);
  }
  return { cert: readFileSync(cert), key: readFileSync(key), certPath: cert, selfSigned: true };
}
