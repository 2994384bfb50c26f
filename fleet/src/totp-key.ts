import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { FleetConfig } from './config.js';

/**
 * TOTP secrets must be readable to check a code (unlike passwords, they cannot be hashed), so the
 * store holds them sealed with AES-256-GCM under a key kept outside the database, in a 0600 file
 * (auth.totpKeyPath, default <dataDir>/totp.key). The user name is the associated data: a sealed
 * secret copied onto another account does not open. A stolen database (a backup, a PostgreSQL
 * replica) alone does not give the codes; the database and the key file together do.
 */
export class TotpSealer {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('TOTP key must be 32 bytes');
  }

  static load(config: FleetConfig): TotpSealer {
    const path = config.auth.totpKeyPath || join(config.dataDir, 'totp.key');
    let raw: string;
    try {
      raw = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      mkdirSync(dirname(path), { recursive: true });
      raw = randomBytes(32).toString('base64');
      // 'wx': two instances starting at once do not overwrite each other's key.
      try {
        writeFileSync(path, raw + '\n', { mode: 0o600, flag: 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        raw = readFileSync(path, 'utf8');
      }
      chmodSync(path, 0o600);
    }
    const key = Buffer.from(raw.trim(), 'base64');
    if (key.length !== 32) throw new Error(`${path}: not a TOTP key (32 bytes, base64)`);
    return new TotpSealer(key);
  }

  seal(username: string, secret: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv).setAAD(Buffer.from(username));
    const ct = Buffer.concat([c.update(secret, 'utf8'), c.final()]);
    return `v1:${Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64')}`;
  }

  /** The secret, or null when it does not open (another key, another account, tampered). */
  open(username: string, sealed: string): string | null {
    if (!sealed.startsWith('v1:')) return null;
    const b = Buffer.from(sealed.slice(3), 'base64');
    if (b.length < 29) return null;
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, b.subarray(0, 12)).setAAD(Buffer.from(username));
      d.setAuthTag(b.subarray(12, 28));
      return Buffer.concat([d.update(b.subarray(28)), d.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}

const sealers = new WeakMap<FleetConfig, TotpSealer>();
/** The config's sealer, loaded (or its key created) on first use and shared by the sign-in and account pages. */
export function totpSealer(config: FleetConfig): TotpSealer {
  let s = sealers.get(config);
  if (!s) sealers.set(config, (s = TotpSealer.load(config)));
  return s;
}
