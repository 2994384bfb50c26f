import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * RFC 6238 TOTP (HMAC-SHA1, 30 s step, 6 digits) over RFC 4226 HOTP, with node:crypto only.
 * Secrets travel as RFC 4648 base32 (what authenticator apps read from an otpauth:// URI).
 */
const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
export const TOTP_STEP_S = 30;
export const TOTP_DIGITS = 6;

export function base32Encode(b: Buffer): string {
  let bits = 0;
  let v = 0;
  let out = '';
  for (const byte of b) {
    v = (v << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += B32[(v >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(v << (5 - bits)) & 31];
  return out;
}

/** Decodes base32 (case, spaces and padding ignored); throws on any other character. */
export function base32Decode(s: string): Buffer {
  const clean = s.toUpperCase().replace(/[\s=]/g, '');
  const out: number[] = [];
  let bits = 0;
  let v = 0;
  for (const ch of clean) {
    const i = B32.indexOf(ch);
    if (i < 0) throw new Error('not a base32 secret');
    v = ((v << 5) | i) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((v >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** A new 160-bit secret (RFC 4226 recommends 160 bits), base32. */
export const newTotpSecret = (): string => base32Encode(randomBytes(20));

export function hotp(key: Buffer, counter: number, digits = TOTP_DIGITS): string {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const h = createHmac('sha1', key).update(msg).digest();
  const off = h[h.length - 1]! & 0xf;
  const bin = ((h[off]! & 0x7f) << 24) | (h[off + 1]! << 16) | (h[off + 2]! << 8) | h[off + 3]!;
  return String(bin % 10 ** digits).padStart(digits, '0');
}

export const totpStep = (nowMs: number): number => Math.floor(nowMs / 1000 / TOTP_STEP_S);

export function totp(key: Buffer, nowMs: number, digits = TOTP_DIGITS): string {
  return hotp(key, totpStep(nowMs), digits);
}

/**
 * The step a code matches within ±`window` steps of now, or null. Steps at or before `usedStep`
 * are not tried: a code (or an older one) that already signed someone in is refused (no replay).
 */
export function verifyTotp(secretB32: string, code: string, nowMs: number, o: { window?: number; usedStep?: number | null } = {}): number | null {
  if (!/^[0-9]{6}$/.test(code)) return null;
  const key = base32Decode(secretB32);
  const now = totpStep(nowMs);
  const w = o.window ?? 1;
  let hit: number | null = null;
  // Every candidate is computed and compared in constant time, so timing does not tell which step matched.
  for (let s = now - w; s <= now + w; s++) {
    const ok = timingSafeEqual(Buffer.from(hotp(key, s)), Buffer.from(code));
    if (ok && hit === null && (o.usedStep == null || s > o.usedStep)) hit = s;
  }
  return hit;
}

/**
 * The otpauth:// URI an authenticator app reads (Google Authenticator Key Uri Format,
 * https://github.com/google/google-authenticator/wiki/Key-Uri-Format): label "issuer:account",
 * issuer repeated as a parameter, every part percent-encoded as RFC 3986 says (a space is %20:
 * URLSearchParams' "+" shows as a literal plus in some apps).
 */
export function otpauthUri(o: { issuer: string; account: string; secret: string }): string {
  const label = `${encodeURIComponent(o.issuer)}:${encodeURIComponent(o.account)}`;
  const q = { secret: o.secret, issuer: o.issuer, algorithm: 'SHA1', digits: String(TOTP_DIGITS), period: String(TOTP_STEP_S) };
  return `otpauth://totp/${label}?${Object.entries(q)
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join('&')}`;
}

/**
 * One-time recovery codes: for a lost phone, each good once in place of a code. 80 random bits
 * each (16 base32 letters and digits, shown in groups of four), so a plain SHA-256 is enough to
 * store them (a stolen database cannot be searched for them, as with session ids); the user name
 * is hashed in, so the same code on two accounts gives two hashes.
 */
export const RECOVERY_CODES = 10;
export function newRecoveryCodes(n = RECOVERY_CODES): string[] {
  return Array.from({ length: n }, () => base32Encode(randomBytes(10)).toLowerCase().match(/.{4}/g)!.join('-'));
}

/** A typed recovery code as stored (lower case, no spaces or dashes), or null when it cannot be one. */
export function normalRecoveryCode(typed: string): string | null {
  const s = typed.toLowerCase().replace(/[\s-]/g, '');
  return /^[a-z2-7]{16}$/.test(s) ? s : null;
}

export function recoveryCodeHash(username: string, code: string): string {
  return createHash('sha256')
    .update(`${username}\u0000${normalRecoveryCode(code) ?? ''}`)
    .digest('base64url');
}
